"""Plan controller: validates the spec and resolves its Environment.

Running plans and applies arrives with the plans issue. I/O: none beyond the status patch.
"""

from __future__ import annotations

import kopf

from chkmate.api import conditions as conds
from chkmate.api import kinds, plans
from chkmate.controllers import indexing, reconciling, registering

Request = reconciling.Request[plans.PlanSpec, plans.PlanStatus]
Outcome = reconciling.Outcome[plans.PlanStatus]


async def reconcile_plan(request: Request) -> Outcome:
    indexing.require(request.indexes, kinds.ENVIRONMENT, request.namespace, request.spec.environment_ref.name,
                     field="spec.environmentRef")
    return Outcome(
        status=request.status.model_copy(update={"phase": request.status.phase or "Pending"}),
        conditions=(
            reconciling.Set(
                conds.Types.PLANNED, conds.UNKNOWN, conds.Reasons.PROGRESSING,
                "Environment resolved; this operator version does not run plans yet.",
            ),
        ),
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.PLAN,
    spec_model=plans.PlanSpec,
    status_model=plans.PlanStatus,
    depends_on=(conds.Types.PLANNED,),
    step=reconcile_plan,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_plan")
