"""Reaching GitHub on behalf of an object: resolve its GitHubConnection, get the client, check access.

Shared by the controllers of every kind that talks to GitHub or git. I/O: reads the connection's Secret
(through :class:`chkmate.clients.connections.GitHubConnections`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pydantic

from chkmate import errors
from chkmate.api import conditions as conds
from chkmate.api import connections, kinds
from chkmate.clients import git, github
from chkmate.controllers import indexing, memos, reconciling
from chkmate.domain import access


@dataclasses.dataclass(frozen=True)
class Access:
    connection: str
    spec: connections.GitHubConnectionSpec
    client: github.GitHubClient

    def remote(self, clone_url: str) -> git.Remote:
        """The repository for git over HTTPS, authenticated with this connection's token."""

        async def token() -> str:
            return (await self.client.token()).value

        return git.Remote(clone_url, token)


async def github_access(
    request: reconciling.Request[Any, Any], connection: str, *, field: str, repository: str | None = None
) -> Access:
    """The connection's client, once the connection exists, is valid and Ready, and allows ``repository``."""
    return await github_access_for(
        request.memo, request.indexes, request.namespace, connection, field=field, repository=repository
    )


async def github_access_for(
    memo: memos.Memo,
    indexes: Mapping[str, Any],
    namespace: str,
    connection: str,
    *,
    field: str,
    repository: str | None = None,
) -> Access:
    """:func:`github_access` outside a reconcile (pollers, webhooks)."""
    summary = indexing.require(indexes, kinds.GITHUB_CONNECTION, namespace, connection, field=field)
    try:
        spec = connections.GitHubConnectionSpec.model_validate(summary.spec)
    except pydantic.ValidationError as e:
        raise errors.DependencyNotReady(f"{field}: GitHubConnection {connection!r} has an invalid spec.") from e
    if summary.ready != conds.TRUE:
        detail = f" ({summary.ready_reason}: {summary.ready_message})" if summary.ready_reason else ""
        raise errors.DependencyNotReady(f"{field}: GitHubConnection {connection!r} is not Ready{detail}.")
    if repository is not None and not access.allows(spec.allowed_repositories, repository):
        raise errors.ChkmateError(
            f"GitHubConnection {connection!r} does not allow {repository!r} (allowedRepositories: "
            f"{', '.join(spec.allowed_repositories)}).",
            reason=conds.Reasons.REPOSITORY_NOT_ALLOWED,
            retryable=True,
        )
    client = await memo.github.current(memo.kube, namespace, connection, spec)
    return Access(connection, spec, client)
