"""Template controller: content revision, HCL and size checks, and the version history.

Thin: the decisions are in :mod:`chkmate.domain.templates`. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import kinds, templates
from chkmate.controllers import reconciling, registering
from chkmate.domain import templates as template_logic

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
    versions = template_logic.record_version(request.status.versions, revision=revision, source="user", now=request.now)
    if versions != request.status.versions:
        request.logger.info(f"Recorded template version {revision}.")
    return Outcome(
        status=status.model_copy(update={"versions": versions}),
        conditions=(reconciling.Set(conds.Types.VALID, conds.TRUE, conds.Reasons.SUCCEEDED, "All files parse."),),
        ready_message=f"Revision {revision} with {len(files)} file(s).",
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.TEMPLATE,
    spec_model=templates.TemplateSpec,
    status_model=templates.TemplateStatus,
    depends_on=(conds.Types.VALID,),
    step=reconcile_template,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_template")
