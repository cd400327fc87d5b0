"""Environment controller: a branch mapped to a deployment target; a Plan for every new head.

On every change, poll or webhook mark (``chkmate.dev/polledRevision``, whose commit is taken as the head
without asking the remote again) or plan update (``chkmate.dev/planObserved``): resolve the source, read
``.chkmate.yml`` at the head (an invalid file stops everything, naming key and line), create the Plan of the
head if there is none (named after the commit, so creating it twice is harmless; a webhook delivery creates the
Plan of the pushed commit itself, and a poller's mark gets its Plan before any git work), mark the other plans
still waiting for approval, and the unstarted ones of older commits, as superseded, garbage-collect old plans
beyond ``planHistory``, and report the last plan and the last applied revision. I/O: git (ls-remote, fetch),
Kubernetes (Plans).
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any

import kopf

from chkmate import API_VERSION, GROUP, VERSION
from chkmate.api import conditions as conds
from chkmate.api import environments, kinds
from chkmate.clients import kube, storage
from chkmate.controllers import (
    indexing,
    memos,
    plan_runs,
    plans,
    polling,
    reconciling,
    registering,
    sources,
    superseding,
)
from chkmate.domain import plans as plan_logic

Request = reconciling.Request[environments.EnvironmentSpec, environments.EnvironmentStatus]
Outcome = reconciling.Outcome[environments.EnvironmentStatus]

FAILED = frozenset({"Failed"})


async def reconcile_environment(request: Request) -> Outcome:
    spec, memo = request.spec, request.memo
    source = await sources.resolve(memo, request.indexes, request.namespace, spec)
    status = request.status.model_copy(update={"repository": source.full_name, "branch": source.branch})
    if spec.suspend:
        return Outcome(
            status=status,
            conditions=(
                reconciling.Set(
                    conds.Types.PLANNED, conds.UNKNOWN, conds.Reasons.SUSPENDED, "Planning is suspended (spec.suspend)."
                ),
            ),
        )
    polled = request.annotations.get(polling.POLLED_ANNOTATION, "")
    expected = "" if request.requested else sources.polled_commit(polled, source.branch)
    mine = _plans(request)
    created = set()
    if expected and not any(p.name == plan_name(request.name, expected) for p in mine):
        # A mark names the new head: record its Plan before any git work (a webhook delivery has already
        # created it: this is the poller's path). The Plan checks .chkmate.yml itself before anything runs.
        await _create_plan(request, source.branch, expected)
        created.add(plan_name(request.name, expected))
    head = await sources.head(memo, source, expected=expected)
    if expected and head != expected:  # the marked commit left the branch (force-push) before we looked
        await _forget_marked(request, plan_name(request.name, expected), mine, created)
    sources.repo_config(await sources.files_at(memo, source, head))  # InvalidRepoConfig stops here
    name = plan_name(request.name, head)
    if name not in created and not any(p.name == name for p in mine):
        await _create_plan(request, source.branch, head)
    for older in mine:  # every time: the index may have shown an older plan still Planning the last time
        if older.name != name and not _superseded(older) and await _replaced(request, source, older, head):
            await _mark_superseded(request, older.name, name)
    await _collect_garbage(request, [p for p in mine if p.name != name])
    phases: collections.Counter[Any] = collections.Counter(p.status.get("phase") or "Pending" for p in mine)
    memo.metrics.plan_phases(request.namespace, request.name, phases)
    return _report(request, status, name, mine)


def plan_name(environment: str, commit: str) -> str:
    return plan_logic.branch_plan_name(environment, commit)


def _plans(request: Request) -> list[indexing.Summary]:
    """This environment's branch plans (pull request plans and drift reports are not runs of the branch)."""
    return [
        p
        for p in indexing.referring(request.indexes, kinds.PLAN, "environment", request.namespace, request.name)
        if not p.spec.get("pullRequest") and p.spec.get("kind", "plan") == "plan"  # drift reports are not runs
    ]


def plan_manifest(namespace: str, environment: str, uid: str, branch: str, commit: str) -> dict[str, Any]:
    """The Plan of ``commit`` on ``branch`` for an Environment (whose ``uid`` owns it: deleting the Environment
    deletes its Plans); named after the commit, so creating it twice is harmless."""
    owner = {"apiVersion": API_VERSION, "kind": kinds.ENVIRONMENT.kind, "metadata": {"name": environment, "uid": uid}}
    return {
        "apiVersion": API_VERSION,
        "kind": kinds.PLAN.kind,
        "metadata": {
            "name": plan_name(environment, commit),
            "namespace": namespace,
            "labels": {"chkmate.dev/environment": environment},
            "ownerReferences": [storage.owner_reference(owner)],
        },
        "spec": {"environmentRef": {"name": environment}, "revision": f"{branch}@sha1:{commit}", "branch": branch},
    }


