"""Routes of the GitHub API double for git data: branches, refs, commits and the contents API.

Reads come straight from the bare repository, so pushes through the git server show at once;
writes (refs, file commits) are real objects and ref updates made with git plumbing, guarded by
compare-and-swap on the ref like GitHub's. Git I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

from tests.harness import (
    github_api_bodies,
    github_api_git,
    github_api_http,
    github_api_lookups,
    github_api_state,
)

Call = github_api_http.Call
Reply = github_api_http.Reply
ZERO_SHA = "0" * 40
_EMPTY = "Git Repository is empty."
_RAW_MEDIA_TYPE = "application/vnd.github.raw"


def _urls(call: Call) -> github_api_bodies.Urls:
    return github_api_lookups.urls(call)


# Branches


def list_branches(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "read")
    page, links = github_api_http.paginate(call, git.branches())
    return Reply(
        body=[github_api_bodies.short_branch(_urls(call), repo, name, sha) for name, sha in page], headers=links
    )


def get_branch(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "read")
    name = call.params["branch"]
    sha = git.ref_target(f"refs/heads/{name}")
    if sha is None:
        raise github_api_http.ApiError(404, "Branch not found")
    commit = github_api_lookups.commit_body(call, repo, git.read_commit(sha))
    return Reply(body=github_api_bodies.branch(_urls(call), repo, name, commit))


# References


def _ref_body(call: Call, repo: github_api_state.Repo, git: github_api_git.BareRepo, ref: str, sha: str) -> Any:
    return github_api_bodies.git_ref(_urls(call), repo, ref, sha, git.object_type(sha) or "commit")


def _non_empty_git(call: Call, level: str) -> tuple[github_api_state.Repo, github_api_git.BareRepo]:
    repo, git = github_api_lookups.repo_for(call, "contents", level)
    if not git.refs():
        raise github_api_http.ApiError(409, _EMPTY)
    return repo, git


def get_ref(call: Call) -> Reply:
    repo, git = _non_empty_git(call, "read")
    ref = f"refs/{call.params['ref']}"
    sha = git.ref_target(ref)
    if sha is None:
        raise github_api_http.not_found()
    return Reply(body=_ref_body(call, repo, git, ref, sha))


def list_matching_refs(call: Call) -> Reply:
    repo, git = _non_empty_git(call, "read")
    refs = git.refs(f"refs/{call.params['ref']}")
    return Reply(body=[_ref_body(call, repo, git, ref, sha) for ref, sha in refs])


def create_ref(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "write")
    body = call.json()
    ref = github_api_http.required_str(body, "ref")
    sha = github_api_http.required_str(body, "sha")
    if not ref.startswith("refs/") or ref.count("/") < 2 or not git.valid_ref_name(ref):
        raise github_api_http.ApiError(422, f"{ref} is not a valid ref name.")
    if git.object_type(sha) is None:
        raise github_api_http.ApiError(422, "Object does not exist")
    if not git.update_ref(ref, sha, expected_old=ZERO_SHA):
        raise github_api_http.ApiError(422, "Reference already exists")
    github_api_lookups.touch(repo, github_api_state.now(), pushed=True)
    reply = _ref_body(call, repo, git, ref, sha)
    return Reply(201, reply, headers={"Location": reply["url"]})


def update_ref(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "write")
    body = call.json()
    sha = github_api_http.required_str(body, "sha")
    force = github_api_http.field(body, "force", bool) or False
    ref = f"refs/{call.params['ref']}"
    current = git.ref_target(ref)
    if current is None:
        raise github_api_http.ApiError(422, "Reference does not exist")
    if git.object_type(sha) is None:
        raise github_api_http.ApiError(422, "Object does not exist")
    if not force and not git.is_ancestor(current, sha):
        raise github_api_http.ApiError(422, "Update is not a fast forward")
    if not git.update_ref(ref, sha, expected_old=current):
        raise github_api_http.ApiError(422, "Reference cannot be updated")
    github_api_lookups.touch(repo, github_api_state.now(), pushed=True)
    return Reply(body=_ref_body(call, repo, git, ref, sha))


def delete_ref(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "write")
    ref = f"refs/{call.params['ref']}"
    if git.ref_target(ref) is None:
        raise github_api_http.ApiError(422, "Reference does not exist")
    git.delete_ref(ref)
    github_api_lookups.touch(repo, github_api_state.now(), pushed=True)
    return Reply(204)


# Commits


def get_commit(call: Call) -> Reply:
    repo, git = _non_empty_git(call, "read")
    sha = github_api_lookups.resolve_commit(git, call.params["ref"])
    return Reply(body=github_api_lookups.commit_body(call, repo, git.read_commit(sha)))


# Contents


def get_contents(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "contents", "read")
    if not git.refs():
        raise github_api_http.ApiError(404, "This repository is empty.")
    ref = call.query.get("ref") or repo.default_branch
    sha = git.resolve_commit(ref)
    if sha is None:
        raise github_api_http.ApiError(404, f"No commit found for the ref {ref}")
    path = call.params.get("path", "").strip("/")
    entry = git.entry_at(sha, path)
    if entry is None:
        raise github_api_http.not_found()
    if entry.kind == "tree":
        items = [
            github_api_bodies.content_item(_urls(call), repo, f"{path}/{child.name}".lstrip("/"), child, ref)
            for child in git.list_tree(entry.sha)
        ]
        return Reply(body=items)
    item = github_api_bodies.content_item(_urls(call), repo, path, entry, ref)
    data = git.read_blob(entry.sha) if entry.kind == "blob" else b""
    if _RAW_MEDIA_TYPE in call.headers.get("accept", ""):
        return Reply(body=data, media_type=f"{_RAW_MEDIA_TYPE}; charset=utf-8")
    return Reply(body=github_api_bodies.content_file(item, data) if entry.kind == "blob" else item)


def _signature(body: dict[str, Any], key: str, fallback: github_api_git.Signature) -> github_api_git.Signature:
    person = github_api_http.field(body, key, dict)
    if person is None:
        return fallback
    name, email = person.get("name"), person.get("email")
    if not isinstance(name, str) or not isinstance(email, str):
        raise github_api_http.invalid_request(f"For 'properties/{key}', name and email are required.")
    date = person.get("date")
    when = datetime.datetime.fromisoformat(date).timestamp() if isinstance(date, str) else fallback.timestamp
    return github_api_git.Signature(name, email, int(when))


def _decode_content(body: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(github_api_http.required_str(body, "content"), validate=True)
    except binascii.Error:
        raise github_api_http.ApiError(422, "content is not valid Base64") from None


def _commit_file_change(call: Call, change: bytes | None) -> Reply:
    """Create, update (`change` is the new content) or delete (`change` is None) one file."""
    repo, git = github_api_lookups.repo_for(call, "contents", "write")
    body = call.json()
    message = github_api_http.required_str(body, "message")
    branch = github_api_http.field(body, "branch", str) or repo.default_branch
    expected_sha = github_api_http.field(body, "sha", str)
    path = call.params["path"].strip("/")
    head = git.ref_target(f"refs/heads/{branch}")
    if head is None and git.refs():
        raise github_api_http.ApiError(404, f"Branch {branch} not found")
    existing = git.entry_at(head, path) if head is not None else None
    _check_expected_sha(path, existing, expected_sha, deleting=change is None)
    now = github_api_state.now()
    actor = github_api_lookups.signature(github_api_lookups.acting_account(call), now)
    committer = _signature(body, "committer", actor)
    author = _signature(body, "author", committer)
    base_tree = git.read_commit(head).tree if head is not None else None
    tree = git.tree_with(base_tree, path, git.write_blob(change) if change is not None else None)
    commit = git.write_commit(tree, [head] if head else [], message, author, committer)
    if not git.update_ref(f"refs/heads/{branch}", commit, expected_old=head or ZERO_SHA):
        raise github_api_http.ApiError(
            409, f"{branch} is at {git.ref_target(f'refs/heads/{branch}')} but expected {head}"
        )
    github_api_lookups.touch(repo, now, pushed=True)
    entry = git.entry_at(commit, path) if change is not None else None
    content = github_api_bodies.content_item(_urls(call), repo, path, entry, branch) if entry else None
    reply = github_api_bodies.file_commit(
        content, github_api_bodies.git_commit(_urls(call), repo, git.read_commit(commit))
    )
    return Reply(201 if existing is None else 200, reply)


def _check_expected_sha(
    path: str, existing: github_api_git.TreeEntry | None, expected_sha: str | None, *, deleting: bool
) -> None:
    if existing is not None and existing.kind != "blob":
        raise github_api_http.ApiError(422, f"{path} is a directory or a submodule, not a file")
    if existing is None:
        if deleting:
            raise github_api_http.not_found()
        return
    if expected_sha is None:
        raise github_api_http.invalid_request('"sha" wasn\'t supplied.')
    if expected_sha != existing.sha:
        raise github_api_http.ApiError(409, f"{path} does not match {expected_sha}")


def put_contents(call: Call) -> Reply:
    return _commit_file_change(call, _decode_content(call.json()))


def delete_contents(call: Call) -> Reply:
    return _commit_file_change(call, None)


def _route(method: str, path: str, handler: github_api_http.Handler, docs: str) -> github_api_http.Route:
    return github_api_http.Route.of(method, f"/repos/{{owner}}/{{repo}}{path}", handler, docs)


ROUTES = [
    _route("GET", "/branches", list_branches, "branches/branches#list-branches"),
    _route("GET", "/branches/{branch+}", get_branch, "branches/branches#get-a-branch"),
    _route("GET", "/git/ref/{ref+}", get_ref, "git/refs#get-a-reference"),
    _route("GET", "/git/matching-refs/{ref+}", list_matching_refs, "git/refs#list-matching-references"),
    _route("POST", "/git/refs", create_ref, "git/refs#create-a-reference"),
    _route("PATCH", "/git/refs/{ref+}", update_ref, "git/refs#update-a-reference"),
    _route("DELETE", "/git/refs/{ref+}", delete_ref, "git/refs#delete-a-reference"),
    _route("GET", "/contents", get_contents, "repos/contents#get-repository-content"),
    _route("GET", "/contents/{path+}", get_contents, "repos/contents#get-repository-content"),
    _route("PUT", "/contents/{path+}", put_contents, "repos/contents#create-or-update-file-contents"),
    _route("DELETE", "/contents/{path+}", delete_contents, "repos/contents#delete-a-file"),
]
# Registered after the check-run and status routes, whose paths also start with /commits/{ref}/.
COMMIT_ROUTES = [_route("GET", "/commits/{ref+}", get_commit, "commits/commits#get-a-commit")]
