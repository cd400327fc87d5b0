"""Run terraform (or OpenTofu) plans and applies in throw-away workspaces, with deadlines and redaction.

Each run writes a :class:`Workspace` (files from a commit, the state, vars, credentials) into a fresh
directory under ``work_root/runs`` and removes it afterwards. Commands are ``asyncio`` subprocesses in their
own process group, so the event loop never blocks and a deadline stops the engine and every plugin it
started: first an interrupt (Terraform then stops cleanly and saves the state it has), then a kill after
``grace`` seconds.

State: the operator keeps state in a Kubernetes Secret, so every run uses the local backend on
``terraform.tfstate`` in the root module, which the caller loads before and saves after. A generated
``*_override.tf.json`` replaces any ``backend``/``cloud`` block of the configuration: ``init -backend=false``
would not do, as a configuration with a backend block then refuses to plan. The path is relative because a
saved plan remembers its backend configuration and an apply runs in another directory. A failed apply still
returns the state it left (:class:`ApplyFailed` ``.state``): state is never lost.

Secrets: vars go in an ``.auto.tfvars.json`` file (never in argv, where process lists show them),
credentials in the child's environment only. Whatever the engine returns (logs, plan text, errors) has the
credential values, the vars named sensitive and every value the plan marks sensitive replaced by
``(redacted)``. Nothing here logs. I/O: subprocesses and files under ``work_root``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import itertools
import json
import os
import posixpath
import re
import shutil
import signal
import tempfile
import weakref
import zipfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from chkmate import errors
from chkmate.api import conditions
from chkmate.domain import plans, tfjson

DEFAULT_TIMEOUT = 1800.0
# Terraform asks providers to stop and writes the state it has after an interrupt; give it that long.
DEFAULT_GRACE = 10.0
STATE_FILE = "terraform.tfstate"
# Written by Terraform when it cannot save the state to the backend: it is then the newest state.
ERRORED_STATE_FILE = "errored.tfstate"
LOCK_FILE = ".terraform.lock.hcl"
INIT_DIR = ".terraform"
# Auto-loaded vars files are read in lexical order and later ones win: ours comes last.
VARS_FILE = "zz_chkmate.auto.tfvars.json"
BACKEND_FILE = "zz_chkmate_backend_override.tf.json"
PLAN_FILE = "chkmate.tfplan"
# Variables of the operator's own environment a provider may need (proxies, CA bundles); nothing else leaks.
PASSED_ENV = (
    "PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip
COMMON_FLAGS = ["-input=false", "-no-color"]
MAX_ERRORS = 3
MAX_DETAIL = 400
MAX_MESSAGE = 2000

_ASKS_FOR_INIT = re.compile(r"\b(terraform|tofu) init\b")
_DIAGNOSTIC = re.compile(r"^(Error|Warning): ", re.MULTILINE)
_LOCATION = re.compile(r"^\s+on (.+?) line (\d+)", re.MULTILINE)


class EngineNotFound(errors.ChkmateError):
    """The engine binary is missing or not executable: only installing it or fixing the setting helps."""

    reason = conditions.Reasons.ENGINE_NOT_FOUND


class PlanFailed(errors.ChkmateError):
    """``init``, ``plan`` or ``show`` failed; the message has the engine's errors with file:line, redacted."""

    reason = conditions.Reasons.PLAN_FAILED


class PathNotFound(errors.ChkmateError):
    """The workspace's ``path`` holds no Terraform files."""

    reason = conditions.Reasons.PATH_NOT_FOUND


