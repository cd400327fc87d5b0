"""Running an engine for a Plan: terraform/tofu (the real CLI) or the builtin engine, the same way.

:func:`plan` turns files, state and inputs into a :class:`Planned` (the engine-neutral result, the artifact
an apply needs, and the planId); :func:`apply` applies that artifact and returns the new state. For the
builtin engine the artifact is the planned configuration and the "state" is the last applied configuration.
I/O: subprocesses through :mod:`chkmate.clients.terraform`; everything else here is pure glue.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chkmate import settings
from chkmate.api import environments
from chkmate.clients import storage, terraform
from chkmate.domain import builtin, plans


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
