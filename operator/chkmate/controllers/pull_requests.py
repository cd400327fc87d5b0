"""Pull requests: a Plan of each head for the Environments that plan them, reported on the pull request; the
``/chkmate plan|apply`` commands; approvals that come from a merge or from reviews.

Webhook side (called by :mod:`chkmate.controllers.webhook_marks`): :func:`planned_for` picks the Environments that
plan a pull request (their own ``planOnPullRequest``, else their entry in the ``.chkmate.yml`` of the base branch at
its head, else yes); :func:`plan_head` creates the Plan
``<env>-pr<n>-<sha10>`` (revision ``<head_ref>@sha1:<sha>``, ``spec.pullRequest``), which plans without taking the
state lock; :func:`close` deletes a closed pull request's Plans and, on a merge, records the pull request on the
Environments of its base branch (:data:`MERGED_ANNOTATION`); :func:`command` runs comment commands from users with
write access (GitHub's collaborator permission) and answers the others with a comment. A GitHub error there fails
the delivery (500), so it can be redelivered. Pull requests from forks are never planned (as Atlantis does by
default: their code would run with the Environment's credentials); ``/chkmate`` commands on them say so.

Plan side (hooks of :mod:`chkmate.controllers.plans`): :func:`plan_source` makes a pull request's Plan read its head
branch; :func:`planned`, :func:`failed`, :func:`applied` and :func:`locked` report on the pull request with one
sticky comment per pull request and Environment, edited in place on every new head (found by its marker among our
own login's comments, split into parts when long, secrets redacted; a Plan of an older head never overwrites it),
and a check run ``chkmate/<env>`` with the same summary. :func:`approval` says when a Plan may be applied: a pull
request's Plan once ``/chkmate apply`` set its ``spec.approved``; a branch Plan of a merge commit at once with
``applyOnMerge``; with ``approval: pullRequestReviews``, a merge commit's Plan or a ``/chkmate apply`` only when the
pull request has ``requiredApprovals`` approving reviews from users with write access other than its author, read
from the API each time the Plan is reconciled or the command is given.

A check run fails on security findings at or above the Environment's ``chkmate.dev/checkFailSeverity`` annotation
(critical, high, medium or low; ``none`` never fails), :data:`DEFAULT_FAIL_SEVERITY` without one. Check runs need a
GitHub App connection (tokens cannot write them): with a token, only the comment is written. Reporting is best
effort: a GitHub error while reporting is logged and never fails the plan; the next head or ``/chkmate plan``
reports again.

I/O: GitHub (pull requests, comments, reviews, permissions, check runs), Kubernetes (Plans, Environments, the plan
output ConfigMap), git (the mirror: the base branch's ``.chkmate.yml``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pydantic

from chkmate import API_VERSION, errors
from chkmate.api import conditions as conds
from chkmate.api import environments, kinds, repoconfig
from chkmate.api import plans as plans_api
from chkmate.clients import github, kube, storage
from chkmate.controllers import access, indexing, memos, plan_runs, polling, reconciling, sources
from chkmate.domain import comments, redaction, security
from chkmate.domain import plans as plan_logic
from chkmate.webhooks import events

Request = reconciling.Request[plans_api.PlanSpec, plans_api.PlanStatus]

MERGED_ANNOTATION = "chkmate.dev/mergedPullRequests"  # on an Environment: its last merged pull requests, newest first
FAIL_SEVERITY_ANNOTATION = "chkmate.dev/checkFailSeverity"
DEFAULT_FAIL_SEVERITY: security.Severity = "high"
MERGED_KEPT = 5  # merges remembered per Environment: more than can land while one merge commit is planned
PLAN_NAME_SHA = plan_logic.PLAN_NAME_SHA
RUNNING = frozenset({None, "Pending", "Planning"})
DECIDING_REVIEWS = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})  # a later COMMENTED review changes nothing

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Head:
    """A pull request's head, as its Plans see it."""

    number: int
    head_ref: str
    head_sha: str
    base_ref: str

    @property
    def revision(self) -> str:
        return f"{self.head_ref}@sha1:{self.head_sha}"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An Environment deploying ``branch`` of the repository a delivery is about."""

    env: indexing.Summary
    branch: str

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def plans_pull_requests(self) -> bool | None:
        """The Environment's own ``planOnPullRequest``; None when it leaves it to ``.chkmate.yml`` (the schema has
        no default for it, so an Environment that does not say stores nothing, or null)."""
        value = self.env.spec.get("planOnPullRequest")
        return value if isinstance(value, bool) else None


def plan_name(environment: str, number: int, commit: str) -> str:
    return f"{environment}-pr{number}-{commit[:PLAN_NAME_SHA]}"


# (remote URL, branch) -> the branch's .chkmate.yml at its head, or why it could not be read
BaseConfigs = dict[tuple[str, str], repoconfig.RepoConfig | errors.ChkmateError | None]


async def planned_for(
    memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, candidates: Iterable[Candidate], base: str
) -> list[Candidate]:
    """The Environments that plan pull requests into ``base``: those saying so in ``planOnPullRequest``, and those
    leaving it unset unless their entry in the ``.chkmate.yml`` of ``base`` turns it off.

    The file of the base branch decides, not the pull request's own (which is not reviewed yet). It is read once
    per branch, from the mirror only (:func:`_base_config`). When it
    cannot be read or is invalid, those Environments are skipped with a log line: the Environment reports why
    (InvalidRepoConfig), and the delivery is not failed over it.
    """
    planned, configs = [], BaseConfigs()
    for candidate in candidates:
        own = candidate.plans_pull_requests
        if candidate.branch != base or own is False:
            continue
        if own is None:
            try:
                config = await _base_config(memo, indexes, namespace, candidate, configs)
            except errors.ChkmateError as e:
                logger.warning(
                    f"Pull requests into {base!r} are not planned for Environment {namespace}/{candidate.name}: "
                    f"{e.message}"
                )
                continue
            entry = config.environments.get(candidate.name) if config is not None else None
            if entry is not None and not entry.plan_on_pull_request:
                continue
        planned.append(candidate)
    return planned


async def _base_config(
    memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, candidate: Candidate, configs: BaseConfigs
) -> repoconfig.RepoConfig | None:
    """The ``.chkmate.yml`` at the head of the candidate's branch (None when absent), read once per branch.

    Only from what the mirror already holds (the commit the Environment was last marked with, else the branch as
    last fetched): this runs before the delivery is answered, and GitHub gives up on a delivery after 10 seconds.
    The Environment's own reconciles fetch its branch; before the first one, the default (plan) applies.
    """
    try:
        spec = environments.EnvironmentSpec.model_validate(candidate.env.spec)
    except pydantic.ValidationError as e:
        raise errors.InvalidSpec(f"Environment {candidate.name!r} has an invalid spec.") from e
    source = await sources.resolve(memo, indexes, namespace, spec)
    key = (source.remote.url, source.branch)
    if key not in configs:
        marked = sources.polled_commit(candidate.env.annotations.get(polling.POLLED_ANNOTATION), source.branch)
        try:
            mirrors = memo.mirrors
            known = marked is not None and await mirrors.has_commit(source.remote, marked)
            head = marked if known else await mirrors.head(source.remote, source.branch)
            files = await mirrors.read_tree(source.remote, head) if head is not None else None
            configs[key] = sources.repo_config(files or {})
        except errors.ChkmateError as e:
            configs[key] = e
    found = configs[key]
    if isinstance(found, errors.ChkmateError):
        raise found
    return found


# -- webhook side ------------------------------------------------------------------------------------------------


async def plan_head(memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, env: str, head: Head) -> None:
    """Create the Plan of ``head`` for ``env`` (once), and delete that pull request's idle Plans of older heads."""
    name = plan_name(env, head.number, head.head_sha)
    env_body = await memo.kube.get(kube.ours(kinds.ENVIRONMENT.plural), namespace, env)
    if env_body is None:
        return
    body = {
        "apiVersion": API_VERSION,
        "kind": kinds.PLAN.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"chkmate.dev/environment": env, "chkmate.dev/pullRequest": str(head.number)},
            "ownerReferences": [storage.owner_reference(env_body)],
        },
        "spec": {
            "environmentRef": {"name": env},
            "revision": head.revision,
            "branch": head.head_ref,
            "pullRequest": head.number,
        },
    }
    with contextlib.suppress(kube.Conflict):  # this head's Plan exists: a redelivery, or a reopened pull request
        await memo.kube.create(kube.ours(kinds.PLAN.plural), namespace, body)
    for older in _plans_of(indexes, namespace, {env}, head.number):
        if older.name != name and _idle(older):
            await _delete_plan(memo, namespace, older.name)


