"""Running an engine for a Plan: terraform/tofu (the real CLI) or the builtin engine, here or in a Job.

:func:`plan` turns files, state and inputs into a :class:`Planned` (the engine-neutral result, the artifact
an apply needs, and the planId); :func:`apply` applies that artifact and returns the new state. For the
builtin engine the artifact is the planned configuration and the "state" is the last applied configuration.

Where a run happens is a :class:`Runner` (:func:`runner` picks it from ``spec.runner.mode``), and there is one
path for both: :class:`Local` calls :func:`plan`/:func:`apply` in the operator's process; :class:`Job` writes a
bundle (:func:`bundle`) to a Secret, starts a Kubernetes Job whose pod (``chkmate run-job``) calls the very same
functions through :func:`run_bundle`, waits for the Job, and reads the result back, raising the engine's own
errors (:class:`terraform.PlanFailed`, :class:`terraform.ApplyFailed` with its state, ...) as the Local runner
would, or :class:`RunFailed`/:class:`RunTimedOut` when the Job ended without a result.

I/O: subprocesses through :mod:`chkmate.clients.terraform`; the Kubernetes API for Jobs
(:mod:`chkmate.clients.jobs`). The Job's values (names, manifest, status) are :mod:`chkmate.domain.jobs`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

from chkmate import errors, settings
from chkmate.api import environments
from chkmate.clients import jobs as job_client
from chkmate.clients import kube, storage, terraform
from chkmate.domain import builtin, jobs, plans, redaction

Logger = logging.Logger | logging.LoggerAdapter[Any]
Command = Literal["plan", "apply"]


class RunFailed(errors.ChkmateError):
    """A runner Job ended without a result: it failed, was deleted, or never finished."""

    reason = jobs.RUN_FAILED


class RunTimedOut(RunFailed):
    """A runner Job passed its deadline (``spec.runner.timeout``)."""

    reason = jobs.RUN_TIMED_OUT


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a plan depends on besides the code: all of it goes into the planId."""

    engine: environments.Engine
    path: str
    vars: Mapping[str, str]
    env: Mapping[str, str] = dataclasses.field(repr=False, default_factory=dict)
    sensitive_vars: frozenset[str] = frozenset()
    destroy: bool = False
    timeout: float = 1800.0

    def identity(self) -> dict[str, Any]:
        """The inputs as they enter the planId: variable values yes, credentials no (they rotate)."""
        return {
            "engine": self.engine,
            "path": self.path,
            "vars": dict(sorted(self.vars.items())),
            "destroy": self.destroy,
        }

    def secrets(self) -> list[str]:
        """The values to redact from whatever a run returns: credentials and sensitive variables."""
        return [*self.env.values(), *(self.vars[name] for name in sorted(self.sensitive_vars) if name in self.vars)]

    def to_wire(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "path": self.path,
            "vars": dict(self.vars),
            "env": dict(self.env),
            "sensitiveVars": sorted(self.sensitive_vars),
            "destroy": self.destroy,
            "timeout": self.timeout,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Inputs:
        engine = data.get("engine")
        if engine not in ("terraform", "tofu", "builtin"):
            raise ValueError(f"unknown engine {engine!r}")
        return cls(
            engine=engine,
            path=str(data.get("path", ".")),
            vars=dict(data.get("vars") or {}),
            env=dict(data.get("env") or {}),
            sensitive_vars=frozenset(data.get("sensitiveVars") or ()),
            destroy=bool(data.get("destroy")),
            timeout=float(data.get("timeout", 1800.0)),
        )


@dataclasses.dataclass(frozen=True)
class Planned:
    result: plans.PlanResult
    artifact: bytes  # terraform: the binary plan file; builtin: the planned configuration (JSON)
    plan_id: str


async def plan(
    config: settings.Settings,
    *,
    revision: str,
    files: Mapping[str, bytes],
    state: storage.State,
    inputs: Inputs,
    refresh_only: bool = False,
    lock: bool = True,
) -> Planned:
    if inputs.engine == "builtin":
        result, artifact = _builtin_plan(files, state, inputs)
    else:
        run = await _engine(config, inputs).plan(
            _workspace(files, state, inputs), destroy=inputs.destroy, refresh_only=refresh_only, lock=lock
        )
        result, artifact = run.result, run.plan_file
    plan_id = plans.plan_id(revision=revision, inputs=inputs.identity(), plan_digest=plans.digest(result))
    return Planned(result, artifact, plan_id)


async def apply(
    config: settings.Settings, *, files: Mapping[str, bytes], state: storage.State, inputs: Inputs, artifact: bytes
) -> storage.State:
    """Apply the planned artifact; the new state (a failed apply raises ApplyFailed carrying its state)."""
    if inputs.engine == "builtin":
        return storage.State(terraform=state.terraform, builtin=artifact)
    applied = await _engine(config, inputs).apply(_workspace(files, state, inputs), artifact)
    return storage.State(terraform=applied.state, builtin=state.builtin)


def _builtin_plan(files: Mapping[str, bytes], state: storage.State, inputs: Inputs) -> tuple[plans.PlanResult, bytes]:
    texts = {
        path: data.decode("utf-8-sig", errors="replace")
        for path, data in files.items()
        if path.endswith((".tf", ".tfvars"))
    }
    current = builtin.configuration(texts, path=inputs.path, variables=dict(inputs.vars))
    if inputs.destroy:
        current = builtin.Configuration()  # destroying: nothing is declared any more
    previous = builtin.deserialize(json.loads(state.builtin)) if state.builtin else None
    result = builtin.plan(current, previous)
    return result, json.dumps(builtin.serialize(current), sort_keys=True).encode()


def _engine(config: settings.Settings, inputs: Inputs) -> terraform.Engine:
    binary = config.tofu_binary if inputs.engine == "tofu" else config.terraform_binary
    return terraform.Engine(
        binary,
        work_root=Path(config.work_dir) / "runs",
        timeout=inputs.timeout,
        kind="tofu" if inputs.engine == "tofu" else "terraform",
    )


def _workspace(files: Mapping[str, bytes], state: storage.State, inputs: Inputs) -> terraform.Workspace:
    path = "" if inputs.path in ("", ".") else inputs.path.rstrip("/")
    return terraform.Workspace(
        files=dict(files),
        path=path,
        state=state.terraform,
        vars=dict(inputs.vars),
        sensitive_vars=inputs.sensitive_vars,
        env=dict(inputs.env),
    )


# Runners: where a run happens.


class Runner(Protocol):
    """Runs plans and applies, here or elsewhere; ``phase`` names the run among its owner's runs."""

    @property
    def detached(self) -> bool:
        """Whether the run goes on when the operator stops (then its state lock must stay held)."""
        ...

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> Planned: ...

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: Inputs, artifact: bytes
    ) -> storage.State: ...


