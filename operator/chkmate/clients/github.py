"""The GitHub REST API, as the operator uses it: one client per GitHubConnection.

* App auth: the App's private key signs a JWT (githubkit's ``AppAuthStrategy``); installation tokens are
  fetched with it and cached per connection until five minutes before they expire, behind a lock, so many
  reconciles starting at once make one token request (githubkit's own cache has no lock: FACTS.md).
* Token auth: a personal or fine-grained token, used as is.
* Every client has its own ETag cache (``MemCacheStrategy``): a repeated GET sends ``If-None-Match`` and a
  304 costs no rate limit. ``auto_retry`` is off: rate limits become :class:`RateLimited` carrying the
  server's delay, 5xx become :class:`GitHubUnavailable`, and the controllers requeue.
* Tokens and keys never appear in errors or logs: messages are built from status codes and GitHub's
  ``message`` field only.

I/O: HTTPS to the GitHub API. Parsing of responses into small frozen values happens here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import githubkit
import githubkit.exception
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chkmate import errors
from chkmate.api.conditions import Reasons
from chkmate.domain import access

DEFAULT_TIMEOUT = 30.0
TOKEN_REFRESH_MARGIN = datetime.timedelta(minutes=5)  # GitHub tokens live 1 h; renew well before.
USER_AGENT = "chkmate-operator"


class GitHubError(errors.ChkmateError):
    """GitHub refused a request; ``status`` is the HTTP status (0 when there was no response)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retryable=retryable, retry_after=retry_after)
        self.status = status


class NotFound(GitHubError):
    pass


class Unauthorized(GitHubError):
    reason = Reasons.UNAUTHORIZED


class RateLimited(GitHubError):
    reason = Reasons.RATE_LIMITED
    retryable = True


class GitHubUnavailable(GitHubError):
    reason = Reasons.GITHUB_UNAVAILABLE
    retryable = True


class InvalidPrivateKey(GitHubError):
    reason = Reasons.INVALID_PRIVATE_KEY


class InstallationNotFound(GitHubError):
    reason = Reasons.INSTALLATION_NOT_FOUND


class InstallationSuspended(GitHubError):
    reason = Reasons.INSTALLATION_SUSPENDED


@dataclasses.dataclass(frozen=True)
class AppAuth:
    app_id: int
    installation_id: int
    private_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class TokenAuth:
    token: str = dataclasses.field(repr=False)


Auth = AppAuth | TokenAuth


