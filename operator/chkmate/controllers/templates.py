"""Template controller: content revision, HCL and size checks, and the version history.

Thin: the decisions are in :mod:`chkmate.domain.templates`. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import kinds, templates
from chkmate.clients import kube
from chkmate.controllers import indexing, reconciling, registering
from chkmate.domain import templates as template_logic

SYNCED_FROM_ANNOTATION = "chkmate.dev/syncedFrom"
TEMPLATE_REVISION_ANNOTATION = "chkmate.dev/templateRevision"

Request = reconciling.Request[templates.TemplateSpec, templates.TemplateStatus]
Outcome = reconciling.Outcome[templates.TemplateStatus]


async def reconcile_template(request: Request) -> Outcome:
    files = request.spec.files
    revision = template_logic.revision(files)
    status = request.status.model_copy(
        update={"revision": revision, "files": len(files), "size_bytes": template_logic.size(files)}
    )
    problem = template_logic.problems(files)
    if problem is not None:
        reason, message = problem
        request.logger.warning(f"The template's files cannot be used: {message}")
        return Outcome(status=status, conditions=(reconciling.Set(conds.Types.VALID, conds.FALSE, reason, message),))
    source, commit = _origin(request.annotations.get(SYNCED_FROM_ANNOTATION, ""), revision)
    versions = template_logic.record_version(
        request.status.versions, revision=revision, source=source, commit=commit, now=request.now
    )
    if versions != request.status.versions:
        request.logger.info(f"Recorded template version {revision} ({source}).")
    await _notify_links(request, revision)
    return Outcome(
        status=status.model_copy(update={"versions": versions}),
        conditions=(reconciling.Set(conds.Types.VALID, conds.TRUE, conds.Reasons.SUCCEEDED, "All files parse."),),
        ready_message=f"Revision {revision} with {len(files)} file(s).",
    )


def _origin(synced_from: str, revision: str) -> tuple[templates.VersionSource, str | None]:
    """Where this revision came from: a pull or rollback stamps ``<source> <revision> <commit>``; else a user."""
    parts = synced_from.split()
    if len(parts) == 3 and parts[1] == revision and parts[0] in ("github-sync", "rollback"):
        return ("github-sync" if parts[0] == "github-sync" else "rollback"), parts[2]
    return "user", None


async def _notify_links(request: Request, revision: str) -> None:
    """Stamp the new revision on the links of this template, so that they reconcile (autoSync pushes)."""
    for link in indexing.referring(
        request.indexes, kinds.TEMPLATE_REPO_LINK, "template", request.namespace, request.name
    ):
        if link.annotations.get(TEMPLATE_REVISION_ANNOTATION) == revision:
            continue
        patch = {"metadata": {"annotations": {TEMPLATE_REVISION_ANNOTATION: revision}}}
        await request.memo.kube.patch(kube.ours(kinds.TEMPLATE_REPO_LINK.plural), request.namespace, link.name, patch)


RECONCILER = reconciling.Reconciler(
    info=kinds.TEMPLATE,
    spec_model=templates.TemplateSpec,
    status_model=templates.TemplateStatus,
    depends_on=(conds.Types.VALID,),
    step=reconcile_template,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_template")
