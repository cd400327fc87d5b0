"""Runner Jobs as values: their names, the Job manifest, what a Job's status means, and the bundle codec.

The Job runner (``spec.runner.mode: Job``, docs/runners.md) runs each plan, apply or drift check of an Environment
as a Kubernetes Job: the operator writes a *bundle* Secret (files, state, inputs, the command), the Job's pod runs
``chkmate run-job``, which executes the same engine code as the Local runner and writes a *result* Secret. This
module decides everything that needs no API server:

* :func:`job_name`: deterministic from the owner (a Plan, or the Environment for drift checks), its uid and the
  phase, so an operator that restarts finds the Job it started instead of starting another;
* :func:`job_manifest`: the operator's default pod (non-root, read-only root filesystem, an ``emptyDir`` on
  ``/tmp`` as the workspace, ``restartPolicy: Never``) with ``spec.runner.podTemplate`` merged over it
  (:func:`merge`), ``backoffLimit: 0``, ``activeDeadlineSeconds`` from the run's timeout, a TTL, the owner
  reference and labels;
* :func:`job_state`: Running, Succeeded, Failed (with the Job's reason and message) or Deleted;
  :func:`failure_reason` the condition reason of a run that ended without a result (``RunFailed`` or
  ``RunTimedOut``, named in :class:`chkmate.api.conditions.Reasons`); :func:`give_up_at` when the operator stops
  waiting for a Job no controller finishes; :func:`pod_failure` why its pod ended;
* the codec: gzip JSON documents (:func:`encode`, :func:`decode`) and plan results on the wire.

Pure: no I/O, no clock reads (callers pass times).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import gzip
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from chkmate import errors
from chkmate.api import conditions
from chkmate.domain import plans

# What Kubernetes says when activeDeadlineSeconds passed (batch/v1 JobConditionReason).
DEADLINE_EXCEEDED = "DeadlineExceeded"
CONTAINER = "runner"
WORK_VOLUME = "tmp"
WORK_MOUNT = "/tmp"  # an emptyDir, as in the operator's own pod: HOME, the work dir and terraform's temp files
WORK_DIR = "/tmp/chkmate"
WORK_SIZE_LIMIT = "4Gi"  # as the operator's own /tmp (chart value operator.workDirSizeLimit): providers are large
# As the operator's container (chart value resources): a plan with its providers fits in 1Gi; no CPU limit, as
# throttling would slow the run without saving anything.
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
RUN_AS = 65532  # the image's numeric non-root user and group (Dockerfile)
# Job names end up in the label job-name of their pods: a label value, at most 63 characters.
NAME_MAX = 63
DIGEST_LENGTH = 8
FORMAT = 1  # version of the bundle and result documents

LABEL_PHASE = "chkmate.dev/phase"
LABEL_ENVIRONMENT = "chkmate.dev/environment"
LABEL_PLAN = "chkmate.dev/plan"
COMMON_LABELS = {
    "app.kubernetes.io/name": "chkmate-runner",
    "app.kubernetes.io/component": "runner",
    "app.kubernetes.io/part-of": "chkmate",
    "app.kubernetes.io/managed-by": "chkmate",
}
# The only keys of a pod template (a PodTemplateSpec).
TEMPLATE_KEYS = frozenset({"metadata", "spec"})
# Lists of named items whose items the pod template replaces whole (one EnvVar or Volume has one source);
# other lists of named items (containers, volumeMounts, ports) merge item by item; any other list is replaced.
REPLACED_BY_NAME = frozenset({"env", "volumes"})

_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_NAME = re.compile(r"[^a-z0-9-]+")


# Names.


def job_name(owner: str, uid: str, phase: str, salt: str = "") -> str:
    """``<owner>-<phase>-<digest>``: the same for the same owner object (uid), phase and salt, at most 63
    characters. A Plan deleted and created again under its name gets other Jobs (another uid)."""
    digest = hashlib.sha256(f"{uid}\0{owner}\0{phase}\0{salt}".encode()).hexdigest()[:DIGEST_LENGTH]
    base = _NOT_NAME.sub("-", f"{owner}-{phase}".lower())[: NAME_MAX - DIGEST_LENGTH - 1].strip("-")
    return f"{base}-{digest}" if base else digest


def bundle_name(job: str) -> str:
    """The Secret (and chunk prefix) holding what the Job runs."""
    return f"{job}-bundle"


def result_name(job: str) -> str:
    """The Secret (and chunk prefix) the Job's pod writes its result to."""
    return f"{job}-result"


def label_value(text: str) -> str:
    """``text`` as a valid label value: allowed characters only, at most 63, alphanumeric at both ends."""
    return _NOT_LABEL.sub("-", text)[:63].strip("-_.")


