"""Rate limits and injected faults of the GitHub API double.

`RateLimits` keeps GitHub's primary limit per principal (installation, user, app, or anonymous
client) in hourly windows and can be forced into exhaustion; `Faults` holds the replies tests
queue up: arbitrary failures for matching requests and secondary rate limits. Pure bookkeeping: no
I/O; callers hold the store lock and pass the current time.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from tests.harness import github_api_state

WINDOW = 3600
ANONYMOUS_LIMIT = 60
PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"
SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)


@dataclasses.dataclass
class Bucket:
    limit: int
    used: int
    reset_at: float

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at)),
            "X-RateLimit-Used": str(self.used),
            "X-RateLimit-Resource": "core",
        }


class RateLimits:
    """Primary rate limit buckets keyed by principal label, each with its own hourly window."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buckets: dict[str, Bucket] = {}
        self._forced: tuple[int, float] | None = None

    def bucket(self, principal: github_api_state.Principal, now: float) -> Bucket:
        bucket = self._buckets.get(principal.label)
        if bucket is None or bucket.reset_at <= now:
            limit = ANONYMOUS_LIMIT if principal.kind == "anonymous" else self.limit
            bucket = Bucket(limit=limit, used=0, reset_at=now + WINDOW)
            if self._forced is not None and self._forced[1] > now:
                bucket.used, bucket.reset_at = max(limit - self._forced[0], 0), self._forced[1]
            self._buckets[principal.label] = bucket
        return bucket

    def force(self, remaining: int, reset_at: float) -> None:
        """Every bucket, existing or new, has `remaining` calls left until `reset_at`."""
        self._forced = (remaining, reset_at)
        for bucket in self._buckets.values():
            bucket.used, bucket.reset_at = max(bucket.limit - remaining, 0), reset_at


def primary_message(principal: github_api_state.Principal, remote: str) -> str:
    if principal.installation is not None:
        return f"API rate limit exceeded for installation ID {principal.installation.id}."
    if principal.user is not None:
        return f"API rate limit exceeded for user ID {principal.user.id}."
    if principal.app is not None:
        return f"API rate limit exceeded for app ID {principal.app.id}."
    return (
        f"API rate limit exceeded for {remote}. (But here's the good news: Authenticated requests get a "
        "higher rate limit. Check out the documentation for more details.)"
    )


def secondary_message(request_id: str) -> str:
    return (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
        f"reach out to GitHub Support for help, please include the request ID {request_id}."
    )


@dataclasses.dataclass
class Fault:
    """A canned reply for the next `count` requests whose method and path match."""

    method: str
    path: re.Pattern[str]
    status: int
    count: int
    headers: dict[str, str]
    body: Any

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.path.search(path) is not None


@dataclasses.dataclass
class SecondaryLimit:
    retry_after: int
    status: int
    count: int


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._secondary: SecondaryLimit | None = None

    def add(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int,
        headers: Mapping[str, str] | None,
        body: Any,
    ) -> None:
        fault = Fault(method.upper(), re.compile(path_regex), status, count, dict(headers or {}), body)
        self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching this request, consuming one of its uses."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def arm_secondary(self, retry_after: int, status: int, count: int) -> None:
        self._secondary = SecondaryLimit(retry_after, status, count)

    def take_secondary(self) -> SecondaryLimit | None:
        limit = self._secondary
        if limit is None:
            return None
        limit.count -= 1
        if limit.count <= 0:
            self._secondary = None
        return limit