def fingerprint(api_url: str, auth: Auth) -> str:
    """Identifies a client configuration without revealing it (a new key or token gives a new client)."""
    secret = auth.private_key if isinstance(auth, AppAuth) else auth.token
    ids = f"{auth.app_id}/{auth.installation_id}" if isinstance(auth, AppAuth) else "token"
    return hashlib.sha256(f"{api_url}\0{ids}\0{secret}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Token:
    value: str = dataclasses.field(repr=False)
    expires_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Account:
    login: str
    type: str
    avatar_url: str


@dataclasses.dataclass(frozen=True)
class Installation:
    id: int
    account: Account
    suspended: bool
    repository_selection: str


@dataclasses.dataclass(frozen=True)
class Repository:
    full_name: str
    html_url: str
    clone_url: str
    default_branch: str
    visibility: str

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Repository:
        visibility = data.get("visibility") or ("private" if data.get("private") else "public")
        return cls(
            full_name=data["full_name"],
            html_url=data.get("html_url", ""),
            clone_url=data.get("clone_url", ""),
            default_branch=data.get("default_branch") or "main",
            visibility=visibility,
        )


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    data: Any
    headers: Mapping[str, str]


def load_private_key(pem: str) -> None:
    """Raise :class:`InvalidPrivateKey` unless ``pem`` is an RSA private key (what GitHub Apps use)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise InvalidPrivateKey("The GitHub App private key is not a PEM-encoded private key.") from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidPrivateKey("The GitHub App private key is not an RSA key.")


class SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool for all of a client's requests.

    githubkit opens a new ``httpx.AsyncClient`` per request outside its context manager (its client lives in
    a ContextVar, which kopf's handler tasks do not share), and each new client would build an SSL context
    (~20 ms) and a new connection. Handing it this transport keeps the pool, and the client's ``aclose`` at
    the end of each request leaves it open.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass  # the pool outlives the per-request clients; see close()

    async def close(self) -> None:
        await self._inner.aclose()


class GitHubClient:
    """One connection's access to GitHub: tokens, requests, the ETag cache and the last rate limit seen."""

    def __init__(self, api_url: str, auth: Auth, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if isinstance(auth, AppAuth):
            load_private_key(auth.private_key)
        self.api_url = api_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.fingerprint = fingerprint(api_url, auth)
        self.rate_limit: RateLimit | None = None
        self.calls: dict[int, int] = {}  # responses by status, for metrics and benchmarks
        self.on_response: Callable[[int], None] | None = None  # told of every response (0: none came)
        self._cache = githubkit.cache.MemCacheStrategy()
        self._transport = SharedTransport()
        self._http_cache = True
        self._token: Token | None = None
        self._token_lock = asyncio.Lock()
        self._clients: dict[str, githubkit.GitHub[Any]] = {}
        self._login: str | None = None

    # -- tokens ------------------------------------------------------------------------------------

    async def token(self, *, now: datetime.datetime | None = None) -> Token:
        """A token valid for at least :data:`TOKEN_REFRESH_MARGIN`; one request however many callers wait."""
        if isinstance(self.auth, TokenAuth):
            return Token(self.auth.token, None)
        async with self._token_lock:
            moment = now or datetime.datetime.now(datetime.UTC)
            token = self._token
            if token is None or token.expires_at is None or token.expires_at - TOKEN_REFRESH_MARGIN <= moment:
                token = self._token = await self._new_installation_token(self.auth)
            return token

    def forget_token(self) -> None:
        """Drop the cached token (after GitHub refused it)."""
        self._token = None

    async def _new_installation_token(self, auth: AppAuth) -> Token:
        app = githubkit.GitHub(githubkit.AppAuthStrategy(auth.app_id, auth.private_key), **self._options())
        path = f"/app/installations/{auth.installation_id}/access_tokens"
        try:
            response = await self._send(app, "POST", path, json=None)
        except NotFound as e:
            raise InstallationNotFound(
                f"GitHub App {auth.app_id} has no installation {auth.installation_id} (or the app id is wrong).",
                status=404,
            ) from e
        except Unauthorized as e:
            raise Unauthorized(
                f"GitHub refused the App's JWT (app id {auth.app_id}): check appId and the private key.",
                status=e.status,
                retryable=True,
            ) from e
        except GitHubError as e:
            if e.status == 403 and "suspended" in e.message.lower():
                raise InstallationSuspended(
                    f"Installation {auth.installation_id} of GitHub App {auth.app_id} is suspended.", status=403
                ) from e
            raise
        return Token(response.data["token"], _parse_time(response.data.get("expires_at")))

    # -- requests ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        app: bool = False,
    ) -> Response:
        """Call the API as the installation (or token), or as the App itself with ``app=True`` (JWT).

        A 401 with a cached installation token drops the token and tries once more with a fresh one.
        """
        if app:
            if not isinstance(self.auth, AppAuth):
                raise ValueError("App-level requests need GitHub App auth")
            client = githubkit.GitHub(
                githubkit.AppAuthStrategy(self.auth.app_id, self.auth.private_key), **self._options()
            )
            return await self._send(client, method, path, json=json, params=params)
        for attempt in (1, 2):
            token = await self.token()
            try:
                return await self._send(self._client_for(token), method, path, json=json, params=params)
            except Unauthorized:
                if attempt == 2 or isinstance(self.auth, TokenAuth):
                    raise
                self.forget_token()
        raise AssertionError("unreachable")

    async def get_optional(self, path: str) -> Response | None:
        try:
            return await self.request("GET", path)
        except NotFound:
            return None

    def _client_for(self, token: Token) -> githubkit.GitHub[Any]:
        client = self._clients.get(token.value)
        if client is None:
            self._clients = {token.value: githubkit.GitHub(githubkit.TokenAuthStrategy(token.value), **self._options())}
            client = self._clients[token.value]
        return client

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def disable_http_cache(self) -> None:
        """No ETags from now on (the baseline of the ETag benchmark)."""
        self._http_cache = False
        self._clients.clear()

    def _options(self) -> dict[str, Any]:
        return {
            "base_url": self.api_url + "/",
            "cache_strategy": self._cache,
            "http_cache": self._http_cache,
            "async_transport": self._transport,
            "auto_retry": False,
            "timeout": self.timeout,
            "user_agent": USER_AGENT,
        }

    async def _send(
        self,
        client: githubkit.GitHub[Any],
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str | int] | None = None,
    ) -> Response:
        try:
            response = await client.arequest(method, path.lstrip("/"), json=json, params=dict(params or {}))
        except githubkit.exception.RateLimitExceeded as e:
            self._count(e.response.status_code)
            self._observe(e.response.raw_response.headers)
            raise RateLimited(
                f"GitHub rate limit exceeded on {method} {path}; retrying in {e.retry_after.total_seconds():.0f}s.",
                status=e.response.status_code,
                retry_after=max(1.0, e.retry_after.total_seconds()),
            ) from None
        except githubkit.exception.RequestFailed as e:
            self._count(e.response.status_code)
            self._observe(e.response.raw_response.headers)
            raise classify(method, path, e.response.status_code, _json(e.response.raw_response)) from None
        except githubkit.exception.RequestTimeout:
            self._count(0)
            raise GitHubUnavailable(
                f"GitHub did not answer {method} {path} within {self.timeout:.0f}s.", retryable=True
            ) from None
        except githubkit.exception.RequestError as e:
            self._count(0)
            raise GitHubUnavailable(
                f"GitHub could not be reached for {method} {path}: {type(e).__name__}.", retryable=True
            ) from None
        # hishel answers a 304 with the cached 200; it marks such responses as revalidated.
        revalidated = bool(response.raw_response.extensions.get("hishel_revalidated"))
        self._count(304 if revalidated else response.status_code)
        if not revalidated:
            self._observe(response.raw_response.headers)
        body = _json(response.raw_response) if response.raw_response.content else None
        return Response(response.status_code, body, dict(response.raw_response.headers))

    def _count(self, status: int) -> None:
        self.calls[status] = self.calls.get(status, 0) + 1
        if self.on_response is not None:
            self.on_response(status)

    def _observe(self, headers: httpx.Headers) -> None:
        try:
            limit, remaining = int(headers["X-RateLimit-Limit"]), int(headers["X-RateLimit-Remaining"])
            reset = datetime.datetime.fromtimestamp(int(headers["X-RateLimit-Reset"]), datetime.UTC)
        except (KeyError, ValueError):
            return
        self.rate_limit = RateLimit(limit, remaining, reset)

    # -- what the controllers ask -----------------------------------------------------------------------

    async def installation(self) -> Installation:
        if not isinstance(self.auth, AppAuth):
            raise ValueError("installations exist for GitHub App auth only")
        try:
            data = (await self.request("GET", f"/app/installations/{self.auth.installation_id}", app=True)).data
        except NotFound as e:
            raise InstallationNotFound(
                f"GitHub App {self.auth.app_id} has no installation {self.auth.installation_id}.", status=404
            ) from e
        account = data.get("account") or {}
        return Installation(
            id=data["id"],
            account=_account(account),
            suspended=bool(data.get("suspended_at")),
            repository_selection=data.get("repository_selection", ""),
        )

    async def authenticated_user(self) -> Account:
        return _account((await self.request("GET", "/user")).data)

    async def own_login(self) -> str:
        """The login the connection's comments are written as: ``<app-slug>[bot]``, or the token's user (cached)."""
        if self._login is None:
            if isinstance(self.auth, AppAuth):
                self._login = f"{(await self.request('GET', '/app', app=True)).data['slug']}[bot]"
            else:
                self._login = (await self.authenticated_user()).login
        return self._login

    async def fetch_rate_limit(self) -> RateLimit:
        data = (await self.request("GET", "/rate_limit")).data["resources"]["core"]
        self.rate_limit = RateLimit(
            data["limit"], data["remaining"], datetime.datetime.fromtimestamp(data["reset"], datetime.UTC)
        )
        return self.rate_limit

    async def owner_type(self, login: str) -> Literal["User", "Organization"]:
        found = await self.get_optional(f"/users/{login}")
        if found is None:
            raise NotFound(f"GitHub has no user or organization {login!r}.", status=404)
        return "Organization" if found.data.get("type") == "Organization" else "User"

    async def repository(self, owner: str, name: str) -> Repository | None:
        found = await self.get_optional(f"/repos/{owner}/{name}")
        return None if found is None else Repository.parse(found.data)

    async def create_repository(
        self, owner: str, name: str, *, organization: bool, visibility: str, description: str
    ) -> Repository:
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "private": visibility != "public",
            "auto_init": False,
        }
        if organization:
            body["visibility"] = visibility
        path = f"/orgs/{owner}/repos" if organization else "/user/repos"
        return Repository.parse((await self.request("POST", path, json=body)).data)

    async def update_repository(self, owner: str, name: str, **fields: Any) -> Repository:
        return Repository.parse((await self.request("PATCH", f"/repos/{owner}/{name}", json=fields)).data)

    async def delete_repository(self, owner: str, name: str) -> bool:
        """True if deleted, False if it was already gone."""
        try:
            await self.request("DELETE", f"/repos/{owner}/{name}")
        except NotFound:
            return False
        return True

    def pulls(self, owner: str, name: str) -> PullRequests:
        return PullRequests(self, owner, name)

    async def branch_head(self, owner: str, name: str, branch: str) -> str | None:
        found = await self.get_optional(f"/repos/{owner}/{name}/branches/{branch}")
        return None if found is None else str(found.data["commit"]["sha"])