async def close(
    memo: memos.Memo,
    indexes: Mapping[str, Any],
    namespace: str,
    candidates: Sequence[Candidate],
    head: Head,
    *,
    merged: bool,
) -> None:
    """A closed pull request's Plans go; a merge is recorded on the Environments of its base branch."""
    names = {c.name for c in candidates}
    for plan in _plans_of(indexes, namespace, names, head.number):
        await _delete_plan(memo, namespace, plan.name)
    for name in names:
        memo.forget(_comment_lock(namespace, name, head.number))
    if merged:
        for candidate in candidates:
            if candidate.branch == head.base_ref:
                await _record_merge(memo, indexes, namespace, candidate.env, head.number)


async def command(
    memo: memos.Memo,
    indexes: Mapping[str, Any],
    namespace: str,
    connection: str,
    candidates: Sequence[Candidate],
    mark: events.CommentCommandMark,
) -> None:
    """Run ``/chkmate plan|apply [env]`` for a user with write access; otherwise answer why nothing happens.

    ``candidates`` are the Environments deploying a branch of the repository, reached through ``connection``.
    """
    reach = await access.github_access_for(
        memo, indexes, namespace, connection, field="the GitHubRepository's connectionRef", repository=mark.repo
    )
    owner, name = mark.repo.split("/", 1)
    pulls = reach.client.pulls(owner, name)
    asked = f"`/chkmate {mark.command}{' ' + mark.env if mark.env else ''}`"
    permission = await pulls.permission(mark.author)
    if permission not in github.WRITE_PERMISSIONS:
        await pulls.comment(
            mark.number,
            f"@{mark.author} {asked} needs write access to {mark.repo}, and you have "
            f"{permission} access: nothing was done.",
        )
        return
    pull = await pulls.get(mark.number)
    if pull is None or pull.state != "open":
        await pulls.comment(mark.number, f"@{mark.author} {asked} works on open pull requests only.")
        return
    if pull.fork:
        await pulls.comment(
            mark.number,
            f"@{mark.author} {asked}: pull requests from forks are never planned (their code would run with the "
            "Environment's credentials). Push the branch to this repository to get a plan.",
        )
        return
    planned = await planned_for(memo, indexes, namespace, candidates, pull.base_ref)
    targets = [c for c in planned if mark.env in (None, c.name)]
    if not targets:
        await pulls.comment(
            mark.number,
            f"@{mark.author} {asked}: no Environment plans pull requests into "
            f"`{pull.base_ref}`{' under that name' if mark.env else ''}.",
        )
        return
    head = Head(pull.number, pull.head_ref, pull.head_sha, pull.base_ref)
    for target in targets:
        if mark.command == "plan":
            await _replan(memo, indexes, namespace, target.name, head)
        else:
            await _apply_command(memo, namespace, pulls, target, pull, mark.author)


