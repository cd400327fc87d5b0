"""The Job runner with the real operator, the real ``chkmate run-job`` and real terraform.

An Environment with ``runner.mode: Job`` gets a Kubernetes Job per run. The emulator has no kubelet and no Job
controller, so the tests play them: they run the Job's container command (``chkmate run-job`` with the Job's
arguments and settings) as a subprocess against the emulator's API, then patch the Job's status as the Job
controller would (succeeded, or failed with its reason), or delete it. Everything the operator does around it is
real: the bundle and result Secrets, the wait, the state lock, the Plan's conditions.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chkmate import settings as settings_
from chkmate.clients import jobs as job_client
from chkmate.clients import kube as kube_client
from chkmate.clients import storage
from chkmate.controllers import plan_runs, runners
from chkmate.domain import jobs
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import NAMESPACE, Cluster, Starter, connect_repository, quick_settings
from tests.operator.test_plans import CONFIG

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

IMAGE = "registry.acme.test/chkmate:0.1.0"
RUNNER_ACCOUNT = "chkmate-runner"
GRACE = 1.0
CREDENTIAL = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-not-a-real-key"
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
"""
TEMPLATE = {
    "spec": {
        "nodeSelector": {"pool": "terraform"},
        "containers": [{"name": "runner", "resources": {"limits": {"memory": "2Gi"}}}],
    }
}


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    return quick_settings(
        tmp_path,
        runner_image=IMAGE,
        runner_service_account=RUNNER_ACCOUNT,
        runner_grace=GRACE,
        runner_poll_interval=0.05,
        runner_ttl=600,
    )


@pytest.fixture
async def ready(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    await connect_repository(chkmate, github, git_server, "live", {".chkmate.yml": CONFIG, "stacks/app/main.tf": MAIN})
    return chkmate


@pytest.fixture
def kubeconfig(cluster: Cluster, tmp_path: Path) -> Path:
    """What the runner pod's ServiceAccount is to the real API server: a way to reach the emulator."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emulator",
                "clusters": [{"name": "emulator", "cluster": {"server": str(cluster.emulator.url)}}],
                "users": [{"name": "runner", "user": {}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "runner", "namespace": NAMESPACE}}
                ],
            }
        )
    )
    return path


def environment(mode: str = "manual", runner: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": "production"},
        "spec": {
            "repositoryRef": {"name": "live"},
            "branch": "main",
            "path": "stacks/app",
            "engine": "terraform",
            "approval": {"mode": mode},
            "runner": {"mode": "Job", **(runner or {})},
            **spec,
        },
    }


async def runner_jobs(cluster: Cluster, phase: str | None = None) -> list[dict[str, Any]]:
    """The runner Jobs, of one phase or all (the emulator ignores label selectors: filtered here)."""
    found = await cluster.client.list(kube_client.JOBS, NAMESPACE)
    phases = [(j, j["metadata"].get("labels", {}).get(jobs.LABEL_PHASE)) for j in found]
    return [j for j, found_phase in phases if found_phase is not None and phase in (None, found_phase)]


async def job_of(cluster: Cluster, phase: str, timeout: float = 30) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        listed = await runner_jobs(cluster, phase)
        return listed[0] if listed else None

    try:
        return await kube.wait_for(found, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no runner Job of phase {phase}: {await runner_jobs(cluster)}") from None


async def plan_in(cluster: Cluster, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        obj = await cluster.get("Plan", name)
        return obj if obj is not None and obj.get("status", {}).get("phase") == phase else None

    try:
        return await kube.wait_for(found, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"Plan {name} never reached {phase}: {await cluster.get('Plan', name)}") from None


async def play_pod(job: dict[str, Any], kubeconfig: Path, tmp_path: Path) -> tuple[int, str, str]:
    """Run the Job's container as its pod would: its command and arguments, its CHKMATE_* settings (the work
    folder moved to the test's), reaching the API server with ``kubeconfig``."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    settings = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("CHKMATE_")}
    work = tmp_path / f"pod-{job['metadata']['name']}"
    environ = {
        **settings,
        "CHKMATE_WORK_DIR": str(work),
        "HOME": str(work),
        "KUBECONFIG": str(kubeconfig),
        "PATH": os.environ["PATH"],
    }
    assert container["command"] == ["chkmate"]
    executable = str(Path(sys.executable).parent / "chkmate")  # the console script, as in the image
    process = await asyncio.create_subprocess_exec(
        executable, *container["args"], env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def finish(cluster: Cluster, job: dict[str, Any], *, reason: str | None = None, message: str = "") -> None:
    """Mark the Job finished as the Job controller would: Complete, or Failed with ``reason``."""
    if reason is None:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    else:
        status = {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message}],
        }
    await cluster.client.patch(kube_client.JOBS, NAMESPACE, job["metadata"]["name"], {"status": status}, status=True)


