"""The Job runner's pure parts: Job names, the Job manifest and its pod template merge, what a Job's status
means, and what travels between the operator and the Job (bundle and result) with the builtin engine.

Manifests are validated against Kubernetes 1.35's OpenAPI schemas (kubernetes-validate, strict: an unknown field
fails), as the chart's objects are. The operator tier (tests/operator/test_job_runner.py) runs real Jobs' pods.
"""

from __future__ import annotations

import copy
import datetime
import re
from pathlib import Path
from typing import Any

import pytest

from chkmate import cli, errors, settings
from chkmate.api import conditions, environments
from chkmate.clients import storage, terraform
from chkmate.controllers import plan_runs, runners
from chkmate.domain import builtin, jobs, plans
from tests.harness import schema

OWNER = {
    "apiVersion": "chkmate.dev/v1alpha1",
    "kind": "Plan",
    "name": "production-0123456789",
    "uid": "7d0f1c9e-0000-4000-8000-000000000001",
    "controller": True,
    "blockOwnerDeletion": True,
}
LABELS = jobs.labels(environment="production", phase="plan", plan="production-0123456789")


def request(**overrides: Any) -> jobs.JobRequest:
    values: dict[str, Any] = {
        "name": jobs.job_name("production-0123456789", OWNER["uid"], "plan"),
        "namespace": "team-a",
        "owner": OWNER,
        "labels": LABELS,
        "image": "registry.acme.test/chkmate:0.1.0",
        "timeout": 1800.0,
        "grace": 60.0,
        "ttl": 3600.0,
        "service_account": "chkmate-runner",
        "env": {"CHKMATE_TERRAFORM_BINARY": "tofu", "CHKMATE_TOFU_BINARY": "tofu"},
    }
    return jobs.JobRequest(**(values | overrides))


def pod(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def container(manifest: dict[str, Any], name: str = jobs.CONTAINER) -> dict[str, Any]:
    return next(c for c in pod(manifest)["containers"] if c["name"] == name)


def env(manifest: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest)["env"]}


# --- names ------------------------------------------------------------------------------------------------------


def test_job_names_are_deterministic_short_and_distinct() -> None:
    name = jobs.job_name("production-0123456789", "uid-1", "plan")
    assert name == jobs.job_name("production-0123456789", "uid-1", "plan")  # a restarted operator finds it
    assert re.fullmatch(r"production-0123456789-plan-[0-9a-f]{8}", name)
    others = {
        jobs.job_name("production-0123456789", "uid-2", "plan"),  # the Plan deleted and created again
        jobs.job_name("production-0123456789", "uid-1", "apply"),
        jobs.job_name("production-0123456789", "uid-1", "plan", salt="2026-01-01T00:00:00"),
    }
    assert name not in others and len(others) == 3


@pytest.mark.parametrize(
    "owner",
    ["a" * 253, "team.prod-" + "x" * 80 + "-pr12-0123456789", "production-pr7-0123456789abcdef"],
)
def test_job_names_are_dns_labels_of_at_most_63_characters(owner: str) -> None:
    name = jobs.job_name(owner, "uid", "adopt-apply")
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert len(jobs.result_name(name)) <= 253


def test_label_values_are_cut_to_valid_ones() -> None:
    assert jobs.label_value("x" * 70 + "-") == "x" * 63
    assert jobs.label_value("team.prod-drift_") == "team.prod-drift"
    assert jobs.labels(environment="e", phase="drift")[jobs.LABEL_PHASE] == "drift"
    assert jobs.LABEL_PLAN not in jobs.labels(environment="e", phase="drift")


# --- the manifest -----------------------------------------------------------------------------------------------


