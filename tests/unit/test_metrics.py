"""The operator's metrics: every recording method, the one-hot Ready gauge, forgetting a deleted object, bounded
label values, and agreement with the alert rules and the metrics page. Pure: reads the registry, serves nothing."""

import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
import yaml
from prometheus_client import Metric

from chkmate import metrics as metrics_
from chkmate.api import conditions, links, plans
from chkmate.webhooks import events as webhook_events
from chkmate.webhooks import receiver

REPO = Path(__file__).resolve().parents[2]
ALERT_RULES = REPO / "charts" / "chkmate-operator" / "files" / "alerts.yaml"
METRICS_PAGE = REPO / "docs" / "metrics.md"

Labels = dict[str, str]


@pytest.fixture
def metrics() -> metrics_.Metrics:
    return metrics_.Metrics()


def value(metrics: metrics_.Metrics, sample: str, /, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(sample, labels)


def series(metrics: metrics_.Metrics, name: str) -> list[Labels]:
    """The label sets of every sample called ``name``."""
    return [sample.labels for family in metrics.registry.collect() for sample in family.samples if sample.name == name]


def sample_names(metrics: metrics_.Metrics) -> set[str]:
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def record_everything(metrics: metrics_.Metrics, namespace: str = "team-a", name: str = "prod") -> None:
    """One recording with every method, naming objects ``name`` in ``namespace``."""
    for kind in ("Environment", "Plan", "TemplateRepoLink", "GitHubConnection"):
        metrics.reconciled(kind, namespace, name, "success", 0.2)
        metrics.ready(kind, namespace, name, "True")
    metrics.drifted(namespace, name, True)
    metrics.plan_phases(namespace, name, {"Planned": 1})
    metrics.applied(namespace, name, "failed")
    metrics.awaiting_approval(namespace, name, name, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    metrics.sync_event(namespace, name, "Push", "Succeeded")
    metrics.conflict_open(namespace, name, True)
    metrics.github_call(namespace, name, 200)
    metrics.rate_limit(namespace, name, 4000, 5000)
    metrics.webhook_delivery("push", "accepted")
    metrics.git_operation("fetch", 0.05)


# -- reconciles and Ready ----------------------------------------------------------------------------------------


def test_reconciled_counts_by_result_and_observes_the_duration(metrics: metrics_.Metrics) -> None:
    obj = {"kind": "Environment", "namespace": "team-a", "name": "prod"}
    metrics.reconciled("Environment", "team-a", "prod", "success", 0.2)
    metrics.reconciled("Environment", "team-a", "prod", "success", 0.3)
    metrics.reconciled("Environment", "team-a", "prod", "requeue", 40.0)

    assert value(metrics, "chkmate_reconcile_total", **obj, result="success") == 2
    assert value(metrics, "chkmate_reconcile_total", **obj, result="requeue") == 1
    assert value(metrics, "chkmate_reconcile_total", **obj, result="error") is None
    assert value(metrics, "chkmate_reconcile_duration_seconds_count", **obj) == 3
    assert value(metrics, "chkmate_reconcile_duration_seconds_sum", **obj) == pytest.approx(40.5)
    assert value(metrics, "chkmate_reconcile_duration_seconds_bucket", **obj, le="0.25") == 1
    assert value(metrics, "chkmate_reconcile_duration_seconds_bucket", **obj, le="60.0") == 3


@pytest.mark.parametrize(
    "history",
    [
        ["True"],
        ["False", "True"],
        ["True", "Unknown", "False"],
        ["Unknown", "Unknown"],
    ],
)
def test_ready_is_one_hot_with_the_latest_status(
    metrics: metrics_.Metrics, history: list[conditions.ConditionStatus]
) -> None:
    for status in history:
        metrics.ready("Template", "team-a", "vpc", status)

    values = {
        status: value(metrics, "chkmate_resource_ready", kind="Template", namespace="team-a", name="vpc", status=status)
        for status in ("True", "False", "Unknown")
    }
    assert values == {status: (1 if status == history[-1] else 0) for status in values}


def test_ready_of_one_object_leaves_others_alone(metrics: metrics_.Metrics) -> None:
    metrics.ready("Template", "team-a", "vpc", "True")
    metrics.ready("Template", "team-b", "vpc", "False")
    metrics.ready("Environment", "team-a", "vpc", "Unknown")

    ones = [
        labels
        for labels in series(metrics, "chkmate_resource_ready")
        if value(metrics, "chkmate_resource_ready", **labels) == 1
    ]
    assert sorted((o["kind"], o["namespace"], o["status"]) for o in ones) == [
        ("Environment", "team-a", "Unknown"),
        ("Template", "team-a", "True"),
        ("Template", "team-b", "False"),
    ]


# -- forgetting a deleted object --------------------------------------------------------------------------------


# The metrics that name an object of a kind beyond the reconcile and Ready ones, and the label naming it.
OWNED = {
    "Environment": {
        "chkmate_environment_drifted": "name",
        "chkmate_plans": "environment",
        "chkmate_applies_total": "environment",
    },
    "Plan": {"chkmate_plan_awaiting_approval_since_seconds": "name"},
    "TemplateRepoLink": {"chkmate_sync_events_total": "name", "chkmate_sync_conflict_open": "name"},
    "GitHubConnection": {
        "chkmate_github_api_requests_total": "connection",
        "chkmate_github_rate_limit_remaining": "connection",
        "chkmate_github_rate_limit_limit": "connection",
    },
}

Series = tuple[str, frozenset[tuple[str, str]]]


def all_series(metrics: metrics_.Metrics) -> set[Series]:
    """Every sample as (metric name as Prometheus sees it, labels)."""
    return {
        (family_name(family), frozenset(sample.labels.items()))
        for family in metrics.registry.collect()
        for sample in family.samples
    }


def family_name(family: Metric) -> str:
    return str(family.name) + ("_total" if family.type == "counter" else "")


def belongs(series_: Series, kind: str, namespace: str, name: str) -> bool:
    metric, labelset = series_
    labels = dict(labelset)
    if labels.get("namespace") != namespace:
        return False
    if "kind" in labels:
        return labels["kind"] == kind and labels["name"] == name
    label = OWNED[kind].get(metric)
    return label is not None and labels[label] == name


@pytest.mark.parametrize("kind", sorted(OWNED))
def test_forget_removes_every_series_of_the_object_and_nothing_else(metrics: metrics_.Metrics, kind: str) -> None:
    record_everything(metrics, "team-a", "prod")
    record_everything(metrics, "team-b", "prod")  # same name, another namespace
    record_everything(metrics, "team-a", "staging")  # same namespace, another name
    before = all_series(metrics)

    metrics.forget(kind, "team-a", "prod")

    expected_gone = {s for s in before if belongs(s, kind, "team-a", "prod")}
    assert {metric for metric, _ in expected_gone} >= {"chkmate_resource_ready", *OWNED[kind]}
    assert before - all_series(metrics) == expected_gone


def test_forget_of_an_object_without_series_does_nothing(metrics: metrics_.Metrics) -> None:
    record_everything(metrics)
    before = metrics.exposition()
    metrics.forget("GitHubRepository", "team-a", "prod")
    metrics.forget("Environment", "elsewhere", "prod")
    assert metrics.exposition() == before


def test_forget_removes_the_plan_awaiting_approval_whatever_its_environment(metrics: metrics_.Metrics) -> None:
    since = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    metrics.awaiting_approval("team-a", "prod-7", "prod", since)
    metrics.awaiting_approval("team-a", "prod-8", "prod", since)
    metrics.forget("Plan", "team-a", "prod-7")
    assert series(metrics, "chkmate_plan_awaiting_approval_since_seconds") == [
        {"namespace": "team-a", "name": "prod-8", "environment": "prod"}
    ]


# -- Environments and Plans -------------------------------------------------------------------------------------


def test_drifted_is_a_zero_or_one_gauge_per_environment(metrics: metrics_.Metrics) -> None:
    metrics.drifted("team-a", "prod", True)
    metrics.drifted("team-a", "staging", True)
    metrics.drifted("team-a", "staging", False)
    assert value(metrics, "chkmate_environment_drifted", namespace="team-a", name="prod") == 1
    assert value(metrics, "chkmate_environment_drifted", namespace="team-a", name="staging") == 0


def test_plan_phases_sets_every_phase_missing_ones_to_zero(metrics: metrics_.Metrics) -> None:
    metrics.plan_phases("team-a", "prod", {"Applied": 5, "Planned": 1})
    metrics.plan_phases("team-a", "prod", {"Applied": 6})

    got = {labels["phase"]: value(metrics, "chkmate_plans", **labels) for labels in series(metrics, "chkmate_plans")}
    assert got == {phase: (6 if phase == "Applied" else 0) for phase in get_args(plans.PlanPhase)}


def test_plan_phases_refuses_a_phase_the_api_does_not_have(metrics: metrics_.Metrics) -> None:
    with pytest.raises(ValueError, match=r"label phase must be .*; got 'Exploded'"):
        metrics.plan_phases("team-a", "prod", {"Exploded": 1})  # type: ignore[dict-item]
    assert series(metrics, "chkmate_plans") == []


def test_applied_counts_by_result(metrics: metrics_.Metrics) -> None:
    metrics.applied("team-a", "prod", "succeeded")
    metrics.applied("team-a", "prod", "failed")
    metrics.applied("team-a", "prod", "failed")
    assert value(metrics, "chkmate_applies_total", namespace="team-a", environment="prod", result="succeeded") == 1
    assert value(metrics, "chkmate_applies_total", namespace="team-a", environment="prod", result="failed") == 2


def test_awaiting_approval_holds_the_unix_time_and_disappears_when_no_longer_waiting(
    metrics: metrics_.Metrics,
) -> None:
    since = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    labels = {"namespace": "team-a", "name": "prod-7", "environment": "prod"}

    metrics.awaiting_approval("team-a", "prod-7", "prod", since)
    assert value(metrics, "chkmate_plan_awaiting_approval_since_seconds", **labels) == since.timestamp()

    metrics.awaiting_approval("team-a", "prod-7", "prod", None)
    assert series(metrics, "chkmate_plan_awaiting_approval_since_seconds") == []
    metrics.awaiting_approval("team-a", "prod-7", "prod", None)  # already gone: nothing to do


def test_awaiting_approval_refuses_a_naive_time(metrics: metrics_.Metrics) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        metrics.awaiting_approval("team-a", "prod-7", "prod", datetime.datetime(2026, 3, 1))


# -- TemplateRepoLinks ------------------------------------------------------------------------------------------


def test_sync_events_count_by_direction_and_result_in_lower_case(metrics: metrics_.Metrics) -> None:
    metrics.sync_event("team-a", "network", "Push", "Succeeded")
    metrics.sync_event("team-a", "network", "Push", "Succeeded")
    metrics.sync_event("team-a", "network", "Conflict", "Failed")
    link = {"namespace": "team-a", "name": "network"}
    assert value(metrics, "chkmate_sync_events_total", **link, direction="push", result="succeeded") == 2
    assert value(metrics, "chkmate_sync_events_total", **link, direction="conflict", result="failed") == 1


def test_sync_event_values_are_those_of_the_links_history() -> None:
    fields = links.SyncEvent.model_fields
    assert get_args(metrics_.SyncDirection) == get_args(fields["direction"].annotation)
    assert get_args(metrics_.SyncResult) == get_args(fields["result"].annotation)


def test_conflict_open_is_a_zero_or_one_gauge(metrics: metrics_.Metrics) -> None:
    metrics.conflict_open("team-a", "network", True)
    assert value(metrics, "chkmate_sync_conflict_open", namespace="team-a", name="network") == 1
    metrics.conflict_open("team-a", "network", False)
    assert value(metrics, "chkmate_sync_conflict_open", namespace="team-a", name="network") == 0


# -- GitHub and git ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "label"),
    [
        ("push", "push"),
        ("pull_request", "pull_request"),
        ("ping", "ping"),
        ("star", "other"),
        ("../../etc/passwd", "other"),
        ("", "other"),
    ],
)
def test_webhook_deliveries_count_unknown_events_as_other(metrics: metrics_.Metrics, event: str, label: str) -> None:
    metrics.webhook_delivery(event, "invalid_signature")
    assert series(metrics, "chkmate_webhook_deliveries_total") == [{"event": label, "result": "invalid_signature"}]


def test_webhook_label_values_are_those_of_the_receiver() -> None:
    assert set(metrics_.WEBHOOK_RESULTS) == {result.value for result in receiver.Result}
    assert metrics_.WEBHOOK_EVENTS == webhook_events.KNOWN
    assert metrics_.OTHER_EVENT == webhook_events.OTHER


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (200, "2xx"),
        (201, "2xx"),
        (304, "304"),
        (301, "3xx"),
        (403, "4xx"),
        (404, "4xx"),
        (429, "4xx"),
        (502, "5xx"),
        (0, "error"),
        (102, "error"),
        (700, "error"),
    ],
)
def test_github_calls_count_by_status_class(metrics: metrics_.Metrics, status: int, label: str) -> None:
    metrics.github_call("team-a", "acme", status)
    metrics.github_call("team-a", "acme", status)
    assert value(metrics, "chkmate_github_api_requests_total", namespace="team-a", connection="acme", status=label) == 2
    assert label in metrics_.GITHUB_STATUSES


