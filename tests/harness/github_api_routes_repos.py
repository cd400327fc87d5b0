"""Routes of the GitHub API double for repositories: create, get, update, delete, list, permissions.

Creating a repository initialises a real bare repository at `{root}/{owner}/{name}.git` (default
branch `main`, `http.receivepack=true`), with a README commit for `auto_init`; deleting removes it;
renaming moves it. `create_repository` is shared with the double's setup API. Disk and git I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
Repo = github_api_state.Repo
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_CREATION_FAILED = "Repository creation failed."


def _name_error(message: str, summary: str) -> github_api_http.ApiError:
    error = {"resource": "Repository", "code": "custom", "field": "name", "message": message}
    return github_api_http.ApiError(422, summary, errors=[error])


def validate_name(store: github_api_state.Store, owner: str, name: str, summary: str) -> None:
    """GitHub's repository name rules: `[A-Za-z0-9._-]`, at most 100 characters, unique per owner."""
    if not _NAME.match(name) or name in (".", ".."):
        raise _name_error("name is invalid", summary)
    if len(name) > 100:
        raise _name_error("name is too long (maximum is 100 characters)", summary)
    if store.repo(owner, name) is not None:
        raise _name_error("name already exists on this account", summary)


def create_repository(
    store: github_api_state.Store,
    owner: github_api_state.Account,
    body: dict[str, Any],
    creator: github_api_state.Account | None,
) -> Repo:
    """Validate a create-repository body and create the record and its bare repository."""
    name = github_api_http.required_str(body, "name")
    validate_name(store, owner.login, name, _CREATION_FAILED)
    now = github_api_state.now()
    repo = Repo(
        id=store.next_id("repository"),
        owner=owner.login,
        name=name,
        private=_is_private(body, default=False),
        description=github_api_http.field(body, "description", str),
        homepage=github_api_http.field(body, "homepage", str),
        default_branch="main",
        created_at=now,
        updated_at=now,
        pushed_at=now,
        settings=_settings(body, dict(github_api_state.REPO_SETTINGS_DEFAULTS)),
    )
    git = github_api_git.BareRepo.create(store.git_path(owner.login, name), repo.default_branch)
    if creator is not None and creator.login.lower() != owner.login.lower() and creator.type == "User":
        repo.collaborators[creator.login.lower()] = "admin"
    store.repos[repo.key] = repo
    if github_api_http.field(body, "auto_init", bool):
        _initial_commit(git, repo, creator or owner, now)
    return repo


def _is_private(body: dict[str, Any], default: bool) -> bool:
    visibility = github_api_http.field(body, "visibility", str)
    if visibility is not None:
        if visibility not in ("public", "private", "internal"):
            raise github_api_http.validation_failed(
                {"resource": "Repository", "code": "invalid", "field": "visibility"}
            )
        return visibility != "public"
    private = github_api_http.field(body, "private", bool)
    return default if private is None else private


