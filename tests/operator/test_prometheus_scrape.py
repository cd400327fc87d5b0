"""A real Prometheus scrapes the running chkmate operator, and the drift alert fires when an Environment drifts.

Prometheus (Debian's ``prometheus`` package, 2.42; ``bash dev/install-tools.sh`` installs it) runs as a subprocess
on a free 127.0.0.1 port with its own config and data folder under tmp_path, scraping and evaluating every second.
Its rule file is charts/chkmate-operator/files/alerts.yaml as it stands (ChkmateEnvironmentDrifted has no ``for:``,
so it fires at the first evaluation that sees the drift) and its job is the chart's default ``metrics.jobName``, the
one ChkmateOperatorDown selects. Its one target is the whole operator of this tier (kopf against the emulator, real
git, the GitHub double, real terraform) serving ``/metrics`` on a free ``metrics_port``.

The operator pulls a Template from GitHub, plans an Environment, waits for a manual approval, applies, answers two
webhook deliveries, and then finds the infrastructure changed behind its back (the stored Terraform state edited,
as in test_drift.py). Nothing is recorded by hand: every metric the operator defines reaches Prometheus from this
run, with the labels of the objects that produced it. Also here: the endpoint itself (format, port 0, a busy port),
on a standalone :class:`chkmate.metrics.Metrics`.

I/O: a Prometheus subprocess, the operator (HTTP servers on free 127.0.0.1 ports, git, terraform), files under
tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import Metric

from chkmate import API_VERSION
from chkmate import metrics as metrics_
from chkmate import settings as settings_
from chkmate.clients import kube as kube_client
from chkmate.webhooks import receiver
from tests.fixtures import TOKEN, free_port
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import NAMESPACE, Cluster, quick_settings
from tests.operator.test_drift import CONFIG, MAIN, hack_the_state

CHART = Path(__file__).resolve().parents[2] / "charts" / "chkmate-operator"
ALERT_RULES = CHART / "files" / "alerts.yaml"
# The chart's default metrics.jobName, which ChkmateOperatorDown selects: Prometheus scrapes the operator as it.
JOB: str = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["jobName"]
DRIFT_ALERT = "ChkmateEnvironmentDrifted"
NOT_READY_ALERT = "ChkmateResourceNotReady"
DOWN_ALERT = "ChkmateOperatorDown"
STARTUP_TIMEOUT = 10.0  # Prometheus 2.42 is ready in ~1 s here; a slow machine gets more
STOP_TIMEOUT = 10.0
SEEN_TIMEOUT = 15.0  # a change reaches an instant query within one scrape and one evaluation (1 s each)

REPO, ENV, TEMPLATE, LINK = "live", "production", "net", "net"
WEBHOOK_SECRET = "webhook-s3cr3t-for-prometheus"
NET = 'resource "terraform_data" "net" {\n  input = "v1"\n}\n'

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


# -- Prometheus --------------------------------------------------------------------------------------------------


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is not installed (Debian's prometheus package): run bash dev/install-tools.sh")
    return found


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


@dataclasses.dataclass
class Prometheus:
    """Test-side access to a running Prometheus' HTTP API."""

    url: str
    session: aiohttp.ClientSession

    async def api(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.url}/api/v1/{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql``: one {metric, value} per series."""
        data = await self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    async def seen(self, promql: str, timeout: float = SEEN_TIMEOUT) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` once it is not empty: what Prometheus has scraped and evaluated."""
        try:
            return await kube.wait_for(lambda: self.query(promql), timeout=timeout, interval=0.2)
        except TimeoutError:
            raise AssertionError(f"Prometheus found nothing for {promql} within {timeout} s") from None

    async def alerts(self, name: str) -> list[dict[str, Any]]:
        return [alert for alert in (await self.api("alerts"))["alerts"] if alert["labels"]["alertname"] == name]

    async def alert(self, alertname: str, state: str, /, **labels: str) -> dict[str, Any]:
        """The one alert ``alertname`` in ``state`` whose labels include ``labels``, once Prometheus has it."""

        async def found() -> list[dict[str, Any]]:
            return [
                alert
                for alert in await self.alerts(alertname)
                if alert["state"] == state and labels.items() <= alert["labels"].items()
            ]

        try:
            matching: list[dict[str, Any]] = await kube.wait_for(found, timeout=SEEN_TIMEOUT, interval=0.2)
        except TimeoutError:
            raise AssertionError(f"no {state} {alertname} with {labels}: {await self.alerts(alertname)}") from None
        [alert] = matching
        return alert


def write_config(folder: Path, target_port: int) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def running_prometheus(
    binary: str, folder: Path, target_port: int, session: aiohttp.ClientSession
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``127.0.0.1:target_port``, ready to answer; stopped with SIGTERM on exit."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, f"--config.file={write_config(folder, target_port)}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    prometheus = Prometheus(f"http://127.0.0.1:{port}", session)
    try:
        await wait_until_ready(prometheus, process, log_path)
        yield prometheus
    finally:
        await stop(process)


async def wait_until_ready(prometheus: Prometheus, process: asyncio.subprocess.Process, log: Path) -> None:
    async def ready() -> bool:
        if process.returncode is not None:
            output = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{output}")
        try:
            async with prometheus.session.get(f"{prometheus.url}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await kube.wait_for(ready, timeout=STARTUP_TIMEOUT, interval=0.1)
    except TimeoutError:
        output = await asyncio.to_thread(log.read_text)
        raise AssertionError(f"prometheus was not ready after {STARTUP_TIMEOUT} s:\n{output}") from None


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"prometheus did not stop within {STOP_TIMEOUT} s of SIGTERM") from None


def alert_rule(alert: str) -> dict[str, Any]:
    rules = yaml.safe_load(ALERT_RULES.read_text())
    [rule] = [r for group in rules["groups"] for r in group["rules"] if r.get("alert") == alert]
    return dict(rule)


def expected_alert_state(alert: str) -> str:
    """What an alert whose condition holds is a few seconds later: firing without ``for:``, pending with one."""
    return "pending" if alert_rule(alert).get("for") else "firing"


# -- the operator ------------------------------------------------------------------------------------------------


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    """The tier's fast settings, with the metrics endpoint and the webhook receiver on free ports."""
    return quick_settings(tmp_path, metrics_port=free_port(), webhook_port=free_port())


async def connect(cluster: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> str:
    """octo/live with the Environment's stack and the Template's files, behind a Ready token connection ``gh``
    that has a webhook secret, and a Ready GitHubRepository ``live``; returns the head commit."""
    github.create_repo("octo", REPO)
    files = {".chkmate.yml": CONFIG, "stacks/app/main.tf": MAIN, "modules/net/main.tf": NET}
    head = git_server.commit_files("octo", REPO, "main", files, "init") or ""
    await cluster.secret("gh-auth", {"token": TOKEN, "webhook": WEBHOOK_SECRET})
    await cluster.apply({"apiVersion": API_VERSION, "kind": "GitHubConnection", "metadata": {"name": "gh"},
                         "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-auth", "key": "token"},
                                  "webhookSecretRef": {"name": "gh-auth", "key": "webhook"}}})  # fmt: skip
    await cluster.apply({"apiVersion": API_VERSION, "kind": "GitHubRepository", "metadata": {"name": REPO},
                         "spec": {"connectionRef": {"name": "gh"}, "owner": "octo", "name": REPO}})  # fmt: skip
    await cluster.wait_condition("GitHubRepository", REPO, "Ready", "True")
    return head


async def pull_a_template(cluster: Cluster) -> None:
    """A Template filled from modules/net by a Pull link: a sync event, and no commit on the Environment's branch."""
    await cluster.apply({"apiVersion": API_VERSION, "kind": "Template", "metadata": {"name": TEMPLATE},
                         "spec": {"files": {"main.tf": "# placeholder\n"}}})  # fmt: skip
    await cluster.apply({"apiVersion": API_VERSION, "kind": "TemplateRepoLink", "metadata": {"name": LINK},
                         "spec": {"templateRef": {"name": TEMPLATE}, "repositoryRef": {"name": REPO},
                                  "branch": "main", "path": "modules/net", "syncDirection": "Pull"}})  # fmt: skip
    await cluster.wait_condition("TemplateRepoLink", LINK, "Synced", "True", timeout=15)


async def create_environment(cluster: Cluster) -> None:
    """The Environment of test_drift.py, approved by hand, checking for drift every 500 ms."""
    await cluster.client.create(kube_client.CONFIGMAPS, NAMESPACE, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-vars", "namespace": NAMESPACE},
        "data": {"name": "demo"},
    })  # fmt: skip
    await cluster.apply({"apiVersion": API_VERSION, "kind": "Environment", "metadata": {"name": ENV},
                         "spec": {"repositoryRef": {"name": REPO}, "branch": "main", "path": "stacks/app",
                                  "engine": "terraform", "approval": {"mode": "manual"},
                                  "varsFrom": [{"kind": "ConfigMap", "name": "app-vars"}],
                                  "driftDetection": {"interval": "500ms"}}})  # fmt: skip