def labels(*, environment: str, phase: str, plan: str | None = None) -> dict[str, str]:
    """The labels of a runner Job, its pod, bundle and result: who it runs for and which phase."""
    found = {**COMMON_LABELS, LABEL_ENVIRONMENT: label_value(environment), LABEL_PHASE: label_value(phase)}
    if plan is not None:
        found[LABEL_PLAN] = label_value(plan)
    return found


# The manifest.


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """Everything a runner Job's manifest depends on."""

    name: str
    namespace: str
    owner: Mapping[str, Any]  # an ownerReference (the Plan, or the Environment for drift checks)
    labels: Mapping[str, str]
    image: str
    timeout: float  # the run's deadline (spec.runner.timeout), seconds
    grace: float = 60.0  # room beyond it for the engine's own deadline, saving state and writing the result
    ttl: float = 3600.0  # ttlSecondsAfterFinished
    service_account: str = ""  # empty: the namespace's default ServiceAccount
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # settings for `chkmate run-job`
    pod_template: Mapping[str, Any] | None = None  # spec.runner.podTemplate, merged over the default

    @property
    def bundle(self) -> str:
        return bundle_name(self.name)

    @property
    def result(self) -> str:
        return result_name(self.name)

    @property
    def args(self) -> list[str]:
        return ["run-job", "--namespace", self.namespace, "--bundle", self.bundle, "--result", self.result]


def active_deadline(timeout: float, grace: float) -> int:
    """activeDeadlineSeconds: the run's timeout plus the grace the engine needs to stop cleanly."""
    return max(1, math.ceil(timeout + grace))


def job_manifest(request: JobRequest) -> dict[str, Any]:
    """The batch/v1 Job of one run. Raises :class:`errors.InvalidSpec` for a pod template that is not one."""
    template = merge(default_pod_template(request), _checked_template(request.pod_template))
    template = _enforced(template, request)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": dict(request.labels),
            "ownerReferences": [dict(request.owner)],
        },
        "spec": {
            "backoffLimit": 0,  # a run is never started twice: an apply is not repeatable blindly
            "activeDeadlineSeconds": active_deadline(request.timeout, request.grace),
            "ttlSecondsAfterFinished": max(0, math.ceil(request.ttl)),
            "template": template,
        },
    }


def default_pod_template(request: JobRequest) -> dict[str, Any]:
    """The operator's pod: the chart's operator container's guarantees, one container running ``run-job``."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": True,  # run-job reads its bundle through the API
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": request.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["chkmate"],
                "args": request.args,
                "env": [
                    {"name": "HOME", "value": WORK_MOUNT},
                    {"name": "CHKMATE_WORK_DIR", "value": WORK_DIR},
                    *({"name": key, "value": value} for key, value in sorted(request.env.items())),
                ],
                "securityContext": {
                    "runAsNonRoot": True,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "resources": copy.deepcopy(RESOURCES),
                "volumeMounts": [{"name": WORK_VOLUME, "mountPath": WORK_MOUNT}],
            }
        ],
        "volumes": [{"name": WORK_VOLUME, "emptyDir": {"sizeLimit": WORK_SIZE_LIMIT}}],
    }
    if request.service_account:
        spec["serviceAccountName"] = request.service_account
    return {"metadata": {"labels": dict(request.labels)}, "spec": spec}


def merge(base: Any, override: Any, *, key: str = "") -> Any:
    """``override`` merged over ``base``: mappings key by key (a None value removes the key), lists of named
    items by name (``env`` and ``volumes`` items replaced whole, others merged), anything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = {k: copy.deepcopy(v) for k, v in base.items()}
        for name, value in override.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, key=name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    if _named_list(base) and _named_list(override):
        items = {item["name"]: copy.deepcopy(item) for item in base}
        for item in override:
            previous = items.get(item["name"])
            replace = previous is None or key in REPLACED_BY_NAME
            items[item["name"]] = copy.deepcopy(item) if replace else merge(previous, item)
        return list(items.values())
    return copy.deepcopy(override)


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) and "name" in item for item in value)


