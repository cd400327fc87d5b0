"""A stateful GitHub REST API double for tests, backed by real bare git repositories.

`GitHubDouble(root)` serves GitHub's REST paths, headers, status codes and error bodies on
`127.0.0.1:<free port>` from an aiohttp app running in a background thread with its own event loop,
so sync tests and async tests (even on virtual time) can use it. State lives in memory; repository
content lives in bare repositories at `{root}/{owner}/{name}.git`, the layout the smart-HTTP git
server in `tests/harness/gitserver.py` serves, which authenticates pushes and fetches through
`check_git_credentials`. This module holds the public API (setup, fault injection, introspection)
and the HTTP server glue; the `github_api_*` modules hold state, routes and the request pipeline.

    with GitHubDouble(tmp_path) as gh:
        gh.add_org("acme")
        gh.add_app(1, public_key_pem, slug="chkmate")
        installation_id = gh.add_installation(1, "acme")
        gh.create_repo("acme", "infra", auto_init=True)
        github = GitHub(AppInstallationAuthStrategy(1, private_key_pem, installation_id), base_url=gh.url)

Does I/O: a TCP server, git subprocesses, files under `root`.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness import (
    github_api_auth,
    github_api_http,
    github_api_limits,
    github_api_pipeline,
    github_api_routes_accounts,
    github_api_routes_checks,
    github_api_routes_git,
    github_api_routes_pulls,
    github_api_routes_repos,
    github_api_state,
)

RequestRecord = github_api_pipeline.RequestRecord
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")
_MAX_BODY = 64 * 1024 * 1024


class GitHubDouble:
    """A local GitHub REST API: set it up with Python calls, talk to it over HTTP at `url`."""

    def __init__(
        self,
        root: Path | str,
        *,
        token_ttl: float = 3600,
        rate_limit_per_hour: int = 5000,
        web_url: str | None = None,
    ) -> None:
        """`web_url` is the base of `html_url`/`clone_url` (point it at the git server); default: `url`."""
        self.root = Path(root)
        self.web_url = web_url
        self._store = github_api_state.Store(self.root, token_ttl)
        self._limits = github_api_limits.RateLimits(rate_limit_per_hour)
        self._faults = github_api_limits.Faults()
        routes = [
            *github_api_routes_accounts.routes(self._limits),
            *github_api_routes_repos.ROUTES,
            *github_api_routes_checks.ROUTES,
            *github_api_routes_git.ROUTES,
            *github_api_routes_git.COMMIT_ROUTES,
            *github_api_routes_pulls.ROUTES,
        ]
        self._pipeline = github_api_pipeline.Pipeline(
            self._store, github_api_http.Router(routes), self._limits, self._faults, lambda: self.web_url
        )
        self._server: _ServerThread | None = None

    # Lifecycle

    def __enter__(self) -> GitHubDouble:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        if self._server is None:
            self._server = _ServerThread(self._serve)
            self._server.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`: githubkit's `base_url`."""
        if self._server is None:
            raise RuntimeError("GitHubDouble is not running: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def token_ttl(self) -> float:
        return self._store.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        with self._store.lock:
            self._store.token_ttl = seconds

    async def _serve(self, request: web.Request) -> web.Response:
        raw = github_api_pipeline.RawRequest(
            method=request.method,
            path=request.path,
            query={key: request.query.getone(key) for key in request.query},
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
            api_url=f"http://{request.host}",
            remote=request.remote or "127.0.0.1",
        )
        response = self._pipeline.handle(raw)
        return web.Response(status=response.status, headers=response.headers, body=response.body or None)

    # Setup

    def add_user(self, login: str, *, type: Literal["User", "Organization", "Bot"] = "User") -> None:
        with self._store.lock:
            self._add_account(login, type)

    def add_org(self, login: str, *, owners: Iterable[str] = (), members: Iterable[str] = ()) -> None:
        """An organization; `owners` are admins of all its repositories, `members` can read them."""
        with self._store.lock:
            org = self._add_account(login, "Organization")
            org.owners = {name.lower() for name in owners}
            org.members = {name.lower() for name in members}

    def _add_account(self, login: str, kind: Literal["User", "Organization", "Bot"]) -> github_api_state.Account:
        if self._store.account(login) is not None:
            raise ValueError(f"account {login!r} already exists")
        account = github_api_state.Account(login, self._store.next_id("account"), kind, github_api_state.now())
        self._store.accounts[login.lower()] = account
        return account

    def add_app(
        self, app_id: int, public_key_pem: str | bytes, slug: str | None = None, *, owner: str | None = None
    ) -> None:
        """A GitHub App whose JWTs verify with this key (a private key PEM works too: its public half)."""
        key = _rsa_public_key(public_key_pem)
        with self._store.lock:
            slug = slug or f"app-{app_id}"
            owner_login = owner or f"{slug}-owner"
            if self._store.account(owner_login) is None:
                self._add_account(owner_login, "User")
            self._store.apps[app_id] = github_api_state.App(
                id=app_id,
                slug=slug,
                name=slug,
                client_id=f"Iv1.{app_id:016x}",
                owner=owner_login,
                public_key=key,
                bot=self._add_account(f"{slug}[bot]", "Bot"),
                created_at=github_api_state.now(),
            )

    def rotate_app_key(self, app_id: int, public_key_pem: str | bytes) -> None:
        """The App's key was replaced on GitHub: JWTs now verify with this key only."""
        key = _rsa_public_key(public_key_pem)
        with self._store.lock:
            self._store.apps[app_id].public_key = key

    def add_installation(
        self,
        app_id: int,
        account_login: str,
        *,
        installation_id: int | None = None,
        repository_selection: Literal["all", "selected"] = "all",
        repositories: Iterable[str] = (),
        suspended: bool = False,
        permissions: Mapping[str, str] | None = None,
    ) -> int:
        """Install an app on an account; `repositories` are names (or `owner/name`) when "selected"."""
        with self._store.lock:
            if app_id not in self._store.apps or self._store.account(account_login) is None:
                raise ValueError(f"unknown app {app_id} or account {account_login!r}")
            new_id = installation_id or self._store.next_id("installation")
            self._store.installations[new_id] = github_api_state.Installation(
                id=new_id,
                app_id=app_id,
                account=account_login,
                repository_selection=repository_selection,
                repositories={name.rpartition("/")[2].lower() for name in repositories},
                suspended=suspended,
                permissions={"metadata": "read", **(permissions or github_api_state.DEFAULT_INSTALLATION_PERMISSIONS)},
                created_at=github_api_state.now(),
            )
            return new_id

    def set_installation_suspended(self, installation_id: int, suspended: bool = True) -> None:
        with self._store.lock:
            self._store.installations[installation_id].suspended = suspended

    def add_personal_token(
        self, token: str, login: str, scopes: Iterable[str] = github_api_state.DEFAULT_TOKEN_SCOPES
    ) -> None:
        with self._store.lock:
            if self._store.account(login) is None:
                raise ValueError(f"unknown user {login!r}")
            self._store.tokens[token] = github_api_state.Token(
                value=token, installation_id=None, login=login, expires_at=None, scopes=tuple(scopes)
            )

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        private: bool = False,
        description: str | None = None,
        auto_init: bool = False,
        **settings: Any,
    ) -> Path:
        """Create a repository as `POST /user/repos` would (same validation); returns the bare repo path."""
        with self._store.lock:
            account = self._store.account(owner)
            if account is None:
                raise ValueError(f"unknown owner {owner!r}: add_user or add_org first")
            body = {"name": name, "private": private, "description": description, "auto_init": auto_init, **settings}
            repo = github_api_routes_repos.create_repository(self._store, account, body, None)
            return self._store.git_path(repo.owner, repo.name)

    def bare_repo_path(self, full_name: str) -> Path:
        with self._store.lock:
            record = self._repo(full_name)
            return self._store.git_path(record.owner, record.name)

    def set_permission(self, repo: str, login: str, level: Literal["admin", "write", "read", "none"]) -> None:
        """Give `login` a role on `repo` (`owner/name`); "none" removes it."""
        if level not in github_api_state.LEVELS:
            raise ValueError(f"unknown permission level {level!r}")
        with self._store.lock:
            record = self._repo(repo)
            if level == "none":
                record.collaborators.pop(login.lower(), None)
            else:
                record.collaborators[login.lower()] = level

    def add_review(self, repo: str, number: int, login: str, state: str, *, body: str = "") -> int:
        """Record a submitted review on pull request `number`, on its current head commit."""
        if state not in REVIEW_STATES:
            raise ValueError(f"review state must be one of {REVIEW_STATES}")
        with self._store.lock:
            record = self._repo(repo)
            pull = self._store.pulls.get((record.id, number))
            if pull is None or self._store.account(login) is None:
                raise ValueError(f"unknown pull request {repo}#{number} or user {login!r}")
            review = github_api_state.Review(
                id=self._store.next_id("review"),
                repo_id=record.id,
                number=number,
                user=login,
                state=state,
                body=body,
                commit_id=pull.last_head_sha,
                submitted_at=github_api_state.now(),
            )
            self._store.reviews.append(review)
            return review.id

    def _repo(self, full_name: str) -> github_api_state.Repo:
        record = self._store.repo_by_full_name(full_name)
        if record is None:
            raise ValueError(f"unknown repository {full_name!r}")
        return record

    # Fault injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `count` requests matching method (or "*") and path with `status`."""
        with self._store.lock:
            self._faults.add(method, path_regex, status, count, headers, body)

    def rate_limit(self, remaining: int = 0, reset_in: float = 60) -> None:
        """Every principal has `remaining` calls left until `reset_in` seconds from now."""
        with self._store.lock:
            self._limits.force(remaining, github_api_state.now() + reset_in)

    def secondary_rate_limit(self, retry_after: int = 60, *, status: Literal[403, 429] = 403, count: int = 1) -> None:
        """The next `count` metered calls hit a secondary rate limit (with `Retry-After`)."""
        with self._store.lock:
            self._faults.arm_secondary(retry_after, status, count)

    def expire_tokens(self) -> None:
        """Expire every installation token issued so far (their next use answers 401)."""
        with self._store.lock:
            now = github_api_state.now()
            for token in self._store.tokens.values():
                if token.installation_id is not None:
                    token.expires_at = now - 1

    # Introspection

    def issued_tokens(self) -> list[str]:
        """Every installation token issued so far (tests grep logs and objects for them)."""
        with self._store.lock:
            return [value for value, token in self._store.tokens.items() if token.installation_id is not None]

    def has_repo(self, full_name: str) -> bool:
        owner, _, name = full_name.partition("/")
        with self._store.lock:
            return self._store.repo(owner, name) is not None

    @property
    def requests(self) -> list[RequestRecord]:
        with self._store.lock:
            return list(self._pipeline.records)

    def calls(self, method: str | None = None, path_regex: str | None = None) -> list[RequestRecord]:
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            record
            for record in self.requests
            if (method is None or record.method == method.upper()) and (pattern is None or pattern.search(record.path))
        ]

    @property
    def not_modified_count(self) -> int:
        """How many requests were answered 304 Not Modified since the last `reset_counters()`."""
        return sum(1 for record in self.requests if record.status == 304)

    def reset_counters(self) -> None:
        with self._store.lock:
            self._pipeline.records.clear()

    # Git server hook

    def check_git_credentials(self, username: str, password: str, repo_full_name: str, *, write: bool = False) -> bool:
        """Whether a git client may fetch (or push, with `write`) `repo_full_name` with this token.

        Valid: an unexpired installation token whose installation can see the repository, or a
        registered personal token whose user has access. Like GitHub, the username is not checked.
        """
        del username
        with self._store.lock:
            repo = self._store.repo_by_full_name(repo_full_name)
            if repo is None:
                return False
            try:
                principal = github_api_auth.token_principal(self._store, password, github_api_state.now())
            except github_api_http.ApiError:
                return False
            access = self._store.access(principal, repo)
            return access is not None and access.allows("contents", "write" if write else "read")


def _rsa_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("GitHub App keys are RSA keys")
        return private.public_key()
    public = serialization.load_pem_public_key(data)
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("GitHub App keys are RSA keys")
    return public


class _ServerThread:
    """An aiohttp server on 127.0.0.1:<free port> in a daemon thread with its own event loop."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self._handler = handler
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="github-api-double", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the GitHub API double could not start") from self._error

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start_site())
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            if self._runner is not None:
                self._loop.run_until_complete(self._runner.cleanup())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