def test_rate_limit_sets_remaining_and_limit(metrics: metrics_.Metrics) -> None:
    metrics.rate_limit("team-a", "acme", 4999, 5000)
    metrics.rate_limit("team-a", "acme", 400, 5000)
    connection = {"namespace": "team-a", "connection": "acme"}
    assert value(metrics, "chkmate_github_rate_limit_remaining", **connection) == 400
    assert value(metrics, "chkmate_github_rate_limit_limit", **connection) == 5000


def test_git_operations_observe_durations_by_operation(metrics: metrics_.Metrics) -> None:
    metrics.git_operation("fetch", 0.012)
    metrics.git_operation("fetch", 3.0)
    metrics.git_operation("ls-remote", 0.2)
    assert value(metrics, "chkmate_git_operation_duration_seconds_count", operation="fetch") == 2
    assert value(metrics, "chkmate_git_operation_duration_seconds_bucket", operation="fetch", le="0.025") == 1
    assert value(metrics, "chkmate_git_operation_duration_seconds_sum", operation="ls-remote") == pytest.approx(0.2)


# -- bounded label values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (lambda m: m.reconciled("Plan", "a", "b", "crashed", 1.0), r"label result must be .*; got 'crashed'"),
        (lambda m: m.ready("Plan", "a", "b", "true"), r"label status must be .*; got 'true'"),
        (lambda m: m.applied("a", "b", "Failed"), r"label result must be .*; got 'Failed'"),
        (lambda m: m.sync_event("a", "b", "Sideways", "Succeeded"), r"label direction must be .*; got 'Sideways'"),
        (lambda m: m.sync_event("a", "b", "Push", "Maybe"), r"label result must be .*; got 'Maybe'"),
        (lambda m: m.webhook_delivery("push", "weird"), r"label result must be .*; got 'weird'"),
        (lambda m: m.git_operation("clone", 1.0), r"label operation must be .*; got 'clone'"),
    ],
)
def test_label_values_outside_their_set_are_refused(record: Callable[[metrics_.Metrics], None], message: str) -> None:
    metrics = metrics_.Metrics()
    with pytest.raises(ValueError, match=message):
        record(metrics)
    assert not any(family.samples for family in metrics.registry.collect())