@dataclasses.dataclass(frozen=True)
class Local:
    """A subprocess of the operator (``spec.runner.mode: Local``, the default)."""

    config: settings.Settings

    @property
    def detached(self) -> bool:
        return False

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> Planned:
        return await plan(
            self.config,
            revision=revision,
            files=files,
            state=state,
            inputs=inputs,
            refresh_only=refresh_only,
            lock=lock,
        )

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: Inputs, artifact: bytes
    ) -> storage.State:
        return await apply(self.config, files=files, state=state, inputs=inputs, artifact=artifact)


@dataclasses.dataclass(frozen=True)
class Job:
    """A Kubernetes Job per run (``spec.runner.mode: Job``), owned by ``owner`` (a Plan, or the Environment for
    drift checks). ``salt`` tells apart runs of one owner and phase (drift checks); ``keep`` False deletes the
    finished Job and its result once read (the owner would otherwise keep them)."""

    config: settings.Settings
    client: kube.KubeClient
    namespace: str
    owner: Mapping[str, Any]
    environment: str
    spec: environments.Runner
    plan_name: str | None = None
    salt: str = ""
    keep: bool = True
    logger: Logger | None = dataclasses.field(default=None, compare=False)

    @property
    def detached(self) -> bool:
        return True

    async def plan(
        self,
        *,
        phase: str,
        revision: str,
        files: Mapping[str, bytes],
        state: storage.State,
        inputs: Inputs,
        refresh_only: bool = False,
        lock: bool = True,
    ) -> Planned:
        document = bundle(
            "plan", revision=revision, files=files, state=state, inputs=inputs, refresh_only=refresh_only, lock=lock
        )
        result = await self._run(phase, document, inputs)
        return planned_from(result, revision=revision, inputs=inputs)

    async def apply(
        self, *, phase: str, files: Mapping[str, bytes], state: storage.State, inputs: Inputs, artifact: bytes
    ) -> storage.State:
        document = bundle("apply", files=files, state=state, inputs=inputs, artifact=artifact)
        result = await self._run(phase, document, inputs)
        return _state_from(result.get("state") or {})

    def job_request(self, phase: str, timeout: float) -> jobs.JobRequest:
        """The Job this runner starts for ``phase`` (its name is the same on every call)."""
        metadata = self.owner["metadata"]
        name = jobs.job_name(metadata["name"], metadata["uid"], phase, self.salt)
        if not self.config.runner_image:  # not the run's failure: the run waits for an operator configured
            raise errors.ChkmateError(
                "Job runs need the runner's image: set CHKMATE_RUNNER_IMAGE (the Helm chart sets the operator's own).",
                reason=jobs.RUN_FAILED,
            )
        return jobs.JobRequest(
            name=name,
            namespace=self.namespace,
            owner=storage.owner_reference(self.owner),
            labels=jobs.labels(environment=self.environment, phase=phase, plan=self.plan_name),
            image=self.config.runner_image,
            timeout=timeout,
            grace=self.config.runner_grace,
            ttl=self.config.runner_ttl,
            service_account=self.config.runner_service_account,
            env={
                "CHKMATE_TERRAFORM_BINARY": self.config.terraform_binary,
                "CHKMATE_TOFU_BINARY": self.config.tofu_binary,
            },
            pod_template=self.spec.pod_template,
        )

    async def _run(self, phase: str, document: dict[str, Any], inputs: Inputs) -> dict[str, Any]:
        """Start the Job (or find it), wait for it, and return its successful result; raise what it reported."""
        client, namespace = self.client, self.namespace
        request = self.job_request(phase, inputs.timeout)
        try:
            manifest = jobs.job_manifest(request)  # refuses a bad podTemplate before anything is written
        except errors.InvalidSpec as e:
            raise errors.InvalidSpec(f"Environment {self.environment!r}: {e.message}") from e
        data = await job_client.read_blob(client, namespace, request.result)
        state = jobs.JobState("Succeeded")
        if data is None:  # not finished before (a retry, or an operator restarted after the Job reported)
            job = await job_client.get_job(client, namespace, request.name)
            if job is None:
                owners = [storage.owner_reference(self.owner)]
                document["result"] = {
                    # The pod may not set blockOwnerDeletion (it would need update on the owner's finalizers).
                    "ownerReferences": [{**owners[0], "blockOwnerDeletion": False}],
                    "labels": dict(request.labels),
                }
                await job_client.write_blob(
                    client, namespace, request.bundle, jobs.encode(document), owners=owners, labels=request.labels
                )
                job = await job_client.create_job(client, namespace, manifest)
                self._log(f"Started the runner Job {request.name} ({phase}).")
            else:
                self._log(f"Waiting for the runner Job {request.name} ({phase}), started before.")
            state = await self._wait(job, inputs.timeout)
            data = await job_client.read_blob(client, namespace, request.result)
        # The bundle holds the run's credentials and state: it does not outlive the run.
        await job_client.delete_blob(client, namespace, request.bundle)
        if data is None:
            raise await self._failure(request, state, inputs.timeout)
        if not self.keep:
            await job_client.delete_job(client, namespace, request.name)
            await job_client.delete_blob(client, namespace, request.result)
        try:
            result = jobs.decode(data)
        except ValueError as e:
            raise RunFailed(f"The runner Job {request.name} wrote a result that cannot be read: {e}") from e
        if not result.get("ok"):
            raise_error(result.get("error") or {})
        return result

    async def _wait(self, job: kube.Object, timeout: float) -> jobs.JobState:
        """Poll the Job until it finishes or is deleted; give up (and delete it) when no controller ends it."""
        name = job["metadata"]["name"]
        now = datetime.datetime.now(datetime.UTC)
        give_up = jobs.give_up_at(job, self.config.runner_grace) or now + datetime.timedelta(
            seconds=jobs.active_deadline(timeout, self.config.runner_grace) + self.config.runner_grace
        )
        found: kube.Object | None = job
        while True:
            state = jobs.job_state(found)
            if state.finished:
                return state
            left = (give_up - datetime.datetime.now(datetime.UTC)).total_seconds()
            if left <= 0:
                await job_client.delete_job(self.client, self.namespace, name)
                return jobs.JobState(
                    "Failed",
                    jobs.DEADLINE_EXCEEDED,
                    f"it was still running {self.config.runner_grace:g}s past its activeDeadlineSeconds, "
                    "so the operator deleted it",
                )
            await asyncio.sleep(min(self.config.runner_poll_interval, left))
            found = await job_client.get_job(self.client, self.namespace, name)

    async def _failure(self, request: jobs.JobRequest, state: jobs.JobState, timeout: float) -> RunFailed:
        name = request.name
        if state.phase == "Deleted":
            return RunFailed(f"The runner Job {name} was deleted before it reported a result.")
        if state.phase == "Succeeded":
            return RunFailed(f"The runner Job {name} finished without writing its result (Secret {request.result}).")
        detail = f"{state.reason}: {state.message}" if state.message else state.reason
        if jobs.failure_reason(state) == jobs.RUN_TIMED_OUT:
            return RunTimedOut(
                f"The runner Job {name} did not finish within the run's timeout of {timeout:g}s ({detail})."
            )
        ended = await job_client.pod_failure(self.client, self.namespace, name)
        return RunFailed(f"The runner Job {name} failed ({detail})" + (f"; its pod ended {ended}." if ended else "."))

    def _log(self, message: str) -> None:
        if self.logger is not None:
            self.logger.info(message)