class ApplyFailed(errors.ChkmateError):
    """``apply`` failed or was stopped; ``state`` is the state it left (save it!), None if there was none."""

    reason = conditions.Reasons.APPLY_FAILED

    def __init__(self, message: str, *, state: bytes | None, retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.state = state


@dataclasses.dataclass(frozen=True)
class Workspace:
    """What one run needs: files (e.g. a commit's tree), the root module's folder among them, state, inputs.

    ``vars`` are written to a vars file; those named in ``sensitive_vars`` are redacted from everything
    returned, like every value of ``env`` (credentials, merged into the engine's environment).
    """

    files: Mapping[str, bytes] = dataclasses.field(repr=False)
    path: str = ""
    state: bytes | None = dataclasses.field(default=None, repr=False)
    vars: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    sensitive_vars: frozenset[str] = frozenset()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    # Runs with the same key (e.g. one Environment's) reuse the last `init`'s .terraform folder: see Engine.plan.
    init_key: str = ""

    def secrets(self) -> set[str]:
        found = {value for value in self.env.values() if value}
        for name in self.sensitive_vars & set(self.vars):
            found.update(tfjson.strings(self.vars[name]))
        return found


@dataclasses.dataclass(frozen=True)
class PlanRun:
    """A successful plan: the parsed result, the binary plan file to apply later, ``-detailed-exitcode``."""

    result: plans.PlanResult
    plan_file: bytes = dataclasses.field(repr=False)
    exit_code: int
    log: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class ApplyRun:
    """A successful apply: the new state (to save), the engine's output and the root outputs (masked)."""

    state: bytes = dataclasses.field(repr=False)
    log: str = dataclasses.field(repr=False)
    outputs: Mapping[str, Any]


class Engine:
    """One engine binary (``kind`` terraform or tofu); runs share ``work_root`` and its provider cache."""

    def __init__(
        self,
        binary: str,
        *,
        work_root: Path,
        timeout: float = DEFAULT_TIMEOUT,
        kind: str = "terraform",
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.binary = binary
        self.kind = kind
        self.work_root = work_root
        self.timeout = timeout
        self.grace = grace
        self._version: str | None = None

    async def version(self) -> str:
        """The engine's version, e.g. ``1.11.4``: asked once per binary file (a replaced binary is asked again),
        not once per run. Raises :class:`EngineNotFound`."""
        if self._version is None:
            path, identity = shutil.which(self.binary), None
            if path is not None:
                found = await asyncio.to_thread(os.stat, path)
                identity = (path, found.st_mtime_ns, found.st_ino)
            known = _VERSIONS.get(identity) if identity is not None else None
            if known is None:
                known = await self._ask_version()
                if identity is not None:
                    _VERSIONS[identity] = known
            self._version = known
        return self._version

    async def _ask_version(self) -> str:
        await asyncio.to_thread(self._prepare)
        deadline = asyncio.get_running_loop().time() + self.timeout
        done = await self._exec(["version", "-json"], cwd=self.work_root, env=self._env({}), deadline=deadline)
        try:
            return str(json.loads(done.out)["terraform_version"])
        except (ValueError, KeyError, TypeError):
            raise EngineNotFound(
                f"{self.binary!r} does not answer `version -json` like {self.kind} does; "
                f"check the setting {self._setting}"
            ) from None

    async def plan(
        self, workspace: Workspace, *, destroy: bool = False, refresh_only: bool = False, lock: bool = True
    ) -> PlanRun:
        """init, ``plan -detailed-exitcode`` (its output is the readable plan), then ``show -json``.
        Raises :class:`PlanFailed`.

        With ``workspace.init_key``, the ``.terraform`` folder (and lock file) of the last successful ``init`` under
        that key is restored first and ``plan`` runs without ``init``, as it would in a long-lived working copy.
        Terraform checks that folder against the configuration itself (providers against the lock file, modules
        against their calls, the backend's hash): when anything changed it refuses to plan and asks for ``init``,
        and the plan then runs again after one. A refresh-only plan's ``changes`` are the drift found (see
        :func:`tfjson.parse_plan`).
        """
        version = await self.version()
        flags = [*(["-destroy"] if destroy else []), *(["-refresh-only"] if refresh_only else [])]
        flags += [] if lock else ["-lock=false"]
        async with self._workspace(workspace) as run:
            command = ["plan", f"-out={run.plan}", "-detailed-exitcode", *COMMON_FLAGS, *flags]
            try:
                cache = self._init_cache(workspace.init_key)
                restored = await asyncio.to_thread(_restore_init, cache, run.module) if cache is not None else None
                done = await self._run(run, command) if restored is not None else None
                if done is None or (done.code == 1 and self._asks_for_init(done)):
                    if restored is not None:
                        await asyncio.to_thread(_forget_init, restored)
                    await self._init(run, cache)
                    done = await self._run(run, command)
                if done.code not in (0, 2):
                    raise _Failed(self._failure("plan", done, run))
                shown = json.loads((await self._checked(run, ["show", "-json", str(run.plan)])).out)
                text = done.out  # plan prints the same readable plan as `show` would: one process less
            except _CommandError as e:
                raise PlanFailed(e.message, retryable=e.retryable) from e
            run.secrets |= tfjson.sensitive_values(shown)
            result = tfjson.parse_plan(shown, refresh_only=refresh_only, secrets=run.secrets)
            result = tfjson.locate(result, await asyncio.to_thread(_declarations, run.module, run.path))
            result = dataclasses.replace(result, text=run.redact(text), engine=self.kind, engine_version=version)
            plan_file = await asyncio.to_thread(run.plan.read_bytes)
            return PlanRun(result=result, plan_file=plan_file, exit_code=done.code, log=run.redact(run.log()))

    async def drift(self, workspace: Workspace) -> PlanRun:
        """A refresh-only plan without the lock: exit code 2 and ``changes`` when the real world moved."""
        return await self.plan(workspace, refresh_only=True, lock=False)

    async def apply(self, workspace: Workspace, plan_file: bytes) -> ApplyRun:
        """Apply a saved plan to ``workspace.state``. Raises :class:`ApplyFailed` carrying the state left.

        Terraform refuses a plan made from another state ("Saved plan is stale"): plan again then.
        """
        await self.version()
        async with self._workspace(workspace, plan_file=plan_file) as run:
            try:
                await self._init(run)
                shown = json.loads((await self._checked(run, ["show", "-json", str(run.plan)])).out)
                run.secrets |= tfjson.sensitive_values(shown)
                await self._checked(run, ["apply", *COMMON_FLAGS, str(run.plan)])
            except _CommandError as e:
                state = await asyncio.to_thread(run.state, workspace.state)
                raise ApplyFailed(e.message, state=state, retryable=False) from e
            state = await asyncio.to_thread(run.state, workspace.state) or b""
            outputs = tfjson.redact(tfjson.parse_state_outputs(json.loads(state)), run.secrets) if state else {}
            return ApplyRun(state=state, log=run.redact(run.log()), outputs=outputs)

    @property
    def _setting(self) -> str:
        return f"Settings.{self.kind}_binary (CHKMATE_{self.kind.upper()}_BINARY)"

    def _prepare(self) -> None:
        (self.work_root / "runs").mkdir(parents=True, exist_ok=True)
        (self.work_root / "plugin-cache").mkdir(exist_ok=True)
        # FACTS.md: the machine points TF_CLI_CONFIG_FILE at a missing file; ours is empty and exists.
        self._cli_config.touch()

    @property
    def _cli_config(self) -> Path:
        return self.work_root / "terraform.rc"

    def _env(self, extra: Mapping[str, str], home: Path | None = None) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update(extra)
        env.update({
            "HOME": str(home or self.work_root),
            "TF_CLI_CONFIG_FILE": str(self._cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_PLUGIN_CACHE_DIR": str(self.work_root / "plugin-cache"),
            # Our lock file is per run and never committed, so the cache may fill it with local checksums.
            "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE": "true",
        })  # fmt: skip
        return env

    @contextlib.asynccontextmanager
    async def _workspace(self, workspace: Workspace, *, plan_file: bytes | None = None) -> AsyncIterator[_Run]:
        await asyncio.to_thread(self._prepare)
        root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="run-", dir=self.work_root / "runs"))
        try:
            module = await asyncio.to_thread(_materialize, root, workspace, plan_file)
            deadline = asyncio.get_running_loop().time() + self.timeout
            yield _Run(root, module, workspace.path, self._env(workspace.env, home=root), workspace.secrets(), deadline)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)

    async def _init(self, run: _Run, cache: Path | None = None) -> None:
        """``init`` (one at a time per work root); its ``.terraform`` folder is kept in ``cache`` when given."""
        async with _init_lock(self.work_root):
            await self._checked(run, ["init", *COMMON_FLAGS])
        if cache is not None:
            await asyncio.to_thread(_keep_init, run.module, cache)

    async def forget_init(self, key: str) -> None:
        """Remove the init kept for ``key`` (its Environment is gone)."""
        cache = self._init_cache(key)
        if cache is not None:
            await asyncio.to_thread(shutil.rmtree, cache, True)

    def _init_cache(self, key: str) -> Path | None:
        if not key:
            return None
        return self.work_root / "init-cache" / hashlib.sha256(f"{self.kind}\0{key}".encode()).hexdigest()[:32]

    def _asks_for_init(self, done: _Completed) -> bool:
        """Whether a failed command says the working directory needs ``init`` (providers, modules, backend).

        Either engine's wording counts, whatever ``kind`` says: the image runs OpenTofu as ``terraform``.
        """
        return _ASKS_FOR_INIT.search(done.err + done.out) is not None

    async def _checked(self, run: _Run, args: list[str]) -> _Completed:
        done = await self._run(run, args)
        if done.code != 0:
            raise _Failed(self._failure(args[0], done, run))
        return done

    async def _run(self, run: _Run, args: list[str]) -> _Completed:
        try:
            done = await self._exec(args, cwd=run.module, env=run.env, deadline=run.deadline)
        except _TimedOut as e:
            run.record(args, e.partial)
            raise
        if args[0] != "show":  # show -json prints every value in clear: never into the log
            run.record(args, done)
        return done

    async def _exec(self, args: list[str], *, cwd: Path, env: Mapping[str, str], deadline: float) -> _Completed:
        """Run the engine in its own process group until it exits or the deadline passes."""
        path = shutil.which(self.binary)
        if path is None:
            raise EngineNotFound(f"the {self.kind} binary {self.binary!r} was not found; set {self._setting}")
        try:
            process = await asyncio.create_subprocess_exec(
                path, *args, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            message = f"cannot run the {self.kind} binary {path!r} ({e.strerror}); check {self._setting}"
            raise EngineNotFound(message) from e
        assert process.stdout is not None and process.stderr is not None
        readers = [asyncio.ensure_future(process.stdout.read()), asyncio.ensure_future(process.stderr.read())]
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), max(deadline - asyncio.get_running_loop().time(), 0))
        except TimeoutError:
            timed_out = True
        finally:
            if process.returncode is None:  # the deadline passed, or we are cancelled
                await self._stop(process)
            out, err = (data.decode(errors="replace") for data in await asyncio.gather(*readers))
        done = _Completed(-1 if process.returncode is None else process.returncode, out, err)
        if timed_out:
            raise _TimedOut(f"{self.kind} {args[0]} did not finish within {self.timeout:g}s and was stopped", done)
        return done

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """Interrupt the group (as Ctrl-C would), give it ``grace`` to save state, then kill what is left."""
        _signal_group(process.pid, signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), self.grace)
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()

    def _failure(self, verb: str, done: _Completed, run: _Run) -> str:
        found = _errors(done.err or done.out, run.path) or _last_lines(done.err or done.out)
        detail = "; ".join(found) if found else f"exit status {done.code}"
        return run.redact(f"{self.kind} {verb} failed: {detail}")[:MAX_MESSAGE]


