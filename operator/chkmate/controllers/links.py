"""TemplateRepoLink controller: validates the spec and resolves its Template and repository.

The sync engine (push, pull, conflicts) arrives with the sync issue. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import kinds, links
from chkmate.controllers import indexing, reconciling, registering

Request = reconciling.Request[links.TemplateRepoLinkSpec, links.TemplateRepoLinkStatus]
Outcome = reconciling.Outcome[links.TemplateRepoLinkStatus]


async def reconcile_template_repo_link(request: Request) -> Outcome:
    spec = request.spec
    indexing.require(request.indexes, kinds.TEMPLATE, request.namespace, spec.template_ref.name,
                     field="spec.templateRef")
    indexing.require(request.indexes, kinds.GITHUB_REPOSITORY, request.namespace, spec.repository_ref.name,
                     field="spec.repositoryRef")
    if spec.suspend:
        return Outcome(
            status=request.status,
            conditions=(reconciling.Set(conds.Types.SYNCED, conds.UNKNOWN, conds.Reasons.SUSPENDED,
                                        "Syncing is suspended (spec.suspend)."),),
        )
    return Outcome(
        status=request.status,
        conditions=(
            reconciling.Set(
                conds.Types.SYNCED, conds.UNKNOWN, conds.Reasons.PROGRESSING,
                "References resolved; this operator version does not sync with git yet.",
            ),
        ),
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.TEMPLATE_REPO_LINK,
    spec_model=links.TemplateRepoLinkSpec,
    status_model=links.TemplateRepoLinkStatus,
    depends_on=(conds.Types.SYNCED, conds.Types.CONFLICT),
    step=reconcile_template_repo_link,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_template_repo_link")
