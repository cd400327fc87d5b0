"""Plan controller: one plan run per object: plan, wait for approval, apply that exact plan.

Phases: Pending → Planned (or NoChanges) → Applied, or Failed; a newer plan of the branch makes a plan that
still waits for approval Superseded. Approval binds to the planId: ``spec.approved`` (or the annotation
``chkmate.dev/approve``) must carry this plan's id; an approval of another id is reported and ignored. Before
applying, the stored plan file is checked against the hash recorded when it was planned. Plans of the branch
take the environment's state lock; pull request plans do not. Pull request plans are reported on the pull
request and approved through :mod:`chkmate.controllers.pull_requests` (hooks). Runs go through the
Environment's runner (:func:`runners.runner`): a subprocess, or a Kubernetes Job per run that a restarted
operator finds and waits for again (the state lock stays held while such a Job runs on). I/O: the engine
(subprocesses) or runner Jobs, git, Secrets and ConfigMaps for outputs and state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from typing import Any

import kopf
import pydantic

from chkmate import errors
from chkmate.api import conditions as conds
from chkmate.api import environments, kinds, plans, repoconfig
from chkmate.clients import kube, storage, terraform
from chkmate.controllers import indexing, pull_requests, reconciling, registering, runners, sources, superseding
from chkmate.domain import costs, security
from chkmate.domain import plans as plan_logic

Request = reconciling.Request[plans.PlanSpec, plans.PlanStatus]
Outcome = reconciling.Outcome[plans.PlanStatus]

APPROVE_ANNOTATION = "chkmate.dev/approve"
TERMINAL = frozenset({"Applied", "Failed", "Superseded", "NoChanges"})


async def reconcile_plan(request: Request) -> Outcome:
    status = request.status
    if request.spec.kind == "drift":
        return _drift_report(status)
    if status.phase in TERMINAL:
        return Outcome(status=status, conditions=_terminal_conditions(status))
    env = indexing.require(
        request.indexes,
        kinds.ENVIRONMENT,
        request.namespace,
        request.spec.environment_ref.name,
        field="spec.environmentRef",
    )
    newer = superseding.newer(request, request.annotations)
    if status.phase in (None, "Pending", "Planning", "Planned") and newer:
        return await superseding.end(request, newer)
    if status.phase in (None, "Pending", "Planning") and _runs_here(env):
        # Settings.run_concurrency: a burst of commits queues its local runs here (Job runs scale out instead).
        # Everything after the wait is read then: the Plan (a newer commit may have superseded it meanwhile), the
        # Environment as it is by then, the time the lock takes.
        waits = request.memo.run_gate.locked()
        async with request.memo.run_gate:
            request = dataclasses.replace(request, now=datetime.datetime.now(datetime.UTC))
            if waits and (newer := superseding.newer(request, await superseding.stored_annotations(request))):
                return await superseding.end(request, newer)
            return await _prepare(request, env)
    return await _prepare(request, env)


def _runs_here(env: indexing.Summary) -> bool:
    """Whether the Environment's runs are subprocesses of the operator (runner mode Local, the default)."""
    runner = env.spec.get("runner")
    return not isinstance(runner, dict) or runner.get("mode", "Local") == "Local"


async def _prepare(request: Request, env: indexing.Summary) -> Outcome:
    """Read the Environment and the planned commit's ``.chkmate.yml``, then plan, or approve and apply."""
    status = request.status
    # The spec as stored now, not as the index last saw it: kopf updates an object's index entry when that
    # object's worker takes the event, which waits while a handler of the object runs; a change of approval mode
    # made just before a push must hold for the push's Plan.
    fresh = await _environment_body(request, env.name)
    try:
        env_spec = environments.EnvironmentSpec.model_validate(fresh.get("spec") or {})
    except pydantic.ValidationError as e:
        raise errors.DependencyNotReady(f"Environment {env.name!r} has an invalid spec.") from e
    resolved = await sources.resolve(request.memo, request.indexes, request.namespace, env_spec)
    source = pull_requests.plan_source(resolved, request.spec)
    commit = _commit(request.spec.revision) or _commit(status.revision)
    if commit is not None:  # unset fields of the Environment come from .chkmate.yml at the planned commit
        try:
            files = await sources.files_at(request.memo, source, commit)
        except sources.CommitNotFound:
            if (moved := superseding.moved_on(request, fresh, source.branch, commit)) is not None:
                return await superseding.end(request, moved)
            raise  # not (yet) on the branch as far as anyone knows: retried
        config = sources.repo_config(files)
        defaults = config.environments.get(env.name) if config is not None else None
        env_spec = repoconfig.with_defaults(env_spec, defaults, pull_request=request.spec.pull_request is not None)
    if status.phase in (None, "Pending", "Planning"):
        return await _plan(request, env, env_spec, source, fresh)
    return await _approve_and_apply(request, env, env_spec, source)