def runner(
    config: settings.Settings,
    client: kube.KubeClient,
    namespace: str,
    *,
    spec: environments.Runner,
    owner: Mapping[str, Any],
    environment: str,
    plan_name: str | None = None,
    salt: str = "",
    keep: bool = True,
    logger: Logger | None = None,
) -> Runner:
    """The runner ``spec.runner`` asks for; ``owner`` owns a Job runner's Jobs and Secrets."""
    if spec.mode == "Job":
        return Job(config, client, namespace, owner, environment, spec, plan_name, salt, keep, logger)
    return Local(config)


# What travels between the operator and a runner Job (gzip JSON through chkmate.domain.jobs).

# Errors a runner Job reports by name, raised again as the same class by the operator (most derived first).
_ERRORS: tuple[type[errors.ChkmateError], ...] = (
    terraform.ApplyFailed,
    terraform.PlanFailed,
    terraform.EngineNotFound,
    terraform.PathNotFound,
    builtin.ConfigurationError,
    errors.InvalidSpec,
)


def bundle(
    command: Command,
    *,
    files: Mapping[str, bytes],
    state: storage.State,
    inputs: Inputs,
    revision: str = "",
    refresh_only: bool = False,
    lock: bool = True,
    artifact: bytes | None = None,
) -> dict[str, Any]:
    """What a runner Job runs: the command and everything :func:`plan`/:func:`apply` take."""
    return {
        "format": jobs.FORMAT,
        "command": command,
        "revision": revision,
        "refreshOnly": refresh_only,
        "lock": lock,
        "inputs": inputs.to_wire(),
        "files": {path: jobs.pack(data) for path, data in files.items()},
        "state": {"terraform": jobs.pack(state.terraform), "builtin": jobs.pack(state.builtin)},
        "artifact": jobs.pack(artifact),
    }


