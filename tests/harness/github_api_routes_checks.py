"""Routes of the GitHub API double for check runs and commit statuses.

Check runs can only be written by GitHub Apps (installation tokens) and only by the app that created
them; listing shows the latest run per name unless `filter=all`. The combined status keeps the
latest status per context. Git reads only (resolving refs).
"""

from __future__ import annotations

import datetime
from typing import Any

from tests.harness import (
    github_api_bodies,
    github_api_bodies_pulls,
    github_api_http,
    github_api_lookups,
    github_api_state,
)

Call = github_api_http.Call
Reply = github_api_http.Reply
CheckRun = github_api_state.CheckRun
_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
_COMMIT_STATES = ("error", "failure", "pending", "success")


def _installation_app(call: Call) -> github_api_state.App:
    if call.principal.installation is None or call.principal.app is None:
        if call.principal.kind == "anonymous":
            raise github_api_lookups.requires_authentication()
        raise github_api_http.ApiError(403, "You must authenticate via a GitHub App.")
    return call.principal.app


def _time(body: dict[str, Any], key: str) -> float | None:
    value = github_api_http.field(body, key, str)
    if value is None:
        return None
    try:
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise github_api_http.invalid_request(f"For 'properties/{key}', \"{value}\" is not a date-time.") from None


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = github_api_http.field(body, key, str)
    if value is not None and value not in allowed:
        raise github_api_http.invalid_request(f"For 'properties/{key}', \"{value}\" is not a valid value.")
    return value


def _apply(run: CheckRun, body: dict[str, Any], now: float) -> None:
    """Apply a create/update body; a conclusion completes the run, as on GitHub."""
    run.name = github_api_http.field(body, "name", str) or run.name
    run.details_url = github_api_http.field(body, "details_url", str) or run.details_url
    run.external_id = github_api_http.field(body, "external_id", str) or run.external_id
    run.started_at = _time(body, "started_at") or run.started_at
    run.output = {**run.output, **(github_api_http.field(body, "output", dict) or {})}
    run.status = _choice(body, "status", _STATUSES) or run.status
    conclusion = _choice(body, "conclusion", _CONCLUSIONS)
    if conclusion is not None:
        run.conclusion, run.status = conclusion, "completed"
    if run.status == "completed":
        if run.conclusion is None:
            raise github_api_http.invalid_request('"conclusion" wasn\'t supplied.')
        run.completed_at = _time(body, "completed_at") or run.completed_at or now


def _run_body(call: Call, repo: github_api_state.Repo, run: CheckRun) -> Any:
    urls = github_api_lookups.urls(call)
    app = call.store.apps[run.app_id]
    owner = call.store.account(app.owner)
    assert owner is not None
    pulls = [
        github_api_bodies_pulls.minimal_pull(urls, repo, pull, pull.last_head_sha, pull.last_base_sha)
        for pull in call.store.pulls_of(repo)
        if pull.state == "open" and pull.last_head_sha == run.head_sha
    ]
    return github_api_bodies_pulls.check_run(urls, repo, run, github_api_bodies.app(urls, app, owner, 0), pulls)


def create_check_run(call: Call) -> Reply:
    app = _installation_app(call)
    repo, git = github_api_lookups.repo_for(call, "checks", "write")
    body = call.json()
    name = github_api_http.required_str(body, "name")
    head_sha = github_api_lookups.resolve_commit(git, github_api_http.required_str(body, "head_sha"))
    now = github_api_state.now()
    run = CheckRun(
        id=call.store.next_id("check_run"),
        repo_id=repo.id,
        app_id=app.id,
        name=name,
        head_sha=head_sha,
        status="queued",
        conclusion=None,
        details_url=None,
        external_id="",
        started_at=now,
        completed_at=None,
        output={},
    )
    _apply(run, body, now)
    call.store.check_runs[run.id] = run
    return Reply(201, _run_body(call, repo, run))


