"""Environment drift: a second reconciler of Environments, run on a schedule, that compares what was applied with
the infrastructure (infrastructure drift) and with the branch (source drift), and acts as the spec says.

A kopf daemon per Environment (:func:`register`) runs :data:`RECONCILER` every ``spec.driftDetection.interval``.
Each Environment checks on its own phase of the interval (a hash of its uid), so checks spread over the interval
whenever the operator started, with ±5 % jitter on top; at most ``Settings.drift_concurrency`` checks run at once
operator-wide (:func:`drift_schedule.gate`). A check:

* is skipped while drift detection is disabled, the Environment is suspended, nothing was applied yet, or the
  state lock is held (a plan or apply runs; the ``Drifted`` message says so and the next turn tries again);
* plans the last applied revision, not the branch head, against the stored state with ``-lock=false``: any
  change is drift (``-detailed-exitcode`` semantics); a refresh-only plan names what changed outside Terraform
  (terraform and tofu; the builtin engine cannot tell). A check never writes the state;
* compares the branch head with ``status.lastAppliedRevision`` (source drift);
* writes ``status.drift`` (the last completed check), the ``Drifted`` condition (True: InfrastructureDrift or
  SourceAhead; False: NoDrift; Unknown: DriftCheckFailed when the check itself failed), an Event when Drifted
  changes, and the full output to the Plan ``<environment>-drift`` (``spec.kind: drift``, rewritten by every
  check: one per Environment);
* acts on infrastructure drift as ``spec.driftDetection.action`` says (:func:`drift_actions.act`): Notify does
  nothing more; Reconcile creates a Plan of the last applied revision, which follows the approval mode; Adopt
  applies the refresh-only plan under the state lock and opens a pull request describing the code changes needed.

The main reconciler (:mod:`chkmate.controllers.environments`) writes the same status. The wrapper diffs against
the status the daemon's body had when the check began, which may miss the main reconciler's last write: every
outcome here is built on the status as stored at the end of the check (:func:`_outcome`).

Runs go through the Environment's runner (:func:`drift_actions.check_runner`): subprocesses, or Kubernetes Jobs
owned by the Environment (phases ``drift``, ``refresh``, and Adopt's ``adopt-plan``, ``adopt-apply``), deleted
once their result is read.

I/O: git and GitHub, the engine (subprocesses) or runner Jobs, Kubernetes (the Environment, Plans, the state
Secret, outputs).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import kopf

from chkmate import API_VERSION, GROUP, VERSION, errors
from chkmate.api import conditions as conds
from chkmate.api import environments, kinds
from chkmate.api import plans as plan_models
from chkmate.clients import kube, storage
from chkmate.controllers import (
    drift_actions,
    drift_schedule,
    indexing,
    memos,
    reconciling,
    registering,
    sources,
)
from chkmate.domain import drift as drift_logic
from chkmate.domain import sync
from chkmate.domain.drift import Findings

Request = reconciling.Request[environments.EnvironmentSpec, environments.EnvironmentStatus]
Outcome = reconciling.Outcome[environments.EnvironmentStatus]

# Kept in status.drift.resources: statuses stay small whatever drifted.
LISTED_IN_STATUS = 100


def drifted_condition(findings: Findings, note: str = "") -> reconciling.Set:
    status, reason = drift_logic.condition(findings)
    return reconciling.Set(conds.Types.DRIFTED, status, reason, f"{drift_logic.summarize(findings)} {note}".strip())


# The reconcile step.


async def check_drift(request: Request) -> Outcome:
    """The reconcile step: skip, or check, report and act (see the module's docstring)."""
    stored = await _stored(request)
    if not request.spec.drift_detection.enabled:
        return _outcome(request, stored, drift=None, drifted=None)
    if request.spec.suspend or stored.last_applied_revision is None:
        return _outcome(request, stored, drift=stored.drift, drifted=_current(stored))
    seen = await drift_actions.state_seen(request)
    if seen.lock is not None:
        return _locked(request, await _stored(request), seen.lock)
    try:
        run, findings = await _examine(request, stored.last_applied_revision, seen)
        await _record(request, findings)
    except errors.ChkmateError as e:
        return _failed(request, await _stored(request), e)
    note = await drift_actions.act(request, run, findings)
    return _checked(request, await _stored(request), findings, note)


async def _stored(request: Request) -> environments.EnvironmentStatus:
    found = await request.memo.kube.get(kube.ours(kinds.ENVIRONMENT.plural), request.namespace, request.name)
    if found is None:
        raise errors.DependencyNotFound(f"Environment {request.name!r} is gone.")
    return reconciling.load_status(environments.EnvironmentStatus, found.get("status"))


async def _examine(
    request: Request, revision: str, seen: drift_actions.StateSeen
) -> tuple[drift_actions.Run, Findings]:
    memo, applied = request.memo, drift_logic.commit_of(revision)
    source = await sources.resolve(memo, request.indexes, request.namespace, request.spec)
    head = await sources.head(memo, source)
    files = await sources.files_at(memo, source, applied)
    config = sources.repo_config(files)
    inputs = await sources.inputs(memo, request.namespace, request.name, request.spec, source, config)
    state = await storage.load_state(memo.kube, request.namespace, request.name)
    runner = drift_actions.check_runner(request)
    planned = await runner.plan(phase="drift", revision=revision, files=files, state=state, inputs=inputs, lock=False)
    outside = None
    if inputs.engine != "builtin":
        outside = (
            await runner.plan(
                phase="refresh",
                revision=revision,
                files=files,
                state=state,
                inputs=inputs,
                refresh_only=True,
                lock=False,
            )
        ).result
    descends = head == applied or await memo.mirrors.is_ancestor(source.remote, applied, head)
    findings = Findings(
        revision=revision,
        head=head,
        planned=planned.result,
        outside=outside,
        plan_id=planned.plan_id,
        head_descends=descends,
        template=_template_divergence(request),
    )
    return drift_actions.Run(source, files, inputs, seen.version), findings


def _template_divergence(request: Request) -> str | None:
    """Why the Environment's linked Template differs from the repository beyond the link's direction, as the
    link itself reports it (its three-way decision is the one source of truth); None without a link."""
    ref = request.spec.link_ref
    link = indexing.lookup(request.indexes, kinds.TEMPLATE_REPO_LINK, request.namespace, ref.name) if ref else None
    if link is None or not sync.diverged(link.ready, link.ready_reason):
        return None
    return (
        f"TemplateRepoLink {link.name!r} holds a Template that differs from the repository beyond what its "
        f"direction explains ({link.ready_reason}): {link.ready_message}"
    )


def drift_plan_name(environment: str) -> str:
    return f"{environment}-drift"


async def _record(request: Request, findings: Findings) -> None:
    """Write the report to the Environment's drift Plan (created on first use), then let the Plan controller,
    which owns the Plan's conditions, reconcile it."""
    client, namespace, name = request.memo.kube, request.namespace, drift_plan_name(request.name)
    resource = kube.ours(kinds.PLAN.plural)
    spec = {
        "environmentRef": {"name": request.name},
        "revision": findings.revision,
        "branch": findings.revision.split("@", 1)[0],
        "kind": "drift",
    }
    plan = await client.get(resource, namespace, name)
    if plan is None:
        plan = await client.create(
            resource,
            namespace,
            {
                "apiVersion": API_VERSION,
                "kind": kinds.PLAN.kind,
                "spec": spec,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"chkmate.dev/environment": request.name},
                    "ownerReferences": [storage.owner_reference(request.body)],
                },
            },
        )
    elif plan.get("spec", {}).get("revision") != findings.revision:
        plan = await client.patch(resource, namespace, name, {"spec": spec})
    output = await storage.save_plan_output(
        client,
        namespace,
        name,
        plan,
        text=drift_logic.report_text(findings),
        plan_file=None,
        labels={"chkmate.dev/plan": name, "chkmate.dev/environment": request.name},
    )
    now, counts = conds.timestamp(request.now), findings.planned.summary
    status = plan_models.PlanStatus(
        phase="Planned" if findings.infrastructure else "NoChanges",
        revision=findings.revision,
        plan_id=findings.plan_id,
        summary=environments.PlanSummary(add=counts.add, change=counts.change, destroy=counts.destroy),
        output_ref=plan_models.OutputRef(
            config_map=output.config_map, secret_prefix=output.secret_prefix, chunks=output.chunks, sha256=output.sha256
        ),
        started_at=now,
        finished_at=now,
    ).to_wire()
    status.pop("conditions", None)
    await client.patch(resource, namespace, name, {"status": status}, status=True)
    await client.patch(
        resource,
        namespace,
        name,
        {"metadata": {"annotations": {reconciling.REQUESTED_AT_ANNOTATION: request.now.isoformat()}}},
    )