def _checked_template(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if template is None:
        return {}
    unknown = sorted(set(template) - TEMPLATE_KEYS)
    if unknown:
        raise errors.InvalidSpec(
            f"spec.runner.podTemplate: {', '.join(unknown)} is not a key of a pod template (metadata, spec)"
        )
    for name in TEMPLATE_KEYS & set(template):
        if template[name] is not None and not isinstance(template[name], Mapping):
            raise errors.InvalidSpec(f"spec.runner.podTemplate.{name}: must be an object")
    containers = (template.get("spec") or {}).get("containers")
    if containers is not None and not _named_list(containers):
        raise errors.InvalidSpec("spec.runner.podTemplate.spec.containers: every container needs a name")
    return template


def _enforced(template: dict[str, Any], request: JobRequest) -> dict[str, Any]:
    """What the pod template may not change: our labels, no restarts, the runner's command."""
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **request.labels}
    spec = template.setdefault("spec", {})
    spec["restartPolicy"] = "Never"
    containers = spec.get("containers") or []
    runner = next((c for c in containers if c.get("name") == CONTAINER), None)
    if runner is None:
        raise errors.InvalidSpec(f"spec.runner.podTemplate: the container {CONTAINER!r} was removed")
    runner["command"], runner["args"] = ["chkmate"], request.args
    runner.setdefault("image", request.image)
    return template


# What a Job's status says.


JobPhase = Literal["Running", "Succeeded", "Failed", "Deleted"]


@dataclasses.dataclass(frozen=True)
class JobState:
    phase: JobPhase
    reason: str = ""
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.phase != "Running"


def job_state(job: Mapping[str, Any] | None) -> JobState:
    """Where a Job is, from its conditions (Complete/SuccessCriteriaMet, Failed/FailureTarget) and counters."""
    if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return JobState("Deleted", "Deleted", "the Job was deleted before it finished")
    status = job.get("status") or {}
    conditions = [c for c in status.get("conditions") or () if c.get("status") == "True"]
    for condition in conditions:
        if condition.get("type") in ("Failed", "FailureTarget"):
            return JobState("Failed", str(condition.get("reason") or "Failed"), str(condition.get("message") or ""))
    if any(c.get("type") in ("Complete", "SuccessCriteriaMet") for c in conditions) or status.get("succeeded"):
        return JobState("Succeeded")
    if status.get("failed"):
        return JobState("Failed", "Failed", "its pod failed")
    return JobState("Running")


def failure_reason(state: JobState) -> str:
    """The condition reason of a Job that ended without a result: RunTimedOut past its deadline, else RunFailed."""
    timed_out = state.reason == DEADLINE_EXCEEDED
    return conditions.Reasons.RUN_TIMED_OUT if timed_out else conditions.Reasons.RUN_FAILED


def give_up_at(job: Mapping[str, Any], grace: float) -> datetime.datetime | None:
    """When to stop waiting for a Job that no controller finishes: its activeDeadlineSeconds after its creation,
    plus ``grace``. None when the Job does not say when it was created."""
    created = _parse_time((job.get("metadata") or {}).get("creationTimestamp"))
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    if created is None or not isinstance(deadline, int | float):
        return None
    return created + datetime.timedelta(seconds=float(deadline) + grace)


def pod_failure(pods: Iterable[Mapping[str, Any]], job: str) -> str:
    """How the runner container of the Job's pod ended, e.g. ``OOMKilled (exit code 137)``; "" when unknown."""
    for pod in pods:
        pod_labels = (pod.get("metadata") or {}).get("labels") or {}
        if job not in (pod_labels.get("job-name"), pod_labels.get("batch.kubernetes.io/job-name")):
            continue
        for container in (pod.get("status") or {}).get("containerStatuses") or ():
            terminated = (container.get("state") or {}).get("terminated") or {}
            if container.get("name") == CONTAINER and terminated:
                return f"{terminated.get('reason') or 'Terminated'} (exit code {terminated.get('exitCode', '?')})"
        reason = (pod.get("status") or {}).get("reason")
        if reason:
            return str(reason)
    return ""


def _parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# The codec.


def encode(document: Mapping[str, Any]) -> bytes:
    """A document as gzip JSON (deterministic: sorted keys, no timestamp in the gzip header)."""
    return gzip.compress(json.dumps(document, sort_keys=True, default=str).encode(), mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    """What :func:`encode` wrote; ValueError when it is not such a document, or of another format version."""
    try:
        document = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"not a runner document: {e}") from e
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a runner document of format {FORMAT}")
    return document


def pack(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unpack(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def plan_result_to_wire(result: plans.PlanResult) -> dict[str, Any]:
    return {
        "changes": [dataclasses.asdict(change) for change in result.changes],
        "outputChanges": dict(result.output_changes),
        "text": result.text,
        "engine": result.engine,
        "engineVersion": result.engine_version,
    }


def plan_result_from_wire(data: Mapping[str, Any]) -> plans.PlanResult:
    """The PlanResult :func:`plan_result_to_wire` described (the same digest, hence the same planId)."""
    return plans.PlanResult(
        changes=tuple(plans.ResourceChange(**change) for change in data.get("changes") or ()),
        output_changes=dict(data.get("outputChanges") or {}),
        text=str(data.get("text") or ""),
        engine=str(data.get("engine") or ""),
        engine_version=str(data.get("engineVersion") or ""),
    )
