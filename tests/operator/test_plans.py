"""Environments and Plans with real terraform: plan, approve, apply, state in a Secret, supersede, failures."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import json
import shutil
from typing import Any

import pytest

from chkmate import settings as settings_
from chkmate.clients import kube as kube_client
from chkmate.clients import storage
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import Cluster, connect_repository

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

CONFIG = """version: 1
environments:
  production:
    branch: main
    path: stacks/app
"""
MAIN = """variable "name" {
  type    = string
  default = "demo"
}

resource "terraform_data" "app" {
  input = var.name
}

resource "terraform_data" "db" {
  input = "db-${var.name}"
}

output "app" {
  value = terraform_data.app.output
}
"""


@pytest.fixture
async def ready(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    await connect_repository(chkmate, github, git_server, "live",
                             {".chkmate.yml": CONFIG, "stacks/app/main.tf": MAIN})
    return chkmate


def environment(mode: str = "auto", engine: str = "terraform", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": "production"},
        "spec": {
            "repositoryRef": {"name": "live"},
            "branch": "main",
            "path": "stacks/app",
            "engine": engine,
            "approval": {"mode": mode},
            **spec,
        },
    }


async def plan_of(
    cluster: Cluster, commit: str | None, phase: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    name = f"production-{(commit or '')[:10]}"

    async def found() -> dict[str, Any] | None:
        obj = await cluster.get("Plan", name)
        if obj is None or (phase is not None and obj.get("status", {}).get("phase") != phase):
            return None
        return obj

    try:
        return await kube.wait_for(found, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"Plan {name} never reached {phase}: {await cluster.get('Plan', name)}") from None


async def state_of(cluster: Cluster) -> dict[str, Any]:
    secret = await cluster.client.get(kube_client.SECRETS, "default", storage.state_secret("production"))
    assert secret is not None
    return json.loads(gzip.decompress(base64.b64decode(secret["data"]["state"])))


async def test_auto_approval_plans_applies_and_keeps_state_in_a_secret(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.head("octo", "live", "main")
    await ready.apply(environment("auto"))
    plan = await plan_of(ready, head, "Applied")
    status = plan["status"]
    assert status["summary"] == {"add": 2, "change": 0, "destroy": 0}
    assert status["revision"] == f"main@sha1:{head}" and len(status["planId"]) == 32
    assert status["security"]["score"] == 100 and status["cost"]["unpriced"] == 0
    assert {r["type"] for r in (await state_of(ready))["resources"]} == {"terraform_data"}
    output = await ready.client.get(kube_client.CONFIGMAPS, "default", status["outputRef"]["configMap"])
    assert output is not None and "terraform_data.app" in output["data"]["plan.txt"]
    env = await ready.wait_condition("Environment", "production", "Ready", "True")
    assert env["status"]["lastAppliedRevision"] == f"main@sha1:{head}"
    assert env["status"]["lastPlan"]["planId"] == status["planId"]

    # A new commit plans again against the stored state: only what changed.
    second = git_server.commit_files(
        "octo", "live", "main", {"stacks/app/main.tf": MAIN.replace('"db-', '"database-')}, "rename db"
    )
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "1"}}})
    again = await plan_of(ready, second, "Applied")
    assert again["status"]["summary"] == {"add": 0, "change": 1, "destroy": 0}


async def test_auto_deploy_in_chkmate_yml_approves_when_the_environment_does_not_say(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.commit_files(
        "octo", "live", "main", {".chkmate.yml": CONFIG + "    autoDeploy: true\n"}, "auto-deploy production"
    )
    unset = environment()
    del unset["spec"]["approval"]
    await ready.apply(unset)
    await plan_of(ready, head, "Applied")


async def test_a_new_approval_mode_holds_for_the_next_plan(ready: Cluster, git_server: gitserver.GitServer) -> None:
    first = git_server.head("octo", "live", "main")
    await ready.apply(environment("auto"))
    await plan_of(ready, first, "Applied")
    await ready.patch("Environment", "production", {"spec": {"approval": {"mode": "manual"}}})
    second = git_server.commit_files(
        "octo", "live", "main", {"stacks/app/main.tf": MAIN.replace('"db-', '"database-')}, "rename db"
    )
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "1"}}})
    manual = await plan_of(ready, second, "Planned")
    approved = next(c for c in manual["status"]["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("False", "AwaitingApproval")


async def test_the_environments_own_approval_mode_wins_over_chkmate_yml(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.commit_files(
        "octo", "live", "main", {".chkmate.yml": CONFIG + "    autoDeploy: true\n"}, "auto-deploy production"
    )
    await ready.apply(environment("manual"))
    manual = await plan_of(ready, head, "Planned")
    approved = next(c for c in manual["status"]["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("False", "AwaitingApproval")


async def test_a_commit_with_nothing_to_change_is_no_changes(ready: Cluster, git_server: gitserver.GitServer) -> None:
    head = git_server.head("octo", "live", "main")
    await ready.apply(environment("auto"))
    await plan_of(ready, head, "Applied")
    same = git_server.commit_files("octo", "live", "main", {"README.md": "docs only\n"}, "docs")
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "2"}}})
    plan = await plan_of(ready, same, "NoChanges")
    assert plan["status"]["summary"] == {"add": 0, "change": 0, "destroy": 0}


async def test_manual_approval_binds_to_the_plan_id(ready: Cluster, git_server: gitserver.GitServer) -> None:
    head = git_server.head("octo", "live", "main")
    await ready.apply(environment("manual"))
    plan = await plan_of(ready, head, "Planned")
    name, plan_id = plan["metadata"]["name"], plan["status"]["planId"]
    waiting = await ready.wait_condition("Plan", name, "Approved", "False", "AwaitingApproval")
    assert plan_id in next(c for c in waiting["status"]["conditions"] if c["type"] == "Approved")["message"]
    await ready.patch("Plan", name, {"spec": {"approved": "0" * 32}})  # an old or wrong planId

    async def refused() -> dict[str, Any] | None:
        obj = await ready.get("Plan", name) or {}
        approved = next((c for c in obj["status"]["conditions"] if c["type"] == "Approved"), {})
        return obj if "does nothing" in approved.get("message", "") else None

    wrong = await kube.wait_for(refused, timeout=10)
    assert wrong["status"]["phase"] == "Planned"
    await ready.patch("Plan", name, {"spec": {"approved": plan_id}})
    await plan_of(ready, head, "Applied")


async def test_a_newer_commit_supersedes_a_pending_plan(ready: Cluster, git_server: gitserver.GitServer) -> None:
    first = git_server.head("octo", "live", "main")
    await ready.apply(environment("manual"))
    old = await plan_of(ready, first, "Planned")
    second = git_server.commit_files(
        "octo", "live", "main", {"stacks/app/extra.tf": 'resource "terraform_data" "x" {}\n'}, "more"
    )
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "3"}}})
    await plan_of(ready, second, "Planned")
    superseded = await plan_of(ready, first, "Superseded")
    await ready.patch("Plan", old["metadata"]["name"], {"spec": {"approved": old["status"]["planId"]}})
    await kube.wait_for(lambda: _phase(ready, superseded["metadata"]["name"], "Superseded"), timeout=5)


async def _phase(cluster: Cluster, name: str, phase: str) -> bool:
    obj = await cluster.get("Plan", name) or {}
    return bool(obj.get("status", {}).get("phase") == phase)


async def test_the_builtin_engine_gives_the_same_summary(ready: Cluster, git_server: gitserver.GitServer) -> None:
    head = git_server.head("octo", "live", "main")
    await ready.apply(environment("manual", engine="builtin"))
    plan = await plan_of(ready, head, "Planned")
    assert plan["status"]["summary"] == {"add": 2, "change": 0, "destroy": 0}


async def test_invalid_hcl_fails_the_plan_naming_file_and_line(ready: Cluster, git_server: gitserver.GitServer) -> None:
    bad = git_server.commit_files(
        "octo", "live", "main", {"stacks/app/bad.tf": 'resource "x" "y" {\n  a = \n}\n'}, "broken"
    )
    await ready.apply(environment("auto"))
    plan = await plan_of(ready, bad, "Failed")
    failed = next(c for c in plan["status"]["conditions"] if c["type"] == "Planned")
    assert failed["reason"] == "PlanFailed" and "bad.tf:2" in failed["message"]
    await ready.wait_condition("Environment", "production", "Ready", "False", "PlanFailed")


async def test_a_failed_apply_stalls_the_environment_until_a_new_commit(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    hook = 'resource "terraform_data" "hook" {\n  provisioner "local-exec" {\n    command = "exit 3"\n  }\n}\n'
    failing = MAIN + hook
    broken = git_server.commit_files("octo", "live", "main", {"stacks/app/main.tf": failing}, "a failing hook")
    await ready.apply(environment("auto"))
    plan = await plan_of(ready, broken, "Failed")
    assert plan["status"]["planId"]  # planned, then the apply failed
    env = await ready.wait_condition("Environment", "production", "Stalled", "True", "ApplyFailed")
    stalled = next(c for c in env["status"]["conditions"] if c["type"] == "Stalled")
    assert plan["metadata"]["name"] in stalled["message"]
    ready_condition = next(c for c in env["status"]["conditions"] if c["type"] == "Ready")
    assert (ready_condition["status"], ready_condition["reason"]) == ("False", "ApplyFailed")
    # Resources created before the hook failed are in the state: nothing the apply did is lost.
    assert {r["name"] for r in (await state_of(ready))["resources"]} >= {"app", "db"}

    fixed = git_server.commit_files("octo", "live", "main", {"stacks/app/main.tf": MAIN}, "drop the hook")
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "2"}}})
    await plan_of(ready, fixed, "Applied")
    env = await ready.wait_condition("Environment", "production", "Ready", "True")
    assert not [c for c in env["status"]["conditions"] if c["type"] == "Stalled"]


async def test_an_invalid_chkmate_yml_stops_everything(ready: Cluster, git_server: gitserver.GitServer) -> None:
    git_server.commit_files("octo", "live", "main", {".chkmate.yml": CONFIG + "    engine: pulumi\n"}, "bad config")
    await ready.apply(environment("auto"))
    env = await ready.wait_condition("Environment", "production", "Ready", "False", "InvalidRepoConfig")
    message = next(c for c in env["status"]["conditions"] if c["type"] == "Ready")["message"]
    assert ".chkmate.yml:6" in message and "engine" in message
    assert not [p for p in await ready.client.list(kube_client.ours("plans"), "default")]


async def test_a_held_lock_is_reported(ready: Cluster, git_server: gitserver.GitServer) -> None:
    env_obj = await ready.apply(environment("auto", suspend=True))
    await storage.acquire_lock(
        ready.client,
        "default",
        "production",
        env_obj,
        "Plan/someone-else",
        now=datetime.datetime.now(datetime.UTC),
        stale_after=datetime.timedelta(hours=1),
    )
    await ready.patch("Environment", "production", {"spec": {"suspend": False}})
    head = git_server.head("octo", "live", "main")
    name = f"production-{(head or '')[:10]}"
    plan = await ready.wait_condition("Plan", name, "Ready", "False", "Locked")
    message = next(c for c in plan["status"]["conditions"] if c["type"] == "Ready")["message"]
    assert "Plan/someone-else" in message
    await storage.release_lock(ready.client, "default", "production", "Plan/someone-else")
    await plan_of(ready, head, "Applied")


async def test_a_deleted_environment_leaves_no_kept_init(
    ready: Cluster, git_server: gitserver.GitServer, operator_settings: settings_.Settings
) -> None:
    await ready.apply(environment("manual"))
    await plan_of(ready, git_server.head("octo", "live", "main"), "Planned")
    kept = operator_settings.work_dir / "runs" / "init-cache"
    assert await asyncio.to_thread(lambda: any(kept.iterdir())), "the plan's init is kept for the next one"
    await ready.delete("Environment", "production")
    await kube.wait_for(lambda: asyncio.to_thread(lambda: None if any(kept.iterdir()) else True), timeout=15)
