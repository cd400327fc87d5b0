"""JSON bodies of the GitHub API double for pull requests, reviews, comments, check runs and statuses.

Pure functions from state records to dicts, like `github_api_bodies` (which holds accounts,
repositories and git data): no I/O, no access checks, and at least the fields githubkit's models need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tests.harness import github_api_bodies, github_api_git, github_api_state

Json = github_api_bodies.Json
Urls = github_api_bodies.Urls


@dataclasses.dataclass(frozen=True)
class PullView:
    """A pull request with everything its body needs that is not in the record itself."""

    pull: github_api_state.Pull
    repo_body: Json
    owner_body: Json
    user_body: Json
    head_sha: str
    base_sha: str
    association: str
    merged_by_body: Json | None = None
    mergeable: bool | None = None
    commits: int = 0
    stats: github_api_git.DiffStats | None = None
    comments: int = 0


def pull(urls: Urls, repo: github_api_state.Repo, view: PullView, *, full: bool) -> Json:
    """GitHub's `pull-request` (full) or `pull-request-simple` (lists)."""
    record, api, web = view.pull, urls.repo_api(repo), urls.repo_web(repo)
    n = record.number
    links = {
        "self": f"{api}/pulls/{n}",
        "html": f"{web}/pull/{n}",
        "issue": f"{api}/issues/{n}",
        "comments": f"{api}/issues/{n}/comments",
        "review_comments": f"{api}/pulls/{n}/comments",
        "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{api}/pulls/{n}/commits",
        "statuses": f"{api}/statuses/{view.head_sha}",
    }
    owner_login = view.owner_body["login"]
    body: Json = {
        "url": links["self"],
        "id": record.id,
        "node_id": github_api_bodies.node_id("PullRequest", record.id),
        "html_url": links["html"],
        "diff_url": f"{links['html']}.diff",
        "patch_url": f"{links['html']}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": n,
        "state": record.state,
        "locked": False,
        "title": record.title,
        "user": view.user_body,
        "body": record.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": github_api_bodies.iso(record.created_at),
        "updated_at": github_api_bodies.iso(record.updated_at),
        "closed_at": github_api_bodies.iso(record.closed_at),
        "merged_at": github_api_bodies.iso(record.merged_at),
        "merge_commit_sha": record.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _pull_end(owner_login, record.head_ref, view.head_sha, view),
        "base": _pull_end(owner_login, record.base_ref, view.base_sha, view),
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": view.association,
        "auto_merge": None,
        "draft": record.draft,
    }
    if full:
        body.update(_pull_details(view))
    return body


def _pull_end(owner_login: str, ref: str, sha: str, view: PullView) -> Json:
    return {"label": f"{owner_login}:{ref}", "ref": ref, "sha": sha, "user": view.owner_body, "repo": view.repo_body}


def _pull_details(view: PullView) -> Json:
    record, stats = view.pull, view.stats or github_api_git.DiffStats(0, 0, 0)
    if record.merged_at is not None or record.state == "closed":
        state = "unknown"
    else:
        state = "clean" if view.mergeable else "dirty"
    return {
        "merged": record.merged_at is not None,
        "mergeable": view.mergeable,
        "rebaseable": view.mergeable,
        "mergeable_state": state,
        "merged_by": view.merged_by_body,
        "comments": view.comments,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": view.commits,
        "additions": stats.additions,
        "deletions": stats.deletions,
        "changed_files": stats.changed_files,
    }


def review(urls: Urls, repo: github_api_state.Repo, record: github_api_state.Review, user_body: Json) -> Json:
    html = f"{urls.repo_web(repo)}/pull/{record.number}#pullrequestreview-{record.id}"
    pull_url = f"{urls.repo_api(repo)}/pulls/{record.number}"
    return {
        "id": record.id,
        "node_id": github_api_bodies.node_id("PullRequestReview", record.id),
        "user": user_body,
        "body": record.body,
        "state": record.state,
        "html_url": html,
        "pull_request_url": pull_url,
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
        "submitted_at": github_api_bodies.iso(record.submitted_at),
        "commit_id": record.commit_id,
        "author_association": "NONE",
    }


def comment(
    urls: Urls, repo: github_api_state.Repo, record: github_api_state.Comment, user_body: Json, association: str
) -> Json:
    """GitHub's `issue-comment`."""
    api = urls.repo_api(repo)
    return {
        "id": record.id,
        "node_id": github_api_bodies.node_id("IssueComment", record.id),
        "url": f"{api}/issues/comments/{record.id}",
        "html_url": f"{urls.repo_web(repo)}/pull/{record.number}#issuecomment-{record.id}",
        "body": record.body,
        "user": user_body,
        "created_at": github_api_bodies.iso(record.created_at),
        "updated_at": github_api_bodies.iso(record.updated_at),
        "issue_url": f"{api}/issues/{record.number}",
        "author_association": association,
    }


# Checks and statuses


def check_run(
    urls: Urls, repo: github_api_state.Repo, record: github_api_state.CheckRun, app_body: Json, pulls: list[Json]
) -> Json:
    api = urls.repo_api(repo)
    output = {"title": None, "summary": None, "text": None, **record.output}
    return {
        "id": record.id,
        "head_sha": record.head_sha,
        "node_id": github_api_bodies.node_id("CheckRun", record.id),
        "external_id": record.external_id,
        "url": f"{api}/check-runs/{record.id}",
        "html_url": f"{urls.repo_web(repo)}/runs/{record.id}",
        "details_url": record.details_url,
        "status": record.status,
        "conclusion": record.conclusion,
        "started_at": github_api_bodies.iso(record.started_at),
        "completed_at": github_api_bodies.iso(record.completed_at),
        "output": {**output, "annotations_count": 0, "annotations_url": f"{api}/check-runs/{record.id}/annotations"},
        "name": record.name,
        "check_suite": {"id": record.id},
        "app": app_body,
        "pull_requests": pulls,
    }


def minimal_pull(urls: Urls, repo: github_api_state.Repo, record: github_api_state.Pull, head: str, base: str) -> Json:
    api = urls.repo_api(repo)
    repo_ref = {"id": repo.id, "url": api, "name": repo.name}
    return {
        "id": record.id,
        "number": record.number,
        "url": f"{api}/pulls/{record.number}",
        "head": {"ref": record.head_ref, "sha": head, "repo": repo_ref},
        "base": {"ref": record.base_ref, "sha": base, "repo": repo_ref},
    }


def commit_status(
    urls: Urls, repo: github_api_state.Repo, record: github_api_state.CommitStatus, creator: Json | None
) -> Json:
    body: Json = {
        "url": f"{urls.repo_api(repo)}/statuses/{record.sha}",
        "avatar_url": None,
        "id": record.id,
        "node_id": github_api_bodies.node_id("StatusContext", record.id),
        "state": record.state,
        "description": record.description,
        "target_url": record.target_url,
        "context": record.context,
        "created_at": github_api_bodies.iso(record.created_at),
        "updated_at": github_api_bodies.iso(record.created_at),
    }
    if creator is not None:
        body["creator"] = creator
    return body


def combined_status(
    urls: Urls, repo: github_api_state.Repo, sha: str, statuses: Sequence[Json], repo_body: Json
) -> Json:
    states = {status["state"] for status in statuses}
    if states & {"error", "failure"}:
        state = "failure"
    elif "pending" in states or not states:
        state = "pending"
    else:
        state = "success"
    api = urls.repo_api(repo)
    return {
        "state": state,
        "statuses": list(statuses),
        "sha": sha,
        "total_count": len(statuses),
        "repository": repo_body,
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }
