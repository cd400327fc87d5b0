"""GitHubConnection controller: checks the credentials against GitHub and reports the connection's health.

On every change, on a Secret change, and every ``connectionCheckInterval``: read the Secret, get a token
(App installation or personal token), read the account, installation and rate limit, and write them to
the status (the token's expiry, never the token). Deleting a connection is blocked while repositories use
it. I/O: Secrets through the Kubernetes client, GitHub through :mod:`chkmate.clients.github`.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from chkmate import GROUP, VERSION
from chkmate.api import conditions as conds
from chkmate.api import connections, kinds
from chkmate.clients import github, kube
from chkmate.controllers import indexing, memos, reconciling, registering

Request = reconciling.Request[connections.GitHubConnectionSpec, connections.GitHubConnectionStatus]
Outcome = reconciling.Outcome[connections.GitHubConnectionStatus]
Logger = logging.Logger | logging.LoggerAdapter[Any]


async def reconcile_github_connection(request: Request) -> Outcome:
    spec = request.spec
    client = await request.memo.github.client(request.memo.kube, request.namespace, request.name, spec)
    status = request.status
    if isinstance(client.auth, github.AppAuth):
        installation = await client.installation()
        status = status.model_copy(
            update={
                "account": _account(installation.account),
                "installation": connections.Installation(
                    id=installation.id,
                    suspended=installation.suspended,
                    repository_selection=installation.repository_selection,
                ),
            }
        )
        if installation.suspended:
            raise github.InstallationSuspended(
                f"Installation {installation.id} on {installation.account.login!r} is suspended on GitHub.",
                retryable=True,
            )
        token = await client.token()
        expires = conds.timestamp(token.expires_at) if token.expires_at else None
        status = status.model_copy(update={"token_expires_at": expires})
    else:
        status = status.model_copy(
            update={
                "account": _account(await client.authenticated_user()),
                "installation": None,
                "token_expires_at": None,
            }
        )
    rate = await client.fetch_rate_limit()
    status = status.model_copy(
        update={
            "rate_limit": connections.RateLimit(
                limit=rate.limit, remaining=rate.remaining, reset_at=conds.timestamp(rate.reset_at)
            )
        }
    )
    login = status.account.login if status.account else "?"
    message = f"Connected to GitHub as {login!r}; {rate.remaining}/{rate.limit} requests left."
    return Outcome(
        status=status,
        conditions=(reconciling.Set(conds.Types.CONNECTED, conds.TRUE, conds.Reasons.SUCCEEDED, message),),
        ready_message=message,
    )


def _account(account: github.Account) -> connections.Account:
    return connections.Account(login=account.login, type=account.type, avatar_url=account.avatar_url)


RECONCILER = reconciling.Reconciler(
    info=kinds.GITHUB_CONNECTION,
    spec_model=connections.GitHubConnectionSpec,
    status_model=connections.GitHubConnectionStatus,
    depends_on=(conds.Types.CONNECTED,),
    step=reconcile_github_connection,
)


async def delete_github_connection(
    *,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: Any,
    logger: Logger,
    **kwargs: Any,
) -> None:
    """Keep the finalizer while repositories still use this connection (they may need it to clean up)."""
    users = [
        summary.name
        for summary in _repositories(kwargs)
        if summary.namespace == namespace and summary.spec.get("connectionRef", {}).get("name") == name
    ]
    if users:
        message = (
            f"Deletion waits until no GitHubRepository uses this connection; still used by: {', '.join(sorted(users))}."
        )
        previous = reconciling.load_status(connections.GitHubConnectionStatus, body.get("status"))
        now = datetime.datetime.now(datetime.UTC)
        conditions = conds.set_condition(
            previous.conditions,
            type_=conds.Types.READY,
            status=conds.FALSE,
            reason=conds.Reasons.DELETION_BLOCKED,
            message=message,
            generation=body.metadata.get("generation"),
            now=now,
        )
        reconciling.write_status(patch, previous, previous.model_copy(update={"conditions": conditions}))
        logger.info(message)
        raise kopf.TemporaryError(message, delay=memos.of(memo).settings.retry_delay)
    await memos.of(memo).github.forget(namespace or "", name)


def _repositories(indexes: dict[str, Any]) -> list[indexing.Summary]:
    index: kopf.Index[indexing.Key, indexing.Summary] = indexes[indexing.index_name(kinds.GITHUB_REPOSITORY)]
    return [summary for key in index for summary in index.get(key, ())]


async def secret_changed(
    *, type: str | None, name: str, namespace: str | None, memo: Any, logger: Logger, **kwargs: Any
) -> None:
    """A Secret changed: ask every connection that reads it to reconcile (picks up key rotation)."""
    if type is None:
        return  # the initial listing at startup: connections reconcile on resume anyway
    index: kopf.Index[indexing.Key, indexing.Summary] = kwargs[indexing.index_name(kinds.GITHUB_CONNECTION)]
    for key in index:
        for summary in index.get(key, ()):
            refs = [summary.spec.get(field, {}) for field in ("privateKeySecretRef", "tokenSecretRef")]
            if namespace and summary.namespace == namespace and any(ref.get("name") == name for ref in refs):
                stamp = datetime.datetime.now(datetime.UTC).isoformat()
                patch = {"metadata": {"annotations": {reconciling.REQUESTED_AT_ANNOTATION: f"secret-{stamp}"}}}
                await memos.of(memo).kube.patch(
                    kube.ours(kinds.GITHUB_CONNECTION.plural), namespace, summary.name, patch
                )
                logger.info(f"Secret {name!r} changed: reconciling GitHubConnection {summary.name!r}.")


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_github_connection")
    registering.resync_periodically(
        registry,
        RECONCILER,
        handler_id="check_github_connection",
        interval=lambda memo, body: memo.settings.connection_check_interval,
    )
    kopf.on.delete(GROUP, VERSION, kinds.GITHUB_CONNECTION.plural, id="delete_github_connection", registry=registry)(
        delete_github_connection
    )
    kopf.on.event("", "v1", "secrets", id="secret_changed", registry=registry)(secret_changed)
