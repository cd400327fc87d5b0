"""The operator's Prometheus metrics: one registry, a typed method per recording, and the ``/metrics`` endpoint.

:class:`Metrics` owns its own ``CollectorRegistry`` (never prometheus_client's global one), so every operator
and every test has separate series. Controllers record through its methods; label values that name an object
(kind, namespace, name, environment, connection) come from the object, every other label takes one of a fixed
set of values, checked here, so the number of series grows with the objects and nothing else.
:meth:`Metrics.forget` removes every series of a deleted object. ``docs/metrics.md`` lists every metric, and
``charts/chkmate-operator/files/alerts.yaml`` alerts on them: a rename here is a breaking change there.

I/O: none, except :meth:`Metrics.serve`, which listens on a TCP port (aiohttp, on the operator's event loop).
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from typing import Literal, get_args

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from chkmate.api import conditions, kinds, plans

ReconcileResult = Literal["success", "error", "invalid", "requeue"]
ApplyResult = Literal["succeeded", "failed"]
# The values of a TemplateRepoLink's status.history entries (api/links.py SyncEvent); recorded in lower case.
SyncDirection = Literal["Push", "Pull", "Conflict", "Rollback", "None"]
SyncResult = Literal["Succeeded", "Failed", "Skipped"]
# The results of the webhook receiver (chkmate.webhooks.receiver.Result, whose values these are). A plain str set
# rather than a Literal so the receiver's ``count(event: str, result: str)`` callback can be this method as is.
WEBHOOK_RESULTS = (
    "accepted",  # verified and acted on: objects marked for reconcile, or a ping answered
    "ignored",  # verified, but nothing watches that event, repository or branch
    "duplicate",  # an X-GitHub-Delivery id handled before (GitHub redelivered it, or someone replays it)
    "invalid_signature",  # X-Hub-Signature-256 missing, sha1, or wrong (401): ChkmateWebhookSignatureFailures
    "too_large",  # body over the size cap (413)
    "unsupported",  # not application/json (415)
    "bad_request",  # event or delivery header missing, or the body is not JSON (400)
    "forbidden",  # the repository is not allowed for the connection whose secret verified it (403)
    "error",  # the receiver failed to mark the objects (500): GitHub may redeliver
)
GitOperation = Literal["ls-remote", "fetch", "push", "commit"]

# The events the webhook receiver handles (issue 6). X-GitHub-Event is read before the signature is checked,
# so any other value is counted as "other": a sender must not be able to create series at will.
WEBHOOK_EVENTS = frozenset(
    {"ping", "push", "pull_request", "installation", "installation_repositories", "issue_comment"}
)
OTHER_EVENT = "other"
# The `status` label of GitHub API calls: 304 alone (ETag revalidations cost no rate limit; issue 3 aims at
# >= 90% of polls answered 304), other responses by class, "error" when no response came (timeout, refused).
GITHUB_STATUSES = ("2xx", "304", "3xx", "4xx", "5xx", "error")

# A reconcile is a few Kubernetes and GitHub calls (tens of ms) up to a git fetch and an engine run (minutes).
RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# A no-op fetch of a small mirror takes ~10 ms (FACTS.md); the git timeout defaults to 120 s (settings.py).
GIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

METRICS_PATH = "/metrics"


class Metrics:
    """Every metric of the operator, on ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        object_labels = ("kind", "namespace", "name")
        self.reconcile_duration = Histogram(
            "chkmate_reconcile_duration_seconds",
            "Time one reconcile of an object took.",
            object_labels,
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_total = Counter(
            "chkmate_reconcile_total",
            "Reconciles of an object, by result.",
            (*object_labels, "result"),
            registry=r,
        )
        self.resource_ready = Gauge(
            "chkmate_resource_ready",
            "1 for the status of the object's Ready condition, 0 for the other two.",
            (*object_labels, "status"),
            registry=r,
        )
        self.environment_drifted = Gauge(
            "chkmate_environment_drifted",
            "1 when the Environment's last drift check found changes, else 0.",
            ("namespace", "name"),
            registry=r,
        )
        self.plans = Gauge(
            "chkmate_plans",
            "Plans of an Environment in each phase.",
            ("namespace", "environment", "phase"),
            registry=r,
        )
        self.applies_total = Counter(
            "chkmate_applies_total",
            "Applies of an Environment's plans, by result.",
            ("namespace", "environment", "result"),
            registry=r,
        )
        self.sync_events_total = Counter(
            "chkmate_sync_events_total",
            "Sync events of a TemplateRepoLink, by direction and result.",
            ("namespace", "name", "direction", "result"),
            registry=r,
        )
        self.sync_conflict_open = Gauge(
            "chkmate_sync_conflict_open",
            "1 while the TemplateRepoLink has an open conflict pull request, else 0.",
            ("namespace", "name"),
            registry=r,
        )
        self.plan_awaiting_approval_since = Gauge(
            "chkmate_plan_awaiting_approval_since_seconds",
            "Unix time the plan started waiting for approval; absent when it is not waiting.",
            ("namespace", "name", "environment"),
            registry=r,
        )
        self.webhook_deliveries_total = Counter(
            "chkmate_webhook_deliveries_total",
            "GitHub webhook deliveries received, by event and result.",
            ("event", "result"),
            registry=r,
        )
        self.github_api_requests_total = Counter(
            "chkmate_github_api_requests_total",
            "GitHub API requests of a GitHubConnection, by response status class.",
            ("namespace", "connection", "status"),
            registry=r,
        )
        self.github_rate_limit_remaining = Gauge(
            "chkmate_github_rate_limit_remaining",
            "Requests left in the connection's current rate-limit window.",
            ("namespace", "connection"),
            registry=r,
        )
        self.github_rate_limit_limit = Gauge(
            "chkmate_github_rate_limit_limit",
            "Requests the connection may make per rate-limit window.",
            ("namespace", "connection"),
            registry=r,
        )
        self.git_operation_duration = Histogram(
            "chkmate_git_operation_duration_seconds",
            "Time one git operation took.",
            ("operation",),
            buckets=GIT_BUCKETS,
            registry=r,
        )
        # Series that name an object of these kinds, beyond the reconcile and Ready ones: (metric, its label
        # holding the object's name); the namespace label is always "namespace".
        self._owned: Mapping[str, tuple[tuple[MetricWrapperBase, str], ...]] = {
            kinds.ENVIRONMENT.kind: (
                (self.environment_drifted, "name"),
                (self.plans, "environment"),
                (self.applies_total, "environment"),
            ),
            kinds.PLAN.kind: ((self.plan_awaiting_approval_since, "name"),),
            kinds.TEMPLATE_REPO_LINK.kind: ((self.sync_events_total, "name"), (self.sync_conflict_open, "name")),
            kinds.GITHUB_CONNECTION.kind: (
                (self.github_api_requests_total, "connection"),
                (self.github_rate_limit_remaining, "connection"),
                (self.github_rate_limit_limit, "connection"),
            ),
        }

    # -- every kind ------------------------------------------------------------------------------------------

    def reconciled(self, kind: str, namespace: str, name: str, result: ReconcileResult, seconds: float) -> None:
        """One reconcile of an object ended with ``result`` after ``seconds``."""
        _check(result, get_args(ReconcileResult), "result")
        self.reconcile_duration.labels(kind, namespace, name).observe(seconds)
        self.reconcile_total.labels(kind, namespace, name, result).inc()

    def ready(self, kind: str, namespace: str, name: str, status: conditions.ConditionStatus) -> None:
        """The object's Ready condition is ``status``: that series becomes 1, the other two 0."""
        _check(status, get_args(conditions.ConditionStatus), "status")
        for value in get_args(conditions.ConditionStatus):
            self.resource_ready.labels(kind, namespace, name, value).set(1 if value == status else 0)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The object is gone: remove every series that names it, in every metric."""
        common: tuple[MetricWrapperBase, ...] = (self.reconcile_duration, self.reconcile_total, self.resource_ready)
        for metric in common:
            metric.remove_by_labels({"kind": kind, "namespace": namespace, "name": name})
        for metric, label in self._owned.get(kind, ()):
            metric.remove_by_labels({"namespace": namespace, label: name})

    # -- Environments and Plans ------------------------------------------------------------------------------

    def drifted(self, namespace: str, name: str, drifted: bool) -> None:
        """The Environment's last drift check found changes (True) or none (False)."""
        self.environment_drifted.labels(namespace, name).set(1 if drifted else 0)

    def plan_phases(self, namespace: str, environment: str, counts: Mapping[plans.PlanPhase, int]) -> None:
        """How many of the Environment's plans are in each phase; a phase missing from ``counts`` has none."""
        phases = get_args(plans.PlanPhase)
        for phase in counts:
            _check(phase, phases, "phase")
        for phase in phases:
            self.plans.labels(namespace, environment, phase).set(counts.get(phase, 0))

    def applied(self, namespace: str, environment: str, result: ApplyResult) -> None:
        """An apply of one of the Environment's plans ended."""
        _check(result, get_args(ApplyResult), "result")
        self.applies_total.labels(namespace, environment, result).inc()

    def awaiting_approval(self, namespace: str, name: str, environment: str, since: datetime.datetime | None) -> None:
        """The plan has waited for approval since ``since`` (timezone-aware); None: it no longer waits."""
        if since is None:
            self.plan_awaiting_approval_since.remove_by_labels({"namespace": namespace, "name": name})
            return
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware: a naive time would be read as the machine's local time")
        self.plan_awaiting_approval_since.labels(namespace, name, environment).set(since.timestamp())

    # -- TemplateRepoLinks -----------------------------------------------------------------------------------

    def sync_event(self, namespace: str, name: str, direction: SyncDirection, result: SyncResult) -> None:
        """The link carried out a sync step, as its status.history records it (labels in lower case)."""
        _check(direction, get_args(SyncDirection), "direction")
        _check(result, get_args(SyncResult), "result")
        self.sync_events_total.labels(namespace, name, direction.lower(), result.lower()).inc()

    def conflict_open(self, namespace: str, name: str, is_open: bool) -> None:
        """The link has (True) or no longer has (False) an open conflict pull request."""
        self.sync_conflict_open.labels(namespace, name).set(1 if is_open else 0)

    # -- GitHub and git --------------------------------------------------------------------------------------

    def webhook_delivery(self, event: str, result: str) -> None:
        """The receiver answered one delivery; ``event`` is the X-GitHub-Event header (unknown ones: "other")."""
        _check(result, WEBHOOK_RESULTS, "result")
        self.webhook_deliveries_total.labels(event if event in WEBHOOK_EVENTS else OTHER_EVENT, result).inc()

    def github_call(self, namespace: str, connection: str, status: int) -> None:
        """The connection's client got an HTTP ``status`` from GitHub (0: no response)."""
        self.github_api_requests_total.labels(namespace, connection, status_class(status)).inc()

    def rate_limit(self, namespace: str, connection: str, remaining: int, limit: int) -> None:
        """GitHub's latest X-RateLimit-Remaining and X-RateLimit-Limit for the connection."""
        self.github_rate_limit_remaining.labels(namespace, connection).set(remaining)
        self.github_rate_limit_limit.labels(namespace, connection).set(limit)

    def git_operation(self, operation: GitOperation, seconds: float) -> None:
        """One git operation took ``seconds`` (failed ones too: a timeout is worth seeing)."""
        _check(operation, get_args(GitOperation), "operation")
        self.git_operation_duration.labels(operation).observe(seconds)

    # -- the endpoint ----------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Every series in Prometheus' text format 0.0.4 (what a scrape of ``/metrics`` returns)."""
        return prometheus_client.generate_latest(self.registry)

    async def serve(self, port: int, host: str = "0.0.0.0") -> web.AppRunner | None:
        """Serve ``/metrics`` on ``host:port`` on the running loop; port 0 disables (returns None).

        The caller stops the server with ``await runner.cleanup()``.
        """
        if port == 0:
            return None
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._scrape)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError:
            await runner.cleanup()
            raise
        return runner

    async def _scrape(self, _: web.Request) -> web.Response:
        # Text format 0.0.4, which every Prometheus reads (generate_latest escapes names to it by default).
        return web.Response(
            body=self.exposition(), headers={"Content-Type": prometheus_client.CONTENT_TYPE_PLAIN_0_0_4}
        )


def status_class(status: int) -> str:
    """The ``status`` label of a GitHub response: ``"304"``, ``"2xx"``..``"5xx"``, or ``"error"`` (no response)."""
    if status == 304:
        return "304"
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "error"


def _check(value: str, allowed: Collection[str], label: str) -> None:
    if value not in allowed:
        raise ValueError(f"label {label} must be one of {', '.join(allowed)}; got {value!r}")
