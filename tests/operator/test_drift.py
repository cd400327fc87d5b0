"""Drift detection with real terraform: infrastructure and source drift, Notify / Reconcile / Adopt, failures.

The operator applies a stack of ``terraform_data`` through a Plan (state in the Secret), then the tests change
things behind its back: the stored state, a variable in a ConfigMap, the branch. Checks run every second
(``driftDetection.interval: 500ms``) on the daemon's real clock. The schedule's arithmetic is checked at the end.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chkmate import settings as settings_
from chkmate.clients import kube as kube_client
from chkmate.clients import storage
from chkmate.controllers import drift_schedule, environment_drift
from tests.fixtures import TOKEN
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import NAMESPACE, Cluster, connect_repository, quick_settings
from tests.operator.test_plans import CONFIG

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

MAIN = """variable "name" {
  type    = string
  default = "demo"
}

resource "terraform_data" "app" {
  input = var.name
}

resource "terraform_data" "db" {
  input = "db"
}

output "name" {
  value = var.name
}
"""
STATE = storage.state_secret("production")
DRIFT_PLAN = environment_drift.drift_plan_name("production")


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    return quick_settings(tmp_path, tofu_binary="chkmate-no-such-tofu")


@pytest.fixture
async def ready(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    await connect_repository(chkmate, github, git_server, "live",
                             {".chkmate.yml": CONFIG, "stacks/app/main.tf": MAIN})
    return chkmate


async def applied(
    cluster: Cluster, git_server: gitserver.GitServer, mode: str = "auto", link: str | None = None, **drift: str
) -> str:
    """Create the Environment (drift checks every second), get its first plan applied, wait for NoDrift.

    Its source is live@main:stacks/app, or the TemplateRepoLink ``link`` (which should point there)."""
    head = git_server.head("octo", "live", "main") or ""
    source: dict[str, Any] = (
        {"linkRef": {"name": link}}
        if link is not None
        else {"repositoryRef": {"name": "live"}, "branch": "main", "path": "stacks/app"}
    )
    await cluster.apply(
        {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": "Environment",
            "metadata": {"name": "production"},
            "spec": {
                **source,
                "engine": "terraform",
                "approval": {"mode": mode},
                "varsFrom": [{"kind": "ConfigMap", "name": "app-vars"}],
                "driftDetection": {"interval": "500ms", **drift},
            },
        }
    )
    plan = f"production-{head[:10]}"
    if mode == "manual":
        planned = await kube.wait_for(lambda: _planned_id(cluster, plan), timeout=30)
        await cluster.patch("Plan", plan, {"spec": {"approved": planned}})
    await cluster.wait_condition("Plan", plan, "Applied", "True", timeout=30)
    # The Plan tells the Environment it applied before its own status says so: the Environment's report can
    # read the Plan's previous phase from its index, and miss lastAppliedRevision. Ask for another look.
    await cluster.patch(
        "Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "applied"}}}
    )
    await cluster.wait_condition("Environment", "production", "Drifted", "False", "NoDrift", timeout=15)
    return head


async def _planned_id(cluster: Cluster, name: str) -> str | None:
    plan = await cluster.get("Plan", name) or {}
    status = plan.get("status", {})
    return status.get("planId") if status.get("phase") == "Planned" else None


@pytest.fixture
async def variables(ready: Cluster) -> Callable[[str], Any]:
    """The ConfigMap the Environment reads its variables from; call it to change ``name``."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-vars", "namespace": NAMESPACE},
        "data": {"name": "demo"},
    }
    await ready.client.create(kube_client.CONFIGMAPS, NAMESPACE, body)

    async def change(name: str) -> None:
        await ready.client.patch(kube_client.CONFIGMAPS, NAMESPACE, "app-vars", {"data": {"name": name}})

    return change


async def state_secret(cluster: Cluster) -> dict[str, Any]:
    secret = await cluster.client.get(kube_client.SECRETS, NAMESPACE, STATE)
    assert secret is not None
    return secret


async def state_of(cluster: Cluster) -> dict[str, Any]:
    secret = await state_secret(cluster)
    state: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(secret["data"]["state"])))
    return state


def app_input(state: dict[str, Any]) -> Any:
    app = next(r for r in state["resources"] if r["name"] == "app")
    return app["instances"][0]["attributes"]["input"]["value"]


async def hack_the_state(cluster: Cluster, value: str) -> None:
    """What someone changing the infrastructure by hand looks like to Terraform: the app's input differs."""
    state = await state_of(cluster)
    app = next(r for r in state["resources"] if r["name"] == "app")
    for key in ("input", "output"):
        app["instances"][0]["attributes"][key] = {"value": value, "type": "string"}
    data = base64.b64encode(gzip.compress(json.dumps(state).encode(), mtime=0)).decode()
    await cluster.client.patch(kube_client.SECRETS, NAMESPACE, STATE, {"data": {"state": data}})