@dataclasses.dataclass(frozen=True)
class PullRequest:
    number: int
    state: Literal["open", "closed"]
    merged: bool
    html_url: str
    head_ref: str
    head_sha: str
    base_ref: str
    author: str
    merge_commit_sha: str | None = None  # once merged: the commit the base branch got (merge, squash or rebase)
    fork: bool = False  # from another repository than its base (access.from_fork)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> PullRequest:
        merged = bool(data.get("merged") or data.get("merged_at"))
        return cls(
            number=int(data["number"]),
            state="open" if data.get("state") == "open" else "closed",
            merged=merged,
            html_url=data.get("html_url", ""),
            head_ref=data.get("head", {}).get("ref", ""),
            head_sha=data.get("head", {}).get("sha", ""),
            base_ref=data.get("base", {}).get("ref", ""),
            author=(data.get("user") or {}).get("login", ""),
            merge_commit_sha=data.get("merge_commit_sha") if merged else None,
            fork=access.from_fork(data),
        )


@dataclasses.dataclass(frozen=True)
class IssueComment:
    id: int
    author: str
    body: str


@dataclasses.dataclass(frozen=True)
class Review:
    author: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING


CheckConclusion = Literal["success", "failure", "neutral"]
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})  # the collaborator permissions that can push
PAGE_SIZE = 100  # GitHub's largest page
MAX_PAGES = 50  # 5,000 comments or reviews on one pull request: beyond that we stop reading


