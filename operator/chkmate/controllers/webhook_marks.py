"""GitHub webhooks wired into the operator: the receiver's callbacks, and the receiver's life beside kopf.

:func:`serve` (called by the startup handler when ``webhook_port`` is set) starts one
:class:`chkmate.webhooks.receiver.Receiver` for every GitHubConnection, in a lane of its own
(:mod:`chkmate.controllers.lanes`: a thread with its own event loop and its own Kubernetes client), so that a
push delivery waits for its own API calls only, however busy kopf's handlers keep the operator's loop. The
receiver reads kopf's indexes from there (:mod:`chkmate.controllers.indexing` reads are safe across threads) and
gets three callbacks:

* ``secrets()``: each connection's webhook secret (``spec.webhookSecretRef``), read from its Secret and cached;
  read again when the set of connections and references in the index changes, and every
  :data:`SECRETS_TTL` seconds (a rotated Secret value is picked up within that time).
* ``allowed(connection, repository)``: the connection's ``allowedRepositories``.
* ``mark(connection, marks, delivery)``: what each mark changes, done at once and nothing heavier:

  - ``PushMark``: the links and environments following that repository and branch get
    ``chkmate.dev/polledRevision=<branch>@sha1:<after>``, exactly what the poller writes, but now (an Environment
    lists the remote afresh when its mark names a commit it has not seen). Each Environment's Plan of the pushed
    commit is then created, as its reconcile would (:func:`chkmate.controllers.environments.plan_manifest`): a push
    is planned within two API calls, and the reconcile that follows finds the Plan there.
  - ``PullRequestMark``: opened, synchronize, reopened: a Plan of the head for each Environment with
    ``planOnPullRequest`` deploying the base branch (unset: as the base branch's ``.chkmate.yml`` says, read once
    per branch from the mirror); closed: the pull request's Plans are deleted, and a merge is recorded on those
    Environments (:mod:`chkmate.controllers.pull_requests`).
  - ``InstallationMark``: the connections using that installation reconcile (``chkmate.dev/requestedAt``).
  - ``CommentCommandMark``: ``/chkmate plan|apply [env]`` (:func:`chkmate.controllers.pull_requests.command`).

  Pull requests and comment commands read the git mirrors and call GitHub through the operator's own clients:
  they run on the operator's loop (:meth:`lanes.Lane.call_home`), and their deliveries are answered after them.

Connections sharing one webhook secret (one GitHub App used from several namespaces) all receive what a
delivery verified with it. A missing webhook secret: kopf runs startup handlers before it logs in, so the cluster
cannot be read at startup; the receiver waits, without listening, until a connection with a readable webhook
secret exists, and logs an error once if it is still waiting after :data:`NOTICE_AFTER` seconds. The operator
keeps running meanwhile (polling still works): failing the startup would restart the whole operator over one
missing Secret.

I/O: serves HTTP (the receiver); Kubernetes (annotation patches, Plans, webhook Secrets); GitHub for comment commands
only; git (the mirror) for the ``.chkmate.yml`` of a pull request's base branch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from chkmate.api import kinds
from chkmate.clients import kube
from chkmate.controllers import environments, indexing, lanes, memos, polling, pull_requests, reconciling, sources
from chkmate.domain import access
from chkmate.webhooks import events, receiver

SECRETS_TTL = 60.0  # seconds a read webhook secret is trusted before reading the Secret again
WAIT = 1.0  # seconds between looks for a webhook secret before listening (in memory until connections change)
NOTICE_AFTER = 10.0  # seconds without any webhook secret before saying so
LISTEN_RETRY = 10.0  # seconds before trying again to listen after the port could not be bound
OPENING_ACTIONS = frozenset({"opened", "synchronize", "reopened"})

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Connection:
    """A GitHubConnection as the receiver names it (``namespace/name``)."""

    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class SecretRef:
    connection: Connection
    secret: str
    key: str


class Webhooks:
    """The receiver and its callbacks; :meth:`stop` (at operator cleanup) stops both the waiting and the serving."""

    def __init__(
        self, memo: memos.Memo, indexes: Mapping[str, Any], *, host: str, count: receiver.Count | None = None
    ) -> None:
        self.memo = memo
        self.indexes = indexes
        self.host = host
        self.receiver = receiver.Receiver(secrets=self.secrets, allowed=self.allowed, mark=self.mark, count=count)
        self.lane = lanes.Lane("chkmate-webhooks")
        # Everything below lives in the lane: its loop, its Kubernetes client, the secrets it read.
        self._client: kube.KubeClient | None = None
        self._client_of: kube.KubeClient | None = None  # the operator's client it was opened like
        self._refs: tuple[SecretRef, ...] = ()
        self._secrets: list[tuple[str, str]] = []
        self._read_at = -SECRETS_TTL
        self._reading = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._listening: concurrent.futures.Future[None] | None = None

    def start(self) -> None:
        """Start the lane and, in it, wait for a webhook secret and then serve (from the operator's loop)."""
        self.lane.start()
        self._listening = self.lane.submit(self._listen())
        self._listening.add_done_callback(_log_failure)

    async def stop(self) -> None:
        try:
            if self.lane.running:
                if self._listening is not None:
                    self._listening.cancel()
                await self.lane.run(self._close())
        finally:
            await self.lane.stop()
            self._listening = None

    async def _close(self) -> None:
        await self.receiver.stop()
        if self._client is not None:
            await self._client.close()
            self._client = self._client_of = None

    async def _kube(self) -> kube.KubeClient:
        """The lane's Kubernetes client, opened with the operator's credentials (again after kopf logs in anew)."""
        async with self._opening:  # one client at a time, and none left open
            home = self.memo.kube
            if self._client is None or self._client_of is not home:
                previous = self._client
                self._client, self._client_of = await kube.KubeClient(home.info).__aenter__(), home
                if previous is not None:
                    await previous.close()
            return self._client

    async def _listen(self) -> None:
        """Wait for a webhook secret, then listen (the receiver refuses to start without one)."""
        port, waited = self.memo.settings.webhook_port, 0.0
        while True:
            if await self.secrets():
                try:
                    await self.receiver.start(port=port, host=self.host)
                    return
                except receiver.MissingWebhookSecret:
                    pass  # the last connection with a secret went away meanwhile
                except OSError as e:
                    logger.error(f"The webhook receiver cannot listen on port {port} ({e}); trying again.")
                    await asyncio.sleep(LISTEN_RETRY)
                    continue
            elif waited < NOTICE_AFTER <= waited + WAIT:
                logger.error(
                    "The webhook receiver does not listen: no GitHubConnection has a readable webhook secret "
                    "(spec.webhookSecretRef). Webhooks are off until one has; polling goes on."
                )
            await asyncio.sleep(WAIT)
            waited += WAIT

    # -- the receiver's callbacks --------------------------------------------------------------------------

    async def secrets(self) -> list[tuple[str, str]]:
        """``(connection, secret)`` for every connection whose webhook secret could be read."""
        refs = _secret_refs(self.indexes)
        if self._fresh(refs):
            return self._secrets
        async with self._reading:
            if not self._fresh(refs) and self.memo.connected:
                self._secrets = [found async for found in self._read(refs)]
                self._refs, self._read_at = refs, asyncio.get_running_loop().time()
        return self._secrets

    def _fresh(self, refs: tuple[SecretRef, ...]) -> bool:
        return refs == self._refs and asyncio.get_running_loop().time() - self._read_at < SECRETS_TTL

    async def _read(self, refs: Iterable[SecretRef]) -> AsyncIterator[tuple[str, str]]:
        client = await self._kube()
        for ref in refs:
            namespace = ref.connection.namespace
            try:
                value = await client.read_secret_key(namespace, ref.secret, ref.key)
            except kube.KubeError as e:
                logger.warning(f"The webhook secret of {ref.connection.key} cannot be read: {e.message}")
                continue
            if value:
                yield ref.connection.key, value.rstrip("\r\n")  # a secret file written with echo ends in a newline
            else:
                logger.warning(
                    f"Secret {namespace}/{ref.secret} has no key {ref.key!r} (webhookSecretRef of "
                    f"{ref.connection.key})."
                )

    async def allowed(self, connection: str, repository: str) -> bool:
        return bool(self._allowing(connection, repository))

    async def mark(self, connection: str, marks: list[events.Mark], delivery: str) -> None:
        for mark in marks:
            match mark:
                case events.PushMark():
                    await self._push(self._allowing(connection, mark.repo_full_name), mark)
                case events.PullRequestMark():
                    await self.lane.call_home(self._pull_request(self._allowing(connection, mark.repo), mark))
                case events.InstallationMark():
                    await self._installation(self._siblings(connection), mark, delivery)
                case events.CommentCommandMark():
                    await self.lane.call_home(self._command(self._allowing(connection, mark.repo), mark))

    # -- marks -------------------------------------------------------------------------------------------------

    async def _push(self, connections: list[Connection], mark: events.PushMark) -> None:
        refs = {} if mark.deleted else {f"refs/heads/{mark.branch}": mark.after_sha}
        client = await self._kube()
        work = []
        for connection, repository in self._repositories(connections, mark.repo_full_name):
            namespace = connection.namespace
            followers = [
                d
                for d in polling.dependents(self.indexes, namespace, repository.name, _default_branch(repository))
                if d.branch == mark.branch
            ]
            work += [self._moved(client, namespace, f, polled) for f, polled in polling.moved(followers, refs)]
        await asyncio.gather(*work)
        if work:
            logger.debug(f"Push to {mark.repo_full_name}@{mark.branch}: marked {len(work)} object(s).")

    async def _moved(self, client: kube.KubeClient, namespace: str, follower: polling.Dependent, polled: str) -> None:
        """Mark the object; an Environment then gets the Plan of the pushed commit (``polled`` names a commit). The
        mark comes first: a Plan whose commit cannot be fetched yet looks at the mark to tell a late commit (keep
        trying) from one the branch has moved on from (controllers.superseding)."""
        patch = {"metadata": {"annotations": {polling.POLLED_ANNOTATION: polled}}}
        await client.patch(kube.ours(follower.kind.plural), namespace, follower.name, patch)
        commit = sources.polled_commit(polled, follower.branch)
        if follower.kind != kinds.ENVIRONMENT or commit is None:
            return
        env = indexing.lookup(self.indexes, kinds.ENVIRONMENT, namespace, follower.name)
        if env is not None and env.uid:
            manifest = environments.plan_manifest(namespace, env.name, env.uid, follower.branch, commit)
            await self._create_plan(client, manifest)

    async def _create_plan(self, client: kube.KubeClient, manifest: dict[str, Any]) -> None:
        """The Plan, or a warning: the mark stands, and the Environment's reconcile creates it (or says why not)."""
        try:
            await environments.create_plan(client, manifest)
        except kube.KubeError as e:
            metadata = manifest["metadata"]
            logger.warning(f"Plan {metadata['namespace']}/{metadata['name']} was not created: {e.message}")

    async def _pull_request(self, connections: list[Connection], mark: events.PullRequestMark) -> None:
        head = pull_requests.Head(mark.number, mark.head_ref, mark.head_sha, mark.base_ref)
        for scope, candidates in self._environments(connections, mark.repo):
            if mark.action in OPENING_ACTIONS:
                planned = await pull_requests.planned_for(
                    self.memo, self.indexes, scope.namespace, candidates, head.base_ref
                )
                for env in planned:
                    await pull_requests.plan_head(self.memo, self.indexes, scope.namespace, env.name, head)
            elif mark.action == "closed":
                await pull_requests.close(
                    self.memo, self.indexes, scope.namespace, candidates, head, merged=mark.merged
                )

    async def _installation(self, connections: list[Connection], mark: events.InstallationMark, delivery: str) -> None:
        for connection in connections:
            found = indexing.lookup(self.indexes, kinds.GITHUB_CONNECTION, connection.namespace, connection.name)
            if found is None or found.spec.get("installationId") != mark.installation_id:
                continue
            patch = {"metadata": {"annotations": {reconciling.REQUESTED_AT_ANNOTATION: f"webhook-{delivery}"}}}
            await (await self._kube()).patch(
                kube.ours(kinds.GITHUB_CONNECTION.plural), connection.namespace, connection.name, patch
            )
            logger.info(
                f"Installation {mark.installation_id} {mark.action}: reconciling GitHubConnection {connection.key}."
            )

    async def _command(self, connections: list[Connection], mark: events.CommentCommandMark) -> None:
        for scope, candidates in self._environments(connections, mark.repo):
            await pull_requests.command(self.memo, self.indexes, scope.namespace, scope.name, candidates, mark)

    # -- lookups in the indexes -------------------------------------------------------------------------------

    def _siblings(self, connection: str) -> list[Connection]:
        """The connection the delivery verified with, and every other one sharing its webhook secret."""
        secret = dict(self._secrets).get(connection)
        keys = [key for key, value in self._secrets if value == secret] if secret is not None else [connection]
        return [Connection(*key.split("/", 1)) for key in keys]

    def _allowing(self, connection: str, repository: str) -> list[Connection]:
        allowing = []
        for sibling in self._siblings(connection):
            found = indexing.lookup(self.indexes, kinds.GITHUB_CONNECTION, sibling.namespace, sibling.name)
            if found is not None and access.allows(found.spec.get("allowedRepositories") or (), repository):
                allowing.append(sibling)
        return allowing

    def _repositories(
        self, connections: Iterable[Connection], full_name: str
    ) -> list[tuple[Connection, indexing.Summary]]:
        """The GitHubRepository objects for ``owner/name`` that use one of these connections."""
        found = []
        for connection in connections:
            for repository in indexing.all_of(self.indexes, kinds.GITHUB_REPOSITORY, connection.namespace):
                spec = repository.spec
                named = f"{spec.get('owner', '')}/{spec.get('name', '')}"
                if named.lower() == full_name.lower() and spec.get("connectionRef", {}).get("name") == connection.name:
                    found.append((connection, repository))
        return found

    def _environments(
        self, connections: Iterable[Connection], full_name: str
    ) -> list[tuple[Connection, list[pull_requests.Candidate]]]:
        """Per connection, the Environments deploying some branch of ``owner/name`` (none: left out)."""
        by_connection: dict[Connection, list[pull_requests.Candidate]] = {}
        for connection, repository in self._repositories(connections, full_name):
            namespace = connection.namespace
            for follower in polling.dependents(self.indexes, namespace, repository.name, _default_branch(repository)):
                env = indexing.lookup(self.indexes, kinds.ENVIRONMENT, namespace, follower.name)
                if follower.kind == kinds.ENVIRONMENT and env is not None:
                    by_connection.setdefault(connection, []).append(pull_requests.Candidate(env, follower.branch))
        return list(by_connection.items())


def serve(memo: memos.Memo, indexes: Mapping[str, Any], *, host: str, count: receiver.Count | None = None) -> Webhooks:
    """Start waiting for a webhook secret, then serving, on ``memo.settings.webhook_port``; stop it at cleanup.

    ``indexes`` are kopf's live indexes (the startup handler's keyword arguments); ``count(event, result)``
    records each delivery's outcome (the deliveries metric).
    """
    webhooks = Webhooks(memo, indexes, host=host, count=count)
    webhooks.start()
    return webhooks


def _log_failure(listening: concurrent.futures.Future[None]) -> None:
    if not listening.cancelled() and listening.exception() is not None:
        logger.error("The webhook receiver stopped.", exc_info=listening.exception())


def _secret_refs(indexes: Mapping[str, Any]) -> tuple[SecretRef, ...]:
    refs = []
    for found in indexing.all_of(indexes, kinds.GITHUB_CONNECTION):
        ref = found.spec.get("webhookSecretRef") or {}
        if ref.get("name") and ref.get("key"):
            refs.append(SecretRef(Connection(found.namespace, found.name), str(ref["name"]), str(ref["key"])))
    return tuple(sorted(refs, key=lambda r: r.connection.key))


def _default_branch(repository: indexing.Summary) -> str:
    return str(repository.status.get("defaultBranch") or repository.spec.get("defaultBranch") or "main")
