"""The operator-wide values handlers share, kept in kopf's memo: settings, long-lived clients and services.

Built once at startup (:func:`chkmate.main.register`'s startup handler); handlers read it through
:func:`of`. Opening and closing clients (and stopping the webhook receiver) is the only I/O here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from aiohttp import web

from chkmate import metrics as metrics_
from chkmate import settings as settings_
from chkmate.clients import connections, git
from chkmate.clients import kube as kube_

MEMO_KEY = "chkmate"


class Service(Protocol):
    """Something the operator runs beside kopf's handlers and stops at cleanup (the webhook receiver)."""

    async def stop(self) -> None: ...


@dataclasses.dataclass
class Memo:
    settings: settings_.Settings
    github: connections.GitHubConnections = dataclasses.field(init=False)
    mirrors: git.Mirrors = dataclasses.field(init=False)
    metrics: metrics_.Metrics = dataclasses.field(default_factory=metrics_.Metrics)
    metrics_server: web.AppRunner | None = None
    webhooks: Service | None = None  # the GitHub webhook receiver, when settings.webhook_port is set
    _kube: kube_.KubeClient | None = None
    _locks: dict[str, asyncio.Lock] = dataclasses.field(default_factory=dict)
    # At most settings.run_concurrency plan runs at once (controllers.plans).
    run_gate: asyncio.Semaphore = dataclasses.field(init=False)
    # Follow-up work started by handlers that must not hold their object's worker (controllers.dependents).
    background: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)
    # The Ready status each object had in its last watch event, by uid (controllers.dependents).
    ready_seen: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_gate = asyncio.Semaphore(max(1, self.settings.run_concurrency))
        self.github = connections.GitHubConnections(
            timeout=self.settings.github_timeout, on_response=self._github_response
        )
        self.mirrors = git.Mirrors(
            self.settings.work_dir / "mirrors", timeout=self.settings.git_timeout, on_operation=self._git_operation
        )

    def _git_operation(self, operation: str, seconds: float) -> None:
        if operation in typing.get_args(metrics_.GitOperation):
            self.metrics.git_operation(typing.cast(metrics_.GitOperation, operation), seconds)

    def _github_response(self, namespace: str, connection: str, client: Any, status: int) -> None:
        self.metrics.github_call(namespace, connection, status)
        if client.rate_limit is not None:
            self.metrics.rate_limit(namespace, connection, client.rate_limit.remaining, client.rate_limit.limit)

    def lock(self, uid: str) -> asyncio.Lock:
        """One lock per object: its handlers and its periodic resync never reconcile it at the same time."""
        return self._locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self._locks.pop(uid, None)

    @property
    def connected(self) -> bool:
        """Whether kopf has logged in and :attr:`kube` can be used (login runs after the startup handlers)."""
        return self._kube is not None

    @property
    def kube(self) -> kube_.KubeClient:
        if self._kube is None:
            raise RuntimeError("The Kubernetes client is not connected yet (kopf has not logged in).")
        return self._kube

    async def connect(self, client: kube_.KubeClient) -> None:
        """Use ``client`` from now on (after a login or a re-login), closing the previous one."""
        await client.__aenter__()
        previous, self._kube = self._kube, client
        if previous is not None:
            await previous.close()

    def run_later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background (kept referenced until it ends; cancelled by :meth:`close`)."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.webhooks is not None:  # first: deliveries in flight still use the clients below
            webhooks, self.webhooks = self.webhooks, None
            await webhooks.stop()
        if self.metrics_server is not None:
            await self.metrics_server.cleanup()
            self.metrics_server = None
        await self.github.close()
        await self.mirrors.close()
        if self._kube is not None:
            await self._kube.close()
            self._kube = None


def ensure(memo: Any, settings: Callable[[], settings_.Settings]) -> Memo:
    """Our memo, created on first use with the settings read once (login may run before startup)."""
    value = memo.get(MEMO_KEY)
    if not isinstance(value, Memo):
        value = memo[MEMO_KEY] = Memo(settings=settings())
    return value


def of(memo: Any) -> Memo:
    value = memo.get(MEMO_KEY)
    if not isinstance(value, Memo):
        raise RuntimeError("The operator memo was not set up: chkmate.main.register()'s startup must run first.")
    return value
