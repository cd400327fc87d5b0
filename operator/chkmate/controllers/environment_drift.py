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
* acts on infrastructure drift as ``spec.driftDetection.action`` says: Notify does nothing more; Reconcile
  creates a Plan of the last applied revision, which follows the approval mode; Adopt applies the refresh-only
  plan under the state lock and opens a pull request describing the code changes needed.

The main reconciler (:mod:`chkmate.controllers.environments`) writes the same status. The wrapper diffs against
the status the daemon's body had when the check began, which may miss the main reconciler's last write: every
outcome here is built on the status as stored at the end of the check (:func:`_outcome`).

Runs go through the Environment's runner (:func:`runners.runner`): subprocesses, or Kubernetes Jobs owned by the
Environment (phases ``drift``, ``refresh``, ``adopt-plan``, ``adopt-apply``), deleted once their result is read.

I/O: git and GitHub, the engine (subprocesses) or runner Jobs, Kubernetes (the Environment, Plans, the state
Secret, outputs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
from typing import Any

import kopf

from chkmate import API_VERSION, GROUP, VERSION, errors
from chkmate.api import conditions as conds
from chkmate.api import environments, kinds
from chkmate.api import plans as plan_models
from chkmate.clients import git, github, kube, storage, terraform
from chkmate.controllers import (
    drift_schedule,
    indexing,
    memos,
    plan_runs,
    plans,
    reconciling,
    registering,
    runners,
    sources,
)
from chkmate.domain import drift as drift_logic
from chkmate.domain import sync
from chkmate.domain.drift import Findings

Request = reconciling.Request[environments.EnvironmentSpec, environments.EnvironmentStatus]
Outcome = reconciling.Outcome[environments.EnvironmentStatus]

# Kept in status.drift.resources: statuses stay small whatever drifted.
LISTED_IN_STATUS = 100
REPORT_FILE = ".chkmate/drift/{environment}.md"  # committed on the Adopt pull request's branch
ADOPT_BRANCH = "chkmate/drift/{environment}-{digest}"


def drifted_condition(findings: Findings, note: str = "") -> reconciling.Set:
    status, reason = drift_logic.condition(findings)
    return reconciling.Set(conds.Types.DRIFTED, status, reason, f"{drift_logic.summarize(findings)} {note}".strip())


# The reconcile step.


@dataclasses.dataclass(frozen=True)
class _Run:
    """What a check read, for the action that follows it."""

    source: sources.Source
    files: dict[str, bytes]
    inputs: plan_runs.Inputs
    state_version: str | None  # the state Secret's resourceVersion when the check began


@dataclasses.dataclass(frozen=True)
class _StateSeen:
    lock: storage.Lock | None
    version: str | None


async def check_drift(request: Request) -> Outcome:
    """The reconcile step: skip, or check, report and act (see the module's docstring)."""
    stored = await _stored(request)
    if not request.spec.drift_detection.enabled:
        return _outcome(request, stored, drift=None, drifted=None)
    if request.spec.suspend or stored.last_applied_revision is None:
        return _outcome(request, stored, drift=stored.drift, drifted=_current(stored))
    seen = await _state_seen(request)
    if seen.lock is not None:
        return _locked(request, await _stored(request), seen.lock)
    try:
        run, findings = await _examine(request, stored.last_applied_revision, seen)
        await _record(request, findings)
    except errors.ChkmateError as e:
        return _failed(request, await _stored(request), e)
    note = await _act(request, run, findings)
    return _checked(request, await _stored(request), findings, note)


async def _stored(request: Request) -> environments.EnvironmentStatus:
    found = await request.memo.kube.get(kube.ours(kinds.ENVIRONMENT.plural), request.namespace, request.name)
    if found is None:
        raise errors.DependencyNotFound(f"Environment {request.name!r} is gone.")
    return reconciling.load_status(environments.EnvironmentStatus, found.get("status"))


async def _state_seen(request: Request) -> _StateSeen:
    """Who holds the state lock, read without taking it (taking it would write the state Secret), and the state
    Secret's version (an action waits when a plan applied while the check ran)."""
    secret = await request.memo.kube.get(kube.SECRETS, request.namespace, storage.state_secret(request.name))
    metadata = (secret or {}).get("metadata") or {}
    lock = storage.parse_lock((metadata.get("annotations") or {}).get(storage.LOCK_ANNOTATION))
    return _StateSeen(lock, metadata.get("resourceVersion"))


async def _examine(request: Request, revision: str, seen: _StateSeen) -> tuple[_Run, Findings]:
    memo, applied = request.memo, drift_logic.commit_of(revision)
    source = await sources.resolve(memo, request.indexes, request.namespace, request.spec)
    head = await sources.head(memo, source)
    files = await sources.files_at(memo, source, applied)
    config = sources.repo_config(files)
    inputs = await sources.inputs(memo, request.namespace, request.name, request.spec, source, config)
    state = await storage.load_state(memo.kube, request.namespace, request.name)
    runner = _runner(request)
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
    return _Run(source, files, inputs, seen.version), findings


def _runner(request: Request) -> runners.Runner:
    """Where this check's runs happen: Jobs of a check are the Environment's, told apart by the check's time and
    deleted once read (checks never resume after a restart: the next check starts afresh)."""
    memo = request.memo
    return runners.runner(
        memo.settings,
        memo.kube,
        request.namespace,
        spec=request.spec.runner,
        owner=request.body,
        environment=request.name,
        salt=request.now.isoformat(),
        keep=False,
        logger=request.logger,
    )


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


# Actions.


async def _act(request: Request, run: _Run, findings: Findings) -> str:
    """Carry out ``spec.driftDetection.action`` on infrastructure drift; a sentence for the Drifted message."""
    action = request.spec.drift_detection.action
    if action == "Notify" or not findings.infrastructure:
        return ""
    if (await _state_seen(request)).version != run.state_version:
        return f"{action} waits for the next check: the state changed during this one (a plan applied)."
    try:
        if action == "Reconcile":
            return await _reconcile(request, findings)
        return await _adopt(request, run, findings)
    except errors.ChkmateError as e:
        request.logger.error(f"The drift action {action} failed: {e.message}")
        return f"{action} failed: {e.message}"


async def _reconcile(request: Request, findings: Findings) -> str:
    busy = _plan_in_flight(request)
    if busy is not None:
        return f"Reconcile waits for Plan {busy!r} (running or waiting for approval)."
    name = f"{request.name}-{findings.applied_commit[: drift_logic.PLAN_NAME_SHA]}-reconcile-{request.now:%Y%m%d%H%M%S}"
    await request.memo.kube.create(
        kube.ours(kinds.PLAN.plural),
        request.namespace,
        {
            "apiVersion": API_VERSION,
            "kind": kinds.PLAN.kind,
            "metadata": {
                "name": name,
                "namespace": request.namespace,
                "labels": {"chkmate.dev/environment": request.name, "chkmate.dev/drift-action": "reconcile"},
                "ownerReferences": [storage.owner_reference(request.body)],
            },
            "spec": {
                "environmentRef": {"name": request.name},
                "revision": findings.revision,
                "branch": findings.revision.split("@", 1)[0],
            },
        },
    )
    request.logger.info(f"Created Plan {name!r} of {findings.revision} to undo the drift.")
    return (
        f"Reconcile: created Plan {name!r} of the last applied revision; it follows the approval mode "
        f"({request.spec.approval.mode})."
    )


def _plan_in_flight(request: Request) -> str | None:
    """A branch plan of this Environment not finished yet (reconciling alongside it would race it)."""
    for plan in indexing.referring(request.indexes, kinds.PLAN, "environment", request.namespace, request.name):
        spec = plan.spec
        if (
            not spec.get("pullRequest")
            and spec.get("kind", "plan") == "plan"
            and plan.status.get("phase") not in plans.TERMINAL
        ):
            return plan.name
    return None


async def _adopt(request: Request, run: _Run, findings: Findings) -> str:
    source = run.source
    branch = ADOPT_BRANCH.format(environment=request.name, digest=drift_logic.adopt_digest(findings))
    pulls = source.access.client.pulls(source.owner, source.name)
    existing = await pulls.find_open(branch, source.branch)
    if existing is not None:
        return f"Adopted: pull request #{existing.number} describes the code changes needed."
    if f"refs/heads/{branch}" in await request.memo.mirrors.ls_remote(source.remote):
        return (
            f"Not adopted again: the pull request from {branch} was closed (delete the branch to adopt this "
            "drift again)."
        )
    adopted = await _adopt_state(request, run, findings.revision)
    pull = await _propose(request, run, findings, branch)
    accepted = "live values accepted into the state" if adopted else "the builtin engine keeps no live values"
    return f"Adopted ({accepted}): pull request #{pull.number} describes the code changes needed."


async def _adopt_state(request: Request, run: _Run, revision: str) -> bool:
    """Apply a refresh-only plan under the state lock (False: the engine has no live values to accept)."""
    if run.inputs.engine == "builtin":
        return False
    memo, namespace, environment = request.memo, request.namespace, request.name
    holder = f"Drift/{environment}"
    await storage.acquire_lock(
        memo.kube,
        namespace,
        environment,
        request.body,
        holder,
        now=request.now,
        stale_after=datetime.timedelta(seconds=run.inputs.timeout),
    )
    runner = _runner(request)
    try:
        state = await storage.load_state(memo.kube, namespace, environment)
        refreshed = await runner.plan(
            phase="adopt-plan",
            revision=revision,
            files=run.files,
            state=state,
            inputs=run.inputs,
            refresh_only=True,
            lock=False,
        )
        try:
            new_state = await runner.apply(
                phase="adopt-apply", files=run.files, state=state, inputs=run.inputs, artifact=refreshed.artifact
            )
        except terraform.ApplyFailed as e:
            if e.state is not None:  # never lose state: keep what the failed apply wrote
                await storage.save_state(
                    memo.kube,
                    namespace,
                    environment,
                    request.body,
                    storage.State(terraform=e.state, builtin=state.builtin),
                )
            raise
        await storage.save_state(memo.kube, namespace, environment, request.body, new_state)
    finally:
        await storage.release_lock(memo.kube, namespace, environment, holder)
    request.logger.info(f"Accepted the live values into the state of {environment!r} (refresh-only apply).")
    return True


async def _propose(request: Request, run: _Run, findings: Findings, branch: str) -> github.PullRequest:
    """Commit the description on the branch head, push it as ``branch`` (never forced) and open the pull request."""
    source, mirrors, settings = run.source, request.memo.mirrors, request.memo.settings
    inputs = run.inputs
    secrets = [*inputs.env.values(), *(inputs.vars[n] for n in inputs.sensitive_vars if n in inputs.vars)]
    body = drift_logic.pull_request_body(request.name, findings, secrets=secrets)
    change = git.Change(write={REPORT_FILE.format(environment=request.name): body.encode()})
    async with mirrors.lock(source.remote):
        commit = await mirrors.commit(
            source.remote,
            parent=findings.head,
            change=change,
            message=f"Describe the drift of {request.name} adopted into its state\n",
            author=git.Author(settings.commit_author_name, settings.commit_author_email),
        )
        await mirrors.push(source.remote, commit, branch)
    pull = await source.access.client.pulls(source.owner, source.name).open(
        head=branch, base=source.branch, title=f"Drift adopted in {request.name}: update the code", body=body
    )
    request.logger.info(f"Opened pull request #{pull.number} describing the drift of {request.name!r}.")
    return pull


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