async def run_bundle(config: settings.Settings, document: Mapping[str, Any]) -> dict[str, Any]:
    """Run what a bundle says, here (in a runner Job's pod), with the Local runner's functions; the result
    document: ``ok`` with the plan result and artifact or the new state, or the error, redacted."""
    command = document.get("command")
    secrets: list[str] = []
    try:
        inputs = Inputs.from_wire(document.get("inputs") or {})
        secrets = inputs.secrets()
        files = {str(path): jobs.unpack(data) or b"" for path, data in (document.get("files") or {}).items()}
        state = _state_from(document.get("state") or {})
        if command == "plan":
            planned = await plan(
                config,
                revision=str(document.get("revision") or ""),
                files=files,
                state=state,
                inputs=inputs,
                refresh_only=bool(document.get("refreshOnly")),
                lock=bool(document.get("lock", True)),
            )
            return {
                "format": jobs.FORMAT,
                "ok": True,
                "result": jobs.plan_result_to_wire(planned.result),
                "artifact": jobs.pack(planned.artifact),
                "planId": planned.plan_id,
            }
        if command == "apply":
            artifact = jobs.unpack(document.get("artifact")) or b""
            new_state = await apply(config, files=files, state=state, inputs=inputs, artifact=artifact)
            return {"format": jobs.FORMAT, "ok": True, "state": _state_to(new_state)}
        raise errors.ChkmateError(f"The bundle asks for an unknown command {command!r}.")
    except errors.ChkmateError as e:
        return {"format": jobs.FORMAT, "ok": False, "error": error_to_wire(e, secrets)}
    except Exception as e:  # a bug, a bad bundle or the environment: still a result, the operator says what happened
        failure = errors.ChkmateError(f"The runner failed: {type(e).__name__}: {e}", reason=jobs.RUN_FAILED)
        return {"format": jobs.FORMAT, "ok": False, "error": error_to_wire(failure, secrets)}