def test_the_default_job_runs_once_within_the_deadline_and_is_owned_by_the_plan() -> None:
    manifest = jobs.job_manifest(request(timeout=600.0, grace=30.0, ttl=120.0))
    spec = manifest["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (0, 630, 120)
    assert manifest["metadata"]["ownerReferences"] == [OWNER]
    assert manifest["metadata"]["labels"] == LABELS == spec["template"]["metadata"]["labels"]
    assert manifest["metadata"]["namespace"] == "team-a"
    assert pod(manifest)["restartPolicy"] == "Never"
    assert pod(manifest)["serviceAccountName"] == "chkmate-runner"
    assert schema.kubernetes_errors(manifest) == []


def test_the_default_pod_is_non_root_read_only_with_an_empty_dir_workspace() -> None:
    manifest = jobs.job_manifest(request())
    security = pod(manifest)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == security["runAsGroup"] == 65532
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    runner = container(manifest)
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert runner["securityContext"]["allowPrivilegeEscalation"] is False
    assert runner["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    [mount] = runner["volumeMounts"]
    [volume] = pod(manifest)["volumes"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], "/tmp") and "emptyDir" in volume
    assert env(manifest)["HOME"] == "/tmp" and env(manifest)["CHKMATE_WORK_DIR"].startswith("/tmp/")


def test_the_pod_runs_run_job_with_settings_the_cli_accepts() -> None:
    manifest = jobs.job_manifest(request())
    runner = container(manifest)
    assert runner["image"] == "registry.acme.test/chkmate:0.1.0"
    assert runner["command"] == ["chkmate"]
    args = cli.build_parser().parse_args(runner["args"])
    assert (args.command, args.namespace) == ("run-job", "team-a")
    assert (args.bundle, args.result) == (jobs.bundle_name(manifest["metadata"]["name"]), request().result)
    chkmate_env = {k: v for k, v in env(manifest).items() if k.startswith("CHKMATE_")}
    parsed = settings.Settings.from_env(chkmate_env)  # refuses any variable it does not know
    assert (parsed.terraform_binary, parsed.tofu_binary) == ("tofu", "tofu")


def test_no_service_account_means_the_namespace_default() -> None:
    assert "serviceAccountName" not in pod(jobs.job_manifest(request(service_account="")))


def test_a_fraction_of_a_second_rounds_the_deadline_up() -> None:
    assert jobs.job_manifest(request(timeout=0.5, grace=0.2))["spec"]["activeDeadlineSeconds"] == 1
    assert jobs.active_deadline(1800, 60) == 1860


# --- the pod template merge -------------------------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "infra", jobs.LABEL_PHASE: "forged"}, "annotations": {"a": "b"}},
    "spec": {
        "nodeSelector": {"pool": "terraform"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "terraform", "effect": "NoSchedule"}],
        "restartPolicy": "OnFailure",
        "serviceAccountName": "tf-workload-identity",
        "containers": [
            {
                "name": "runner",
                "command": ["sh", "-c", "cat /var/run/secrets/*"],
                "resources": {"limits": {"memory": "4Gi", "cpu": "2"}},
                "env": [
                    {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
                    {"name": "CHKMATE_TOFU_BINARY", "value": "/opt/tofu/tofu"},
                ],
            }
        ],
        "volumes": [
            {
                "name": "tmp",
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}
                    }
                },
            }
        ],
    },
}


def test_the_pod_template_is_merged_over_the_default() -> None:
    manifest = jobs.job_manifest(request(pod_template=TEMPLATE))
    spec, runner = pod(manifest), container(manifest)
    assert spec["nodeSelector"] == {"pool": "terraform"} and spec["tolerations"] == TEMPLATE["spec"]["tolerations"]
    assert spec["serviceAccountName"] == "tf-workload-identity"
    # Containers merge by name: the runner keeps its image, security context and mounts, gets new limits.
    assert runner["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "4Gi", "cpu": "2"},
    }
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert runner["image"] == "registry.acme.test/chkmate:0.1.0"
    # env entries are replaced or added by name.
    assert (
        env(manifest)["CHKMATE_TOFU_BINARY"] == "/opt/tofu/tofu" and env(manifest)["HTTPS_PROXY"] == "http://proxy:3128"
    )
    assert env(manifest)["HOME"] == "/tmp"
    # A volume of the same name is replaced whole (one volume, one source).
    [volume] = spec["volumes"]
    assert "ephemeral" in volume and "emptyDir" not in volume
    template_meta = manifest["spec"]["template"]["metadata"]
    assert template_meta["annotations"] == {"a": "b"} and template_meta["labels"]["team"] == "infra"
    assert schema.kubernetes_errors(manifest) == []