def test_each_instance_has_its_own_registry() -> None:
    first, second = metrics_.Metrics(), metrics_.Metrics()
    first.drifted("team-a", "prod", True)
    assert value(second, "chkmate_environment_drifted", namespace="team-a", name="prod") is None


def test_exposition_is_the_prometheus_text_format(metrics: metrics_.Metrics) -> None:
    metrics.drifted("team-a", "prod", True)
    text = metrics.exposition().decode()
    assert "# TYPE chkmate_environment_drifted gauge\n" in text
    assert 'chkmate_environment_drifted{name="prod",namespace="team-a"} 1.0\n' in text


# -- agreement with the alert rules and the docs ----------------------------------------------------------------


def test_every_metric_the_alert_rules_use_exists(metrics: metrics_.Metrics) -> None:
    record_everything(metrics)
    rules = yaml.safe_load(ALERT_RULES.read_text())
    used = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\bchkmate_[a-z_]+", rule["expr"])
    }
    assert used, "the alert rules mention no chkmate metric"
    assert used <= sample_names(metrics)


def test_record_everything_records_every_metric(metrics: metrics_.Metrics) -> None:
    """The checks below read labels from samples: a metric without any would pass them unchecked."""
    record_everything(metrics)
    assert [family.name for family in metrics.registry.collect() if not family.samples] == []