async def lock_holder(cluster: Cluster) -> str | None:
    secret = await cluster.client.get(kube_client.SECRETS, NAMESPACE, storage.state_secret("production"))
    lock = storage.parse_lock(
        ((secret or {}).get("metadata", {}).get("annotations") or {}).get(storage.LOCK_ANNOTATION)
    )
    return lock.holder if lock is not None else None


async def state_of(cluster: Cluster) -> dict[str, Any]:
    secret = await cluster.client.get(kube_client.SECRETS, NAMESPACE, storage.state_secret("production"))
    assert secret is not None
    return json.loads(gzip.decompress(base64.b64decode(secret["data"]["state"])))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


# --- a plan and an apply, each in a Job -------------------------------------------------------------------------


async def test_plan_and_apply_run_in_jobs_with_the_same_results_as_local(
    ready: Cluster,
    git_server: gitserver.GitServer,
    kubeconfig: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    head = git_server.head("octo", "live", "main") or ""
    name = f"production-{head[:10]}"
    await ready.secret("cloud", {"CLOUD_SECRET_KEY": CREDENTIAL})
    await ready.apply(
        environment(runner={"timeout": "10m", "podTemplate": TEMPLATE}, credentialsSecretRef={"name": "cloud"})
    )

    job = await job_of(ready, "plan")
    plan = await ready.get("Plan", name)
    assert plan is not None
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": "Plan",
            "name": name,
            "uid": plan["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["metadata"]["name"] == jobs.job_name(name, plan["metadata"]["uid"], "plan")
    labels = job["metadata"]["labels"]
    assert (labels[jobs.LABEL_ENVIRONMENT], labels[jobs.LABEL_PLAN], labels[jobs.LABEL_PHASE]) == (
        "production",
        name,
        "plan",
    )
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (0, 601, 600)
    assert (pod["restartPolicy"], pod["serviceAccountName"], pod["nodeSelector"]) == (
        "Never",
        RUNNER_ACCOUNT,
        {"pool": "terraform"},
    )
    [container] = pod["containers"]
    assert container["image"] == IMAGE and container["resources"]["limits"] == {"memory": "2Gi"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert CREDENTIAL not in json.dumps(job)  # credentials travel in the bundle Secret only
    assert await lock_holder(ready) == f"Plan/{name}"  # held while the Job runs

    bundle = jobs.decode(
        await job_client.read_blob(ready.client, NAMESPACE, jobs.bundle_name(job["metadata"]["name"])) or b""
    )
    assert bundle["command"] == "plan" and bundle["inputs"]["env"]["CLOUD_SECRET_KEY"] == CREDENTIAL

    code, out, err = await play_pod(job, kubeconfig, tmp_path)
    assert (code, out.strip(), err) == (0, "chkmate run-job: planned: 2 to add, 0 to change, 0 to destroy.", "")
    # The result is there, but the operator waits for the Job to finish, as a pod may still be writing.
    assert (await ready.get("Plan", name) or {}).get("status", {}).get("phase") is None
    await finish(ready, job)
    planned = await plan_in(ready, name, "Planned")
    assert planned["status"]["summary"] == {"add": 2, "change": 0, "destroy": 0}
    output = await ready.client.get(kube_client.CONFIGMAPS, NAMESPACE, planned["status"]["outputRef"]["configMap"])
    assert output is not None and "terraform_data.app" in output["data"]["plan.txt"]

    # The same bundle planned by the Local runner gives the same planId.
    local = await runners.Local(settings_.Settings(work_dir=tmp_path / "local")).plan(
        phase="plan",
        revision=bundle["revision"],
        files={p: jobs.unpack(d) or b"" for p, d in bundle["files"].items()},
        state=storage.State(None, None),
        inputs=plan_runs.Inputs.from_wire(bundle["inputs"]),
        lock=False,
    )
    assert planned["status"]["planId"] == local.plan_id
    # The run is over: its bundle (credentials, state) is deleted, the lock released.
    assert await ready.client.get(kube_client.SECRETS, NAMESPACE, jobs.bundle_name(job["metadata"]["name"])) is None
    assert await lock_holder(ready) is None

    await ready.patch("Plan", name, {"spec": {"approved": planned["status"]["planId"]}})
    applying = await job_of(ready, "apply")
    assert applying["metadata"]["name"] != job["metadata"]["name"]
    assert applying["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert (await play_pod(applying, kubeconfig, tmp_path))[:2] == (0, "chkmate run-job: apply succeeded.\n")
    await finish(ready, applying)
    applied = await plan_in(ready, name, "Applied")
    assert condition(applied, "Applied")["status"] == "True"
    assert sorted(r["name"] for r in (await state_of(ready))["resources"]) == ["app", "db"]
    assert await lock_holder(ready) is None

    # Credentials reached neither the Plan, its Events, nor the operator's logs.
    assert CREDENTIAL not in json.dumps(applied) + json.dumps(await ready.events(name)) + caplog.text
    assert f"Started the runner Job {job['metadata']['name']} (plan)." in caplog.text


async def test_an_engine_error_in_the_job_fails_the_plan_as_a_local_run_would(
    ready: Cluster, git_server: gitserver.GitServer, kubeconfig: Path, tmp_path: Path
) -> None:
    bad = git_server.commit_files(
        "octo", "live", "main", {"stacks/app/bad.tf": 'resource "x" "y" {\n  a = \n}\n'}, "bad"
    )
    await ready.apply(environment("auto"))
    job = await job_of(ready, "plan")
    code, out, _ = await play_pod(job, kubeconfig, tmp_path)
    assert code == 0 and "plan failed (PlanFailed)" in out  # a result was written: the Job succeeds
    await finish(ready, job)
    failed = await plan_in(ready, f"production-{bad[:10]}", "Failed")
    planned = condition(failed, "Planned")
    assert planned["reason"] == "PlanFailed" and "stacks/app/bad.tf:2" in planned["message"]
    assert await lock_holder(ready) is None


# --- Jobs that end without a result -----------------------------------------------------------------------------


async def test_a_job_past_its_deadline_fails_the_plan_and_releases_the_lock(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto", runner={"timeout": "5m"}))
    job = await job_of(ready, "plan")
    assert await lock_holder(ready) == f"Plan/production-{head[:10]}"
    await finish(ready, job, reason="DeadlineExceeded", message="Job was active longer than specified deadline")
    failed = await plan_in(ready, f"production-{head[:10]}", "Failed")
    planned = condition(failed, "Planned")
    assert (planned["status"], planned["reason"]) == ("False", "RunTimedOut")
    assert job["metadata"]["name"] in planned["message"] and "timeout of 300s" in planned["message"]
    assert "Job was active longer than specified deadline" in planned["message"]
    assert condition(failed, "Stalled")["reason"] == "RunTimedOut"
    assert await lock_holder(ready) is None
    assert await ready.client.get(kube_client.SECRETS, NAMESPACE, jobs.bundle_name(job["metadata"]["name"])) is None


async def test_a_job_deleted_mid_run_fails_the_plan_and_releases_the_lock(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto"))
    job = await job_of(ready, "plan")
    assert await lock_holder(ready) == f"Plan/production-{head[:10]}"
    await ready.client.delete(kube_client.JOBS, NAMESPACE, job["metadata"]["name"])
    failed = await plan_in(ready, f"production-{head[:10]}", "Failed")
    planned = condition(failed, "Planned")
    assert planned["reason"] == "RunFailed" and "was deleted before it reported a result" in planned["message"]
    assert await lock_holder(ready) is None


async def test_a_failed_pod_is_named_in_the_failure(ready: Cluster, git_server: gitserver.GitServer) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto"))
    job = await job_of(ready, "plan")
    name = job["metadata"]["name"]
    await ready.client.create(
        kube_client.PODS,
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-x7k2p", "namespace": NAMESPACE, "labels": {"job-name": name}},
            "spec": {"containers": [{"name": "runner", "image": IMAGE}]},
        },
    )
    await ready.client.patch(
        kube_client.PODS,
        NAMESPACE,
        f"{name}-x7k2p",
        {
            "status": {
                "containerStatuses": [
                    {"name": "runner", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
                ]
            }
        },
        status=True,
    )
    await finish(ready, job, reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
    planned = condition(await plan_in(ready, f"production-{head[:10]}", "Failed"), "Planned")
    assert planned["reason"] == "RunFailed"
    assert planned["message"].endswith(
        "(BackoffLimitExceeded: Job has reached the specified backoff limit); its pod ended OOMKilled (exit code 137)."
    )


async def test_the_operator_stops_waiting_for_a_job_no_controller_finishes(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto", runner={"timeout": "1s"}))
    job = await job_of(ready, "plan")
    assert job["spec"]["activeDeadlineSeconds"] == 2  # 1 s and the grace
    failed = await plan_in(ready, f"production-{head[:10]}", "Failed", timeout=20)
    planned = condition(failed, "Planned")
    assert planned["reason"] == "RunTimedOut" and "the operator deleted it" in planned["message"]
    assert await runner_jobs(ready, "plan") == []  # deleted: its pod, if any, stops
    assert await lock_holder(ready) is None


async def test_an_apply_job_without_a_result_fails_the_apply_and_says_the_state_is_unchanged(
    ready: Cluster, git_server: gitserver.GitServer, kubeconfig: Path, tmp_path: Path
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto"))
    job = await job_of(ready, "plan")
    assert (await play_pod(job, kubeconfig, tmp_path))[0] == 0
    await finish(ready, job)
    applying = await job_of(ready, "apply")
    assert await lock_holder(ready) == f"Plan/production-{head[:10]}"
    await finish(ready, applying, reason="DeadlineExceeded", message="Job was active longer than specified deadline")
    failed = await plan_in(ready, f"production-{head[:10]}", "Failed")
    applied = condition(failed, "Applied")
    assert (applied["status"], applied["reason"]) == ("False", "RunTimedOut")
    assert "The state Secret was not updated" in applied["message"]
    assert condition(failed, "Planned")["status"] == "True"
    assert await lock_holder(ready) is None


async def test_a_pod_template_that_is_none_stops_the_plan_before_any_job(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto", runner={"podTemplate": {"containers": [{"name": "runner"}]}}))
    plan = await ready.wait_condition("Plan", f"production-{head[:10]}", "Stalled", "True", "InvalidSpec", timeout=30)
    message = condition(plan, "Stalled")["message"]
    assert message.startswith("Environment 'production': spec.runner.podTemplate: containers is not a key")
    assert await runner_jobs(ready) == []
    assert await lock_holder(ready) is None


# --- restarts -----------------------------------------------------------------------------------------------------


async def test_a_restarted_operator_waits_for_the_same_job(
    start_chkmate: Starter,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    async with start_chkmate() as cluster:
        await connect_repository(
            cluster, github, git_server, "live", {".chkmate.yml": CONFIG, "stacks/app/main.tf": MAIN}
        )
        head = git_server.head("octo", "live", "main") or ""
        name = f"production-{head[:10]}"
        await cluster.apply(environment("manual"))
        job = await job_of(cluster, "plan")
    # The operator stopped while its Job runs on: the lock stays with the Plan, the bundle with the Job.
    assert await lock_holder(cluster) == f"Plan/{name}"
    bundle = await cluster.client.get(kube_client.SECRETS, NAMESPACE, jobs.bundle_name(job["metadata"]["name"]))
    assert bundle is not None

    async with start_chkmate() as cluster:
        code, _, _ = await play_pod(job, kubeconfig, tmp_path)
        assert code == 0
        await finish(cluster, job)
        planned = await plan_in(cluster, name, "Planned")
        assert planned["status"]["summary"] == {"add": 2, "change": 0, "destroy": 0}
        [only] = await runner_jobs(cluster)
        assert only["metadata"]["uid"] == job["metadata"]["uid"]  # no second Job
        assert await lock_holder(cluster) is None


# --- drift checks ---------------------------------------------------------------------------------------------------


async def test_drift_checks_run_in_jobs_of_the_environment(
    ready: Cluster, git_server: gitserver.GitServer, kubeconfig: Path, tmp_path: Path
) -> None:
    head = git_server.head("octo", "live", "main") or ""
    await ready.apply(environment("auto", driftDetection={"interval": "500ms"}))
    for phase in ("plan", "apply"):
        job = await job_of(ready, phase)
        assert (await play_pod(job, kubeconfig, tmp_path))[0] == 0
        await finish(ready, job)
    await plan_in(ready, f"production-{head[:10]}", "Applied")
    await ready.patch("Environment", "production", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "1"}}})

    env = await ready.get("Environment", "production")
    assert env is not None
    for phase in ("drift", "refresh"):  # the applied revision against the state, then refresh-only
        job = await job_of(ready, phase)
        assert job["metadata"]["ownerReferences"][0]["uid"] == env["metadata"]["uid"]
        assert jobs.LABEL_PLAN not in job["metadata"]["labels"]
        assert (await play_pod(job, kubeconfig, tmp_path))[0] == 0
        await finish(ready, job)
        # Read, then deleted with its result: checks come every interval.
        await kube.wait_for(lambda name=job["metadata"]["name"]: _gone(ready, name), timeout=10)
    await ready.wait_condition("Environment", "production", "Drifted", "False", "NoDrift", timeout=15)


async def _gone(cluster: Cluster, job: str) -> bool:
    return (
        await job_client.get_job(cluster.client, NAMESPACE, job) is None
        and await cluster.client.get(kube_client.SECRETS, NAMESPACE, jobs.result_name(job)) is None
    )