def test_the_pod_template_cannot_change_what_the_runner_needs() -> None:
    manifest = jobs.job_manifest(request(pod_template=TEMPLATE))
    assert pod(manifest)["restartPolicy"] == "Never"
    assert container(manifest)["command"] == ["chkmate"] and container(manifest)["args"][0] == "run-job"
    assert manifest["spec"]["template"]["metadata"]["labels"][jobs.LABEL_PHASE] == "plan"
    assert manifest["spec"]["backoffLimit"] == 0


def test_null_removes_and_other_containers_are_added() -> None:
    template = {
        "spec": {
            "containers": [
                {"name": "runner", "resources": {"limits": None}, "image": "registry.acme.test/terraform-runner:1"},
                {"name": "proxy", "image": "registry.acme.test/proxy:1"},
            ],
            "enableServiceLinks": None,
        }
    }
    manifest = jobs.job_manifest(request(pod_template=template))
    assert [c["name"] for c in pod(manifest)["containers"]] == ["runner", "proxy"]
    assert container(manifest)["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}
    assert container(manifest)["image"] == "registry.acme.test/terraform-runner:1"
    assert "enableServiceLinks" not in pod(manifest)
    assert schema.kubernetes_errors(manifest) == []


def test_the_merge_never_changes_its_inputs() -> None:
    base, override = {"a": {"b": [{"name": "x", "v": 1}]}}, {"a": {"b": [{"name": "x", "w": 2}]}}
    before = copy.deepcopy((base, override))
    assert jobs.merge(base, override) == {"a": {"b": [{"name": "x", "v": 1, "w": 2}]}}
    assert (base, override) == before
    assert jobs.merge({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}  # unnamed lists are replaced


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ({"containers": []}, "containers is not a key of a pod template"),
        ({"spec": "nope"}, "podTemplate.spec: must be an object"),
        ({"spec": {"containers": [{"image": "x"}]}}, "every container needs a name"),
        ({"spec": {"containers": None}}, "the container 'runner' was removed"),
    ],
)
def test_a_template_that_is_no_pod_template_is_an_invalid_spec(template: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.InvalidSpec, match=words):
        jobs.job_manifest(request(pod_template=template))


# --- what a Job's status means ----------------------------------------------------------------------------------


def job(status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j", **metadata}, "spec": {"activeDeadlineSeconds": 90}, "status": status or {}}


@pytest.mark.parametrize(
    ("found", "phase", "reason", "run_reason"),
    [
        (None, "Deleted", "Deleted", "RunFailed"),
        (job(deletionTimestamp="2026-01-01T00:00:00Z"), "Deleted", "Deleted", "RunFailed"),
        (job(), "Running", "", None),
        (job({"active": 1}), "Running", "", None),
        (job({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}), "Succeeded", "", None),
        (job({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}), "Succeeded", "", None),
        (job({"succeeded": 1}), "Succeeded", "", None),
        (job({"conditions": [{"type": "Complete", "status": "False"}]}), "Running", "", None),
        (
            job(
                {
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "DeadlineExceeded",
                            "message": "Job was active longer than specified deadline",
                        }
                    ],
                    "failed": 1,
                }
            ),
            "Failed",
            "DeadlineExceeded",
            "RunTimedOut",
        ),
        (
            job(
                {
                    "conditions": [
                        {
                            "type": "FailureTarget",
                            "status": "True",
                            "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit",
                        }
                    ]
                }
            ),
            "Failed",
            "BackoffLimitExceeded",
            "RunFailed",
        ),
        (job({"failed": 1}), "Failed", "Failed", "RunFailed"),
    ],
)
def test_job_states(found: dict[str, Any] | None, phase: str, reason: str, run_reason: str | None) -> None:
    state = jobs.job_state(found)
    assert (state.phase, state.reason, state.finished) == (phase, reason, phase != "Running")
    if run_reason is not None:
        assert jobs.failure_reason(state) == run_reason