async def _replan(memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, env: str, head: Head) -> None:
    """Plan the head again: its finished Plan is replaced by a new one (a running one is left to finish)."""
    name = plan_name(env, head.number, head.head_sha)
    existing = await memo.kube.get(kube.ours(kinds.PLAN.plural), namespace, name)
    if existing is not None and existing.get("status", {}).get("phase") in RUNNING:
        return
    if existing is not None:
        await _delete_plan(memo, namespace, name)
    await plan_head(memo, indexes, namespace, env, head)


async def _apply_command(
    memo: memos.Memo,
    namespace: str,
    pulls: github.PullRequests,
    target: Candidate,
    pull: github.PullRequest,
    author: str,
) -> None:
    """Approve the Plan of the pull request's head (its planId), after the reviews the Environment asks for."""
    name = plan_name(target.name, pull.number, pull.head_sha)
    plan = await memo.kube.get(kube.ours(kinds.PLAN.plural), namespace, name) or {}
    status = plan.get("status", {})
    refusal = _not_appliable(target.name, status.get("phase"), pull.head_sha[:7])
    if refusal is None:
        try:
            spec = environments.EnvironmentSpec.model_validate(target.env.spec)
        except pydantic.ValidationError:
            refusal = f"Environment `{target.name}` has an invalid spec."
        else:
            refusal = await _missing_reviews(pulls, pull, spec)
    if refusal is not None:
        await pulls.comment(pull.number, f"@{author} `/chkmate apply {target.name}`: {refusal}")
        return
    patch = {"spec": {"approved": status["planId"]}}
    await memo.kube.patch(kube.ours(kinds.PLAN.plural), namespace, name, patch)