async def _plan(
    request: Request,
    env: indexing.Summary,
    env_spec: environments.EnvironmentSpec,
    source: sources.Source,
    env_body: dict[str, Any],
) -> Outcome:
    spec, memo = request.spec, request.memo
    commit = _commit(spec.revision) or await sources.head(memo, source)
    revision = f"{source.branch}@sha1:{commit}"
    files = await sources.files_at(memo, source, commit)
    config = sources.repo_config(files)
    inputs = await sources.inputs(memo, request.namespace, env.name, env_spec, source, config, destroy=spec.destroy)
    holder = f"Plan/{request.name}"
    takes_lock = spec.pull_request is None
    runner = _runner(request, env.name, env_spec)
    locked = await _lock(request, env.name, env_body, holder, inputs.timeout) if takes_lock else None
    keep_lock = planned_ok = False
    try:
        state = locked if locked is not None else await storage.load_state(memo.kube, request.namespace, env.name)
        planned = await runner.plan(
            phase="plan", revision=revision, files=files, state=state, inputs=inputs, lock=False
        )
        planned_ok = True
    except (terraform.PlanFailed, terraform.EngineNotFound, terraform.PathNotFound, runners.RunFailed) as e:
        return await _failed(request, revision, conds.Types.PLANNED, e)
    except asyncio.CancelledError:
        keep_lock = runner.detached  # its Job runs on: the restarted operator waits for it, holding the lock
        raise
    finally:
        if takes_lock and not keep_lock and not planned_ok:
            await storage.release_lock(memo.kube, request.namespace, env.name, holder)
    result = planned.result
    # The lock goes while the outputs are written (a plan changes no state): one round trip less on the way.
    saving = storage.save_plan_output(
        memo.kube,
        request.namespace,
        request.name,
        request.body,
        text=result.text,
        plan_file=planned.artifact,
        labels={"chkmate.dev/plan": request.name, "chkmate.dev/environment": env.name},
    )
    if takes_lock:
        stored, _ = await asyncio.gather(saving, storage.release_lock(memo.kube, request.namespace, env.name, holder))
    else:
        stored = await saving
    estimate = costs.estimate(result.changes, region=env_spec.region)
    report = security.scan(
        result.changes, files={p: d.decode(errors="replace") for p, d in files.items() if p.endswith(".tf")}
    )
    phase: plans.PlanPhase = "Planned" if result.has_changes else "NoChanges"
    status = request.status.model_copy(
        update={
            "phase": phase,
            "revision": revision,
            "plan_id": planned.plan_id,
            "summary": environments.PlanSummary(
                add=result.summary.add, change=result.summary.change, destroy=result.summary.destroy
            ),
            "cost": costs.to_status(estimate),
            "security": security.to_status(report),
            "output_ref": plans.OutputRef(
                config_map=stored.config_map,
                secret_prefix=stored.secret_prefix,
                chunks=stored.chunks,
                sha256=stored.sha256,
            ),
            "started_at": request.status.started_at or conds.timestamp(request.now),
            "finished_at": None if phase == "Planned" else conds.timestamp(request.now),
        }
    )
    status = await pull_requests.planned(request, source, status, result.text, report, inputs)
    request.logger.info(f"Planned {revision}: {result.summary.line()} planId {planned.plan_id}.")
    planned_set = reconciling.Set(conds.Types.PLANNED, conds.TRUE, conds.Reasons.SUCCEEDED, result.summary.line())
    if phase == "NoChanges":
        return Outcome(status=status, conditions=(planned_set,), ready_message=result.summary.line())
    request = _with_status(request, status)
    return await _approve_and_apply(request, env, env_spec, None, planned_set=planned_set)


async def _approve_and_apply(
    request: Request,
    env: indexing.Summary,
    env_spec: environments.EnvironmentSpec,
    source: sources.Source | None,
    *,
    planned_set: reconciling.Set | None = None,
) -> Outcome:
    status = request.status
    plan_id = status.plan_id or ""
    done = planned_set or reconciling.Set(
        conds.Types.PLANNED,
        conds.TRUE,
        conds.Reasons.SUCCEEDED,
        (status.summary and _summary_line(status)) or "Planned.",
    )
    approval = await pull_requests.approval(request, env_spec, plan_id, _approval(request, env_spec, plan_id))
    waiting_since = _parse_time(status.started_at) if approval is not None else None
    request.memo.metrics.awaiting_approval(request.namespace, request.name, env.name, waiting_since)
    if approval is not None:
        return Outcome(status=status, conditions=(done, approval))
    source = source or await sources.resolve(request.memo, request.indexes, request.namespace, env_spec)
    return await _apply(request, env, env_spec, source, done)


