"""The request pipeline of the GitHub API double, independent of the HTTP server that feeds it.

For each request, in GitHub's order: injected faults, authentication, secondary then primary rate
limits, routing, the handler, conditional GETs (`ETag`/`If-None-Match`, `Last-Modified`/
`If-Modified-Since`: a 304 costs no rate limit), then GitHub's response headers. Each request is
recorded. Synchronous; runs under the store lock; the handlers it calls do git I/O.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from tests.harness import (
    github_api_auth,
    github_api_http,
    github_api_limits,
    github_api_state,
)

_NO_BODY_STATUSES = (204, 304)


class RequestRecord(NamedTuple):
    """One request the double answered; `actor` is the principal label, None if unauthenticated."""

    method: str
    path: str
    status: int
    actor: str | None


@dataclasses.dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    api_url: str
    remote: str


@dataclasses.dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class _Outcome:
    status: int
    body: bytes
    headers: dict[str, str]
    media_type: str = github_api_http.JSON_MEDIA_TYPE


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(status: int, message: str, docs: str, headers: Mapping[str, str] | None = None) -> _Outcome:
    return _Outcome(status, _json_bytes(github_api_http.error_body(status, message, docs)), dict(headers or {}))


def _request_id() -> str:
    parts = [secrets.token_hex(2), secrets.token_hex(3), secrets.token_hex(3), secrets.token_hex(4)]
    return ":".join(part.upper() for part in parts)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


class Pipeline:
    """Answers `RawRequest`s against the store, the routes, the rate limits and the queued faults."""

    def __init__(
        self,
        store: github_api_state.Store,
        router: github_api_http.Router,
        limits: github_api_limits.RateLimits,
        faults: github_api_limits.Faults,
        web_url: Callable[[], str | None],
    ) -> None:
        self.store = store
        self.router = router
        self.limits = limits
        self.faults = faults
        self._web_url = web_url
        self.records: list[RequestRecord] = []

    def handle(self, request: RawRequest) -> RawResponse:
        with self.store.lock:
            now = github_api_state.now()
            request_id = _request_id()
            outcome, principal = self._answer(request, now, request_id)
            actor = principal.label if principal is not None and principal.kind != "anonymous" else None
            bucket = self.limits.bucket(principal or github_api_state.ANONYMOUS, now)
            headers = {
                "Content-Type": outcome.media_type,
                "X-GitHub-Request-Id": request_id,
                "X-GitHub-Media-Type": "github.v3; format=json",
                "X-GitHub-Api-Version-Selected": request.headers.get("x-github-api-version", "2022-11-28"),
                **bucket.headers(),
                **self._scopes_header(principal),
                **outcome.headers,
            }
            if outcome.status in _NO_BODY_STATUSES:
                headers.pop("Content-Type")
            self.records.append(RequestRecord(request.method, request.path, outcome.status, actor))
            body = b"" if outcome.status in _NO_BODY_STATUSES else outcome.body
            return RawResponse(outcome.status, headers, body)

    @staticmethod
    def _scopes_header(principal: github_api_state.Principal | None) -> dict[str, str]:
        if principal is None or principal.kind != "user" or principal.token is None:
            return {}
        return {"X-OAuth-Scopes": ", ".join(principal.token.scopes)}

    def _answer(
        self, request: RawRequest, now: float, request_id: str
    ) -> tuple[_Outcome, github_api_state.Principal | None]:
        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            return self._fault_outcome(fault), None
        try:
            principal = github_api_auth.authenticate(self.store, request.headers.get("authorization"), now)
        except github_api_http.ApiError as error:
            return _error(error.status, error.message, github_api_http.DOCS), None
        bucket = self.limits.bucket(principal, now)
        metered = request.path.rstrip("/") != "/rate_limit"
        if metered and (limited := self._limited(principal, bucket, request, request_id)):
            return limited, principal
        outcome = self._route(request, principal)
        if request.method in ("GET", "HEAD") and outcome.status == 200:
            outcome = self._conditional(request, outcome)
        if metered and outcome.status != 304:
            bucket.used += 1
        return outcome, principal

    def _fault_outcome(self, fault: github_api_limits.Fault) -> _Outcome:
        body = fault.body
        if body is None:
            message = "Not Found" if fault.status == 404 else "Server Error"
            body = github_api_http.error_body(fault.status, message, github_api_http.DOCS)
        raw = body if isinstance(body, bytes) else _json_bytes(body)
        return _Outcome(fault.status, raw, dict(fault.headers))

    def _limited(
        self,
        principal: github_api_state.Principal,
        bucket: github_api_limits.Bucket,
        request: RawRequest,
        request_id: str,
    ) -> _Outcome | None:
        if (secondary := self.faults.take_secondary()) is not None:
            message = github_api_limits.secondary_message(request_id)
            headers = {"Retry-After": str(secondary.retry_after)}
            return _error(secondary.status, message, github_api_limits.SECONDARY_DOCS, headers)
        if bucket.remaining <= 0:
            message = github_api_limits.primary_message(principal, request.remote)
            return _error(403, message, github_api_limits.PRIMARY_DOCS)
        return None

    def _route(self, request: RawRequest, principal: github_api_state.Principal) -> _Outcome:
        method = "GET" if request.method == "HEAD" else request.method
        matched = self.router.match(method, request.path)
        if matched is None:
            return _error(404, "Not Found", github_api_http.DOCS)
        route, params = matched
        call = github_api_http.Call(
            method=method,
            path=request.path,
            params=params,
            query=request.query,
            headers=request.headers,
            body=request.body,
            api_url=request.api_url,
            web_url=self._web_url() or request.api_url,
            principal=principal,
            store=self.store,
        )
        try:
            reply = route.handler(call)
        except github_api_http.ApiError as error:
            body = _json_bytes(error.body(route.docs))
            return _Outcome(error.status, body, error.headers)
        return self._reply_outcome(reply)

    @staticmethod
    def _reply_outcome(reply: github_api_http.Reply) -> _Outcome:
        body = reply.body if isinstance(reply.body, bytes) else _json_bytes(reply.body)
        headers = dict(reply.headers)
        if reply.last_modified is not None:
            headers["Last-Modified"] = email.utils.formatdate(reply.last_modified, usegmt=True)
        return _Outcome(reply.status, body, headers, reply.media_type)

    @staticmethod
    def _conditional(request: RawRequest, outcome: _Outcome) -> _Outcome:
        etag = f'W/"{hashlib.sha256(outcome.body).hexdigest()}"'
        private = "authorization" in request.headers
        outcome.headers.update(
            {
                "ETag": etag,
                "Cache-Control": f"{'private' if private else 'public'}, max-age=60, s-maxage=60",
                "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            }
        )
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            fresh = _etag_matches(if_none_match, etag)
        else:
            fresh = _not_modified_since(request.headers.get("if-modified-since"), outcome.headers)
        return _Outcome(304, b"", outcome.headers, outcome.media_type) if fresh else outcome


def _not_modified_since(if_modified_since: str | None, headers: Mapping[str, str]) -> bool:
    last_modified = headers.get("Last-Modified")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return email.utils.parsedate_to_datetime(last_modified) <= since
