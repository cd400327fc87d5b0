"""Routes of the GitHub API double for apps, installations, users, organizations and rate limits.

`/app/...` needs an app JWT; installation tokens come from `POST /app/installations/{id}/access_tokens`
(optionally narrowed to some repositories or permissions). No I/O beyond reading the store.
"""

from __future__ import annotations

import functools
from typing import Any

from tests.harness import (
    github_api_bodies,
    github_api_http,
    github_api_limits,
    github_api_lookups,
    github_api_state,
)

Call = github_api_http.Call
Reply = github_api_http.Reply
_INACCESSIBLE_REPOSITORY = (
    "There is at least one repository that does not exist or is not accessible to the parent installation."
)


def _authenticated_app(call: Call) -> github_api_state.App:
    if call.principal.kind != "app" or call.principal.app is None:
        raise github_api_http.ApiError(401, "A JSON web token could not be decoded")
    return call.principal.app


def _installation_of_app(call: Call) -> github_api_state.Installation:
    app = _authenticated_app(call)
    installation_id = call.params["installation_id"]
    found = call.store.installations.get(int(installation_id)) if installation_id.isdigit() else None
    if found is None or found.app_id != app.id:
        raise github_api_http.not_found()
    return found


def _installation_body(call: Call, installation: github_api_state.Installation) -> dict[str, Any]:
    account = call.store.account(installation.account)
    assert account is not None
    app = call.store.apps[installation.app_id]
    suspended_by = call.store.account(app.owner)
    return github_api_bodies.installation(github_api_lookups.urls(call), installation, account, app.slug, suspended_by)


def get_app(call: Call) -> Reply:
    app = _authenticated_app(call)
    owner = call.store.account(app.owner)
    assert owner is not None
    count = sum(1 for i in call.store.installations.values() if i.app_id == app.id)
    return Reply(body=github_api_bodies.app(github_api_lookups.urls(call), app, owner, count))


def list_installations(call: Call) -> Reply:
    app = _authenticated_app(call)
    installations = sorted((i for i in call.store.installations.values() if i.app_id == app.id), key=lambda i: i.id)
    page, links = github_api_http.paginate(call, installations)
    return Reply(body=[_installation_body(call, i) for i in page], headers=links)


def get_installation(call: Call) -> Reply:
    return Reply(body=_installation_body(call, _installation_of_app(call)))


def create_installation_token(call: Call) -> Reply:
    installation = _installation_of_app(call)
    if installation.suspended:
        raise github_api_http.ApiError(403, "This installation has been suspended")
    body = call.json()
    scoped = _requested_repositories(call, installation, body)
    permissions = _requested_permissions(installation, body)
    token = github_api_state.Token(
        value=github_api_state.new_token_value("ghs_"),
        installation_id=installation.id,
        login=None,
        expires_at=github_api_state.now() + call.store.token_ttl,
        permissions=permissions,
        repositories=frozenset(repo.name.lower() for repo in scoped) if scoped is not None else None,
    )
    call.store.tokens[token.value] = token
    selection = "selected" if scoped is not None else installation.repository_selection
    repo_bodies = [github_api_lookups.repo_body(call, repo) for repo in scoped] if scoped is not None else None
    return Reply(201, github_api_bodies.installation_token(token, selection, repo_bodies))


def _requested_repositories(
    call: Call, installation: github_api_state.Installation, body: dict[str, Any]
) -> list[github_api_state.Repo] | None:
    names = github_api_http.field(body, "repositories", list) or []
    ids = github_api_http.field(body, "repository_ids", list) or []
    if not names and not ids:
        return None
    found = [call.store.repo(installation.account, str(name)) for name in names]
    found += [call.store.repo_by_id(int(i)) if isinstance(i, int) else None for i in ids]
    repos = [repo for repo in found if repo is not None and call.store.installation_sees(installation, repo)]
    if len(repos) != len(found):
        raise github_api_http.ApiError(422, _INACCESSIBLE_REPOSITORY)
    return repos