@dataclasses.dataclass(frozen=True)
class _Completed:
    code: int
    out: str
    err: str


class _CommandError(Exception):
    """A command failed or timed out; the public error depends on the step (plan or apply)."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Failed(_CommandError):
    pass


class _TimedOut(_CommandError):
    retryable = True  # for a plan; an apply is never retried blindly

    def __init__(self, message: str, partial: _Completed) -> None:
        super().__init__(message)
        self.partial = partial


@dataclasses.dataclass
class _Run:
    """A materialized workspace: where it lives, the child's environment, what to redact, the deadline."""

    root: Path
    module: Path
    path: str
    env: dict[str, str]
    secrets: set[str]
    deadline: float
    outputs: list[str] = dataclasses.field(default_factory=list)

    @property
    def plan(self) -> Path:
        return self.root / PLAN_FILE

    def record(self, args: list[str], done: _Completed) -> None:
        command = " ".join(args).replace(f"{self.root}/", "")  # the temporary folder says nothing
        self.outputs.append(f"$ {command}\n{done.out}{done.err}")

    def log(self) -> str:
        return "\n".join(self.outputs)

    def redact(self, text: str) -> str:
        return tfjson.redact_text(text, self.secrets)

    def state(self, previous: bytes | None) -> bytes | None:
        """The newest state this run holds: Terraform's emergency copy, else the state file, else the old."""
        for name in (ERRORED_STATE_FILE, STATE_FILE):
            if (self.module / name).is_file():
                return (self.module / name).read_bytes()
        return previous