def test_the_metrics_page_documents_every_metric_with_its_type_and_labels(metrics: metrics_.Metrics) -> None:
    record_everything(metrics)
    page = METRICS_PAGE.read_text()
    for family in metrics.registry.collect():
        name = family_name(family)
        row = next((line for line in page.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/metrics.md has no table row for {name}"
        assert row.split("|")[2].strip() == family.type, f"docs/metrics.md: {name} is a {family.type}"
        labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        documented_labels = set(re.findall(r"`(\w+)`", row.split("|")[3]))
        assert documented_labels == labels, f"docs/metrics.md: the labels of {name} are {sorted(labels)}"
    documented = set(re.findall(r"^\| `(chkmate_[a-z_]+)`", page, re.MULTILINE))
    assert documented == {family_name(family) for family in metrics.registry.collect()}


# Every label that takes a fixed set of values, with that set as the operator records it.
BOUNDED_LABELS = [
    ("result", "chkmate_reconcile_total", get_args(metrics_.ReconcileResult)),
    ("status", "chkmate_resource_ready", get_args(conditions.ConditionStatus)),
    ("phase", "chkmate_plans", get_args(plans.PlanPhase)),
    ("result", "chkmate_applies_total", get_args(metrics_.ApplyResult)),
    ("direction", "chkmate_sync_events_total", tuple(v.lower() for v in get_args(metrics_.SyncDirection))),
    ("result", "chkmate_sync_events_total", tuple(v.lower() for v in get_args(metrics_.SyncResult))),
    ("event", "chkmate_webhook_deliveries_total", (*sorted(metrics_.WEBHOOK_EVENTS), metrics_.OTHER_EVENT)),
    ("result", "chkmate_webhook_deliveries_total", metrics_.WEBHOOK_RESULTS),
    ("status", "chkmate_github_api_requests_total", metrics_.GITHUB_STATUSES),
    ("operation", "chkmate_git_operation_duration_seconds", get_args(metrics_.GitOperation)),
]


def test_the_metrics_page_lists_the_values_of_every_bounded_label() -> None:
    rows = {
        (match[0], match[1]): match[2]
        for match in re.findall(r"^\| `(\w+)` \| `(chkmate_\w+)` \| (.*) \|$", METRICS_PAGE.read_text(), re.MULTILINE)
    }
    assert sorted(rows) == sorted((label, metric) for label, metric, _ in BOUNDED_LABELS)
    for label, metric, values in BOUNDED_LABELS:
        listed = [value for value in values if f"`{value}`" in rows[label, metric]]
        assert listed == list(values), f"docs/metrics.md: {label} of {metric} lacks {set(values) - set(listed)}"