async def create_plan(client: kube.KubeClient, manifest: dict[str, Any]) -> bool:
    """Create the Plan; False when it exists already (a webhook delivery, or an earlier reconcile whose status
    write was lost, created it)."""
    try:
        await client.create(kube.ours(kinds.PLAN.plural), manifest["metadata"]["namespace"], manifest)
    except kube.Conflict:
        return False
    return True


async def _create_plan(request: Request, branch: str, commit: str) -> None:
    manifest = plan_manifest(request.namespace, request.name, request.body["metadata"]["uid"], branch, commit)
    if await create_plan(request.memo.kube, manifest):
        request.logger.info(f"Created Plan {manifest['metadata']['name']!r} for {manifest['spec']['revision']}.")


async def _replaced(request: Request, source: sources.Source, plan: indexing.Summary, head: str) -> bool:
    """Whether the head's Plan takes the place of this other branch Plan.

    One waiting for approval (Planned): always, it can no longer be applied. One that has not run yet: when its
    commit is an ancestor of the head, so a burst of pushes (each recorded with its Plan by the webhook receiver)
    plans its last commit; a commit not known to be older is left alone (a push newer than the head this reconcile
    saw). Only local runs are skipped so: a Job may be running for a Plan without a phase yet.
    """
    phase = plan.status.get("phase")
    if phase == "Planned":
        return True
    if phase not in (None, "", "Pending") or request.spec.runner.mode != "Local":
        return False
    commit = sources.polled_commit(str(plan.spec.get("revision") or ""), source.branch)
    return commit is not None and commit != head and await request.memo.mirrors.is_ancestor(source.remote, commit, head)


async def _forget_marked(request: Request, name: str, mine: list[indexing.Summary], created: set[str]) -> None:
    """A mark's commit is not on the branch after a fetch (force-pushed away before anyone looked): its Plan goes.
    It cannot have started (every run fetches its commit first, and this one is not in the mirror), and deleting
    rather than superseding it lets a poll plan it after all should the commit merely have been late to appear."""
    known = next((p for p in mine if p.name == name), None)
    if name not in created and (known is None or known.status.get("phase") not in (None, "", "Pending")):
        return
    if await request.memo.kube.delete(kube.ours(kinds.PLAN.plural), request.namespace, name):
        request.logger.info(f"Deleted Plan {name!r}: its commit is not on the branch.")


def _superseded(plan: indexing.Summary) -> bool:
    return superseding.SUPERSEDED_ANNOTATION in plan.annotations


async def _mark_superseded(request: Request, plan: str, newer: str) -> None:
    patch = {"metadata": {"annotations": {superseding.SUPERSEDED_ANNOTATION: newer}}}
    await request.memo.kube.patch(kube.ours(kinds.PLAN.plural), request.namespace, plan, patch)


async def _collect_garbage(request: Request, others: list[indexing.Summary]) -> None:
    """Keep the newest ``planHistory - 1`` finished plans besides the current one; never one still running."""
    keep = max(0, request.memo.settings.plan_history - 1)
    finished = sorted(
        (p for p in others if p.status.get("phase") in plans.TERMINAL),
        key=lambda p: str(p.status.get("startedAt") or ""),
        reverse=True,
    )
    for old in finished[keep:]:
        await request.memo.kube.delete(kube.ours(kinds.PLAN.plural), request.namespace, old.name)
        request.logger.info(f"Deleted old Plan {old.name!r} (planHistory {request.memo.settings.plan_history}).")


def _report(
    request: Request, status: environments.EnvironmentStatus, current: str, mine: list[indexing.Summary]
) -> Outcome:
    latest = next((p for p in mine if p.name == current), None)
    applied = sorted(
        (p for p in mine if p.status.get("phase") == "Applied"), key=lambda p: str(p.status.get("appliedAt") or "")
    )
    last_plan = None
    if latest is not None:
        last_plan = environments.LastPlan(
            name=latest.name,
            revision=latest.spec.get("revision"),
            plan_id=latest.status.get("planId"),
            summary=environments.PlanSummary.model_validate(latest.status["summary"])
            if latest.status.get("summary")
            else None,
        )
    status = status.model_copy(
        update={
            "last_plan": last_plan or environments.LastPlan(name=current),
            "last_applied_revision": applied[-1].spec.get("revision") if applied else status.last_applied_revision,
        }
    )
    phase = latest.status.get("phase") if latest is not None else None
    planned = _planned_condition(current, phase, latest)
    stalled = _apply_failed(current, phase, latest)
    return Outcome(
        status=status,
        conditions=(planned,) if stalled is None else (planned, stalled),
        ready_message=planned.message,
    )


