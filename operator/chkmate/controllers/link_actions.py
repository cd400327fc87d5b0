"""Carrying out a sync decision for a TemplateRepoLink: push, pull, open a conflict, record, or report.

Each action returns the link's new status and conditions; the decisions themselves are made in
:mod:`chkmate.domain.sync`. Pulls write the Template through the Kubernetes client and mark where the files
came from (``chkmate.dev/syncedFrom``) so the Template's version list names the commit. I/O: git pushes,
GitHub pull requests, Template patches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from chkmate import errors
from chkmate.api import conditions as conds
from chkmate.api import kinds, links
from chkmate.clients import git, kube
from chkmate.controllers import access, reconciling, templates
from chkmate.domain import sync
from chkmate.domain import templates as template_logic

Request = reconciling.Request[links.TemplateRepoLinkSpec, links.TemplateRepoLinkStatus]
Outcome = reconciling.Outcome[links.TemplateRepoLinkStatus]

SYNCED_FROM_ANNOTATION = templates.SYNCED_FROM_ANNOTATION  # on a Template: "<source> <revision> <commit>"
ROLLBACK_ANNOTATION = "chkmate.dev/rollbackTo"  # on a link: a commit whose files the template goes back to


@dataclasses.dataclass(frozen=True)
class Target:
    """What a link syncs: the template's files and the repository as a git remote."""

    template_name: str
    template_files: Mapping[str, str]
    template_revision: str
    owner: str
    name: str
    access: access.Access
    remote: git.Remote

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


async def conflict_state(conflict: links.Conflict | None, target: Target) -> sync.ConflictState | None:
    """The open conflict with the state of its pull request on GitHub."""
    if conflict is None or conflict.template_revision is None:
        return None
    state: sync.PullRequestState | None = None
    if conflict.pull_request is not None:
        pull = await target.access.client.pulls(target.owner, target.name).get(conflict.pull_request)
        state = None if pull is None else "merged" if pull.merged else pull.state
    return sync.ConflictState(
        template_revision=conflict.template_revision, pull_request=state, number=conflict.pull_request
    )


async def carry_out(
    request: Request,
    target: Target,
    facts: sync.SyncFacts | sync.Blocked,
    files_at_head: dict[str, bytes] | None,
    decision: sync.Decision,
) -> Outcome:
    head = None if isinstance(facts, sync.Blocked) else facts.head_commit
    match decision:
        case sync.Push():
            return await _push(request, target, decision, head)
        case sync.Pull():
            assert head is not None  # decide() pulls only from an existing head
            return await _pull(request, target, decision, head, files_at_head)
        case sync.Conflict():
            assert head is not None
            return await _open_conflict(request, target, decision, head)
        case sync.Record():
            return await _synced(
                request,
                target,
                decision,
                commit=decision.synced.commit,
                template_revision=decision.synced.template_revision,
            )
        case sync.Nothing():
            status = conds.TRUE if decision.reason == conds.Reasons.IN_SYNC else conds.FALSE
            return _outcome(request, request.status, decision, status)
        case sync.Blocked():
            history = sync.add_event(request.status.history, sync.event(decision, now=request.now))
            return _outcome(request, request.status.model_copy(update={"history": history}), decision, conds.FALSE)
    raise AssertionError(f"unknown decision {decision!r}")


async def _push(request: Request, target: Target, decision: sync.Push, head: str | None) -> Outcome:
    spec, mirrors = request.spec, request.memo.mirrors
    link = sync.link_key(request.namespace, request.name)
    message = sync.commit_message(target.template_name, target.template_revision, decision.change, link)
    commit = await mirrors.commit(
        target.remote, parent=head, change=_git_change(decision.change), message=message, author=_author(request)
    )
    await mirrors.push(target.remote, commit, spec.branch)  # NonFastForward: the caller decides again
    request.logger.info(
        f"Pushed template {target.template_name!r} to {target.full_name}@{spec.branch} as "
        f"{commit[:12]} ({len(decision.change.write)} written, {len(decision.change.delete)} deleted)."
    )
    status = request.status.model_copy(update={"last_push_at": conds.timestamp(request.now)})
    return await _synced(
        request, target, decision, commit=commit, template_revision=target.template_revision, status=status
    )