def _not_appliable(env: str, phase: str | None, short: str) -> str | None:
    if phase == "Planned":
        return None
    if phase in RUNNING:
        return f"the plan of `{short}` is not ready yet; comment again once its result is posted."
    return {
        "NoChanges": f"the plan of `{short}` has no changes: nothing to apply.",
        "Applied": f"the plan of `{short}` is already applied.",
        "Failed": f"the plan of `{short}` failed; push a fix or comment `/chkmate plan {env}`.",
    }.get(phase or "", f"there is no plan of `{short}`; comment `/chkmate plan {env}` first.")


async def _missing_reviews(
    pulls: github.PullRequests, pull: github.PullRequest, spec: environments.EnvironmentSpec
) -> str | None:
    if spec.approval.mode != "pullRequestReviews":
        return None
    have, need = await approvals(pulls, pull), spec.approval.required_approvals or 1
    if have >= need:
        return None
    return (
        f"this Environment needs {need} approving review{'s' if need > 1 else ''} from users with write access "
        f"other than the author, and the pull request has {have}."
    )


async def _record_merge(
    memo: memos.Memo, indexes: Mapping[str, Any], namespace: str, env: indexing.Summary, number: int
) -> None:
    merged = [number, *(n for n in _merged(env.annotations) if n != number)][:MERGED_KEPT]
    patch = {"metadata": {"annotations": {MERGED_ANNOTATION: ",".join(map(str, merged))}}}
    await memo.kube.patch(kube.ours(kinds.ENVIRONMENT.plural), namespace, env.name, patch)
    # The merge commit's Plan may be waiting already (the push can arrive first): let it decide again.
    for plan in indexing.referring(indexes, kinds.PLAN, "environment", namespace, env.name):
        if (
            not plan.spec.get("pullRequest")
            and plan.status.get("phase") == "Planned"
        ):
            poke = {"metadata": {"annotations": {reconciling.REQUESTED_AT_ANNOTATION: f"merged-pr{number}"}}}
            with contextlib.suppress(kube.NotFound):
                await memo.kube.patch(kube.ours(kinds.PLAN.plural), namespace, plan.name, poke)


# -- plan side -----------------------------------------------------------------------------------------------------


def plan_source(source: sources.Source, spec: plans_api.PlanSpec) -> sources.Source:
    """Where a Plan reads its code: a pull request's Plan reads (and fetches) its head branch."""
    if spec.pull_request is None or not spec.branch:
        return source
    return dataclasses.replace(source, branch=spec.branch)