async def planned_id(cluster: Cluster, plan: str) -> str:
    async def planned() -> str:
        status = (await cluster.get("Plan", plan) or {}).get("status", {})
        return str(status.get("planId") or "") if status.get("phase") == "Planned" else ""

    return await kube.wait_for(planned, timeout=30)


async def deliver(session: aiohttp.ClientSession, port: int, event: str, payload: dict[str, Any], secret: str) -> int:
    """POST a delivery shaped like GitHub's to the operator's receiver, signed with ``secret``; its HTTP status."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }  # fmt: skip
    async with session.post(f"http://127.0.0.1:{port}{receiver.DEFAULT_PATH}", data=body, headers=headers) as answer:
        return answer.status


async def webhook_deliveries(session: aiohttp.ClientSession, port: int) -> None:
    """One signed ping once the receiver listens (it waits for the connection's secret), then one forged push."""

    async def pinged() -> bool:
        try:
            return await deliver(session, port, "ping", {"zen": "Design for failure."}, WEBHOOK_SECRET) == 200
        except aiohttp.ClientConnectionError:  # not listening yet: nothing answered, nothing counted
            return False

    await kube.wait_for(pinged, timeout=15, interval=0.2)
    assert await deliver(session, port, "push", {"ref": "refs/heads/main"}, "not-the-secret") == 401


def scraped_names(family: Metric) -> set[str]:
    """The series names Prometheus stores for a family of our registry (``_created`` aside)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}[family.type]
    return {f"{family.name}{suffix}" for suffix in suffixes}


def labelled(metric: str, **labels: str) -> str:
    """``metric{job=..., namespace=..., labels...}``: a selector for a series of this test's operator."""
    matchers = {"job": JOB, "namespace": NAMESPACE, **labels}
    return metric + "{" + ",".join(f'{key}="{value}"' for key, value in matchers.items()) + "}"


@needs_terraform
async def test_prometheus_scrapes_the_running_operator_and_the_drift_alert_fires_when_an_environment_drifts(
    chkmate: Cluster,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    operator_settings: settings_.Settings,
    prometheus_binary: str,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    port = operator_settings.metrics_port
    async with running_prometheus(prometheus_binary, tmp_path / "prometheus", port, session) as prometheus:
        # The operator at work (while Prometheus discovers its target, which takes it ~5 s): a connection, a
        # repository, a pulled Template, webhooks, then a plan that waits for approval and is applied.
        head = await connect(chkmate, github, git_server)
        await pull_a_template(chkmate)
        await webhook_deliveries(session, operator_settings.webhook_port)
        await create_environment(chkmate)
        plan = f"{ENV}-{head[:10]}"
        plan_id = await planned_id(chkmate, plan)

        [up] = await prometheus.seen(f'up{{job="{JOB}"}} == 1')
        assert up["metric"]["instance"] == f"127.0.0.1:{port}"
        assert await prometheus.query(alert_rule(DOWN_ALERT)["expr"]) == []  # the job ChkmateOperatorDown watches
        [waiting] = await prometheus.seen(
            labelled("chkmate_plan_awaiting_approval_since_seconds", name=plan, environment=ENV)
        )
        assert time.time() - 60 < float(waiting["value"][1]) <= time.time()
        await chkmate.patch("Plan", plan, {"spec": {"approved": plan_id}})
        await chkmate.wait_condition("Plan", plan, "Applied", "True", timeout=30)
        # As in test_drift.py: the Environment may have read the Plan's phase before it applied; ask again.
        await chkmate.patch("Environment", ENV, {"metadata": {"annotations": {"chkmate.dev/requestedAt": "applied"}}})
        await chkmate.wait_condition("Environment", ENV, "Drifted", "False", "NoDrift", timeout=15)

        # Not drifted yet, and Prometheus knows it: the gauge is 0, no drift alert, the approval wait is over.
        await prometheus.seen(labelled("chkmate_environment_drifted", name=ENV) + " == 0")
        await prometheus.seen("absent(" + labelled("chkmate_plan_awaiting_approval_since_seconds", name=plan) + ")")
        assert await prometheus.alerts(DRIFT_ALERT) == []

        # Someone changes the infrastructure by hand; the operator's next drift check finds it.
        await hack_the_state(chkmate, "edited-by-hand")
        await chkmate.wait_condition("Environment", ENV, "Drifted", "True", "InfrastructureDrift", timeout=15)

        [drifted] = await prometheus.seen(labelled("chkmate_environment_drifted", name=ENV) + " == 1")
        assert drifted["metric"] == {
            "__name__": "chkmate_environment_drifted", "job": JOB, "instance": f"127.0.0.1:{port}",
            "namespace": NAMESPACE, "name": ENV,
        }  # fmt: skip
        alert = await prometheus.alert(DRIFT_ALERT, expected_alert_state(DRIFT_ALERT))
        assert alert["labels"] == {
            "alertname": DRIFT_ALERT, "severity": "warning", "namespace": NAMESPACE, "name": ENV,
            "job": JOB, "instance": f"127.0.0.1:{port}",
        }  # fmt: skip
        assert f"Environment {NAMESPACE}/{ENV} has drifted" in alert["annotations"]["description"]
        # The drift also makes the Environment not Ready: that alert is on its way (its for: is 15 minutes).
        await prometheus.seen(
            labelled("chkmate_resource_ready", kind="Environment", name=ENV, status="False") + " == 1"
        )
        await prometheus.alert(NOT_READY_ALERT, expected_alert_state(NOT_READY_ALERT), kind="Environment", name=ENV)
        assert await prometheus.alerts(DOWN_ALERT) == []

        # The rest of the operator's instrumentation, as this run recorded it.
        kinds_and_names = [("GitHubConnection", "gh"), ("GitHubRepository", REPO), ("Template", TEMPLATE),
                           ("TemplateRepoLink", LINK), ("Environment", ENV), ("Plan", plan)]  # fmt: skip
        for kind, name in kinds_and_names:
            await prometheus.seen(labelled("chkmate_reconcile_total", kind=kind, name=name, result="success") + " > 0")
            await prometheus.seen(labelled("chkmate_reconcile_duration_seconds_count", kind=kind, name=name) + " > 0")
            if kind != "Environment":  # drifted: Ready=False, above
                await prometheus.seen(labelled("chkmate_resource_ready", kind=kind, name=name, status="True") + " == 1")
        for promql in [
            labelled("chkmate_plans", environment=ENV, phase="Applied") + " >= 1",
            labelled("chkmate_applies_total", environment=ENV, result="succeeded") + " == 1",
            labelled("chkmate_sync_events_total", name=LINK, direction="pull", result="succeeded") + " >= 1",
            labelled("chkmate_sync_conflict_open", name=LINK) + " == 0",
            labelled("chkmate_github_api_requests_total", connection="gh", status="2xx") + " > 0",
            labelled("chkmate_github_rate_limit_limit", connection="gh") + " > 0",
            labelled("chkmate_github_rate_limit_remaining", connection="gh") + " > 0",
            f'chkmate_webhook_deliveries_total{{job="{JOB}",event="ping",result="accepted"}} == 1',
            f'chkmate_webhook_deliveries_total{{job="{JOB}",event="push",result="invalid_signature"}} == 1',
            f'chkmate_git_operation_duration_seconds_count{{job="{JOB}",operation="ls-remote"}} > 0',
            f'chkmate_git_operation_duration_seconds_count{{job="{JOB}",operation="fetch"}} > 0',
        ]:
            await prometheus.seen(promql)

        # Every metric the operator defines reached Prometheus from this run (a new one must be produced here too),
        # and nothing else did. The label values API also knows series that have gone stale (the approval wait).
        stored = set(await prometheus.api("label/__name__/values"))
        defined = set().union(*(scraped_names(family) for family in metrics_.Metrics().registry.collect()))
        ours = {name for name in stored if name.startswith("chkmate_") and not name.endswith("_created")}
        assert ours == defined, (defined - ours, ours - defined)


# -- the endpoint ------------------------------------------------------------------------------------------------


async def test_metrics_endpoint_serves_the_text_format(session: aiohttp.ClientSession) -> None:
    metrics = metrics_.Metrics()
    metrics.drifted("team-a", "prod", True)
    port = free_port()
    runner = await metrics.serve(port, host="127.0.0.1")
    assert runner is not None
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert await response.read() == metrics.exposition()
        async with session.get(f"http://127.0.0.1:{port}/") as response:
            assert response.status == 404
    finally:
        await runner.cleanup()


async def test_port_zero_serves_nothing() -> None:
    assert await metrics_.Metrics().serve(0) is None


async def test_a_busy_port_raises_and_leaves_nothing_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await metrics_.Metrics().serve(taken.getsockname()[1], host="127.0.0.1")
