"""The alert rules we ship: checked and unit-tested by the real promtool, and rendered unchanged by the chart.

charts/chkmate-operator/files/alerts.yaml is the rules' single source; files/alerts.test.yaml holds promtool
unit tests. Here: both pass promtool, every alert the issue asks for exists with a test that fires it and one
that does not, each has the annotations it promises, docs/alerts.md has exactly one runbook per alert and lists
each with its severity, only known metrics are used, and the chart's PrometheusRule holds exactly these rules
(or, with other values, these rules with those values).

I/O: runs promtool (PATH) and helm (.cache/bin or PATH) in subprocesses; `bash dev/install-tools.sh` installs
both. Writes rule files under pytest's tmp_path only.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "chkmate-operator"
RULES = CHART / "files" / "alerts.yaml"
RULE_TESTS = CHART / "files" / "alerts.test.yaml"
RUNBOOKS = REPO / "docs" / "alerts.md"
DEFAULT_RUNBOOK_BASE = "https://github.com/chkmate/chkmate-operator/blob/main/docs/alerts.md"

# The alerts of issue 8, and what each one watches.
EXPECTED_ALERTS = {
    "ChkmateResourceNotReady": "resource not Ready for 15m",
    "ChkmateEnvironmentDrifted": "Environment drifted",
    "ChkmateApplyFailed": "apply failed",
    "ChkmateSyncConflictOpen": "sync conflict open for 1h",
    "ChkmatePlanAwaitingApproval": "plan waiting for approval longer than a threshold",
    "ChkmateWebhookSignatureFailures": "webhook signature failures rising",
    "ChkmateGitHubRateLimitLow": "GitHub rate limit under 10%",
    "ChkmateOperatorDown": "operator down",
}
# The operator's metrics (operator/chkmate/metrics.py) and Prometheus' own `up`.
KNOWN_METRICS = {
    "chkmate_resource_ready",
    "chkmate_reconcile_total",
    "chkmate_reconcile_duration_seconds_bucket",
    "chkmate_environment_drifted",
    "chkmate_applies_total",
    "chkmate_sync_conflict_open",
    "chkmate_plan_awaiting_approval_since_seconds",
    "chkmate_webhook_deliveries_total",
    "chkmate_github_rate_limit_remaining",
    "chkmate_github_rate_limit_limit",
    "up",
}

Rule = dict[str, Any]


def _tool(name: str) -> str:
    local = REPO / ".cache" / "bin" / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `bash dev/install-tools.sh` (CI does)", pytrace=False)
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("promtool"), *args], capture_output=True, text=True, check=False, timeout=30)


def source_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]  # type: ignore[no-any-return]


def source_rules() -> dict[str, Rule]:
    return {rule["alert"]: rule for group in source_groups() for rule in group["rules"]}


def rendered_groups(*sets: str) -> list[dict[str, Any]]:
    args = ["template", "cm", str(CHART), "--set", "metrics.prometheusRule.enabled=true"]
    args += [arg for value in sets for arg in ("--set", value)]
    args += ["--show-only", "templates/prometheusrule.yaml"]
    result = subprocess.run([_tool("helm"), *args], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    rule = yaml.safe_load(result.stdout)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    return rule["spec"]["groups"]  # type: ignore[no-any-return]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# -- promtool ----------------------------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    shutil.copy(RULES, tmp_path / RULES.name)
    broken = RULE_TESTS.read_text().replace("eval_time: 16m", "eval_time: 14m", 1)
    (tmp_path / RULE_TESTS.name).write_text(broken)
    result = promtool("test", "rules", str(tmp_path / RULE_TESTS.name))
    assert result.returncode != 0 and "ChkmateResourceNotReady" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    checks = [check for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for check in test["alert_rule_test"]]
    firing = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert firing == set(EXPECTED_ALERTS) and quiet == set(EXPECTED_ALERTS)


# -- the rules ---------------------------------------------------------------------------------------------------


def test_the_rules_are_the_alerts_of_the_issue() -> None:
    assert sorted(source_rules()) == sorted(EXPECTED_ALERTS)


@pytest.mark.parametrize("alert", EXPECTED_ALERTS)
def test_alert_has_severity_summary_description_and_runbook(alert: str) -> None:
    rule = source_rules()[alert]
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert rule["annotations"]["summary"].endswith(".")
    assert "{{ $labels." in rule["annotations"]["description"], "the description must name the object"
    assert rule["annotations"]["runbook_url"] == f"{DEFAULT_RUNBOOK_BASE}#{alert.lower()}"


def runbook_sections() -> dict[str, str]:
    """The ``## `` sections of docs/alerts.md by heading: one runbook per alert."""
    sections = RUNBOOKS.read_text().split("\n## ")[1:]
    return {section.splitlines()[0].strip(): section for section in sections}


