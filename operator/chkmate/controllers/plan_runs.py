"""Running an engine for a Plan, in this process: terraform/tofu (the real CLI) or the builtin engine.

:func:`plan` turns files, state and inputs (:class:`Inputs`) into a :class:`Planned` (the engine-neutral result,
the artifact an apply needs, and the planId); :func:`apply` applies that artifact and returns the new state. For
the builtin engine the artifact is the planned configuration and the "state" is the last applied configuration.
Engine errors are raised as :mod:`chkmate.clients.terraform` and :mod:`chkmate.domain.builtin` define them
(:class:`terraform.PlanFailed`, :class:`terraform.ApplyFailed` with its state, ...).

The same run as a document, for runner Jobs (gzip JSON through :mod:`chkmate.domain.jobs`): :func:`bundle` is what
the operator sends, :func:`run_bundle` runs it (in the Job's pod, ``chkmate run-job``) with :func:`plan` and
:func:`apply` and returns the result document (the engine's error by name, redacted: :func:`error_to_wire`), and
:func:`planned_from`, :func:`applied_from` and :func:`raise_error` read that result back on the operator's side.

Not here: where a run happens (this process, or a Kubernetes Job), which :mod:`chkmate.controllers.runners` decides
and callers go through; this module knows nothing of Jobs or the Kubernetes API.

I/O: the engine's subprocesses and its workspace under ``CHKMATE_WORK_DIR``, through
:mod:`chkmate.clients.terraform`; the builtin engine and the document functions do none.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn

from chkmate import errors, settings
from chkmate.api import conditions, environments
from chkmate.clients import storage, terraform
from chkmate.domain import builtin, jobs, plans, redaction

Command = Literal["plan", "apply"]


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
    # Runs under one key (an Environment's "namespace/name") reuse the last init's .terraform folder; not part of
    # the planId, and not sent to runner Jobs (their pods start empty).
    init_key: str = ""

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
    """Plan ``files`` against ``state``; the planId is a hash of the revision, the inputs and the planned changes."""
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


async def forget_init(config: settings.Settings, init_key: str) -> None:
    """Remove the inits kept for ``init_key`` by either engine (its Environment was deleted)."""
    for engine in ("terraform", "tofu"):
        await _engine(config, Inputs(engine=engine, path=".", vars={})).forget_init(init_key)


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
        init_key=inputs.init_key,
    )


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
        "state": _state_to(state),
        "artifact": jobs.pack(artifact),
    }


async def run_bundle(config: settings.Settings, document: Mapping[str, Any]) -> dict[str, Any]:
    """Run what a bundle says, here (in a runner Job's pod), with :func:`plan` and :func:`apply` as the Local
    runner does; the result document: ``ok`` with the plan result and artifact or the new state, or the error,
    redacted. Never raises for a failed run: whatever happens is a result the operator can report."""
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
        failure = errors.ChkmateError(
            f"The runner failed: {type(e).__name__}: {e}", reason=conditions.Reasons.RUN_FAILED
        )
        return {"format": jobs.FORMAT, "ok": False, "error": error_to_wire(failure, secrets)}


def error_to_wire(error: errors.ChkmateError, secrets: list[str]) -> dict[str, Any]:
    """The error as a result document carries it: its class by name, reason and message (``secrets`` redacted),
    and the state a failed apply left."""
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


def applied_from(result: Mapping[str, Any]) -> storage.State:
    """A runner Job's apply result: the new state."""
    return _state_from(result.get("state") or {})


def _state_to(state: storage.State) -> dict[str, str | None]:
    return {"terraform": jobs.pack(state.terraform), "builtin": jobs.pack(state.builtin)}


def _state_from(data: Mapping[str, Any]) -> storage.State:
    return storage.State(terraform=jobs.unpack(data.get("terraform")), builtin=jobs.unpack(data.get("builtin")))
