"""Environment controller: validates the spec and resolves its source (repository or link).

Planning, applying and drift checks arrive with later issues. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import environments, kinds
from chkmate.controllers import indexing, reconciling, registering

Request = reconciling.Request[environments.EnvironmentSpec, environments.EnvironmentStatus]
Outcome = reconciling.Outcome[environments.EnvironmentStatus]


async def reconcile_environment(request: Request) -> Outcome:
    spec = request.spec
    if spec.link_ref is not None:
        indexing.require(request.indexes, kinds.TEMPLATE_REPO_LINK, request.namespace, spec.link_ref.name,
                         field="spec.linkRef")
    if spec.repository_ref is not None:
        indexing.require(request.indexes, kinds.GITHUB_REPOSITORY, request.namespace, spec.repository_ref.name,
                         field="spec.repositoryRef")
    reason, message = (
        (conds.Reasons.SUSPENDED, "Planning is suspended (spec.suspend).") if spec.suspend else
        (conds.Reasons.PROGRESSING, "Source resolved; this operator version does not plan yet.")
    )
    return Outcome(
        status=request.status.model_copy(update={"branch": spec.branch}),
        conditions=(reconciling.Set(conds.Types.PLANNED, conds.UNKNOWN, reason, message),),
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.ENVIRONMENT,
    spec_model=environments.EnvironmentSpec,
    status_model=environments.EnvironmentStatus,
    depends_on=(conds.Types.PLANNED, conds.Types.DRIFTED),
    step=reconcile_environment,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_environment")