async def approval(
    request: Request, env_spec: environments.EnvironmentSpec, plan_id: str, decided: reconciling.Set | None
) -> reconciling.Set | None:
    """None when the Plan may be applied now, else the Approved condition saying why not.

    ``decided`` is the Environment's own approval decision (mode auto or manual, ``spec.approved``).
    """
    if request.spec.pull_request is not None:
        if request.spec.approved == plan_id:
            return None
        return reconciling.Set(
            conds.Types.APPROVED,
            conds.FALSE,
            conds.Reasons.AWAITING_APPROVAL,
            f"A pull request's plan is applied by a `/chkmate apply {request.spec.environment_ref.name}` comment on "
            f"#{request.spec.pull_request} from a user with write access.",
        )
    if decided is None or not (env_spec.apply_on_merge or env_spec.approval.mode == "pullRequestReviews"):
        return decided
    found = await _merged_pull_request(request)
    if found is None:
        return decided
    pulls, pull = found
    if env_spec.approval.mode == "pullRequestReviews":
        have, need = await approvals(pulls, pull), env_spec.approval.required_approvals or 1
        if have < need:
            return reconciling.Set(
                conds.Types.APPROVED,
                conds.FALSE,
                conds.Reasons.AWAITING_APPROVAL,
                f"Pull request #{pull.number} has {have} of {need} approving reviews from users with write access "
                "(its author's own do not count).",
            )
    request.logger.info(f"{request.status.revision} is the merge of pull request #{pull.number}: approved.")
    return None


async def planned(
    request: Request,
    source: sources.Source,
    status: plans_api.PlanStatus,
    plan_text: str,
    report: security.Report,
    inputs: plan_runs.Inputs,
) -> plans_api.PlanStatus:
    """Report a pull request's finished plan; the status with the comment and check run ids."""
    if request.spec.pull_request is None:
        return status
    secrets = [*redaction.secrets_in(inputs.env), *(v for k, v in inputs.vars.items() if k in inputs.sensitive_vars)]
    threshold = _threshold(request)
    failing = threshold is not None and security.fails(report, threshold)
    details = security.markdown(report) if report.findings else ""
    footer = "" if status.phase == "NoChanges" else _footer(request.spec.environment_ref.name)
    with _best_effort(request, "report the plan on the pull request"):
        comment_id, check_id = await _report(
            request,
            source,
            status,
            "planned",
            plan_text,
            secrets,
            details=details,
            footer=footer,
            conclusion="failure" if failing else "success",
        )
        return status.model_copy(update={"comment_id": comment_id, "check_run_id": check_id})
    return status


async def failed(request: Request, revision: str | None, condition: str, error: errors.ChkmateError) -> None:
    """A pull request's plan or apply failed: say so on it; a merge commit's apply failed: comment on the merged
    pull request."""
    with _best_effort(request, "report the failure on the pull request"):
        status = request.status.model_copy(update={"revision": revision})
        if request.spec.pull_request is not None:
            state: comments.Status = "failed" if condition == conds.Types.PLANNED else "apply-failed"
            await _report(request, await _source(request), status, state, error.message, (), conclusion="failure")
            return
        if condition != conds.Types.APPLIED or revision is None:
            return
        found = await _merged_pull_request(request)
        if found is not None:
            pulls, pull = found
            env = request.spec.environment_ref.name
            await pulls.comment(pull.number, comments.apply_failed_comment(env, revision, error.message, ()))


async def applied(request: Request, status: plans_api.PlanStatus) -> None:
    """A pull request's plan was applied (``/chkmate apply``): its sticky comment says so."""
    if request.spec.pull_request is None:
        return
    with _best_effort(request, "report the apply on the pull request"):
        text = await _plan_text(request.memo, request.namespace, status)
        await _report(request, await _source(request), status, "applied", text, (), conclusion=None)


async def locked(request: Request, env: str, error: storage.Locked) -> None:
    """A pull request's apply waits for the state lock: its sticky comment says who holds it."""
    if request.spec.pull_request is None:
        return
    with _best_effort(request, "report the lock on the pull request"):
        source = await _source(request)
        pulls = source.access.client.pulls(source.owner, source.name)
        async with request.memo.lock(_comment_lock(request.namespace, env, request.spec.pull_request)):
            await _sticky(
                pulls,
                request.spec.pull_request,
                env,
                [comments.locked_comment(env, _holder(env, error))],
                await source.access.client.own_login(),
            )


async def approvals(pulls: github.PullRequests, pull: github.PullRequest) -> int:
    """Approving reviews that count: the latest deciding review of each user with write access, author excluded."""
    counted = 0
    for login in approvers(await pulls.reviews(pull.number), pull.author):
        if await pulls.permission(login) in github.WRITE_PERMISSIONS:
            counted += 1
    return counted


