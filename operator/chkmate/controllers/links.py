"""TemplateRepoLink controller: keeps a Template and a path of a repository branch in sync.

Each reconcile gathers the facts (template files, the branch head and the files under the path, the last
synced pair, the head commit's trailers, the conflict pull request), asks :func:`chkmate.domain.sync.decide`
what to do, and does it (:mod:`chkmate.controllers.link_actions`). A push the remote rejects because the
branch moved is decided again on the new head; nothing is ever force-pushed.

Reconciles come from changes of the link, from its Template (the template controller stamps
``chkmate.dev/templateRevision`` on the links of a changed template), and from the repository poller
(``chkmate.dev/polledRevision``, one ls-remote per repository per interval). I/O: git and GitHub through
the clients; the Template through the Kubernetes client.
"""

from __future__ import annotations

import kopf
import pydantic

from chkmate import errors
from chkmate.api import conditions as conds
from chkmate.api import kinds, links, repositories
from chkmate.clients import git
from chkmate.controllers import access, indexing, link_actions, reconciling, registering
from chkmate.domain import sync
from chkmate.domain import templates as template_logic

Request = reconciling.Request[links.TemplateRepoLinkSpec, links.TemplateRepoLinkStatus]
Outcome = reconciling.Outcome[links.TemplateRepoLinkStatus]

# A push rejected because the branch moved is decided again this many times before giving up for a while.
PUSH_ATTEMPTS = 3


async def reconcile_template_repo_link(request: Request) -> Outcome:
    spec = request.spec
    if spec.suspend:
        return Outcome(
            status=request.status,
            conditions=(
                reconciling.Set(
                    conds.Types.SYNCED, conds.UNKNOWN, conds.Reasons.SUSPENDED, "Syncing is suspended (spec.suspend)."
                ),
            ),
        )
    target = await resolve(request)
    mirrors = request.memo.mirrors
    async with mirrors.lock(target.remote):
        if link_actions.ROLLBACK_ANNOTATION in request.annotations:
            return await link_actions.rollback(request, target)
        for _ in range(PUSH_ATTEMPTS):
            facts, files_at_head = await gather_facts(request, target)
            decision = facts if isinstance(facts, sync.Blocked) else sync.decide(facts)
            try:
                return await link_actions.carry_out(request, target, facts, files_at_head, decision)
            except git.NonFastForward:
                request.logger.info(f"{target.full_name}@{spec.branch} moved during the push: deciding again.")
    raise errors.TransientError(f"{target.full_name}@{spec.branch} kept moving during {PUSH_ATTEMPTS} pushes.")


async def resolve(request: Request) -> link_actions.Target:
    """The Template's files, and the repository as a git remote with the connection's credentials."""
    spec, namespace = request.spec, request.namespace
    template = indexing.require(
        request.indexes, kinds.TEMPLATE, namespace, spec.template_ref.name, field="spec.templateRef"
    )
    files = dict(template.spec.get("files") or {})
    problem = template_logic.problems(files)
    if problem is not None:
        raise errors.DependencyNotReady(f"spec.templateRef: Template {template.name!r} cannot be used: {problem[1]}")
    summary = indexing.require(
        request.indexes, kinds.GITHUB_REPOSITORY, namespace, spec.repository_ref.name, field="spec.repositoryRef"
    )
    try:
        repo_spec = repositories.GitHubRepositorySpec.model_validate(summary.spec)
    except pydantic.ValidationError as e:
        raise errors.DependencyNotReady(f"spec.repositoryRef: {summary.name!r} has an invalid spec.") from e
    reach = await access.github_access(
        request,
        repo_spec.connection_ref.name,
        field=f"GitHubRepository {summary.name!r} spec.connectionRef",
        repository=repo_spec.full_name,
    )
    repo = await reach.client.repository(repo_spec.owner, repo_spec.name)
    if repo is None:
        raise errors.ChkmateError(
            f"Repository {repo_spec.full_name} does not exist or cannot be seen.",
            reason=conds.Reasons.REPOSITORY_NOT_FOUND,
            retryable=True,
        )
    return link_actions.Target(
        template_name=template.name,
        template_files=files,
        template_revision=template_logic.revision(files),
        owner=repo_spec.owner,
        name=repo_spec.name,
        access=reach,
        remote=reach.remote(repo.clone_url),
    )


async def gather_facts(
    request: Request, target: link_actions.Target
) -> tuple[sync.SyncFacts | sync.Blocked, dict[str, bytes] | None]:
    """The facts to decide on, or why the two sides cannot even be compared."""
    spec, status, mirrors = request.spec, request.status, request.memo.mirrors
    path = link_path(spec)
    head = await mirrors.refresh(target.remote, spec.branch)
    files_at_head = await mirrors.read_tree(target.remote, head, path) if head else None
    push = sync.plan_push(target.template_files, files_at_head, path, prune=spec.prune)
    if isinstance(push, sync.Blocked):
        return push, files_at_head
    last = await _last_synced(request, target)
    trailers = sync.parse_trailers(await mirrors.commit_message(target.remote, head)) if head else {}
    facts = sync.SyncFacts(
        link_key=sync.link_key(request.namespace, request.name),
        direction=spec.sync_direction,
        auto_sync=spec.auto_sync,
        push_requested=request.requested,
        template_revision=target.template_revision,
        head_commit=head,
        repo_revision=sync.repo_revision(files_at_head),
        push=push,
        last=last,
        head_trailers=trailers,
        conflict=await link_actions.conflict_state(status.conflict, target),
        resolve=request.annotations.get(sync.RESOLVE_ANNOTATION),
    )
    return facts, files_at_head


async def _last_synced(request: Request, target: link_actions.Target) -> sync.Synced | None:
    status, mirrors = request.status, request.memo.mirrors
    commit = sync.commit_of(status.last_synced_revision)
    if commit is None or status.last_synced_template_revision is None:
        return None
    repo_revision = None
    if await mirrors.has_commit(target.remote, commit):
        repo_revision = sync.repo_revision(await mirrors.read_tree(target.remote, commit, link_path(request.spec)))
    return sync.Synced(
        template_revision=status.last_synced_template_revision, commit=commit, repo_revision=repo_revision
    )


def link_path(spec: links.TemplateRepoLinkSpec) -> str:
    return spec.path.rstrip("/") or "."


RECONCILER = reconciling.Reconciler(
    info=kinds.TEMPLATE_REPO_LINK,
    spec_model=links.TemplateRepoLinkSpec,
    status_model=links.TemplateRepoLinkStatus,
    depends_on=(conds.Types.SYNCED, conds.Types.CONFLICT),
    step=reconcile_template_repo_link,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_template_repo_link")