def _drift_report(status: plans.PlanStatus) -> Outcome:
    """A drift report is written whole by the drift check (environment_drift.py): never planned nor applied here."""
    if status.phase is None:
        waiting = "Waiting for the drift check's report."
        return Outcome(
            status=status,
            conditions=(reconciling.Set(conds.Types.PLANNED, conds.UNKNOWN, conds.Reasons.PROGRESSING, waiting),),
        )
    line = f"Drift report of {status.revision}: {_summary_line(status)} Never applied."
    return Outcome(
        status=status,
        conditions=(reconciling.Set(conds.Types.PLANNED, conds.TRUE, conds.Reasons.SUCCEEDED, line),),
        ready_message=line,
    )


def _approval(request: Request, env_spec: environments.EnvironmentSpec, plan_id: str) -> reconciling.Set | None:
    """None when the plan may be applied now; else the Approved condition saying why not."""
    mode = env_spec.approval.mode
    if mode == "auto":
        return None
    given = request.spec.approved or request.annotations.get(APPROVE_ANNOTATION)
    if given == plan_id:
        return None
    if mode == "pullRequestReviews":
        return reconciling.Set(
            conds.Types.APPROVED,
            conds.FALSE,
            conds.Reasons.AWAITING_APPROVAL,
            "Waiting for approving pull request reviews.",
        )
    if given:
        return reconciling.Set(
            conds.Types.APPROVED,
            conds.FALSE,
            conds.Reasons.AWAITING_APPROVAL,
            f"The approval is for planId {given}, not for this plan ({plan_id}); it does nothing.",
        )
    return reconciling.Set(
        conds.Types.APPROVED,
        conds.FALSE,
        conds.Reasons.AWAITING_APPROVAL,
        f"Waiting for approval: set spec.approved to {plan_id} (or annotate {APPROVE_ANNOTATION}={plan_id}).",
    )


async def _apply(
    request: Request,
    env: indexing.Summary,
    env_spec: environments.EnvironmentSpec,
    source: sources.Source,
    planned: reconciling.Set,
) -> Outcome:
    memo, status = request.memo, request.status
    approved = reconciling.Set(
        conds.Types.APPROVED,
        conds.TRUE,
        conds.Reasons.SUCCEEDED,
        "Approved." if env_spec.approval.mode != "auto" else "Approval mode is auto.",
    )
    ref = status.output_ref
    if ref is None or ref.secret_prefix is None or ref.sha256 is None or status.revision is None:
        raise errors.ChkmateError("The plan's stored output is missing; plan again.", reason=conds.Reasons.APPLY_FAILED)
    commit = status.revision.rsplit(":", 1)[-1]
    files = await sources.files_at(memo, source, commit)
    config = sources.repo_config(files)
    inputs = await sources.inputs(
        memo, request.namespace, env.name, env_spec, source, config, destroy=request.spec.destroy
    )
    artifact = await storage.load_plan_file(memo.kube, request.namespace, ref.secret_prefix, ref.chunks, ref.sha256)
    env_body = await _environment_body(request, env.name)
    holder = f"Plan/{request.name}"
    runner = _runner(request, env.name, env_spec)
    state = await _lock(request, env.name, env_body, holder, inputs.timeout)
    keep_lock = False
    try:
        try:
            new_state = await runner.apply(phase="apply", files=files, state=state, inputs=inputs, artifact=artifact)
        except runners.RunFailed as e:
            # The Job ended without a result: whatever its apply changed is not in the state Secret.
            memo.metrics.applied(request.namespace, env.name, "failed")
            unsaved = type(e)(f"{e.message} The state Secret was not updated: check what the apply changed.")
            return await _failed(request, status.revision, conds.Types.APPLIED, unsaved, extra=(planned, approved))
        except terraform.ApplyFailed as e:
            if e.state is not None:  # never lose state: keep what the failed apply wrote
                await storage.save_state(
                    memo.kube,
                    request.namespace,
                    env.name,
                    env_body,
                    storage.State(terraform=e.state, builtin=state.builtin),
                )
            memo.metrics.applied(request.namespace, env.name, "failed")
            return await _failed(request, status.revision, conds.Types.APPLIED, e, extra=(planned, approved))
        await storage.save_state(memo.kube, request.namespace, env.name, env_body, new_state)
    except asyncio.CancelledError:
        keep_lock = runner.detached  # its Job runs on: the restarted operator waits for it, holding the lock
        raise
    finally:
        if not keep_lock:
            await storage.release_lock(memo.kube, request.namespace, env.name, holder)
    memo.metrics.applied(request.namespace, env.name, "succeeded")
    now = conds.timestamp(request.now)
    applied = status.model_copy(update={"phase": "Applied", "applied_at": now, "finished_at": now})
    request.logger.info(f"Applied {status.revision} (planId {status.plan_id}).")
    await pull_requests.applied(request, applied)
    message = f"Applied {status.revision}."
    return Outcome(
        status=applied,
        conditions=(
            planned,
            approved,
            reconciling.Set(conds.Types.APPLIED, conds.TRUE, conds.Reasons.SUCCEEDED, message),
        ),
        ready_message=message,
    )