async def checks(cluster: Cluster, count: int) -> None:
    """Wait until ``count`` more checks wrote their report (each one stamps the drift Plan)."""
    seen: set[str] = set()

    async def stamped() -> bool:
        plan = await cluster.get("Plan", DRIFT_PLAN) or {"metadata": {}}
        seen.add(plan["metadata"].get("annotations", {}).get("chkmate.dev/requestedAt", ""))
        return len(seen) > count

    await kube.wait_for(stamped, timeout=15)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


@needs_terraform
async def test_notify_reports_infrastructure_drift_and_leaves_the_state_alone(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    head = await applied(ready, git_server)
    await hack_the_state(ready, "edited-by-hand")
    untouched = await state_secret(ready)

    env = await ready.wait_condition("Environment", "production", "Drifted", "True", "InfrastructureDrift")
    drift = env["status"]["drift"]
    assert drift["detected"] is True and drift["resources"] == ["terraform_data.app"]
    assert "terraform_data.app (input, output)" in drift["summary"] and "1 to change" in drift["summary"]
    assert "edited-by-hand" not in drift["summary"]  # names only: values stay in the report
    assert condition(env, "Ready")["status"] == "False" and condition(env, "Ready")["reason"] == "InfrastructureDrift"
    events = await ready.events("production")
    assert any(e["reason"] == "InfrastructureDrift" and e["type"] == "Warning" for e in events)

    report = await ready.get("Plan", DRIFT_PLAN) or {}
    assert report["spec"]["kind"] == "drift" and report["spec"]["revision"] == f"main@sha1:{head}"
    assert report["status"]["phase"] == "Planned" and report["status"]["summary"]["change"] == 1
    output = await ready.client.get(kube_client.CONFIGMAPS, NAMESPACE, report["status"]["outputRef"]["configMap"])
    assert output is not None and '"edited-by-hand" -> "demo"' in output["data"]["plan.txt"]
    await ready.wait_condition("Plan", DRIFT_PLAN, "Ready", "True")

    await checks(ready, 1)  # after two checks, Notify took no lock and wrote no state: same object, byte for byte
    assert await state_secret(ready) == untouched


@needs_terraform
async def test_reconcile_plans_the_last_applied_revision_and_undoes_the_drift(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    await applied(ready, git_server, action="Reconcile")
    await hack_the_state(ready, "edited-by-hand")

    async def reverted() -> bool:
        return bool(app_input(await state_of(ready)) == "demo")

    await kube.wait_for(reverted, timeout=30)
    env = await ready.wait_condition("Environment", "production", "Drifted", "False", "NoDrift", timeout=15)
    assert env["status"]["drift"]["resources"] == []
    plans = await ready.client.list(kube_client.ours("plans"), NAMESPACE)
    undo = [p for p in plans if "-reconcile-" in p["metadata"]["name"]]
    assert len(undo) == 1 and undo[0]["status"]["phase"] == "Applied"
    reasons = [e["reason"] for e in await ready.events("production")]
    assert "InfrastructureDrift" in reasons and "NoDrift" in reasons


@needs_terraform
async def test_adopt_accepts_live_values_into_the_state_and_opens_a_pull_request(
    ready: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer, variables: Any
) -> None:
    await applied(ready, git_server, action="Adopt")
    await variables("renamed")  # the last applied revision now plans a change

    env = await ready.wait_condition("Environment", "production", "Drifted", "True", "InfrastructureDrift")
    message = condition(env, "Drifted")["message"]
    assert "live values accepted into the state" in message and "pull request #1" in message
    state = await state_of(ready)
    assert state["outputs"]["name"]["value"] == "renamed"  # the refresh-only apply took the new value
    assert app_input(state) == "demo"  # and changed nothing else
    assert "chkmate.dev/lock" not in (await state_secret(ready))["metadata"].get("annotations", {})

    async with httpx.AsyncClient(base_url=github.url, headers={"Authorization": f"token {TOKEN}"}) as http:
        pull = (await http.get("/repos/octo/live/pulls/1")).json()
    assert pull["state"] == "open" and pull["base"]["ref"] == "main"
    assert '`input`: "demo", the code says "renamed"' in pull["body"] and "stacks/app/main.tf:6" in pull["body"]
    described = git_server.read_file("octo", "live", pull["head"]["ref"], ".chkmate/drift/production.md")
    assert described == pull["body"].encode()

    async def found_open() -> bool:  # adopted once: the next checks find the open pull request
        found = await ready.get("Environment", "production") or {}
        return "Adopted: pull request #1 describes" in condition(found, "Drifted")["message"]

    await kube.wait_for(found_open, timeout=15)
    assert len(github.calls("POST", r"/repos/octo/live/pulls$")) == 1


@needs_terraform
async def test_a_push_that_was_not_applied_is_source_drift(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    await applied(ready, git_server, mode="manual")
    ahead = git_server.commit_files("octo", "live", "main", {"README.md": "docs\n"}, "not applied") or ""

    env = await ready.wait_condition("Environment", "production", "Drifted", "True", "SourceAhead")
    assert env["status"]["drift"]["resources"] == []
    assert f"is at {ahead[:12]}, ahead of the last applied commit" in env["status"]["drift"]["summary"]


@needs_terraform
async def test_a_linked_template_edited_against_its_pull_link_is_template_drift(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    await ready.apply({"apiVersion": "chkmate.dev/v1alpha1", "kind": "Template", "metadata": {"name": "app"},
                       "spec": {"files": {"main.tf": "# filled by the link\n"}}})  # fmt: skip
    await ready.apply({"apiVersion": "chkmate.dev/v1alpha1", "kind": "TemplateRepoLink", "metadata": {"name": "app"},
                       "spec": {"templateRef": {"name": "app"}, "repositoryRef": {"name": "live"},
                                "branch": "main", "path": "stacks/app", "syncDirection": "Pull",
                                "interval": "1s"}})  # fmt: skip
    await ready.wait_condition("TemplateRepoLink", "app", "Synced", "True", timeout=15)
    await applied(ready, git_server, link="app")

    # An edit in the cluster that a Pull link cannot carry to the repository: the Environment deploys the
    # repository's code, which the Template no longer holds.
    await ready.patch("Template", "app", {"spec": {"files": {"main.tf": MAIN + "# edited in the cluster\n"}}})
    await ready.wait_condition("TemplateRepoLink", "app", "Ready", "False", "TemplateEdited", timeout=15)
    env = await ready.wait_condition("Environment", "production", "Drifted", "True", "TemplateDiverged")
    assert "TemplateRepoLink 'app'" in env["status"]["drift"]["summary"] and env["status"]["drift"]["detected"]
    assert env["status"]["drift"]["resources"] == []  # the infrastructure did not move

    # Taking the repository's side ends it.
    await ready.patch("TemplateRepoLink", "app", {"metadata": {"annotations": {"chkmate.dev/resolve": "repo"}}})
    await ready.wait_condition("Environment", "production", "Drifted", "False", "NoDrift", timeout=20)


@needs_terraform
async def test_a_check_that_cannot_run_is_drift_check_failed(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    await applied(ready, git_server)
    await ready.patch("Environment", "production", {"spec": {"engine": "tofu"}})  # its binary is missing

    env = await ready.wait_condition("Environment", "production", "Drifted", "Unknown", "DriftCheckFailed")
    assert "chkmate-no-such-tofu" in condition(env, "Drifted")["message"]
    assert env["status"]["drift"]["detected"] is False  # the last completed check, kept as it was
    assert condition(env, "Ready")["status"] == "Unknown"


@needs_terraform
async def test_no_check_while_a_plan_holds_the_state_lock(
    ready: Cluster, git_server: gitserver.GitServer, variables: Any
) -> None:
    await applied(ready, git_server)
    env = await ready.get("Environment", "production") or {}
    await storage.acquire_lock(
        ready.client,
        NAMESPACE,
        "production",
        env,
        "Plan/someone-else",
        now=datetime.datetime.now(datetime.UTC),
        stale_after=datetime.timedelta(hours=1),
    )
    await hack_the_state(ready, "edited-by-hand")

    async def skipped() -> dict[str, Any]:
        found = await ready.get("Environment", "production") or {}
        return found if "locked by Plan/someone-else" in condition(found, "Drifted")["message"] else {}

    env = await kube.wait_for(skipped, timeout=10)
    assert condition(env, "Drifted")["reason"] == "NoDrift"  # the last result stands
    await storage.release_lock(ready.client, NAMESPACE, "production", "Plan/someone-else")
    await ready.wait_condition("Environment", "production", "Drifted", "True", "InfrastructureDrift")


# The schedule (pure arithmetic).


@pytest.mark.parametrize("now", [0.0, 1234.5, 3599.0, 7200.0, 1e9 + 17])
def test_checks_fall_on_the_environments_slot_at_least_half_an_interval_away(now: float) -> None:
    interval, phase = 3600.0, drift_schedule.phase_of("default/production", 3600.0)
    delay = drift_schedule.next_check_in(now, interval, phase)
    assert interval / 2 <= delay < 1.5 * interval
    assert (now + delay - phase) % interval == pytest.approx(0, abs=1e-6) or (
        (now + delay - phase) % interval == pytest.approx(interval, abs=1e-6)
    )


def test_a_check_run_early_or_late_by_the_jitter_keeps_its_slot() -> None:
    interval, phase = 3600.0, 1000.0
    for ran_at in (1000.0 - 0.1 * interval, 1000.0, 1000.0 + 0.1 * interval):
        assert ran_at + drift_schedule.next_check_in(ran_at, interval, phase) == pytest.approx(phase + interval)


def test_phases_spread_environments_over_the_interval() -> None:
    phases = [drift_schedule.phase_of(f"uid-{i}", 3600.0) for i in range(500)]
    per_five_minutes = [sum(1 for p in phases if start <= p < start + 300) for start in range(0, 3600, 300)]
    assert all(0 <= p < 3600 for p in phases)
    assert max(per_five_minutes) < 2 * 500 / 12  # no bucket holds twice its share