def update_check_run(call: Call) -> Reply:
    app = _installation_app(call)
    repo, _ = github_api_lookups.repo_for(call, "checks", "write")
    run_id = call.params["check_run_id"]
    run = call.store.check_runs.get(int(run_id)) if run_id.isdigit() else None
    if run is None or run.repo_id != repo.id:
        raise github_api_http.not_found()
    if run.app_id != app.id:
        raise github_api_http.ApiError(
            403,
            f"Invalid app_id `{app.id}` - check run can only be modified by the GitHub App that created it.",
        )
    _apply(run, call.json(), github_api_state.now())
    return Reply(body=_run_body(call, repo, run))


def list_check_runs_for_ref(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "checks", "read")
    sha = github_api_lookups.resolve_commit(git, call.params["ref"])
    runs = sorted(
        (r for r in call.store.check_runs.values() if r.repo_id == repo.id and r.head_sha == sha), key=lambda r: -r.id
    )
    if call.query.get("filter", "latest") == "latest":
        latest: dict[str, CheckRun] = {}
        for run in runs:
            latest.setdefault(run.name, run)
        runs = list(latest.values())
    if (name := call.query.get("check_name")) is not None:
        runs = [r for r in runs if r.name == name]
    if (status := call.query.get("status")) is not None:
        runs = [r for r in runs if r.status == status]
    page, links = github_api_http.paginate(call, runs)
    return Reply(body={"total_count": len(runs), "check_runs": [_run_body(call, repo, r) for r in page]}, headers=links)


def _status_body(call: Call, repo: github_api_state.Repo, status: github_api_state.CommitStatus) -> Any:
    creator = github_api_lookups.user_body(call, status.creator)
    return github_api_bodies_pulls.commit_status(github_api_lookups.urls(call), repo, status, creator)


def create_status(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "statuses", "write")
    sha = call.params["sha"]
    if len(sha) != 40 or git.resolve_commit(sha) != sha:
        raise github_api_http.ApiError(422, f"No commit found for SHA: {sha}")
    body = call.json()
    state = github_api_http.required_str(body, "state")
    if state not in _COMMIT_STATES:
        error = {
            "resource": "Status",
            "code": "custom",
            "field": "state",
            "message": "state is not included in the list",
        }
        raise github_api_http.validation_failed(error)
    status = github_api_state.CommitStatus(
        id=call.store.next_id("status"),
        repo_id=repo.id,
        sha=sha,
        state=state,
        target_url=github_api_http.field(body, "target_url", str),
        description=github_api_http.field(body, "description", str),
        context=github_api_http.field(body, "context", str) or "default",
        creator=github_api_lookups.acting_account(call).login,
        created_at=github_api_state.now(),
    )
    call.store.statuses.append(status)
    return Reply(201, _status_body(call, repo, status))


def get_combined_status(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "statuses", "read")
    sha = github_api_lookups.resolve_commit(git, call.params["ref"])
    latest: dict[str, github_api_state.CommitStatus] = {}
    for status in sorted(call.store.statuses, key=lambda s: -s.id):
        if status.repo_id == repo.id and status.sha == sha:
            latest.setdefault(status.context, status)
    statuses = [
        github_api_bodies_pulls.commit_status(github_api_lookups.urls(call), repo, s, None) for s in latest.values()
    ]
    repo_body = github_api_lookups.repo_body(call, repo)
    return Reply(
        body=github_api_bodies_pulls.combined_status(github_api_lookups.urls(call), repo, sha, statuses, repo_body)
    )


def _route(method: str, path: str, handler: github_api_http.Handler, docs: str) -> github_api_http.Route:
    return github_api_http.Route.of(method, f"/repos/{{owner}}/{{repo}}{path}", handler, docs)


ROUTES = [
    _route("POST", "/check-runs", create_check_run, "checks/runs#create-a-check-run"),
    _route("PATCH", "/check-runs/{check_run_id}", update_check_run, "checks/runs#update-a-check-run"),
    _route(
        "GET", "/commits/{ref+}/check-runs", list_check_runs_for_ref, "checks/runs#list-check-runs-for-a-git-reference"
    ),
    _route("POST", "/statuses/{sha}", create_status, "commits/statuses#create-a-commit-status"),
    _route(
        "GET",
        "/commits/{ref+}/status",
        get_combined_status,
        "commits/statuses#get-the-combined-status-for-a-specific-reference",
    ),
]