# Outcomes.


def _checked(request: Request, stored: environments.EnvironmentStatus, findings: Findings, note: str) -> Outcome:
    request.memo.metrics.drifted(request.namespace, request.name, findings.infrastructure)
    drifted = drifted_condition(findings, note)
    _announce(request, stored, drifted)
    drift = environments.DriftStatus(
        detected=findings.infrastructure or findings.source,
        checked_at=conds.timestamp(request.now),
        summary=drift_logic.summarize(findings),
        resources=findings.resources[:LISTED_IN_STATUS],
    )
    return _outcome(request, stored, drift=drift, drifted=drifted)


def _failed(request: Request, stored: environments.EnvironmentStatus, error: errors.ChkmateError) -> Outcome:
    """Unknown, not "no drift": ``status.drift`` keeps the last completed check."""
    request.logger.warning(f"The drift check failed: {error.message}")
    drifted = reconciling.Set(
        conds.Types.DRIFTED,
        conds.UNKNOWN,
        conds.Reasons.DRIFT_CHECK_FAILED,
        f"The drift check failed ({error.reason}): {error.message}",
    )
    _announce(request, stored, drifted)
    return _outcome(request, stored, drift=stored.drift, drifted=drifted)


def _locked(request: Request, stored: environments.EnvironmentStatus, lock: storage.Lock) -> Outcome:
    """The last result stays; the message says why this turn did not check."""
    previous, last = _current(stored), stored.drift
    message = (
        f"Not checked at {conds.timestamp(request.now)}: the state is locked by {lock.holder} (a plan or "
        "apply is running); the next turn checks again."
    )
    if last is not None and last.checked_at:
        message += f" The check of {last.checked_at} found: {last.summary}"
    status, reason = (previous.status, previous.reason) if previous else (conds.UNKNOWN, conds.Reasons.LOCKED)
    return _outcome(request, stored, drift=last, drifted=reconciling.Set(conds.Types.DRIFTED, status, reason, message))