def _requested_permissions(installation: github_api_state.Installation, body: dict[str, Any]) -> dict[str, str]:
    requested = github_api_http.field(body, "permissions", dict)
    if not requested:
        return dict(installation.permissions)
    for name, level in requested.items():
        granted = installation.permissions.get(name, "none")
        if github_api_state.LEVELS.get(level, 99) > github_api_state.LEVELS[granted]:
            raise github_api_http.ApiError(422, "The permissions requested are not granted to this installation.")
    return {"metadata": "read", **requested}


def list_installation_repositories(call: Call) -> Reply:
    installation = call.principal.installation
    if installation is None:
        raise github_api_lookups.forbidden(call)
    repos = [repo for repo in call.store.repos.values() if call.store.access(call.principal, repo) is not None]
    page, links = github_api_http.paginate(call, sorted(repos, key=lambda repo: repo.id))
    body = {
        "total_count": len(repos),
        "repository_selection": installation.repository_selection,
        "repositories": [github_api_lookups.repo_body(call, repo) for repo in page],
    }
    return Reply(body=body, headers=links)


def _repo_counts(store: github_api_state.Store, login: str) -> tuple[int, int]:
    owned = [repo for repo in store.repos.values() if repo.owner.lower() == login.lower()]
    private = sum(1 for repo in owned if repo.private)
    return len(owned) - private, private


def get_authenticated_user(call: Call) -> Reply:
    account = call.principal.user
    if account is None:
        raise github_api_lookups.forbidden(call)
    public, private = _repo_counts(call.store, account.login)
    return Reply(body=github_api_bodies.private_user(github_api_lookups.urls(call), account, public, private))


def get_user(call: Call) -> Reply:
    account = call.store.account(call.params["username"])
    if account is None:
        raise github_api_http.not_found()
    public, _ = _repo_counts(call.store, account.login)
    return Reply(body=github_api_bodies.public_user(github_api_lookups.urls(call), account, public))


def get_organization(call: Call) -> Reply:
    org = call.store.account(call.params["org"])
    if org is None or org.type != "Organization":
        raise github_api_http.not_found()
    public, _ = _repo_counts(call.store, org.login)
    return Reply(body=github_api_bodies.organization(github_api_lookups.urls(call), org, public))


def get_rate_limit(limits: github_api_limits.RateLimits, call: Call) -> Reply:
    bucket = limits.bucket(call.principal, github_api_state.now())
    body = github_api_bodies.rate_limit(bucket.limit, bucket.remaining, bucket.used, int(bucket.reset_at))
    return Reply(body=body)


def routes(limits: github_api_limits.RateLimits) -> list[github_api_http.Route]:
    route = github_api_http.Route.of
    return [
        route("GET", "/app", get_app, "apps/apps#get-the-authenticated-app"),
        route(
            "GET", "/app/installations", list_installations, "apps/apps#list-installations-for-the-authenticated-app"
        ),
        route(
            "GET",
            "/app/installations/{installation_id}",
            get_installation,
            "apps/apps#get-an-installation-for-the-authenticated-app",
        ),
        route(
            "POST",
            "/app/installations/{installation_id}/access_tokens",
            create_installation_token,
            "apps/apps#create-an-installation-access-token-for-an-app",
        ),
        route(
            "GET",
            "/installation/repositories",
            list_installation_repositories,
            "apps/installations#list-repositories-accessible-to-the-app-installation",
        ),
        route("GET", "/user", get_authenticated_user, "users/users#get-the-authenticated-user"),
        route("GET", "/users/{username}", get_user, "users/users#get-a-user"),
        route("GET", "/orgs/{org}", get_organization, "orgs/orgs#get-an-organization"),
        route(
            "GET",
            "/rate_limit",
            functools.partial(get_rate_limit, limits),
            "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user",
        ),
    ]