def error_to_wire(error: errors.ChkmateError, secrets: list[str]) -> dict[str, Any]:
    kind = next((cls.__name__ for cls in _ERRORS if isinstance(error, cls)), "ChkmateError")
    return {
        "type": kind,
        "reason": error.reason,
        "message": redaction.redact(error.message, secrets),
        "retryable": error.retryable,
        "state": jobs.pack(error.state) if isinstance(error, terraform.ApplyFailed) else None,
    }


def raise_error(data: Mapping[str, Any]) -> NoReturn:
    """Raise the error a runner Job reported as the class the Local runner would have raised."""
    message = str(data.get("message") or "The runner reported a failure without a message.")
    retryable = bool(data.get("retryable"))
    kind = data.get("type")
    if kind == terraform.ApplyFailed.__name__:
        raise terraform.ApplyFailed(message, state=jobs.unpack(data.get("state")), retryable=retryable)
    cls = next((cls for cls in _ERRORS if cls.__name__ == kind), errors.ChkmateError)
    raise cls(message, reason=str(data.get("reason") or cls.reason), retryable=retryable)


def planned_from(result: Mapping[str, Any], *, revision: str, inputs: Inputs) -> Planned:
    """A runner Job's plan result, its planId computed here as :func:`plan` does."""
    plan_result = jobs.plan_result_from_wire(result.get("result") or {})
    plan_id = plans.plan_id(revision=revision, inputs=inputs.identity(), plan_digest=plans.digest(plan_result))
    return Planned(plan_result, jobs.unpack(result.get("artifact")) or b"", plan_id)


def _state_to(state: storage.State) -> dict[str, str | None]:
    return {"terraform": jobs.pack(state.terraform), "builtin": jobs.pack(state.builtin)}


def _state_from(data: Mapping[str, Any]) -> storage.State:
    return storage.State(terraform=jobs.unpack(data.get("terraform")), builtin=jobs.unpack(data.get("builtin")))