async def _pull(
    request: Request, target: Target, decision: sync.Pull, head: str, files_at_head: dict[str, bytes] | None
) -> Outcome:
    path = request.spec.path.rstrip("/") or "."
    files = sync.from_repo(files_at_head, path)
    if isinstance(files, sync.Blocked):
        return await carry_out(request, target, files, files_at_head, files)
    problem = template_logic.problems(files)
    if problem is not None:
        reason, message = problem
        blocked = sync.Blocked(
            reason, f"Commit {head[:12]} cannot be pulled, the template is left unchanged: {message}"
        )
        return await carry_out(request, target, blocked, files_at_head, blocked)
    revision = template_logic.revision(files)
    await write_template(request, target, files, source="github-sync", revision=revision, commit=head)
    request.logger.info(
        f"Pulled {target.full_name}@{request.spec.branch} {head[:12]} into template "
        f"{target.template_name!r} ({len(files)} files)."
    )
    status = request.status.model_copy(update={"last_pull_at": conds.timestamp(request.now)})
    return await _synced(request, target, decision, commit=head, template_revision=revision, status=status)


async def write_template(
    request: Request, target: Target, files: Mapping[str, str], *, source: str, revision: str, commit: str
) -> None:
    """Replace the Template's files (removed files nulled in the merge patch) and say where they came from."""
    content: dict[str, Any] = {path: None for path in target.template_files if path not in files}
    content.update(files)
    patch = {
        "metadata": {"annotations": {SYNCED_FROM_ANNOTATION: f"{source} {revision} {commit}"}},
        "spec": {"files": content},
    }
    await request.memo.kube.patch(kube.ours(kinds.TEMPLATE.plural), request.namespace, target.template_name, patch)


async def _open_conflict(request: Request, target: Target, decision: sync.Conflict, head: str) -> Outcome:
    spec, mirrors = request.spec, request.memo.mirrors
    link = sync.link_key(request.namespace, request.name)
    refs = await mirrors.ls_remote(target.remote)
    if f"refs/heads/{decision.branch}" not in refs:  # a retry after a crash finds the branch already pushed
        message = sync.commit_message(target.template_name, target.template_revision, decision.change, link)
        commit = await mirrors.commit(
            target.remote, parent=head, change=_git_change(decision.change), message=message, author=_author(request)
        )
        await mirrors.push(target.remote, commit, decision.branch)
    text = sync.conflict_pull_request(
        link=link,
        template_name=target.template_name,
        base_branch=spec.branch,
        link_path=spec.path,
        template_revision=target.template_revision,
        head_commit=head,
        direction=spec.sync_direction,
    )
    pull = await target.access.client.pulls(target.owner, target.name).open(
        head=decision.branch, base=spec.branch, title=text.title, body=text.body
    )
    request.logger.warning(
        f"Sync conflict on {target.full_name}@{spec.branch}: opened pull request #{pull.number} from {decision.branch}."
    )
    conflict = links.Conflict(
        branch=decision.branch,
        pull_request=pull.number,
        url=pull.html_url,
        template_revision=target.template_revision,
        commit=head,
    )
    history = sync.add_event(
        request.status.history,
        sync.event(decision, now=request.now, commit=head, template_revision=target.template_revision),
    )
    status = request.status.model_copy(update={"conflict": conflict, "history": history})
    message = f"{decision.message} Pull request #{pull.number}: {pull.html_url}"
    return Outcome(
        status=status,
        conditions=(
            reconciling.Set(conds.Types.SYNCED, conds.FALSE, decision.reason, message),
            reconciling.Set(conds.Types.CONFLICT, conds.TRUE, decision.reason, message),
        ),
    )


async def _synced(
    request: Request,
    target: Target,
    decision: sync.Decision,
    *,
    commit: str,
    template_revision: str,
    status: links.TemplateRepoLinkStatus | None = None,
) -> Outcome:
    """Record the new synced pair (and settle a resolved conflict)."""
    current = status or request.status
    history = sync.add_event(
        current.history, sync.event(decision, now=request.now, commit=commit, template_revision=template_revision)
    )
    current = current.model_copy(
        update={
            "last_synced_revision": sync.synced_revision(request.spec.branch, commit),
            "last_synced_template_revision": template_revision,
            "history": history,
        }
    )
    annotations: dict[str, str | None] = {}
    if current.conflict is not None:  # synced again: whatever the conflict was, it is settled
        current, annotations = await _settle_conflict(request, target, current)
    return _outcome(request, current, decision, conds.TRUE, annotations=annotations)


