"""Plans on this machine, without a cluster: what ``chkmate plan`` and ``chkmate drift`` run.

Given a repository read by :mod:`chkmate.cli_sources`, :func:`load_config` reads its ``.chkmate.yml``,
:func:`pick_environment` chooses the environment to plan and :func:`choose_engine` the engine:
terraform or tofu when the binary is there (``CHKMATE_TERRAFORM_BINARY`` / ``CHKMATE_TOFU_BINARY``, else the
``PATH``), the builtin engine otherwise. :func:`plan` and :func:`drift` run it and add the cost estimate and the
security report. Every failure raises :class:`LocalError` (or another ``ChkmateError``) whose message is one line
for a terminal.

I/O: state files, engine subprocesses, and the engine's work folder (``CHKMATE_WORK_DIR``, else
``~/.cache/chkmate``). The rules (cost, security, the builtin planner) are the operator's own domain code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, TextIO

from chkmate import cli_sources, errors
from chkmate.api import environments, repoconfig
from chkmate.clients import terraform
from chkmate.domain import builtin, costs, plans, redaction, security

Kind = Literal["plan", "drift"]
DEFAULT_ENVIRONMENT = "default"


class LocalError(errors.ChkmateError):
    """Something the user must fix: an unknown environment, a missing engine, an unreadable state file..."""


@dataclasses.dataclass(frozen=True)
class Target:
    """The environment planned and why it was chosen."""

    name: str
    env: repoconfig.EnvConfig
    reason: str


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """The engine to run: its kind, the binary for terraform/tofu, and a note when it is not the one configured."""

    kind: environments.Engine
    binary: str | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class LocalPlan:
    """A finished plan (or drift check) with its audit; ``cost``/``security`` are None for a drift check."""

    kind: Kind
    source: cli_sources.Source
    target: Target
    engine: EngineChoice
    result: plans.PlanResult
    artifact: bytes = dataclasses.field(repr=False)  # terraform: the plan file; builtin: the planned configuration
    cost: costs.Estimate | None = None
    security: security.Report | None = None
    warnings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    has_state: bool = False  # planned against a state (else from nothing)

    @property
    def exit_code(self) -> int:
        """Like ``terraform plan -detailed-exitcode``: 2 when something would change (or drifted), else 0."""
        return 2 if self.result.has_changes else 0


class Progress:
    """Progress lines on a stream (stderr) for the long steps, when enabled."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr

    def note(self, message: str) -> None:
        if self.enabled:
            print(f"chkmate: {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        self.note(f"{message}...")
        started = time.monotonic()
        yield
        self.note(f"{message}: done in {time.monotonic() - started:.1f}s")


# ---- configuration and environments ---------------------------------------------------------------------------


def load_config(source: cli_sources.Source) -> repoconfig.RepoConfig | None:
    """The ``.chkmate.yml`` at the root of ``source``, or None when it has none."""
    data = source.files.get(repoconfig.FILENAME)
    if data is None:
        return None
    try:
        return repoconfig.parse(cli_sources.text_of(repoconfig.FILENAME, data))
    except repoconfig.RepoConfigError as e:
        raise LocalError(source.shown(str(e))) from e


def pick_environment(config: repoconfig.RepoConfig | None, *, name: str | None, branch: str | None) -> Target:
    """By name; else the one environment deploying ``branch``; else the only one. A repository without
    ``.chkmate.yml`` is one environment, ``default``: its root folder with the terraform engine."""
    if config is None:
        if name not in (None, DEFAULT_ENVIRONMENT):
            raise LocalError(f"no {repoconfig.FILENAME} here, so there is no environment {name!r}")
        env = repoconfig.EnvConfig(branch=branch or "main")
        return Target(DEFAULT_ENVIRONMENT, env, f"no {repoconfig.FILENAME}: the root folder is planned")
    known = sorted(config.environments)
    if name is not None:
        if name not in config.environments:
            raise LocalError(f"no environment {name!r} in {repoconfig.FILENAME} (known: {', '.join(known) or 'none'})")
        return Target(name, config.environments[name], "chosen with --env")
    matches = repoconfig.environment_for_branch(config, branch) if branch else []
    if len(matches) == 1:
        return Target(matches[0][0], matches[0][1], f"deploys branch {branch}")
    if len(known) == 1:
        return Target(known[0], config.environments[known[0]], "the only environment")
    if not known:
        raise LocalError(f"{repoconfig.FILENAME} declares no environments")
    deploying = f"{len(matches)} environments deploy branch {branch}" if matches else "no environment chosen"
    choices = ", ".join(match[0] for match in matches) if matches else ", ".join(known)
    raise LocalError(f"{deploying}; pick one with --env ({choices})")


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """``--var name=value`` flags as a mapping; later ones win."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or re.fullmatch(environments.VAR_NAME_PATTERN, name) is None:
            raise LocalError(f"--var {pair!r}: expected NAME=VALUE with a Terraform variable name")
        found[name] = value
    return found


def choose_engine(
    requested: environments.Engine | None, configured: environments.Engine, environ: Mapping[str, str]
) -> EngineChoice:
    """The engine asked for (``--engine``), else the configured one; terraform/tofu fall back to the builtin
    engine when their binary is missing, unless asked for by name."""
    kind = requested or configured
    if kind == "builtin":
        return EngineChoice("builtin")
    setting = f"CHKMATE_{kind.upper()}_BINARY"
    binary = environ.get(setting) or kind
    found = shutil.which(binary)
    if found is not None:
        return EngineChoice(kind, found)
    if requested is not None:
        raise LocalError(
            f"the {kind} binary {binary!r} was not found: install it, set {setting}, or use --engine builtin"
        )
    return EngineChoice(
        "builtin",
        note=f"{kind} is not installed ({binary!r} not found; set {setting}): planned with the builtin engine instead",
    )


def work_dir(environ: Mapping[str, str]) -> Path:
    """Where terraform runs and caches providers: ``CHKMATE_WORK_DIR``, else ``~/.cache/chkmate``."""
    if environ.get("CHKMATE_WORK_DIR"):
        return Path(environ["CHKMATE_WORK_DIR"])
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "chkmate"


def read_state(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise LocalError(f"{path}: no such state file") from None
    except OSError as e:
        raise LocalError(f"{path}: cannot read the state file ({e.strerror})") from None


def local_state_path(source: cli_sources.Source, target: Target) -> Path | None:
    """``terraform.tfstate`` of the environment's folder, where a local ``terraform apply`` leaves it."""
    if not source.worktree:
        return None
    path = Path(source.location, target.env.path, terraform.STATE_FILE)
    return path if path.is_file() else None


# ---- running --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything a plan or drift check needs besides the source and the environment."""

    engine: EngineChoice
    vars: Mapping[str, str]
    state: bytes | None = dataclasses.field(default=None, repr=False)
    work_dir: Path = Path(".")
    timeout: float = terraform.DEFAULT_TIMEOUT


async def plan(source: cli_sources.Source, target: Target, run: Run, progress: Progress) -> LocalPlan:
    """Plan the environment and audit the result: the cost estimate and the security report."""
    _check_state(run)
    if run.engine.kind == "builtin":
        with progress.step(f"planning {target.name} ({_folder(target)}) with the builtin engine"):
            result, artifact, warnings = _builtin(source, target, run)
    else:
        with progress.step(f"{run.engine.kind} init and plan of {target.name} ({_folder(target)})"):
            done = await _engine(run).plan(_workspace(source, target, run))
        result, artifact, warnings = done.result, done.plan_file, ()
    texts = source.texts(target.env.path)
    return LocalPlan(
        kind="plan",
        source=source,
        target=target,
        engine=run.engine,
        result=result,
        artifact=artifact,
        cost=costs.estimate(result.changes, region=target.env.region),
        security=security.scan(result.changes, files=texts),
        warnings=warnings,
        secrets=tuple(redaction.secrets_in(run.vars)),
        has_state=run.state is not None,
    )


def check_drift_engine(engine: EngineChoice) -> None:
    """Refuse the builtin engine for drift checks, which need to read the real infrastructure."""
    if engine.kind == "builtin":
        raise LocalError(
            "the builtin engine cannot see the real infrastructure, so it cannot detect drift: "
            "install terraform or tofu (or set CHKMATE_TERRAFORM_BINARY)"
        )


async def drift(source: cli_sources.Source, target: Target, run: Run, progress: Progress) -> LocalPlan:
    """A refresh-only plan against ``run.state``: what changed outside Terraform."""
    check_drift_engine(run.engine)
    if run.state is None:
        raise LocalError("a drift check needs a state: pass --state FILE")
    _check_state(run)
    with progress.step(f"{run.engine.kind} init and refresh-only plan of {target.name} ({_folder(target)})"):
        done = await _engine(run).drift(_workspace(source, target, run))
    return LocalPlan(
        kind="drift",
        source=source,
        target=target,
        engine=run.engine,
        result=done.result,
        artifact=done.plan_file,
        secrets=tuple(redaction.secrets_in(run.vars)),
        has_state=True,
    )


def _folder(target: Target) -> str:
    return "the root folder" if target.env.path == "." else target.env.path


def _builtin(source: cli_sources.Source, target: Target, run: Run) -> tuple[plans.PlanResult, bytes, tuple[str, ...]]:
    """The builtin engine: the code's configuration against ``run.state`` (a configuration it saved earlier)."""
    texts = {
        path: cli_sources.text_of(path, data)
        for path, data in source.files.items()
        if path.endswith((".tf", ".tfvars"))
    }
    current = builtin.configuration(texts, path=target.env.path, variables=dict(run.vars))
    previous = builtin.deserialize(json.loads(run.state)) if run.state is not None else None
    artifact = json.dumps(builtin.serialize(current), sort_keys=True).encode()
    return builtin.plan(current, previous), artifact, current.warnings


def _check_state(run: Run) -> None:
    """A state must suit the engine: terraform's state for terraform/tofu, a saved configuration for builtin."""
    if run.state is None:
        return
    saved = _saved_configuration(run.state)
    if run.engine.kind == "builtin" and not saved:
        raise LocalError(
            "the builtin engine reads only the configurations it saved (plan --out), not a terraform state: "
            "use --engine terraform or tofu for this state"
        )
    if run.engine.kind != "builtin" and saved:
        raise LocalError("this state is a configuration saved by the builtin engine: plan it with --engine builtin")


def _saved_configuration(state: bytes) -> bool:
    """Whether ``state`` is what :func:`chkmate.domain.builtin.serialize` wrote."""
    try:
        data = json.loads(state)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("format") == builtin.FORMAT and "engineVersion" in data


def _engine(run: Run) -> terraform.Engine:
    assert run.engine.binary is not None  # choose_engine gives terraform/tofu a binary
    return terraform.Engine(run.engine.binary, work_root=run.work_dir, timeout=run.timeout, kind=run.engine.kind)


def _workspace(source: cli_sources.Source, target: Target, run: Run) -> terraform.Workspace:
    path = "" if target.env.path == "." else target.env.path
    return terraform.Workspace(
        files=source.files,
        path=path,
        state=run.state,
        vars=dict(run.vars),
        sensitive_vars=redaction.sensitive_keys(run.vars),
    )