# Engine versions by (binary path, mtime, inode): an Engine is made per run, the binary rarely changes.
_VERSIONS: dict[tuple[str, int, int], str] = {}
# The provider cache is not safe for concurrent `init`s (Terraform's docs say so): one at a time per work root,
# across every Engine object (asyncio locks belong to one event loop, hence one set per loop).
_INIT_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _init_lock(work_root: Path) -> asyncio.Lock:
    locks = _INIT_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(work_root.resolve(), asyncio.Lock())


def _restore_init(cache: Path, module: Path) -> list[Path] | None:
    """Copy the kept ``.terraform`` folder (and lock file, unless the code has its own) into ``module``; the paths
    restored, or None if nothing is kept, the code brings a ``.terraform`` of its own, or the kept version was
    removed while being copied (another run kept a newer one).

    The cache's ``current`` is a symbolic link to a version folder that is never changed (a newer init makes a new
    one and moves the link): it is resolved once, so a copy never mixes two inits. Files are hard links when the
    file system allows, and a run that needs ``init`` removes what was restored first (:func:`_forget_init`), so
    restoring costs a directory walk, not the modules' bytes.
    """
    if (module / INIT_DIR).exists():
        return None
    try:
        kept = cache / os.readlink(cache / "current")
    except OSError:
        return None
    restored = [module / INIT_DIR]
    try:
        shutil.copytree(kept / INIT_DIR, module / INIT_DIR, symlinks=True, copy_function=_link_or_copy)
        if (kept / LOCK_FILE).is_file() and not (module / LOCK_FILE).exists():
            restored.append(module / LOCK_FILE)
            _link_or_copy(str(kept / LOCK_FILE), str(module / LOCK_FILE))
    except (OSError, shutil.Error):
        _forget_init(restored)
        return None
    return restored