async def _settle_conflict(
    request: Request, target: Target, status: links.TemplateRepoLinkStatus
) -> tuple[links.TemplateRepoLinkStatus, dict[str, str | None]]:
    conflict = status.conflict
    if conflict is not None and conflict.pull_request is not None:
        pulls = target.access.client.pulls(target.owner, target.name)
        pull = await pulls.get(conflict.pull_request)
        if pull is not None and pull.state == "open":
            await pulls.close(conflict.pull_request)
    annotations: dict[str, str | None] = {}
    if sync.RESOLVE_ANNOTATION in request.annotations:
        annotations[sync.RESOLVE_ANNOTATION] = None
    return status.model_copy(update={"conflict": None}), annotations


def _outcome(
    request: Request,
    status: links.TemplateRepoLinkStatus,
    decision: sync.Decision,
    synced: conds.ConditionStatus,
    *,
    annotations: Mapping[str, str | None] | None = None,
) -> Outcome:
    message = getattr(decision, "message", "")
    in_conflict = status.conflict is not None
    _record_metrics(request, status, in_conflict)
    conflict_message = (
        f"Pull request #{status.conflict.pull_request} is open: {status.conflict.url}"
        if status.conflict is not None
        else "No conflict."
    )
    return Outcome(
        status=status,
        conditions=(
            reconciling.Set(conds.Types.SYNCED, synced, decision.reason, message),
            reconciling.Set(
                conds.Types.CONFLICT,
                conds.TRUE if in_conflict else conds.FALSE,
                conds.Reasons.CONFLICT_OPENED if in_conflict else conds.Reasons.NO_CONFLICT,
                conflict_message,
            ),
        ),
        ready_message=message,
        annotations=annotations or {},
    )


def _record_metrics(request: Request, status: links.TemplateRepoLinkStatus, in_conflict: bool) -> None:
    metrics = request.memo.metrics
    metrics.conflict_open(request.namespace, request.name, in_conflict)
    new = status.history[0] if status.history else None
    if new is not None and (not request.status.history or request.status.history[0] != new):
        metrics.sync_event(request.namespace, request.name, new.direction, new.result)


async def rollback(request: Request, target: Target) -> Outcome:
    """``chkmate.dev/rollbackTo=<commit>``: the template goes back to that commit's files (then a normal push
    records them as a new commit; history is never rewritten)."""
    commit = request.annotations[ROLLBACK_ANNOTATION].strip()
    mirrors = request.memo.mirrors
    path = request.spec.path.rstrip("/") or "."
    if request.spec.sync_direction == "Pull":
        raise errors.ChkmateError(
            f"{ROLLBACK_ANNOTATION}: a Pull link cannot push a rollback; revert the commit on GitHub instead.",
            reason=conds.Reasons.INVALID_SPEC,
        )
    await mirrors.fetch(target.remote, [request.spec.branch])
    if not await mirrors.has_commit(target.remote, commit):
        raise errors.ChkmateError(
            f"{ROLLBACK_ANNOTATION}: commit {commit!r} is not on {request.spec.branch}.",
            reason=conds.Reasons.INVALID_SPEC,
        )
    files = sync.from_repo(await mirrors.read_tree(target.remote, commit, path), path)
    if isinstance(files, sync.Blocked):
        raise errors.ChkmateError(f"{ROLLBACK_ANNOTATION}: {files.message}", reason=files.reason)
    revision = template_logic.revision(files)
    await write_template(request, target, files, source="rollback", revision=revision, commit=commit)
    event = links.SyncEvent(
        direction="Rollback",
        result="Succeeded",
        commit=commit,
        template_revision=revision,
        message=f"Template restored from {commit[:12]}; it is pushed as a new commit.",
        at=conds.timestamp(request.now),
    )
    status = request.status.model_copy(update={"history": sync.add_event(request.status.history, event)})
    request.logger.info(f"Rolled template {target.template_name!r} back to the files of {commit[:12]}.")
    return Outcome(
        status=status,
        conditions=(
            reconciling.Set(
                conds.Types.SYNCED,
                conds.UNKNOWN,
                conds.Reasons.PROGRESSING,
                f"Template restored from {commit[:12]}; pushing it next.",
            ),
        ),
        annotations={ROLLBACK_ANNOTATION: None},
    )


def _git_change(change: sync.Change) -> git.Change:
    return git.Change(write=dict(change.write), delete=frozenset(change.delete))


def _author(request: Request) -> git.Author:
    if request.spec.author is not None:
        return git.Author(request.spec.author.name, request.spec.author.email)
    settings = request.memo.settings
    return git.Author(settings.commit_author_name, settings.commit_author_email)