def _current(stored: environments.EnvironmentStatus) -> reconciling.Set | None:
    found = conds.find(stored.conditions, conds.Types.DRIFTED)
    return None if found is None else reconciling.Set(found.type, found.status, found.reason, found.message)


def _announce(request: Request, stored: environments.EnvironmentStatus, drifted: reconciling.Set) -> None:
    """An Event when Drifted changes status or reason (absent counts as NoDrift)."""
    before = conds.find(stored.conditions, conds.Types.DRIFTED)
    was = (before.status, before.reason) if before is not None else (conds.FALSE, conds.Reasons.NO_DRIFT)
    if was == (drifted.status, drifted.reason):
        return
    if drifted.status == conds.FALSE:
        kopf.info(request.body, reason=drifted.reason, message=drifted.message)
    else:
        kopf.warn(request.body, reason=drifted.reason, message=drifted.message)


def _outcome(
    request: Request,
    stored: environments.EnvironmentStatus,
    *,
    drift: environments.DriftStatus | None,
    drifted: reconciling.Set | None,
) -> Outcome:
    """``stored`` with this check's result: every stored condition is set again, so that the wrapper, which
    starts from the daemon's (possibly older) copy, writes what the main reconciler last wrote."""
    kept = tuple(
        reconciling.Set(c.type, c.status, c.reason, c.message)
        for c in stored.conditions
        if c.type not in (conds.Types.READY, conds.Types.DRIFTED)
    )
    sets = kept + ((drifted,) if drifted is not None else ())
    present = {s.type for s in sets} | {conds.Types.READY}
    gone = tuple(c.type for c in request.status.conditions if c.type not in present)
    planned = conds.find(stored.conditions, conds.Types.PLANNED)
    return Outcome(
        status=stored.model_copy(update={"drift": drift}),
        conditions=sets,
        removed=gone,
        ready_message=planned.message if planned is not None else "",
    )


RECONCILER = reconciling.Reconciler(
    info=kinds.ENVIRONMENT,
    spec_model=environments.EnvironmentSpec,
    status_model=environments.EnvironmentStatus,
    depends_on=(conds.Types.PLANNED, conds.Types.DRIFTED),
    step=check_drift,
)


def register(registry: kopf.OperatorRegistry) -> None:
    """A daemon per Environment runs :data:`RECONCILER` at the Environment's slots
    (:func:`drift_schedule.check_interval`).

    As :func:`registering.resync_periodically` does, with two differences: a check queues for the operator-wide
    :func:`gate` before it takes the Environment's lock (a queued check never holds up the Environment's other
    handlers), and kopf's own ``patch`` argument is left out (kopf 1.45 gives daemons one, applied only when they
    exit; ``resync_periodically`` passes it on beside its own, which raises a TypeError).
    """

    async def check_environment_drift(
        *,
        stopped: kopf.DaemonStopped,
        body: kopf.Body,
        meta: kopf.Meta,
        memo: kopf.Memo,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **kwargs: Any,
    ) -> None:
        ours = memos.of(memo)
        while not stopped:
            await stopped.wait(drift_schedule.check_interval(body))
            if stopped or meta.get("deletionTimestamp"):
                return
            ours_patch = kopf.Patch()
            async with drift_schedule.gate(ours):
                # Failures are recorded in the conditions by the reconciler; the next turn tries again.
                with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                    await RECONCILER(body=body, meta=meta, patch=ours_patch, logger=logger, memo=memo, **kwargs)
            if meta.name and meta.namespace:
                await registering.apply_patch(ours, kinds.ENVIRONMENT.plural, meta.namespace, meta.name, ours_patch)

    # No cancellation timeout, as in resync_periodically: kopf 1.45 would hold the operator's shutdown for it.
    kopf.daemon(
        GROUP,
        VERSION,
        kinds.ENVIRONMENT.plural,
        id="check_environment_drift",
        registry=registry,
        cancellation_timeout=None,
    )(check_environment_drift)