def _forget_init(restored: list[Path]) -> None:
    """Remove what :func:`_restore_init` brought before a real ``init``: init writes files in place, and hard
    links would carry those writes back into the kept copy."""
    for path in restored:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _keep_init(module: Path, cache: Path) -> None:
    """Keep ``module``'s fresh ``.terraform`` and lock file as a new version folder, point ``current`` at it
    (``os.replace`` of a symbolic link: atomic), then remove the other versions."""
    cache.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix="v-", dir=cache))
    try:
        shutil.copytree(module / INIT_DIR, version / INIT_DIR, symlinks=True)
        if (module / LOCK_FILE).is_file():
            shutil.copy2(module / LOCK_FILE, version / LOCK_FILE)
        link = cache / f".current-{version.name}"
        link.symlink_to(version.name)
        os.replace(link, cache / "current")
    except OSError:
        shutil.rmtree(version, ignore_errors=True)  # no cache this time; the next init tries again
        return
    for other in cache.glob("v-*"):  # a reader copying one of these falls back to init
        if other != version:
            shutil.rmtree(other, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _materialize(root: Path, workspace: Workspace, plan_file: bytes | None) -> Path:
    """Write the workspace under ``root``; return the root module's directory."""
    source = root / "src"
    source.mkdir()
    for name, data in workspace.files.items():
        target = _inside(source, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    module = _inside(source, workspace.path) if workspace.path.strip("/") else source
    if not module.is_dir() or not any(p.name.endswith((".tf", ".tf.json")) for p in module.iterdir()):
        raise PathNotFound(f"no Terraform files (.tf) in {workspace.path or 'the root folder'}")
    for name in (STATE_FILE, ERRORED_STATE_FILE):  # a committed state file is not ours to use
        (module / name).unlink(missing_ok=True)
    if workspace.state is not None:
        (module / STATE_FILE).write_bytes(workspace.state)
    backend = {"terraform": {"backend": {"local": {"path": STATE_FILE}}}}
    (module / BACKEND_FILE).write_text(json.dumps(backend))
    (module / VARS_FILE).write_text(json.dumps(dict(workspace.vars)))
    if plan_file is not None:
        (root / PLAN_FILE).write_bytes(plan_file)
        lock = _plan_lock_file(plan_file)
        if lock is not None:  # install exactly the providers the plan was made with
            (module / LOCK_FILE).write_bytes(lock)
    return module


def _inside(base: Path, name: str) -> Path:
    relative = PurePosixPath(name.strip("/"))
    if name.startswith("/") or ".." in relative.parts or "\\" in name:
        raise errors.InvalidSpec(f"refusing the file path {name!r}: it leaves the workspace")
    return base / relative


def _plan_lock_file(plan_file: bytes) -> bytes | None:
    """The dependency lock file a saved plan carries (a plan file is a zip archive), if any."""
    try:
        with zipfile.ZipFile(io.BytesIO(plan_file)) as archive:
            return archive.read(LOCK_FILE) if LOCK_FILE in archive.namelist() else None
    except zipfile.BadZipFile:
        return None


def _declarations(module: Path, path: str) -> dict[str, tuple[str, int]]:
    files = {posixpath.join(path.strip("/"), p.name): p.read_text(errors="replace") for p in module.glob("*.tf")}
    return tfjson.declarations(files)


def _errors(text: str, path: str) -> list[str]:
    """Terraform's ``Error:`` diagnostics as ``file:line: summary: detail``, paths from the repository root.

    Diagnostics with a location come first (an ``init`` failure also prints a generic error without one).
    """
    located: list[str] = []
    other: list[str] = []
    starts = [m.start() for m in _DIAGNOSTIC.finditer(text)] + [len(text)]
    for start, end in itertools.pairwise(starts):
        block = text[start:end]
        if not block.startswith("Error: "):
            continue
        first, _, rest = block.partition("\n")
        summary = first.removeprefix("Error: ").strip()
        detail = " ".join(line.strip() for line in rest.splitlines() if line and not line[0].isspace())
        detail = detail[:MAX_DETAIL]
        where = _LOCATION.search(rest)
        message = f"{summary}: {detail}" if detail else summary
        if where:
            file = posixpath.normpath(posixpath.join(path.strip("/"), where.group(1)))
            located.append(f"{file}:{where.group(2)}: {message}")
        else:
            other.append(message)
    found = list(dict.fromkeys(located or other))
    if len(found) > MAX_ERRORS:
        found = [*found[:MAX_ERRORS], f"and {len(found) - MAX_ERRORS} more errors"]
    return found


def _last_lines(text: str, count: int = 5) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()][-count:]


def _signal_group(pid: int, signal_number: int) -> None:
    # The group id is the leader's pid; if the whole group is gone already there is nothing to do.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal_number)