def _settings(body: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    for key, default in github_api_state.REPO_SETTINGS_DEFAULTS.items():
        value = github_api_http.field(body, key, type(default))
        if value is not None:
            settings[key] = value
    return settings


def _initial_commit(git: github_api_git.BareRepo, repo: Repo, author: github_api_state.Account, now: float) -> None:
    readme = f"# {repo.name}\n" + (f"\n{repo.description}\n" if repo.description else "")
    tree = git.tree_with(None, "README.md", git.write_blob(readme.encode()))
    signature = github_api_lookups.signature(author, now)
    commit = git.write_commit(tree, [], "Initial commit", signature, signature)
    git.update_ref(f"refs/heads/{repo.default_branch}", commit)


def get_repo(call: Call) -> Reply:
    repo, _ = github_api_lookups.repo_for(call)
    return Reply(body=github_api_lookups.repo_body(call, repo), last_modified=repo.updated_at)


def create_for_user(call: Call) -> Reply:
    if call.principal.user is None:
        raise github_api_lookups.forbidden(call)
    repo = create_repository(call.store, call.principal.user, call.json(), call.principal.user)
    return _created(call, repo)


def create_in_org(call: Call) -> Reply:
    org = call.store.account(call.params["org"])
    if org is None or org.type != "Organization":
        raise github_api_http.not_found()
    principal = call.principal
    if principal.installation is not None and principal.token is not None:
        installed_here = principal.installation.account.lower() == org.login.lower()
        if not installed_here or not github_api_state.Access(principal.token.permissions).allows(
            "administration", "write"
        ):
            raise github_api_lookups.forbidden(call)
    elif principal.user is None:
        raise github_api_lookups.forbidden(call)
    elif principal.user.login.lower() not in org.owners | org.members:
        raise github_api_http.ApiError(
            403, "You need admin access to the organization before adding a repository to it."
        )
    repo = create_repository(call.store, org, call.json(), github_api_lookups.acting_account(call))
    if principal.installation is not None and principal.installation.repository_selection == "selected":
        principal.installation.repositories.add(repo.name.lower())
    return _created(call, repo)


def _created(call: Call, repo: Repo) -> Reply:
    body = github_api_lookups.repo_body(call, repo)
    return Reply(201, body, headers={"Location": body["url"]})


def update_repo(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call, "administration", "write")
    body = call.json()
    new_name = github_api_http.field(body, "name", str)
    if new_name is not None and new_name != repo.name:
        _rename(call.store, repo, git, new_name)
    default_branch = github_api_http.field(body, "default_branch", str)
    if default_branch is not None:
        if git.ref_target(f"refs/heads/{default_branch}") is None and git.refs():
            error = {"resource": "Repository", "code": "invalid", "field": "default_branch"}
            raise github_api_http.validation_failed(error)
        repo.default_branch = default_branch
    for key in ("description", "homepage"):
        if key in body:
            setattr(repo, key, github_api_http.field(body, key, str))
    repo.private = _is_private(body, default=repo.private)
    repo.settings = _settings(body, repo.settings)
    github_api_lookups.touch(repo, github_api_state.now())
    return Reply(body=github_api_lookups.repo_body(call, repo))


def _rename(store: github_api_state.Store, repo: Repo, git: github_api_git.BareRepo, new_name: str) -> None:
    validate_name(store, repo.owner, new_name, "Validation Failed")
    old_name = repo.name.lower()
    del store.repos[repo.key]
    git.move_to(store.git_path(repo.owner, new_name))
    repo.name = new_name
    store.repos[repo.key] = repo
    for installation in store.installations.values():
        if old_name in installation.repositories and installation.account.lower() == repo.owner.lower():
            installation.repositories.discard(old_name)
            installation.repositories.add(new_name.lower())


def delete_repo(call: Call) -> Reply:
    repo, git = github_api_lookups.repo_for(call)
    access = call.store.access(call.principal, repo)
    token = call.principal.token
    if call.principal.user is not None and token is not None and "delete_repo" not in token.scopes:
        raise github_api_http.ApiError(403, "Must have admin rights to Repository.")
    if access is None or not access.allows("administration", "write"):
        if call.principal.user is not None:
            raise github_api_http.ApiError(403, "Must have admin rights to Repository.")
        raise github_api_lookups.forbidden(call)
    delete_repository(call.store, repo, git)
    return Reply(204)


def delete_repository(store: github_api_state.Store, repo: Repo, git: github_api_git.BareRepo) -> None:
    del store.repos[repo.key]
    git.remove()
    store.pulls = {key: p for key, p in store.pulls.items() if p.repo_id != repo.id}
    store.comments = {key: c for key, c in store.comments.items() if c.repo_id != repo.id}
    store.check_runs = {key: r for key, r in store.check_runs.items() if r.repo_id != repo.id}
    store.reviews = [r for r in store.reviews if r.repo_id != repo.id]
    store.statuses = [s for s in store.statuses if s.repo_id != repo.id]
    for installation in store.installations.values():
        if installation.account.lower() == repo.owner.lower():
            installation.repositories.discard(repo.name.lower())


def _visible(call: Call, repos: Iterable[Repo]) -> list[Repo]:
    return [repo for repo in repos if call.store.access(call.principal, repo) is not None]


def _sorted(call: Call, repos: list[Repo], default_sort: str) -> list[Repo]:
    sort = call.query.get("sort", default_sort)
    keys = {
        "created": lambda r: (r.created_at, r.id),
        "updated": lambda r: (r.updated_at, r.id),
        "pushed": lambda r: (r.pushed_at, r.id),
        "full_name": lambda r: (r.full_name.lower(), r.id),
    }
    key = keys.get(sort, keys[default_sort])
    direction = call.query.get("direction", "asc" if sort == "full_name" else "desc")
    return sorted(repos, key=key, reverse=direction == "desc")


def _page(call: Call, repos: list[Repo], default_sort: str) -> Reply:
    page, links = github_api_http.paginate(call, _sorted(call, repos, default_sort))
    return Reply(body=[github_api_lookups.repo_body(call, repo) for repo in page], headers=links)


def _by_type(repos: list[Repo], kind: str, owner_login: str) -> list[Repo]:
    match kind:
        case "public":
            return [r for r in repos if not r.private]
        case "private":
            return [r for r in repos if r.private]
        case "owner":
            return [r for r in repos if r.owner.lower() == owner_login.lower()]
        case "member":
            return [r for r in repos if r.owner.lower() != owner_login.lower()]
    return repos


def list_for_authenticated_user(call: Call) -> Reply:
    account = call.principal.user
    if account is None:
        raise github_api_lookups.forbidden(call)
    login = account.login.lower()
    affiliations = set(call.query.get("affiliation", "owner,collaborator,organization_member").split(","))
    repos = []
    for repo in _visible(call, call.store.repos.values()):
        owner = call.store.account(repo.owner)
        relations = {
            "owner": repo.owner.lower() == login,
            "collaborator": login in repo.collaborators,
            "organization_member": owner is not None and login in owner.owners | owner.members,
        }
        if any(relations.get(name, False) for name in affiliations):
            repos.append(repo)
    visibility = call.query.get("visibility", "all")
    repos = _by_type(repos, visibility, login) if visibility != "all" else repos
    return _page(call, _by_type(repos, call.query.get("type", "all"), login), "full_name")


def list_for_org(call: Call) -> Reply:
    org = call.store.account(call.params["org"])
    if org is None or org.type != "Organization":
        raise github_api_http.not_found()
    repos = _visible(call, (r for r in call.store.repos.values() if r.owner.lower() == org.login.lower()))
    return _page(call, _by_type(repos, call.query.get("type", "all"), org.login), "created")


def list_for_user(call: Call) -> Reply:
    account = call.store.account(call.params["username"])
    if account is None:
        raise github_api_http.not_found()
    repos = _visible(call, call.store.repos.values())
    login = account.login.lower()
    related = [r for r in repos if r.owner.lower() == login or login in r.collaborators]
    return _page(call, _by_type(related, call.query.get("type", "owner"), login), "full_name")


def get_collaborator_permission(call: Call) -> Reply:
    repo, _ = github_api_lookups.repo_for(call)
    account = call.store.account(call.params["username"])
    if account is None:
        raise github_api_http.not_found()
    level = call.store.user_level(account, repo)
    body = github_api_bodies.collaborator_permission(github_api_lookups.urls(call), account, level)
    return Reply(body=body)


ROUTES = [
    github_api_http.Route.of("GET", "/repos/{owner}/{repo}", get_repo, "repos/repos#get-a-repository"),
    github_api_http.Route.of("PATCH", "/repos/{owner}/{repo}", update_repo, "repos/repos#update-a-repository"),
    github_api_http.Route.of("DELETE", "/repos/{owner}/{repo}", delete_repo, "repos/repos#delete-a-repository"),
    github_api_http.Route.of(
        "POST", "/user/repos", create_for_user, "repos/repos#create-a-repository-for-the-authenticated-user"
    ),
    github_api_http.Route.of(
        "POST", "/orgs/{org}/repos", create_in_org, "repos/repos#create-an-organization-repository"
    ),
    github_api_http.Route.of(
        "GET", "/user/repos", list_for_authenticated_user, "repos/repos#list-repositories-for-the-authenticated-user"
    ),
    github_api_http.Route.of("GET", "/orgs/{org}/repos", list_for_org, "repos/repos#list-organization-repositories"),
    github_api_http.Route.of(
        "GET", "/users/{username}/repos", list_for_user, "repos/repos#list-repositories-for-a-user"
    ),
    github_api_http.Route.of(
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        get_collaborator_permission,
        "collaborators/collaborators#get-repository-permissions-for-a-user",
    ),
]