def _apply_failed(name: str, phase: Any, latest: indexing.Summary | None) -> reconciling.Set | None:
    """Stalled while the current plan failed after it was planned (its apply, e.g. after a merge): the
    infrastructure may be half-changed and only a person (a fix, a new commit) can move it on."""
    if phase not in FAILED or latest is None or not latest.status.get("planId"):
        return None
    return reconciling.Set(
        conds.Types.STALLED,
        conds.TRUE,
        latest.ready_reason or conds.Reasons.APPLY_FAILED,
        f"Applying Plan {name!r} failed: {latest.ready_message} The state Secret keeps what the apply left; "
        "a new commit plans again.",
    )


def _planned_condition(name: str, phase: Any, latest: indexing.Summary | None) -> reconciling.Set:
    if phase in (None, "Pending", "Planning"):
        return reconciling.Set(
            conds.Types.PLANNED, conds.UNKNOWN, conds.Reasons.PROGRESSING, f"Plan {name!r} is running."
        )
    if phase in FAILED:
        reason = latest.ready_reason if latest is not None else conds.Reasons.PLAN_FAILED
        message = latest.ready_message if latest is not None else ""
        return reconciling.Set(
            conds.Types.PLANNED, conds.FALSE, reason or conds.Reasons.PLAN_FAILED, f"Plan {name!r} failed: {message}"
        )
    return reconciling.Set(conds.Types.PLANNED, conds.TRUE, conds.Reasons.SUCCEEDED, f"Plan {name!r} is {phase}.")


RECONCILER = reconciling.Reconciler(
    info=kinds.ENVIRONMENT,
    spec_model=environments.EnvironmentSpec,
    status_model=environments.EnvironmentStatus,
    depends_on=(conds.Types.PLANNED, conds.Types.DRIFTED),
    step=reconcile_environment,
)


PLAN_OBSERVED_ANNOTATION = "chkmate.dev/planObserved"
# Phases that tell the Environment nothing new: it says "running" from the moment it creates a Plan, and a
# Plan is superseded by the one it just created (whose own phases it does hear of).
UNREPORTED_PHASES = frozenset({None, "", "Pending", "Planning", "Superseded"})


async def plan_moved(*, type: str | None, body: kopf.Body, memo: Any, **indexes: Any) -> None:
    """A Plan's phase changed: let its Environment report it.

    This runs on the Plan's watch event, after kopf updated its indexes with the new status, so the
    Environment's reconcile reads the phase the Plan really has (a notice sent from inside the Plan's own
    handler could arrive before the Plan's status is written).
    """
    phase = body.get("status", {}).get("phase")
    env = body.get("spec", {}).get("environmentRef", {}).get("name")
    if type is None or phase in UNREPORTED_PHASES or not env or body.get("spec", {}).get("pullRequest"):
        return
    value = f"{body.metadata.name}:{phase}"
    namespace = body.metadata.namespace or ""
    known = indexing.lookup(indexes, kinds.ENVIRONMENT, namespace, env)
    if known is not None and known.annotations.get(PLAN_OBSERVED_ANNOTATION) == value:
        return  # said already (every later event of the Plan, e.g. kopf's own bookkeeping, carries the same phase)
    patch = {"metadata": {"annotations": {PLAN_OBSERVED_ANNOTATION: value}}}
    with contextlib.suppress(kube.NotFound):
        await memos.of(memo).kube.patch(kube.ours(kinds.ENVIRONMENT.plural), namespace, env, patch)


async def forget_environment(*, meta: kopf.Meta, memo: Any, **_: Any) -> None:
    """The Environment is gone: drop the ``init`` its runs kept (optional: adds no finalizer; a restart while it
    is being deleted leaves the folder, which the next Environment of that name reuses or replaces)."""
    await plan_runs.forget_init(memos.of(memo).settings, sources.init_key(meta.namespace or "", meta.name or ""))


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_environment")
    kopf.on.delete(
        GROUP, VERSION, kinds.ENVIRONMENT.plural, id="forget_environment_init", registry=registry, optional=True
    )(forget_environment)
    kopf.on.event(GROUP, VERSION, kinds.PLAN.plural, id="plan_moved", registry=registry)(plan_moved)
