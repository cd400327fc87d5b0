"""Routes of the GitHub API double for pull requests, their reviews and issue comments.

Pull requests and issues share one number sequence per repository. An open pull request follows its
branches in the bare repository: it closes when its head branch is deleted and counts as merged
once its head commit is reachable from its base (a merge pushed over git). Merging through the API
writes a real merge (or squash) commit with `git merge-tree --write-tree` and `commit-tree`, and
moves the base branch with compare-and-swap. Git I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.harness import (
    github_api_bodies,
    github_api_bodies_pulls,
    github_api_git,
    github_api_http,
    github_api_lookups,
    github_api_state,
)

Call = github_api_http.Call
Reply = github_api_http.Reply
Pull = github_api_state.Pull
MAX_COMMENT_LENGTH = 65536
_NOT_MERGEABLE = "Pull Request is not mergeable"


def _sync(git: github_api_git.BareRepo, pull: Pull, now: float) -> None:
    """Bring an open pull request up to date with its branches."""
    if pull.state != "open":
        return
    head = git.ref_target(f"refs/heads/{pull.head_ref}")
    base = git.ref_target(f"refs/heads/{pull.base_ref}")
    if head is None or base is None:
        pull.state, pull.closed_at, pull.updated_at = "closed", now, now
        return
    pull.last_head_sha = head
    if head != pull.last_base_sha and git.is_ancestor(head, base):  # its commits landed on the base
        pull.state, pull.closed_at, pull.merged_at, pull.updated_at = "closed", now, now, now
        pull.merge_commit_sha = base
        return
    pull.last_base_sha = base


def _pull_for(call: Call, permission: str, level: str) -> tuple[github_api_state.Repo, github_api_git.BareRepo, Pull]:
    repo, git = github_api_lookups.repo_for(call, permission, level)
    number = call.params["number"]
    pull = call.store.pulls.get((repo.id, int(number))) if number.isdigit() else None
    if pull is None:
        raise github_api_http.not_found()
    _sync(git, pull, github_api_state.now())
    return repo, git, pull


def _view(
    call: Call, repo: github_api_state.Repo, git: github_api_git.BareRepo, pull: Pull, *, full: bool
) -> github_api_bodies_pulls.PullView:
    urls = github_api_lookups.urls(call)
    owner = call.store.account(repo.owner)
    author = call.store.account(pull.user)
    assert owner is not None and author is not None
    view = github_api_bodies_pulls.PullView(
        pull=pull,
        repo_body=github_api_lookups.repo_body(call, repo),
        owner_body=github_api_bodies.user(urls, owner),
        user_body=github_api_bodies.user(urls, author),
        head_sha=pull.last_head_sha,
        base_sha=pull.last_base_sha,
        association=github_api_lookups.association(call.store, repo, pull.user),
    )
    if not full:
        return view
    head, base = pull.last_head_sha, pull.last_base_sha
    merged_by = call.store.account(pull.merged_by) if pull.merged_by else None
    fork_point = git.merge_base(base, head) or base
    return dataclasses.replace(
        view,
        merged_by_body=github_api_bodies.user(urls, merged_by) if merged_by else None,
        mergeable=git.merge_tree(base, head) is not None if pull.state == "open" else None,
        commits=len(git.commits_between(base, head)),
        stats=git.diff_stats(fork_point, head),
        comments=sum(1 for c in call.store.comments.values() if c.repo_id == repo.id and c.number == pull.number),
    )


def _pull_body(call: Call, repo: github_api_state.Repo, git: github_api_git.BareRepo, pull: Pull, *, full: bool) -> Any:
    return github_api_bodies_pulls.pull(
        github_api_lookups.urls(call), repo, _view(call, repo, git, pull, full=full), full=full
    )


def create_pull(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "pull_requests", "write")
    body = call.json()
    base_ref = github_api_http.required_str(body, "base")
    head_owner, _, head_ref = github_api_http.required_str(body, "head").rpartition(":")
    title = github_api_http.field(body, "title", str)
    if not title:
        raise github_api_http.validation_failed({"resource": "Issue", "code": "missing_field", "field": "title"})
    head = git.ref_target(f"refs/heads/{head_ref}")
    if head is None or (head_owner and head_owner.lower() != repo.owner.lower()):
        raise github_api_http.validation_failed({"resource": "PullRequest", "code": "invalid", "field": "head"})
    base = git.ref_target(f"refs/heads/{base_ref}")
    if base is None:
        raise github_api_http.validation_failed({"resource": "PullRequest", "code": "invalid", "field": "base"})
    now = github_api_state.now()
    for other in call.store.pulls_of(repo):
        _sync(git, other, now)
        if other.state == "open" and (other.head_ref, other.base_ref) == (head_ref, base_ref):
            message = f"A pull request already exists for {repo.owner}:{head_ref}."
            raise github_api_http.validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
    if not git.commits_between(base, head):
        message = f"No commits between {base_ref} and {head_ref}"
        raise github_api_http.validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
    pull = Pull(
        id=call.store.next_id("pull"),
        repo_id=repo.id,
        number=repo.next_number,
        title=title,
        body=github_api_http.field(body, "body", str),
        user=github_api_lookups.acting_account(call).login,
        head_ref=head_ref,
        base_ref=base_ref,
        draft=github_api_http.field(body, "draft", bool) or False,
        created_at=now,
        updated_at=now,
        last_head_sha=head,
        last_base_sha=base,
    )
    repo.next_number += 1
    call.store.pulls[(repo.id, pull.number)] = pull
    reply = _pull_body(call, repo, git, pull, full=True)
    return Reply(201, reply, headers={"Location": reply["url"]})


def list_pulls(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "pull_requests", "read")
    now = github_api_state.now()
    state = call.query.get("state", "open")
    head = call.query.get("head")
    base = call.query.get("base")
    selected = []
    for pull in call.store.pulls_of(repo):
        _sync(git, pull, now)
        if state != "all" and pull.state != state:
            continue
        if head is not None and head.lower() != f"{repo.owner}:{pull.head_ref}".lower():
            continue
        if base is None or pull.base_ref == base:
            selected.append(pull)
    sort_key = {"updated": lambda p: (p.updated_at, p.number)}.get(
        call.query.get("sort", ""), lambda p: (p.created_at, p.number)
    )
    ordered = sorted(selected, key=sort_key, reverse=call.query.get("direction", "desc") == "desc")
    page, links = github_api_http.paginate(call, ordered)
    return Reply(body=[_pull_body(call, repo, git, pull, full=False) for pull in page], headers=links)


def get_pull(call: Call) -> Reply:
    repo, git, pull = _pull_for(call, "pull_requests", "read")
    return Reply(body=_pull_body(call, repo, git, pull, full=True))


def update_pull(call: Call) -> Reply:
    repo, git, pull = _pull_for(call, "pull_requests", "write")
    body = call.json()
    now = github_api_state.now()
    pull.title = github_api_http.field(body, "title", str) or pull.title
    if "body" in body:
        pull.body = github_api_http.field(body, "body", str)
    base = github_api_http.field(body, "base", str)
    if base is not None:
        if git.ref_target(f"refs/heads/{base}") is None:
            raise github_api_http.validation_failed({"resource": "PullRequest", "code": "invalid", "field": "base"})
        pull.base_ref = base
    state = github_api_http.field(body, "state", str)
    if state == "closed" and pull.state == "open":
        pull.state, pull.closed_at = "closed", now
    elif state == "open" and pull.state == "closed":
        if pull.merged_at is not None:
            raise github_api_http.ApiError(422, "state cannot be changed. The pull request has been merged.")
        pull.state, pull.closed_at = "open", None
        _sync(git, pull, now)
    pull.updated_at = now
    return Reply(body=_pull_body(call, repo, git, pull, full=True))


def merge_pull(call: Call) -> Reply:
    repo, git, pull = _pull_for(call, "contents", "write")
    body = call.json()
    method = github_api_http.field(body, "merge_method", str) or "merge"
    if method not in ("merge", "squash", "rebase"):
        raise github_api_http.invalid_request(f"For 'properties/merge_method', \"{method}\" is not a valid value.")
    if not repo.settings[f"allow_{'merge_commit' if method == 'merge' else method + '_merge'}"]:
        raise github_api_http.ApiError(405, f"{method.capitalize()} merges are not allowed on this repository.")
    if pull.state != "open":
        raise github_api_http.ApiError(405, _NOT_MERGEABLE)
    expected = github_api_http.field(body, "sha", str)
    head, base = pull.last_head_sha, pull.last_base_sha
    if expected is not None and expected != head:
        raise github_api_http.ApiError(409, "Head branch was modified. Review and try the merge again.")
    now = github_api_state.now()
    merger = github_api_lookups.acting_account(call)
    new_base = _merge_commit(call, git, pull, method, body, merger, now)
    if not git.update_ref(f"refs/heads/{pull.base_ref}", new_base, expected_old=base):
        raise github_api_http.ApiError(409, "Base branch was modified. Review and try the merge again.")
    pull.state, pull.closed_at, pull.merged_at, pull.updated_at = "closed", now, now, now
    pull.merged_by, pull.merge_commit_sha = merger.login, new_base
    github_api_lookups.touch(repo, now, pushed=True)
    return Reply(body={"sha": new_base, "merged": True, "message": "Pull Request successfully merged"})


def _merge_commit(
    call: Call,
    git: github_api_git.BareRepo,
    pull: Pull,
    method: str,
    body: dict[str, Any],
    merger: github_api_state.Account,
    now: float,
) -> str:
    """The commit the base branch moves to; rebase only fast-forwards (git 2.39 cannot replay)."""
    head, base = pull.last_head_sha, pull.last_base_sha
    if method == "rebase":
        if not git.is_ancestor(base, head):
            raise github_api_http.ApiError(405, "This branch can't be rebased")
        return head
    tree = git.merge_tree(base, head)
    if tree is None:
        raise github_api_http.ApiError(405, _NOT_MERGEABLE)
    if method == "merge":
        default_title = f"Merge pull request #{pull.number} from {call.params['owner']}/{pull.head_ref}"
        default_message, parents, author = pull.title, [base, head], merger
    else:
        commits = [git.read_commit(sha).message.strip() for sha in git.commits_between(base, head)]
        default_title = f"{pull.title} (#{pull.number})"
        default_message, parents = "\n\n".join(f"* {m}" for m in commits), [base]
        author = call.store.account(pull.user) or merger
    title = github_api_http.field(body, "commit_title", str) or default_title
    message = github_api_http.field(body, "commit_message", str)
    text = f"{title}\n\n{default_message if message is None else message}".rstrip() + "\n"
    signature = github_api_lookups.signature(author, now)
    return git.write_commit(tree, parents, text, signature, github_api_lookups.web_flow(now))


def list_reviews(call: Call) -> Reply:
    repo, _, pull = _pull_for(call, "pull_requests", "read")
    reviews = [r for r in call.store.reviews if r.repo_id == repo.id and r.number == pull.number]
    page, links = github_api_http.paginate(call, reviews)
    urls = github_api_lookups.urls(call)
    bodies = [github_api_bodies_pulls.review(urls, repo, r, github_api_lookups.user_body(call, r.user)) for r in page]
    return Reply(body=bodies, headers=links)


# Issue comments


def _comment_text(body: dict[str, Any]) -> str:
    text = github_api_http.required_str(body, "body")
    if len(text) > MAX_COMMENT_LENGTH:
        message = f"Body is too long (maximum is {MAX_COMMENT_LENGTH} characters)"
        error = {"resource": "IssueComment", "code": "unprocessable", "field": "data", "message": message}
        raise github_api_http.validation_failed(error)
    return text


def _comment_body(call: Call, repo: github_api_state.Repo, comment: github_api_state.Comment) -> Any:
    association = github_api_lookups.association(call.store, repo, comment.user)
    user = github_api_lookups.user_body(call, comment.user)
    return github_api_bodies_pulls.comment(github_api_lookups.urls(call), repo, comment, user, association)


def _comment_access(call: Call, level: str) -> tuple[github_api_state.Repo, github_api_git.BareRepo]:
    """Issue comments on pull requests need `issues` or `pull_requests` permission."""
    try:
        return github_api_lookups.repo_for(call, "issues", level)
    except github_api_http.ApiError as error:
        if error.status == 404:
            raise
        return github_api_lookups.repo_for(call, "pull_requests", level)


def create_comment(call: Call) -> Reply:
    repo, _ = _comment_access(call, "write")
    number = call.params["number"]
    if not number.isdigit() or (repo.id, int(number)) not in call.store.pulls:
        raise github_api_http.not_found()
    now = github_api_state.now()
    comment = github_api_state.Comment(
        id=call.store.next_id("comment"),
        repo_id=repo.id,
        number=int(number),
        user=github_api_lookups.acting_account(call).login,
        body=_comment_text(call.json()),
        created_at=now,
        updated_at=now,
    )
    call.store.comments[comment.id] = comment
    reply = _comment_body(call, repo, comment)
    return Reply(201, reply, headers={"Location": reply["url"]})


def list_comments(call: Call) -> Reply:
    repo, _ = _comment_access(call, "read")
    number = call.params["number"]
    if not number.isdigit() or (repo.id, int(number)) not in call.store.pulls:
        raise github_api_http.not_found()
    since = call.query.get("since")
    comments = [c for c in call.store.comments.values() if c.repo_id == repo.id and c.number == int(number)]
    if since is not None:
        comments = [c for c in comments if str(github_api_bodies.iso(c.updated_at)) >= since]
    page, links = github_api_http.paginate(call, sorted(comments, key=lambda c: c.id))
    return Reply(body=[_comment_body(call, repo, c) for c in page], headers=links)


def _comment_for(call: Call, level: str) -> tuple[github_api_state.Repo, github_api_state.Comment]:
    repo, _ = _comment_access(call, level)
    comment_id = call.params["comment_id"]
    comment = call.store.comments.get(int(comment_id)) if comment_id.isdigit() else None
    if comment is None or comment.repo_id != repo.id:
        raise github_api_http.not_found()
    return repo, comment


def get_comment(call: Call) -> Reply:
    repo, comment = _comment_for(call, "read")
    return Reply(body=_comment_body(call, repo, comment))


def update_comment(call: Call) -> Reply:
    repo, comment = _comment_for(call, "write")
    comment.body = _comment_text(call.json())
    comment.updated_at = github_api_state.now()
    return Reply(body=_comment_body(call, repo, comment))


def delete_comment(call: Call) -> Reply:
    _, comment = _comment_for(call, "write")
    del call.store.comments[comment.id]
    return Reply(204)


def _route(method: str, path: str, handler: github_api_http.Handler, docs: str) -> github_api_http.Route:
    return github_api_http.Route.of(method, f"/repos/{{owner}}/{{repo}}{path}", handler, docs)


ROUTES = [
    _route("POST", "/pulls", create_pull, "pulls/pulls#create-a-pull-request"),
    _route("GET", "/pulls", list_pulls, "pulls/pulls#list-pull-requests"),
    _route("GET", "/pulls/{number}", get_pull, "pulls/pulls#get-a-pull-request"),
    _route("PATCH", "/pulls/{number}", update_pull, "pulls/pulls#update-a-pull-request"),
    _route("PUT", "/pulls/{number}/merge", merge_pull, "pulls/pulls#merge-a-pull-request"),
    _route("GET", "/pulls/{number}/reviews", list_reviews, "pulls/reviews#list-reviews-for-a-pull-request"),
    _route("POST", "/issues/{number}/comments", create_comment, "issues/comments#create-an-issue-comment"),
    _route("GET", "/issues/{number}/comments", list_comments, "issues/comments#list-issue-comments"),
    _route("GET", "/issues/comments/{comment_id}", get_comment, "issues/comments#get-an-issue-comment"),
    _route("PATCH", "/issues/comments/{comment_id}", update_comment, "issues/comments#update-an-issue-comment"),
    _route("DELETE", "/issues/comments/{comment_id}", delete_comment, "issues/comments#delete-an-issue-comment"),
]
