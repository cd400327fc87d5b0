"""GitHubRepository controller: adopt a repository, or create it with a scaffold; delete it if asked to.

Creating is idempotent: an existing repository of that name is adopted, never duplicated, and a scaffold
is only pushed into an empty repository (never over existing history). With ``deletionPolicy: Delete``
a finalizer deletes the repository on GitHub when the object goes. I/O: GitHub API and git push.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from chkmate import GROUP, VERSION, errors
from chkmate.api import conditions as conds
from chkmate.api import kinds, repositories
from chkmate.clients import git, github
from chkmate.controllers import access, memos, reconciling, registering
from chkmate.domain import scaffolds

Request = reconciling.Request[repositories.GitHubRepositorySpec, repositories.GitHubRepositoryStatus]
Outcome = reconciling.Outcome[repositories.GitHubRepositoryStatus]
Logger = logging.Logger | logging.LoggerAdapter[Any]


class RepositoryNotFound(errors.ChkmateError):
    reason = conds.Reasons.REPOSITORY_NOT_FOUND
    retryable = True


async def reconcile_github_repository(request: Request) -> Outcome:
    spec = request.spec
    reach = await access.github_access(
        request, spec.connection_ref.name, field="spec.connectionRef", repository=spec.full_name
    )
    client = reach.client
    repo = await client.repository(spec.owner, spec.name)
    created = bool(request.status.created)
    if repo is None:
        if not spec.create:
            raise RepositoryNotFound(
                f"Repository {spec.full_name} does not exist or the connection cannot see it; set spec.create "
                "to create it."
            )
        repo = await _create(client, spec, request.logger)
        created = True
    if spec.create and spec.scaffold is not None and await _is_empty(client, spec):
        await _push_scaffold(request, reach, repo)
        if repo.default_branch != spec.default_branch:
            repo = await client.update_repository(spec.owner, spec.name, default_branch=spec.default_branch)
    head = await client.branch_head(spec.owner, spec.name, repo.default_branch)
    revision = f"{repo.default_branch}@sha1:{head}" if head else None
    status = request.status.model_copy(
        update={
            "full_name": repo.full_name,
            "html_url": repo.html_url,
            "clone_url": repo.clone_url,
            "default_branch": repo.default_branch,
            "visibility": repo.visibility,
            "head_revision": revision,
            "created": created,
        }
    )
    message = f"{repo.full_name} at {revision or 'no commits yet'}."
    return Outcome(
        status=status,
        conditions=(reconciling.Set(conds.Types.AVAILABLE, conds.TRUE, conds.Reasons.SUCCEEDED, message),),
        ready_message=message,
    )


async def _create(
    client: github.GitHubClient, spec: repositories.GitHubRepositorySpec, logger: Logger
) -> github.Repository:
    organization = await client.owner_type(spec.owner) == "Organization"
    try:
        repo = await client.create_repository(
            spec.owner, spec.name, organization=organization, visibility=spec.visibility, description=spec.description
        )
    except github.GitHubError as e:
        if e.status != 422 or "already exists" not in e.message:
            raise
        # Created meanwhile (by us before a crash, or by someone else): adopt it, never duplicate it.
        found = await client.repository(spec.owner, spec.name)
        if found is None:
            raise
        logger.info(f"Repository {spec.full_name} already exists: adopting it.")
        return found
    logger.info(f"Created repository {repo.full_name} ({spec.visibility}).")
    return repo


async def _is_empty(client: github.GitHubClient, spec: repositories.GitHubRepositorySpec) -> bool:
    branches = await client.request("GET", f"/repos/{spec.owner}/{spec.name}/branches", params={"per_page": 1})
    return not branches.data


async def _push_scaffold(request: Request, reach: access.Access, repo: github.Repository) -> None:
    spec = request.spec
    assert spec.scaffold is not None
    files = scaffolds.scaffold_files(
        spec.scaffold.purpose,
        repo_name=spec.name,
        description=spec.description,
        readme=spec.scaffold.readme,
        gitignore=spec.scaffold.gitignore,
        default_branch=spec.default_branch,
    )
    remote = reach.remote(repo.clone_url)
    mirrors = request.memo.mirrors
    settings = request.memo.settings
    async with mirrors.lock(remote):
        commit = await mirrors.commit(
            remote,
            parent=None,
            change=git.Change(write={path: content.encode() for path, content in files.items()}),
            message=f"Scaffold a {spec.scaffold.purpose} repository\n\nCreated by chkmate.\n",
            author=git.Author(settings.commit_author_name, settings.commit_author_email),
        )
        try:
            await mirrors.push(remote, commit, spec.default_branch)
        except git.NonFastForward:
            request.logger.info(f"{spec.full_name} got commits meanwhile: the scaffold is not pushed.")
            return
    request.logger.info(f"Pushed the {spec.scaffold.purpose} scaffold ({len(files)} files) to {spec.full_name}.")


RECONCILER = reconciling.Reconciler(
    info=kinds.GITHUB_REPOSITORY,
    spec_model=repositories.GitHubRepositorySpec,
    status_model=repositories.GitHubRepositoryStatus,
    depends_on=(conds.Types.AVAILABLE,),
    step=reconcile_github_repository,
)


async def delete_github_repository(
    *, body: kopf.Body, meta: kopf.Meta, patch: kopf.Patch, memo: Any, logger: Logger, **kwargs: Any
) -> None:
    """deletionPolicy Delete: delete the repository on GitHub before the object goes."""
    spec = reconciling.parse_spec(repositories.GitHubRepositorySpec, body.get("spec"))
    request = reconciling.Request(
        name=meta["name"],
        namespace=meta["namespace"],
        generation=meta.get("generation"),
        spec=spec,
        status=reconciling.load_status(repositories.GitHubRepositoryStatus, body.get("status")),
        body=body,
        memo=memos.of(memo),
        logger=logger,
        now=datetime.datetime.now(datetime.UTC),
        indexes=kwargs,
    )
    try:
        reach = await access.github_access(
            request, spec.connection_ref.name, field="spec.connectionRef", repository=spec.full_name
        )
        deleted = await reach.client.delete_repository(spec.owner, spec.name)
    except errors.ChkmateError as e:
        message = f"Deleting {spec.full_name} on GitHub failed (deletionPolicy: Delete): {e.message}"
        conditions = conds.set_condition(
            request.status.conditions,
            type_=conds.Types.READY,
            status=conds.FALSE,
            reason=conds.Reasons.DELETION_FAILED,
            message=message,
            generation=request.generation,
            now=request.now,
        )
        reconciling.write_status(patch, request.status, request.status.model_copy(update={"conditions": conditions}))
        kopf.warn(body, reason=conds.Reasons.DELETION_FAILED, message=message)
        raise kopf.TemporaryError(message, delay=request.memo.settings.retry_delay) from e
    logger.info(f"Deleted {spec.full_name} on GitHub." if deleted else f"{spec.full_name} was already gone.")


def _deletes_on_github(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("deletionPolicy") == "Delete")


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_github_repository")
    registering.resync_periodically(
        registry,
        RECONCILER,
        handler_id="resync_github_repository",
        interval=lambda memo, body: memo.settings.resync_interval,
    )
    kopf.on.delete(
        GROUP,
        VERSION,
        kinds.GITHUB_REPOSITORY.plural,
        id="delete_github_repository",
        registry=registry,
        when=_deletes_on_github,
    )(delete_github_repository)