def test_the_operator_gives_up_a_grace_after_the_deadline() -> None:
    created = job(creationTimestamp="2026-11-25T10:00:00Z")
    assert jobs.give_up_at(created, 30.0) == datetime.datetime(2026, 11, 25, 10, 2, tzinfo=datetime.UTC)
    assert jobs.give_up_at(job(), 30.0) is None


def test_pod_failure_names_how_the_runner_container_ended() -> None:
    oom = {
        "metadata": {"labels": {"job-name": "j"}},
        "status": {
            "containerStatuses": [{"name": "runner", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]
        },
    }
    other = {"metadata": {"labels": {"job-name": "k"}}, "status": {"reason": "Evicted"}}
    evicted = {"metadata": {"labels": {"batch.kubernetes.io/job-name": "j"}}, "status": {"reason": "Evicted"}}
    assert jobs.pod_failure([other, oom], "j") == "OOMKilled (exit code 137)"
    assert jobs.pod_failure([other, evicted], "j") == "Evicted"
    assert jobs.pod_failure([other], "j") == ""


# --- what travels: bundle and result ----------------------------------------------------------------------------

MAIN = 'variable "name" {\n  default = "demo"\n}\n\nresource "terraform_data" "app" {\n  input = var.name\n}\n'
REVISION = "main@sha1:" + "a" * 40


def inputs(**overrides: Any) -> plan_runs.Inputs:
    values: dict[str, Any] = {
        "engine": "builtin",
        "path": "stacks/app",
        "vars": {"name": "web", "db_password": "hunter2-very-secret"},
        "env": {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG"},
        "sensitive_vars": frozenset({"db_password"}),
        "timeout": 600.0,
    }
    return plan_runs.Inputs(**(values | overrides))


def test_codec_round_trips_and_refuses_other_data() -> None:
    document = {"format": jobs.FORMAT, "x": [1, "é"]}
    assert jobs.decode(jobs.encode(document)) == document
    assert jobs.encode(document) == jobs.encode(dict(reversed(document.items())))  # deterministic
    for data in (b"not gzip", jobs.encode({"format": 999})):
        with pytest.raises(ValueError, match="not a runner document"):
            jobs.decode(data)


def test_inputs_travel_whole() -> None:
    given = inputs(destroy=True)
    assert plan_runs.Inputs.from_wire(given.to_wire()) == given
    assert plan_runs.Inputs.from_wire(given.to_wire()).env == given.env  # not part of equality: repr=False only
    with pytest.raises(ValueError, match="engine"):
        plan_runs.Inputs.from_wire({**given.to_wire(), "engine": "pulumi"})


def test_plan_results_keep_their_digest_on_the_wire() -> None:
    result = builtin.plan(builtin.configuration({"main.tf": MAIN}), None)
    back = jobs.plan_result_from_wire(
        jobs.decode(jobs.encode({"format": 1, "r": jobs.plan_result_to_wire(result)}))["r"]
    )
    assert back == result and plans.digest(back) == plans.digest(result)


async def test_a_bundle_run_elsewhere_gives_what_the_local_runner_gives(tmp_path: Path) -> None:
    config = settings.Settings(work_dir=tmp_path)
    files = {"stacks/app/main.tf": MAIN.encode()}
    state = storage.State(terraform=None, builtin=None)
    local = await runners.Local(config).plan(
        phase="plan", revision=REVISION, files=files, state=state, inputs=inputs()
    )
    document = plan_runs.bundle("plan", revision=REVISION, files=files, state=state, inputs=inputs())
    result = await plan_runs.run_bundle(config, jobs.decode(jobs.encode(document)))
    remote = plan_runs.planned_from(jobs.decode(jobs.encode(result)), revision=REVISION, inputs=inputs())
    assert remote == local and remote.plan_id == result["planId"]
    assert remote.result.summary == plans.Summary(add=1)

    applied = plan_runs.bundle("apply", files=files, state=state, inputs=inputs(), artifact=remote.artifact)
    outcome = await plan_runs.run_bundle(config, jobs.decode(jobs.encode(applied)))
    assert outcome["ok"] is True and jobs.unpack(outcome["state"]["builtin"]) == local.artifact


async def test_engine_errors_come_back_as_the_same_class_redacted(tmp_path: Path) -> None:
    config = settings.Settings(work_dir=tmp_path)
    files = {"stacks/app/main.tf": b'resource "x" "y" {\n  a = \n}\n'}
    document = plan_runs.bundle(
        "plan", revision=REVISION, files=files, state=storage.State(None, None), inputs=inputs()
    )
    result = await plan_runs.run_bundle(config, document)
    assert result["ok"] is False
    with pytest.raises(builtin.ConfigurationError) as raised:
        plan_runs.raise_error(result["error"])
    with pytest.raises(builtin.ConfigurationError) as local:
        await runners.Local(config).plan(
            phase="plan", revision=REVISION, files=files, state=storage.State(None, None), inputs=inputs()
        )
    assert (raised.value.reason, raised.value.message) == (local.value.reason, local.value.message)
    assert "main.tf:2" in raised.value.message


def test_a_failed_apply_comes_back_with_its_state_and_secrets_stay_out() -> None:
    error = terraform.ApplyFailed("apply failed near hunter2-very-secret", state=b'{"serial": 3}')
    wire = plan_runs.error_to_wire(error, inputs().secrets())
    assert "hunter2" not in str(wire) and "(redacted)" in wire["message"]
    with pytest.raises(terraform.ApplyFailed) as raised:
        plan_runs.raise_error(wire)
    assert raised.value.state == b'{"serial": 3}' and raised.value.reason == "ApplyFailed"
    with pytest.raises(errors.ChkmateError) as other:
        plan_runs.raise_error({"type": "Whatever", "reason": "Odd", "message": "m"})
    assert (type(other.value), other.value.reason) == (errors.ChkmateError, "Odd")


async def test_an_unexpected_failure_is_still_a_result_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings.Settings(work_dir=tmp_path)
    document = plan_runs.bundle("plan", revision=REVISION, files={}, state=storage.State(None, None), inputs=inputs())

    async def broken(*_: Any, **__: Any) -> plan_runs.Planned:
        raise RuntimeError("cannot reach https://api.example with key wJalrXUtnFEMI/K7MDENG")

    monkeypatch.setattr(plan_runs, "plan", broken)
    result = await plan_runs.run_bundle(config, document)
    assert result["ok"] is False and result["error"]["reason"] == conditions.Reasons.RUN_FAILED
    assert result["error"]["message"].startswith("The runner failed: RuntimeError: cannot reach")
    assert "wJalrXUtnFEMI" not in str(result)
    document["files"] = {"main.tf": "%%% not base64"}  # a damaged bundle: a result all the same
    assert (await plan_runs.run_bundle(config, document))["error"]["reason"] == conditions.Reasons.RUN_FAILED


def test_the_runner_follows_the_environment_spec(tmp_path: Path) -> None:
    config = settings.Settings(work_dir=tmp_path)
    owner = {"apiVersion": "v1", "kind": "Plan", "metadata": {"name": "p", "uid": "u"}}
    local = runners.runner(config, None, "ns", spec=environments.Runner(), owner=owner, environment="e")  # type: ignore[arg-type]
    job_runner = runners.runner(
        config,
        None,
        "ns",
        spec=environments.Runner(mode="Job"),
        owner=owner,
        environment="e",  # type: ignore[arg-type]
    )
    assert isinstance(local, runners.Local) and not local.detached
    assert isinstance(job_runner, runners.Job) and job_runner.detached
    with pytest.raises(errors.ChkmateError, match="CHKMATE_RUNNER_IMAGE") as raised:
        job_runner.job_request("plan", 60.0)
    assert not isinstance(raised.value, runners.RunFailed)  # no run failed: the Plan waits, it does not fail


def test_run_job_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run-job", "--help"])
    assert exited.value.code == 0 and "usage: chkmate run-job" in capsys.readouterr().out
