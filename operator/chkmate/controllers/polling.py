"""Polling per repository, not per object: one ``git ls-remote`` per repository per interval.

A kopf daemon per GitHubRepository wakes at the shortest ``interval`` of the objects that use the
repository (TemplateRepoLinks and Environments), lists the remote's branches once, and marks only the
objects whose branch moved with ``chkmate.dev/polledRevision=<branch>@sha1:<sha>``: that annotation change
is what makes them reconcile. Nothing is fetched here, and nothing is written when nothing moved.
I/O: one ls-remote per wake-up, annotation patches for the objects whose branch moved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping
from typing import Any

import kopf
import pydantic

from chkmate import GROUP, VERSION, errors
from chkmate.api import base, common, kinds, repositories
from chkmate.clients import kube
from chkmate.controllers import access, indexing, memos

POLLED_ANNOTATION = "chkmate.dev/polledRevision"
DEFAULT_INTERVAL = 60.0
RECHECK = 5.0  # seconds between looks at which objects use the repository
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclasses.dataclass(frozen=True)
class Dependent:
    """An object that follows a branch of the repository, and the revision it last saw."""

    kind: base.KindInfo
    name: str
    branch: str
    seen: tuple[str | None, ...]  # its polledRevision mark, and the revision its status last recorded
    interval: str


def dependents(indexes: Mapping[str, Any], namespace: str, repository: str, default_branch: str) -> list[Dependent]:
    """The links and environments that follow this repository (and are not suspended), from the indexes by
    reference: the cost is what follows the repository, not every object of the namespace."""
    found: list[Dependent] = []
    links = indexing.referring(indexes, kinds.TEMPLATE_REPO_LINK, "repository", namespace, repository)
    for link in links:
        if not link.spec.get("suspend"):
            found.append(
                Dependent(
                    kinds.TEMPLATE_REPO_LINK,
                    link.name,
                    str(link.spec.get("branch", "main")),
                    (link.annotations.get(POLLED_ANNOTATION), link.status.get("lastSyncedRevision")),
                    str(link.spec.get("interval", "1m")),
                )
            )
    direct = indexing.referring(indexes, kinds.ENVIRONMENT, "repository", namespace, repository)
    environments: list[tuple[indexing.Summary, str | None]] = [(env, None) for env in direct]
    for link in links:
        followers = indexing.referring(indexes, kinds.ENVIRONMENT, "link", namespace, link.name)
        environments += [(env, str(link.spec.get("branch", "main"))) for env in followers]
    for env, link_branch in environments:
        if env.spec.get("suspend"):
            continue
        branch = env.spec.get("branch") or link_branch or default_branch
        last_plan = (env.status.get("lastPlan") or {}).get("revision")
        found.append(
            Dependent(
                kinds.ENVIRONMENT, env.name, str(branch), (env.annotations.get(POLLED_ANNOTATION), last_plan), "1m"
            )
        )
    return found


def interval(objects: list[Dependent]) -> float:
    """The shortest interval asked for; invalid ones are ignored (their objects report InvalidSpec)."""
    found = []
    for obj in objects:
        try:
            found.append(common.parse_duration(obj.interval))
        except ValueError:
            continue
    return min(found, default=DEFAULT_INTERVAL)


def moved(objects: list[Dependent], refs: Mapping[str, str]) -> list[tuple[Dependent, str]]:
    """The objects whose branch is not where they last saw it, with the polledRevision to mark them with."""
    marks = []
    for obj in objects:
        head = refs.get(f"refs/heads/{obj.branch}")
        polled = f"{obj.branch}@sha1:{head}" if head else f"{obj.branch}@missing"
        if polled not in obj.seen:
            marks.append((obj, polled))
    return marks


async def poll_repository(
    *,
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: Any,
    logger: Logger,
    **indexes: Any,
) -> None:
    ours = memos.of(memo)
    loop = asyncio.get_running_loop()
    next_poll: float | None = None
    while not stopped:
        # Look again every few seconds: links come and go and their intervals change (in memory, free).
        default_branch = str(body.get("status", {}).get("defaultBranch") or "main")
        users = dependents(indexes, namespace or "", name, default_branch)
        if users and next_poll is None:
            next_poll = loop.time() + interval(users) * random.uniform(0.9, 1.1)
        wait = RECHECK if not users or next_poll is None else min(RECHECK, max(0.0, next_poll - loop.time()))
        await stopped.wait(wait)
        if stopped or not users or body.metadata.get("deletionTimestamp") or loop.time() < (next_poll or 0):
            continue
        next_poll = None
        try:
            refs = await _ls_remote(ours, indexes, namespace or "", body)
        except errors.ChkmateError as e:
            logger.warning(f"Polling {name!r} failed, trying again next interval: {e.message}")
            continue
        for user, polled in moved(dependents(indexes, namespace or "", name, default_branch), refs):
            patch = {"metadata": {"annotations": {POLLED_ANNOTATION: polled}}}
            await ours.kube.patch(kube.ours(user.kind.plural), namespace or "", user.name, patch)
            logger.info(f"{polled} moved: reconciling {user.kind.kind} {user.name!r}.")


async def _ls_remote(memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, body: kopf.Body) -> dict[str, str]:
    try:
        spec = repositories.GitHubRepositorySpec.model_validate(body.get("spec", {}))
    except pydantic.ValidationError as e:
        raise errors.InvalidSpec("The repository's spec is invalid.") from e
    reach = await access.github_access_for(
        memo, indexes, namespace, spec.connection_ref.name, field="spec.connectionRef", repository=spec.full_name
    )
    repo = await reach.client.repository(spec.owner, spec.name)
    if repo is None:
        raise errors.TransientError(f"{spec.full_name} cannot be seen.")
    return await memo.mirrors.ls_remote(reach.remote(repo.clone_url))


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.daemon(
        GROUP,
        VERSION,
        kinds.GITHUB_REPOSITORY.plural,
        id="poll_repository",
        registry=registry,
        cancellation_timeout=None,
    )(poll_repository)
