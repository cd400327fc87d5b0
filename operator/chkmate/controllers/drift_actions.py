"""Carrying out ``spec.driftDetection.action`` after a drift check found infrastructure drift.

:func:`act` runs once a check of :mod:`chkmate.controllers.environment_drift` has recorded its findings, and returns
a sentence for the ``Drifted`` message: Notify does nothing more; Reconcile creates a Plan of the last applied
revision (``chkmate.dev/drift-action: reconcile``), which follows the approval mode, unless a branch Plan is still
in flight; Adopt applies a refresh-only plan under the state lock and opens a pull request, from a branch named
after the drift, that commits a description of the code changes needed (closed and not deleted: not adopted
again). Any action waits for the next check when the state changed while the check ran; an action that fails
is logged and named in the message, never raised (the check's findings stand).

Also here, as the check and its action both use them: what a check read (:class:`Run`), who holds the state lock
(:func:`state_seen`) and where the check's runs happen (:func:`check_runner`). Not here: the check itself, its
report and the Environment's status and conditions, which the check module writes.

I/O: git and GitHub (the Adopt branch and pull request), the engine (subprocesses) or runner Jobs, Kubernetes
(Plans, the state Secret and its lock).
"""

from __future__ import annotations

import dataclasses
import datetime

from chkmate import API_VERSION, errors
from chkmate.api import environments, kinds
from chkmate.clients import git, github, kube, storage, terraform
from chkmate.controllers import indexing, plan_runs, plans, reconciling, runners, sources
from chkmate.domain import drift as drift_logic
from chkmate.domain.drift import Findings

Request = reconciling.Request[environments.EnvironmentSpec, environments.EnvironmentStatus]

REPORT_FILE = ".chkmate/drift/{environment}.md"  # committed on the Adopt pull request's branch
ADOPT_BRANCH = "chkmate/drift/{environment}-{digest}"


# What a check and its action share.


@dataclasses.dataclass(frozen=True)
class Run:
    """What a check read, for the action that follows it."""

    source: sources.Source
    files: dict[str, bytes]
    inputs: plan_runs.Inputs
    state_version: str | None  # the state Secret's resourceVersion when the check began


@dataclasses.dataclass(frozen=True)
class StateSeen:
    lock: storage.Lock | None
    version: str | None


async def state_seen(request: Request) -> StateSeen:
    """Who holds the state lock, read without taking it (taking it would write the state Secret), and the state
    Secret's version (an action waits when a plan applied while the check ran)."""
    secret = await request.memo.kube.get(kube.SECRETS, request.namespace, storage.state_secret(request.name))
    metadata = (secret or {}).get("metadata") or {}
    lock = storage.parse_lock((metadata.get("annotations") or {}).get(storage.LOCK_ANNOTATION))
    return StateSeen(lock, metadata.get("resourceVersion"))


def check_runner(request: Request) -> runners.Runner:
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


# Actions.


async def act(request: Request, run: Run, findings: Findings) -> str:
    """Carry out ``spec.driftDetection.action`` on infrastructure drift; a sentence for the Drifted message."""
    action = request.spec.drift_detection.action
    if action == "Notify" or not findings.infrastructure:
        return ""
    if (await state_seen(request)).version != run.state_version:
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


async def _adopt(request: Request, run: Run, findings: Findings) -> str:
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


async def _adopt_state(request: Request, run: Run, revision: str) -> bool:
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
    runner = check_runner(request)
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


async def _propose(request: Request, run: Run, findings: Findings, branch: str) -> github.PullRequest:
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