class PullRequests:
    """Pull request calls of one repository (mixed into the client's API by :meth:`GitHubClient.pulls`): pull
    requests, their conversation comments and reviews, collaborator permissions, and check runs on their heads."""

    def __init__(self, client: GitHubClient, owner: str, name: str) -> None:
        self.client, self.base = client, f"/repos/{owner}/{name}"
        self.owner = owner

    async def get(self, number: int) -> PullRequest | None:
        found = await self.client.get_optional(f"{self.base}/pulls/{number}")
        return None if found is None else PullRequest.parse(found.data)

    async def find_open(self, head_branch: str, base_branch: str) -> PullRequest | None:
        found = await self.client.request(
            "GET",
            f"{self.base}/pulls",
            params={"state": "open", "head": f"{self.owner}:{head_branch}", "base": base_branch},
        )
        return PullRequest.parse(found.data[0]) if found.data else None

    async def open(self, *, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request, or return the open one for the same head and base (idempotent)."""
        try:
            created = await self.client.request(
                "POST", f"{self.base}/pulls", json={"head": head, "base": base, "title": title, "body": body}
            )
        except GitHubError as e:
            if e.status == 422 and "already exists" in e.message:
                existing = await self.find_open(head, base)
                if existing is not None:
                    return existing
            raise
        return PullRequest.parse(created.data)

    async def close(self, number: int) -> None:
        await self.client.request("PATCH", f"{self.base}/pulls/{number}", json={"state": "closed"})

    async def comment(self, number: int, body: str) -> int:
        created = await self.client.request("POST", f"{self.base}/issues/{number}/comments", json={"body": body})
        return int(created.data["id"])

    async def comments(self, number: int) -> list[IssueComment]:
        """Every comment of the pull request's conversation, oldest first."""
        return [
            IssueComment(int(c["id"]), (c.get("user") or {}).get("login", ""), c.get("body") or "")
            for c in await self._all(f"{self.base}/issues/{number}/comments")
        ]

    async def edit_comment(self, comment_id: int, body: str) -> None:
        await self.client.request("PATCH", f"{self.base}/issues/comments/{comment_id}", json={"body": body})

    async def delete_comment(self, comment_id: int) -> None:
        """Delete a comment; one already gone counts as deleted."""
        try:
            await self.client.request("DELETE", f"{self.base}/issues/comments/{comment_id}")
        except NotFound:
            return

    async def reviews(self, number: int) -> list[Review]:
        """Submitted reviews, oldest first."""
        return [
            Review((r.get("user") or {}).get("login", ""), str(r.get("state", "")))
            for r in await self._all(f"{self.base}/pulls/{number}/reviews")
        ]

    async def permission(self, login: str) -> str:
        """``login``'s permission on the repository: admin, maintain, write, triage, read or none."""
        found = await self.client.get_optional(f"{self.base}/collaborators/{login}/permission")
        return "none" if found is None else str(found.data.get("permission") or "none")

    async def create_check_run(
        self, *, name: str, head_sha: str, conclusion: CheckConclusion, output: Mapping[str, object]
    ) -> int:
        """A completed check run on ``head_sha`` (GitHub Apps only: tokens cannot write check runs)."""
        created = await self.client.request(
            "POST",
            f"{self.base}/check-runs",
            json={
                "name": name,
                "head_sha": head_sha,
                "status": "completed",
                "conclusion": conclusion,
                "output": dict(output),
            },
        )
        return int(created.data["id"])

    async def update_check_run(
        self, check_run_id: int, *, conclusion: CheckConclusion, output: Mapping[str, object]
    ) -> None:
        await self.client.request(
            "PATCH",
            f"{self.base}/check-runs/{check_run_id}",
            json={"status": "completed", "conclusion": conclusion, "output": dict(output)},
        )

    async def _all(self, path: str) -> list[Any]:
        """Every item of a paginated list (up to :data:`MAX_PAGES` pages)."""
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            found = (await self.client.request("GET", path, params={"per_page": PAGE_SIZE, "page": page})).data
            items.extend(found or [])
            if len(found or []) < PAGE_SIZE:
                break
        return items


def classify(method: str, path: str, status: int, body: Any) -> GitHubError:
    """Our error for a GitHub error response: GitHub's own message, never request headers or tokens."""
    message = body.get("message", "") if isinstance(body, dict) else ""
    details = (
        "; ".join(str(e.get("message") or e.get("code")) for e in (body.get("errors") or []) if isinstance(e, dict))
        if isinstance(body, dict)
        else ""
    )
    text = f"GitHub answered {status} to {method} {path}: {message or 'no message'}" + (
        f" ({details})" if details else ""
    )
    if status == 401:
        return Unauthorized(text, status=status, retryable=True)
    if status == 404:
        return NotFound(text, status=status)
    if status in (403, 429) and "rate limit" in message.lower():
        return RateLimited(text, status=status, retry_after=60.0)
    if status >= 500:
        return GitHubUnavailable(text, status=status)
    return GitHubError(text, status=status)


def _account(data: Mapping[str, Any]) -> Account:
    return Account(login=data.get("login", ""), type=data.get("type", ""), avatar_url=data.get("avatar_url", ""))


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