def test_every_alert_in_the_rule_file_has_a_runbook_and_every_runbook_an_alert() -> None:
    sections = runbook_sections()
    assert sorted(sections) == sorted(source_rules())
    for alert, rule in source_rules().items():
        fragment = rule["annotations"]["runbook_url"].rpartition("#")[2]
        assert github_anchor(alert) == fragment, f"{alert}: runbook_url #{fragment} is not the section's anchor"
        for part in ("**What it means.**", "**Investigate.**", "kubectl", "**Fix.**"):
            assert part in sections[alert], f"runbook {alert} lacks {part}"


def test_the_runbooks_table_lists_every_alert_with_its_severity() -> None:
    rows = {
        match[0]: (match[1], match[2])
        for match in re.findall(r"^\| \[(\w+)\]\(#([\w-]+)\) \| (\w+) \|", RUNBOOKS.read_text(), re.MULTILINE)
    }
    expected = {alert: (alert.lower(), rule["labels"]["severity"]) for alert, rule in source_rules().items()}
    assert rows == expected


def test_rules_use_only_the_operators_metrics() -> None:
    used: set[str] = set()
    for rule in source_rules().values():
        # Ours by prefix; any other metric by the label matchers that follow it (as in up{job="..."}).
        used |= set(re.findall(r"\bchkmate_\w+", rule["expr"]))
        used |= set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", rule["expr"]))
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS
    assert "up" in used


# -- the chart's PrometheusRule ----------------------------------------------------------------------------------


def test_chart_renders_exactly_the_source_rules_with_default_values() -> None:
    assert rendered_groups() == source_groups()


def test_the_values_the_chart_substitutes_are_in_the_source() -> None:
    rules = source_rules()
    assert 'job="chkmate-operator"' in rules["ChkmateOperatorDown"]["expr"]
    assert rules["ChkmatePlanAwaitingApproval"]["expr"].count("> 86400") == 1


def test_chart_applies_runbook_base_job_name_and_approval_threshold(tmp_path: Path) -> None:
    groups = rendered_groups(
        "metrics.prometheusRule.runbookBaseUrl=https://runbooks.acme.test/chkmate",
        "metrics.jobName=chkmate-prod",
        "metrics.prometheusRule.planApprovalThresholdSeconds=7200",
    )
    rendered = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    for alert, rule in source_rules().items():
        expected = yaml.safe_load(yaml.safe_dump(rule))
        expected["annotations"]["runbook_url"] = f"https://runbooks.acme.test/chkmate#{alert.lower()}"
        expected["expr"] = (
            rule["expr"].replace('job="chkmate-operator"', 'job="chkmate-prod"').replace("> 86400", "> 7200")
        )
        assert rendered[alert] == expected
    assert rendered["ChkmatePlanAwaitingApproval"]["expr"].endswith("> 7200")

    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump({"groups": groups}))
    result = promtool("check", "rules", str(tmp_path / "rendered.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_carries_extra_labels() -> None:
    args = ["template", "cm", str(CHART), "--set", "metrics.prometheusRule.enabled=true"]
    args += ["--set", "metrics.prometheusRule.labels.release=kps", "--show-only", "templates/prometheusrule.yaml"]
    result = subprocess.run([_tool("helm"), *args], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["metadata"]["labels"]["release"] == "kps"