def approvers(reviews: Iterable[github.Review], author: str) -> list[str]:
    """Users whose latest approving, change-requesting or dismissed review approves; never the author."""
    latest: dict[str, str] = {}
    for review in reviews:
        if review.state in DECIDING_REVIEWS:
            latest[review.author.lower()] = review.state
    return sorted(login for login, state in latest.items() if state == "APPROVED" and login != author.lower())


async def _report(
    request: Request,
    source: sources.Source,
    status: plans_api.PlanStatus,
    state: comments.Status,
    plan_text: str,
    secrets: Iterable[str],
    *,
    details: str = "",
    footer: str = "",
    conclusion: github.CheckConclusion | None,
) -> tuple[int | None, int | None]:
    """Write the sticky comment (unless the pull request has a newer head) and the check run."""
    number, env = request.spec.pull_request, request.spec.environment_ref.name
    assert number is not None  # only pull requests' plans are reported
    revision = status.revision or request.spec.revision or ""
    commit = revision.rpartition(":")[2]
    client = source.access.client
    pulls = client.pulls(source.owner, source.name)
    secrets = tuple(secrets)
    lines = _lines(status)
    comment_id = None
    async with request.memo.lock(_comment_lock(request.namespace, env, number)):
        pull = await pulls.get(number)
        if pull is not None and pull.state == "open" and pull.head_sha == commit:
            bodies = comments.plan_comment(
                env, revision, *lines, plan_text, status=state, secrets=secrets, details=details, footer=footer
            )
            comment_id = await _sticky(pulls, number, env, bodies, await client.own_login())
    if conclusion is None or not isinstance(client.auth, github.AppAuth):
        return comment_id, request.status.check_run_id
    output = comments.check_run_output(env, *lines, plan_text, secrets=secrets)
    if request.status.check_run_id is not None:
        await pulls.update_check_run(request.status.check_run_id, conclusion=conclusion, output=output)
        return comment_id, request.status.check_run_id
    name = comments.check_run_name(env)
    return comment_id, await pulls.create_check_run(name=name, head_sha=commit, conclusion=conclusion, output=output)


async def _sticky(pulls: github.PullRequests, number: int, env: str, bodies: Sequence[str], own: str) -> int:
    """Edit our comment(s) for ``env`` in place (creating missing parts, deleting extra ones); the first one's id."""
    parts: dict[int, github.IssueComment] = {}
    extra: list[github.IssueComment] = []
    for comment in await pulls.comments(number):
        part = comments.find_part(comment.body)
        if comment.author != own or part is None or comments.find_marker(comment.body) != env:
            continue
        if part in parts or part > len(bodies):
            extra.append(comment)
        else:
            parts[part] = comment
    ids = []
    for part, body in enumerate(bodies, 1):
        found = parts.get(part)
        if found is None:
            ids.append(await pulls.comment(number, body))
            continue
        if found.body.replace("\r\n", "\n") != body:
            await pulls.edit_comment(found.id, body)
        ids.append(found.id)
    for comment in extra:
        await pulls.delete_comment(comment.id)
    return ids[0]


def _lines(status: plans_api.PlanStatus) -> tuple[str, str, str]:
    """The summary, cost and security lines of the comment and the check run."""
    counts = status.summary or environments.PlanSummary()
    summary = plan_logic.Summary(counts.add, counts.change, counts.destroy).line() if status.summary else ""
    cost = ""
    if status.cost is not None and status.cost.monthly is not None:
        unpriced = f"; {status.cost.unpriced} not priced" if status.cost.unpriced else ""
        cost = f"{status.cost.monthly} per month ({status.cost.delta or '+$0.00'}){unpriced}"
    found = status.security
    if found is None or found.score is None:
        return summary, cost, ""
    findings = [
        f"{n} {s}"
        for s, n in (("critical", found.critical), ("high", found.high), ("medium", found.medium), ("low", found.low))
        if n
    ]
    return summary, cost, f"score {found.score}/100" + (f" ({', '.join(findings)})" if findings else "")


