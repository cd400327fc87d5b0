"""Lookups shared by the GitHub API double's route handlers, with GitHub's error semantics.

Finding a repository hides its existence (404) from principals that cannot see it and answers 403
(or 401 when anonymous) for a missing permission; resolving a ref answers 422 like the commits API.
Also builds the bodies that need the store (users, repositories, commits). Git reads only.
"""

from __future__ import annotations

from typing import Any

from tests.harness import github_api_bodies, github_api_git, github_api_http, github_api_state

Json = dict[str, Any]
NOREPLY_DOMAIN = "users.noreply.github.com"


def urls(call: github_api_http.Call) -> github_api_bodies.Urls:
    return github_api_bodies.Urls(api=call.api_url, web=call.web_url)


def requires_authentication() -> github_api_http.ApiError:
    return github_api_http.ApiError(401, "Requires authentication")


def forbidden(call: github_api_http.Call) -> github_api_http.ApiError:
    """GitHub's answer to a principal that lacks a permission."""
    match call.principal.kind:
        case "anonymous":
            return requires_authentication()
        case "user":
            return github_api_http.ApiError(403, "Resource not accessible by personal access token")
        case _:
            return github_api_http.ApiError(403, "Resource not accessible by integration")


def acting_account(call: github_api_http.Call) -> github_api_state.Account:
    """The user or app bot that authors what this request writes; 401/403 for others."""
    principal = call.principal
    if principal.user is not None:
        return principal.user
    if principal.installation is not None and principal.app is not None:
        return principal.app.bot
    if principal.kind == "anonymous":
        raise requires_authentication()
    raise github_api_http.ApiError(403, "Resource not accessible by integration")


def repo_for(
    call: github_api_http.Call, permission: str = "metadata", level: str = "read"
) -> tuple[github_api_state.Repo, github_api_git.BareRepo]:
    """The repository named by the `owner`/`repo` path parameters, if the principal may do this."""
    repo = call.store.repo(call.params["owner"], call.params["repo"])
    access = call.store.access(call.principal, repo) if repo is not None else None
    if repo is None or access is None:
        raise github_api_http.not_found()
    if not access.allows(permission, level):
        raise forbidden(call)
    return repo, call.store.git(repo)


def resolve_commit(git: github_api_git.BareRepo, ref: str) -> str:
    sha = git.resolve_commit(ref)
    if sha is None:
        raise github_api_http.ApiError(422, f"No commit found for SHA: {ref}")
    return sha


def user_body(call: github_api_http.Call, login: str) -> Json:
    account = call.store.account(login)
    if account is None:
        raise github_api_http.not_found()
    return github_api_bodies.user(urls(call), account)


def repo_body(call: github_api_http.Call, repo: github_api_state.Repo) -> Json:
    """A repository body with the `permissions` the caller has, as GitHub shows to signed-in callers."""
    owner = call.store.account(repo.owner)
    assert owner is not None, f"repository {repo.full_name} has no owner account"
    permissions = None
    if call.principal.user is not None:
        permissions = github_api_bodies.repo_permissions(call.store.user_level(call.principal.user, repo))
    elif call.principal.installation is not None:
        access = call.store.access(call.principal, repo)
        push = access is not None and access.allows("contents", "write")
        admin = access is not None and access.allows("administration", "write")
        permissions = github_api_bodies.repo_permissions("admin" if admin else "write" if push else "read")
    open_issues = sum(1 for pull in call.store.pulls_of(repo) if pull.state == "open")
    return github_api_bodies.repository(urls(call), repo, owner, permissions, open_issues)


def association(store: github_api_state.Store, repo: github_api_state.Repo, login: str) -> str:
    """GitHub's `author_association` of `login` with `repo`."""
    owner = store.account(repo.owner)
    if login.lower() == repo.owner.lower():
        return "OWNER"
    if owner is not None and login.lower() in owner.owners | owner.members:
        return "MEMBER"
    return "COLLABORATOR" if login.lower() in repo.collaborators else "NONE"


def noreply_email(account: github_api_state.Account) -> str:
    return f"{account.id}+{account.login}@{NOREPLY_DOMAIN}"


def account_for_email(store: github_api_state.Store, email: str) -> github_api_state.Account | None:
    local, _, domain = email.partition("@")
    if domain != NOREPLY_DOMAIN:
        return None
    return store.account(local.partition("+")[2] or local)


def commit_body(call: github_api_http.Call, repo: github_api_state.Repo, data: github_api_git.CommitData) -> Json:
    people = []
    for signature in (data.author, data.committer):
        account = account_for_email(call.store, signature.email)
        people.append(github_api_bodies.user(urls(call), account) if account is not None else None)
    return github_api_bodies.commit(urls(call), repo, data, people[0], people[1])


def signature(account: github_api_state.Account, timestamp: float) -> github_api_git.Signature:
    return github_api_git.Signature(account.login, noreply_email(account), int(timestamp))


def web_flow(timestamp: float) -> github_api_git.Signature:
    """The committer GitHub puts on the merge commits it makes."""
    return github_api_git.Signature("GitHub", "noreply@github.com", int(timestamp))


def touch(repo: github_api_state.Repo, now: float, *, pushed: bool = False) -> None:
    repo.updated_at = now
    if pushed:
        repo.pushed_at = now