async def _failed(
    request: Request,
    revision: str | None,
    condition: str,
    error: errors.ChkmateError,
    extra: tuple[reconciling.Set, ...] = (),
) -> Outcome:
    failed = request.status.model_copy(
        update={"phase": "Failed", "revision": revision, "finished_at": conds.timestamp(request.now)}
    )
    request.logger.error(f"The run failed: {error.message}")
    await pull_requests.failed(request, revision, condition, error)
    return Outcome(
        status=failed,
        conditions=(
            *extra,
            reconciling.Set(condition, conds.FALSE, error.reason, error.message),
            reconciling.Set(conds.Types.STALLED, conds.TRUE, error.reason, error.message),
        ),
    )


def _runner(request: Request, environment: str, env_spec: environments.EnvironmentSpec) -> runners.Runner:
    """Where this Plan's runs happen (spec.runner of its Environment); a Job runner's Jobs are the Plan's."""
    memo = request.memo
    return runners.runner(
        memo.settings,
        memo.kube,
        request.namespace,
        spec=env_spec.runner,
        owner=request.body,
        environment=environment,
        plan_name=request.name,
        logger=request.logger,
    )


async def _lock(
    request: Request, env: str, env_body: dict[str, Any], holder: str, timeout: float
) -> storage.State:
    """Take the state lock; the state as the lock found it."""
    try:
        return await storage.acquire_lock(
            request.memo.kube,
            request.namespace,
            env,
            env_body,
            holder,
            now=request.now,
            stale_after=datetime.timedelta(seconds=timeout),
        )
    except storage.Locked as e:
        await pull_requests.locked(request, env, e)
        raise


async def _environment_body(request: Request, name: str) -> dict[str, Any]:
    found = await request.memo.kube.get(kube.ours(kinds.ENVIRONMENT.plural), request.namespace, name)
    if found is None:
        raise errors.DependencyNotFound(f"Environment {name!r} is gone.")
    return found


def _parse_time(text: str | None) -> datetime.datetime:
    if not text:
        return datetime.datetime.now(datetime.UTC)
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _commit(revision: str | None) -> str | None:
    return revision.rsplit(":", 1)[-1] if revision else None


def _summary_line(status: plans.PlanStatus) -> str:
    summary = status.summary or environments.PlanSummary()
    return plan_logic.Summary(summary.add, summary.change, summary.destroy).line()


def _with_status(request: Request, status: plans.PlanStatus) -> Request:
    return dataclasses.replace(request, status=status)


def _terminal_conditions(status: plans.PlanStatus) -> tuple[reconciling.Set, ...]:
    """A finished plan keeps its conditions; a failed one stays Stalled (only a new plan can do better)."""
    if status.phase != "Failed":
        return ()
    failure = next(
        (
            c
            for c in status.conditions
            if c.type in (conds.Types.PLANNED, conds.Types.APPLIED) and c.status == conds.FALSE
        ),
        None,
    )
    if failure is None:
        return ()
    return (reconciling.Set(conds.Types.STALLED, conds.TRUE, failure.reason, failure.message),)


RECONCILER = reconciling.Reconciler(
    info=kinds.PLAN,
    spec_model=plans.PlanSpec,
    status_model=plans.PlanStatus,
    depends_on=(conds.Types.PLANNED,),
    step=reconcile_plan,
)


def register(registry: kopf.OperatorRegistry) -> None:
    registering.reconcile_on_changes(registry, RECONCILER, handler_id="reconcile_plan")