def _footer(env: str) -> str:
    return (
        f"Comment `/chkmate apply {env}` to apply this plan before merging, or `/chkmate plan {env}` to plan "
        "again (write access needed)."
    )


def _threshold(request: Request) -> security.Severity | None:
    env = indexing.lookup(request.indexes, kinds.ENVIRONMENT, request.namespace, request.spec.environment_ref.name)
    value = (env.annotations if env is not None else {}).get(FAIL_SEVERITY_ANNOTATION, DEFAULT_FAIL_SEVERITY)
    return next((severity for severity in security.SEVERITIES if severity == value), None)


def _holder(env: str, error: storage.Locked) -> int | str:
    """The pull request holding the lock (its number), or who else does."""
    found = re.fullmatch(rf"Plan/{re.escape(env)}-pr([0-9]+)-[0-9a-f]{{{PLAN_NAME_SHA}}}", error.lock.holder)
    return int(found[1]) if found else f"`{error.lock.holder}`"


async def _merged_pull_request(request: Request) -> tuple[github.PullRequests, github.PullRequest] | None:
    """The recently merged pull request whose merge commit this branch Plan planned, if any."""
    # Read, not looked up in the index: the merge poked this Plan right after recording it on the Environment,
    # and the two watch streams do not keep that order.
    env = await request.memo.kube.get(
        kube.ours(kinds.ENVIRONMENT.plural), request.namespace, request.spec.environment_ref.name
    )
    numbers = _merged((env or {}).get("metadata", {}).get("annotations") or {})
    commit = (request.status.revision or "").rpartition(":")[2]
    if not numbers or not commit:
        return None
    source = await _source(request)
    pulls = source.access.client.pulls(source.owner, source.name)
    for number in numbers:
        pull = await pulls.get(number)
        if pull is not None and pull.merged and pull.merge_commit_sha == commit:
            return pulls, pull
    return None


async def _source(request: Request) -> sources.Source:
    env = indexing.require(
        request.indexes,
        kinds.ENVIRONMENT,
        request.namespace,
        request.spec.environment_ref.name,
        field="spec.environmentRef",
    )
    try:
        spec = environments.EnvironmentSpec.model_validate(env.spec)
    except pydantic.ValidationError as e:
        raise errors.DependencyNotReady(f"Environment {env.name!r} has an invalid spec.") from e
    return plan_source(await sources.resolve(request.memo, request.indexes, request.namespace, spec), request.spec)


async def _plan_text(memo: memos.Memo, namespace: str, status: plans_api.PlanStatus) -> str:
    name = status.output_ref.config_map if status.output_ref is not None else None
    found = await memo.kube.get(kube.CONFIGMAPS, namespace, name) if name else None
    return str(((found or {}).get("data") or {}).get("plan.txt", ""))


def _merged(annotations: Mapping[str, str]) -> list[int]:
    raw = annotations.get(MERGED_ANNOTATION, "")
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


def _plans_of(indexes: Mapping[str, Any], namespace: str, envs: set[str], number: int) -> list[indexing.Summary]:
    return [
        p
        for env in sorted(envs)
        for p in indexing.referring(indexes, kinds.PLAN, "environment", namespace, env)
        if p.spec.get("pullRequest") == number
    ]


def _idle(plan: indexing.Summary) -> bool:
    """Neither running nor approved for an apply (which may be under way: a Plan applies in phase Planned)."""
    phase = plan.status.get("phase")
    return phase not in RUNNING and not (phase == "Planned" and plan.spec.get("approved"))


async def _delete_plan(memo: memos.Memo, namespace: str, name: str) -> None:
    with contextlib.suppress(kube.NotFound):
        await memo.kube.delete(kube.ours(kinds.PLAN.plural), namespace, name)


def _comment_lock(namespace: str, env: str, number: int | None) -> str:
    """The memo lock serializing the writes of one sticky comment (two heads' plans may finish together)."""
    return f"pull-request-comment/{namespace}/{env}#{number}"


@contextlib.contextmanager
def _best_effort(request: Request, what: str) -> Iterator[None]:
    try:
        yield
    except errors.ChkmateError as e:
        request.logger.warning(f"Could not {what}: {e.message}")
