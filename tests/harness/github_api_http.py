"""The request/reply vocabulary of the GitHub API double: routing, errors, validation, pagination.

Pure helpers with no I/O and no knowledge of aiohttp: a handler receives a `Call` and returns a
`Reply` or raises `ApiError`, and the pipeline turns both into HTTP. Error bodies, validation
messages and `Link` headers follow GitHub's REST API.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from tests.harness import github_api_state

DOCS = "https://docs.github.com/rest"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
T = TypeVar("T")
_TYPE_NAMES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", dict: "object", list: "array"}


class ApiError(Exception):
    """An error reply: GitHub's `{"message", "documentation_url", "status"}` body, maybe `errors`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        docs: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = list(errors) if errors is not None else None
        self.docs = docs
        self.headers = dict(headers or {})

    def body(self, route_docs: str) -> dict[str, Any]:
        return error_body(self.status, self.message, self.docs or route_docs, self.errors)


def error_body(
    status: int, message: str, documentation_url: str, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = list(errors)
    body["documentation_url"] = documentation_url
    body["status"] = str(status)
    return body


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def validation_failed(*errors: Mapping[str, Any]) -> ApiError:
    return ApiError(422, "Validation Failed", errors=errors)


def invalid_request(detail: str) -> ApiError:
    return ApiError(422, f"Invalid request.\n\n{detail}")


@dataclasses.dataclass
class Reply:
    """A successful reply. `body` is a JSON value, raw bytes (with `media_type`), or None (no body)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    last_modified: float | None = None
    media_type: str = JSON_MEDIA_TYPE


@dataclasses.dataclass
class Call:
    """One routed request as handlers see it; `headers` has lower-case names."""

    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    api_url: str
    web_url: str
    principal: github_api_state.Principal
    store: github_api_state.Store

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        if not isinstance(value, dict):
            raise ApiError(400, "Problems parsing JSON")
        return value

    def query_int(self, name: str, default: int) -> int:
        value = self.query.get(name, "")
        return int(value) if value.lstrip("-").isdigit() else default


Handler = Callable[[Call], Reply]


@dataclasses.dataclass(frozen=True)
class Route:
    """A method and path template (`{name}` is one segment, `{name+}` one or more) with its handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    docs: str

    @classmethod
    def of(cls, method: str, template: str, handler: Handler, docs: str) -> Route:
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return cls(method, re.compile(f"^{regex}/?$"), handler, f"{DOCS}/{docs}")


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method and (found := route.pattern.match(path)):
                return route, found.groupdict()
        return None


def field(body: Mapping[str, Any], name: str, kind: type[T], *, required: bool = False) -> T | None:
    """A typed, optionally required field of a JSON body, with GitHub's schema error messages."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid_request(f'"{name}" wasn\'t supplied.')
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_request(f"For 'properties/{name}', {json.dumps(value)} is not a {_TYPE_NAMES[kind]}.")
    return value


def required_str(body: Mapping[str, Any], name: str) -> str:
    value = field(body, name, str, required=True)
    assert value is not None
    return value


def paginate(call: Call, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """One page of `items` per `page`/`per_page` (default 30, max 100) and its RFC 5988 `Link` header."""
    per_page = min(max(call.query_int("per_page", 30), 1), 100)
    page = max(call.query_int("page", 1), 1)
    last = max(math.ceil(len(items) / per_page), 1)
    chunk = list(items[(page - 1) * per_page : page * per_page])
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels.append(("prev", min(page - 1, last)))
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    if page > 1:
        rels.append(("first", 1))
    links = ", ".join(f'<{_page_url(call, number)}>; rel="{rel}"' for rel, number in rels)
    return chunk, ({"Link": links} if links else {})


def _page_url(call: Call, page: int) -> str:
    query = {**call.query, "page": str(page)}
    return f"{call.api_url}{urllib.parse.quote(call.path)}?{urllib.parse.urlencode(query)}"
