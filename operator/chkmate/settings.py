"""Operator settings, read once at startup from the environment into kopf's memo.

Nothing reads the environment at import time; :func:`from_env` is called by :mod:`chkmate.main` and the
result travels in ``memo.settings``. Every variable is prefixed ``CHKMATE_``. Pure apart from reading the
mapping it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from chkmate.api import common

PREFIX = "CHKMATE_"


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    # Which namespaces to watch; empty means cluster-wide.
    namespaces: tuple[str, ...] = ()
    # Retry delay after an error that may heal by itself (seconds).
    retry_delay: float = 30.0
    # Periodic full reconcile of every object, like Flux's interval (seconds).
    resync_interval: float = 600.0
    # How often connections re-check GitHub (token expiry, installation, rate limit), in seconds.
    connection_check_interval: float = 300.0
    # Deadline of one GitHub API call and of one git network operation (seconds).
    github_timeout: float = 30.0
    git_timeout: float = 120.0
    # Author of the commits the operator makes (a link's spec.author overrides it).
    commit_author_name: str = "chkmate"
    commit_author_email: str = "chkmate@users.noreply.github.com"
    # Where bare mirrors of repositories and run workspaces live.
    work_dir: Path = Path("/tmp/chkmate")
    # Engine binaries.
    terraform_binary: str = "terraform"
    tofu_binary: str = "tofu"
    # Job runner (Environment spec.runner.mode: Job; docs/runners.md). The image of runner Jobs: it must hold the
    # chkmate CLI and the engines; the chart sets the operator's own image. Empty: Job runs fail with a clear
    # condition until it is set.
    runner_image: str = ""
    # ServiceAccount of runner pods, in the Environment's namespace (get on the bundle Secret, create/patch on
    # result Secrets); empty: the namespace's default ServiceAccount.
    runner_service_account: str = ""
    # Seconds a runner Job may run beyond spec.runner.timeout (the engine's own deadline stops it first and the
    # runner saves what it has); the operator gives up on a Job this long after its activeDeadlineSeconds.
    runner_grace: float = 60.0
    # Seconds Kubernetes keeps a finished runner Job (ttlSecondsAfterFinished); its Plan owns it anyway.
    runner_ttl: float = 3600.0
    # How often the operator reads a running Job's status (seconds).
    runner_poll_interval: float = 3.0
    # Drift checks running at once, operator-wide (each runs an engine).
    drift_concurrency: int = 4
    # Plan runs at once, operator-wide (fetch, state lock, engine, outputs); more wait in line, so a burst of pushes
    # queues its runs while new commits still get their Plans at once (like Atlantis' parallel pool).
    run_concurrency: int = 4
    # Plans kept per Environment before garbage collection.
    plan_history: int = 10
    # HTTP ports (0 disables): kopf liveness, Prometheus metrics, GitHub webhooks.
    liveness_port: int = 8080
    metrics_port: int = 9090
    webhook_port: int = 0
    # Log verbosity for kopf's own logs (debug adds per-handler detail).
    debug: bool = False
    # kopf peering: run a standby replica with leader election.
    peering: str | None = None
    # Seconds between full garbage collections; in between, what survived the last one is frozen and left out of
    # collections, which then stay short (chkmate.controllers.collector). 0: Python's own schedule.
    gc_refreeze: float = 600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from ``CHKMATE_*`` variables; unknown variables are refused, not ignored."""
        known = {f.name.upper(): f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key.removeprefix(PREFIX)
            if name not in known:
                raise SettingsError(f"{key} is not a chkmate setting (known: {', '.join(sorted(known))})")
            values[known[name].name] = _convert(key, known[name], raw)
        return cls(**values)  # type: ignore[arg-type]


def _convert(key: str, field: dataclasses.Field[object], raw: str) -> object:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    try:
        if kind == "float":
            return common.parse_duration(raw) if raw[-1:].isalpha() else float(raw)
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(f"expected true or false, got {raw!r}")
            return raw.lower() in {"true", "1", "yes"}
        if kind == "Path":
            return Path(raw)
        if kind == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind == "str | None":
            return raw or None
        return raw
    except ValueError as e:
        raise SettingsError(f"{key}: {e}") from e
