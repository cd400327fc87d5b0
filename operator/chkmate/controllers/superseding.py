"""Superseded branch Plans: a newer commit of the branch is planned in their place.

The Environment marks an unfinished branch Plan of an older commit (an ancestor of its head) with
``chkmate.dev/supersededBy=<newer plan>`` (:mod:`chkmate.controllers.environments`). Here, for the Plan controller:
whether a Plan is so marked (:func:`newer`; also as stored after a wait in the run queue, :func:`stored_annotations`),
whether a Plan whose commit cannot be fetched has been overtaken by the branch's mark (:func:`moved_on`), and the
end of such a Plan (:func:`end`): one waiting for approval can no longer be applied, one that has not run never
runs. Pull request Plans are never superseded by branch commits. I/O: reads the Plan, releases the state lock of a
Plan that never ran (Kubernetes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chkmate.api import conditions as conds
from chkmate.api import kinds, plans
from chkmate.clients import kube, storage
from chkmate.controllers import polling, reconciling, sources
from chkmate.domain import plans as plan_logic

Request = reconciling.Request[plans.PlanSpec, plans.PlanStatus]
Outcome = reconciling.Outcome[plans.PlanStatus]

SUPERSEDED_ANNOTATION = "chkmate.dev/supersededBy"


def newer(request: Request, annotations: Mapping[str, str]) -> str | None:
    """The Plan of a newer commit of the branch, when the Environment marked this branch Plan superseded by it: then
    this one is not run, or not applied."""
    return None if request.spec.pull_request else annotations.get(SUPERSEDED_ANNOTATION)


def moved_on(request: Request, env_body: dict[str, Any], branch: str, commit: str) -> str | None:
    """For a branch Plan whose commit cannot be fetched: the Plan of the commit the Environment was last marked with,
    when that is another one (the commit was force-pushed away, or this Plan's mark was overtaken before anyone
    looked at it); None while this commit is still the branch's last known head."""
    if request.status.phase not in (None, "Pending", "Planning") or request.spec.pull_request:
        return None
    annotations = env_body.get("metadata", {}).get("annotations") or {}
    marked = sources.polled_commit(annotations.get(polling.POLLED_ANNOTATION), branch)
    if not marked or marked == commit:
        return None
    return plan_logic.branch_plan_name(request.spec.environment_ref.name, marked)


async def end(request: Request, newer: str) -> Outcome:
    """The Plan ends Superseded (Ready: nothing is wrong, a newer commit took its place). One that never ran lets go
    of the state lock, should a run of it have been cut short with the operator (a local run dies with it)."""
    status = request.status
    superseded = status.model_copy(update={"phase": "Superseded", "finished_at": conds.timestamp(request.now)})
    message = f"Superseded by {newer}."
    if status.phase != "Planned":  # never ran: pushed before the newer commit, which is planned in its place
        message = f"Superseded by {newer} before it ran."
        environment = request.spec.environment_ref.name
        await storage.release_lock(request.memo.kube, request.namespace, environment, f"Plan/{request.name}")
    planned = reconciling.Set(conds.Types.PLANNED, conds.TRUE, conds.Reasons.SUPERSEDED, message)
    return Outcome(
        status=superseded,
        conditions=(
            planned,
            reconciling.Set(
                conds.Types.APPROVED,
                conds.FALSE,
                conds.Reasons.SUPERSEDED,
                f"A newer plan ({newer}) replaces this one; it can no longer be applied.",
            ),
        ),
    )


async def stored_annotations(request: Request) -> Mapping[str, str]:
    """The Plan's annotations as stored now (after a wait in line), not as when the reconcile began."""
    found = await request.memo.kube.get(kube.ours(kinds.PLAN.plural), request.namespace, request.name)
    return dict((found or {}).get("metadata", {}).get("annotations") or {})
