"""GitHub webhook events turned into marks: what changed, and so which objects need a reconcile. Pure.

:func:`route` reads a verified, decoded delivery (``X-GitHub-Event`` name and JSON payload) and returns the
marks it implies; it decides nothing about Kubernetes objects (the operator's ``mark`` callback finds them)
and does no I/O. Events and actions the operator does not act on route to no marks. A payload missing a field
that GitHub always sends raises :class:`MalformedPayload`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

from chkmate.domain import access

PUSH = "push"
PULL_REQUEST = "pull_request"
INSTALLATION = "installation"
INSTALLATION_REPOSITORIES = "installation_repositories"
ISSUE_COMMENT = "issue_comment"
PING = "ping"
KNOWN = frozenset({PUSH, PULL_REQUEST, INSTALLATION, INSTALLATION_REPOSITORIES, ISSUE_COMMENT, PING})
OTHER = "other"

PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "reopened", "closed"})
INSTALLATION_ACTIONS = frozenset({"created", "deleted", "suspend", "unsuspend"})
INSTALLATION_REPOSITORIES_ACTIONS = frozenset({"added", "removed"})
BRANCH_PREFIX = "refs/heads/"
COMMAND_PREFIX = "/chkmate"
# Environment names are Kubernetes object names (RFC 1123 subdomains, at most 253 characters).
ENVIRONMENT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")

Command = Literal["plan", "apply"]
COMMANDS: frozenset[str] = frozenset({"plan", "apply"})


class MalformedPayload(ValueError):
    """The payload lacks a field GitHub always sends for this event, or has it with the wrong type."""


@dataclasses.dataclass(frozen=True, slots=True)
class PushMark:
    """A branch moved (or was deleted): links and environments on that repository and branch reconcile."""

    repo_full_name: str
    branch: str
    after_sha: str
    deleted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PullRequestMark:
    """A pull request was opened, got a new head, was reopened or closed (merged or not)."""

    repo: str
    number: int
    action: str
    head_ref: str
    head_sha: str
    base_ref: str
    merged: bool


@dataclasses.dataclass(frozen=True, slots=True)
class InstallationMark:
    """The GitHub App installation changed: the connection that uses it re-checks itself.

    ``installation`` events list the repositories an installation starts (``created``) or stops
    (``deleted``) with; ``installation_repositories`` events list what was added and removed.
    """

    installation_id: int
    action: str
    repositories_added: tuple[str, ...] = ()
    repositories_removed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class CommentCommandMark:
    """``/chkmate plan [env]`` or ``/chkmate apply [env]`` commented on a pull request.

    Whether the author may ask (write access) is checked by the handler through the API, not here.
    """

    repo: str
    number: int
    command: Command
    env: str | None
    author: str
    comment_id: int


Mark = PushMark | PullRequestMark | InstallationMark | CommentCommandMark


def label(event_name: str) -> str:
    """The event name as a metric label: one of :data:`KNOWN`, else ``other`` (bounded cardinality)."""
    return event_name if event_name in KNOWN else OTHER


def repository(payload: Mapping[str, Any]) -> str | None:
    """``owner/name`` of the repository the delivery is about, or None for account-level events."""
    repo = payload.get("repository")
    if repo is None:
        return None
    return _str(payload, "repository", "full_name")


def route(event_name: str, payload: Mapping[str, Any]) -> list[Mark]:
    """The marks a delivery implies; none for events and actions the operator does not act on."""
    router = _ROUTERS.get(event_name)
    return router(payload) if router else []


def parse_command(body: str) -> tuple[Command, str | None] | None:
    """``(command, env)`` when the comment's first line is ``/chkmate plan|apply [env]``, else None."""
    lines = body.strip().splitlines()
    words = lines[0].split() if lines else []
    if not 2 <= len(words) <= 3 or words[0].lower() != COMMAND_PREFIX or words[1].lower() not in COMMANDS:
        return None
    env = words[2] if len(words) == 3 else None
    if env is not None and not ENVIRONMENT_NAME.fullmatch(env):
        return None
    command: Command = "plan" if words[1].lower() == "plan" else "apply"
    return command, env


def _push(payload: Mapping[str, Any]) -> list[Mark]:
    ref = _str(payload, "ref")
    if not ref.startswith(BRANCH_PREFIX):
        return []  # tags move no branch
    return [
        PushMark(
            repo_full_name=_str(payload, "repository", "full_name"),
            branch=ref.removeprefix(BRANCH_PREFIX),
            after_sha=_str(payload, "after"),
            deleted=_bool(payload, "deleted"),
        )
    ]


def _pull_request(payload: Mapping[str, Any]) -> list[Mark]:
    action = _str(payload, "action")
    if action not in PULL_REQUEST_ACTIONS:
        return []
    if access.from_fork(payload.get("pull_request") or {}) and action != "closed":
        return []  # never planned: a fork's code would run with the Environment's credentials
    return [
        PullRequestMark(
            repo=_str(payload, "repository", "full_name"),
            number=_int(payload, "number"),
            action=action,
            head_ref=_str(payload, "pull_request", "head", "ref"),
            head_sha=_str(payload, "pull_request", "head", "sha"),
            base_ref=_str(payload, "pull_request", "base", "ref"),
            merged=_bool(payload, "pull_request", "merged"),
        )
    ]


def _installation(payload: Mapping[str, Any]) -> list[Mark]:
    action = _str(payload, "action")
    if action not in INSTALLATION_ACTIONS:
        return []
    listed = _full_names(payload, "repositories")
    return [
        InstallationMark(
            installation_id=_int(payload, "installation", "id"),
            action=action,
            repositories_added=listed if action == "created" else (),
            repositories_removed=listed if action == "deleted" else (),
        )
    ]


def _installation_repositories(payload: Mapping[str, Any]) -> list[Mark]:
    action = _str(payload, "action")
    if action not in INSTALLATION_REPOSITORIES_ACTIONS:
        return []
    return [
        InstallationMark(
            installation_id=_int(payload, "installation", "id"),
            action=action,
            repositories_added=_full_names(payload, "repositories_added"),
            repositories_removed=_full_names(payload, "repositories_removed"),
        )
    ]


def _issue_comment(payload: Mapping[str, Any]) -> list[Mark]:
    if _str(payload, "action") != "created" or _mapping(payload, "issue").get("pull_request") is None:
        return []  # edits and deletions run nothing; comments on plain issues neither
    parsed = parse_command(_str(payload, "comment", "body"))
    if parsed is None:
        return []
    command, env = parsed
    return [
        CommentCommandMark(
            repo=_str(payload, "repository", "full_name"),
            number=_int(payload, "issue", "number"),
            command=command,
            env=env,
            author=_str(payload, "comment", "user", "login"),
            comment_id=_int(payload, "comment", "id"),
        )
    ]


_ROUTERS = {
    PUSH: _push,
    PULL_REQUEST: _pull_request,
    INSTALLATION: _installation,
    INSTALLATION_REPOSITORIES: _installation_repositories,
    ISSUE_COMMENT: _issue_comment,
}


def _field(payload: Mapping[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            raise MalformedPayload(f"the payload has no {'.'.join(path)}")
        value = value[key]
    return value


def _mapping(payload: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    value = _field(payload, *path)
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"{'.'.join(path)} is not an object")
    return value


def _str(payload: Mapping[str, Any], *path: str) -> str:
    value = _field(payload, *path)
    if not isinstance(value, str):
        raise MalformedPayload(f"{'.'.join(path)} is not a string")
    return value


def _int(payload: Mapping[str, Any], *path: str) -> int:
    value = _field(payload, *path)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedPayload(f"{'.'.join(path)} is not an integer")
    return value


def _bool(payload: Mapping[str, Any], *path: str) -> bool:
    value = _field(payload, *path)
    if not isinstance(value, bool):
        raise MalformedPayload(f"{'.'.join(path)} is not a boolean")
    return value


def _full_names(payload: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """``full_name`` of each repository listed under ``key`` (absent means none)."""
    listed = payload.get(key) or []
    if not isinstance(listed, list):
        raise MalformedPayload(f"{key} is not a list")
    return tuple(_str(repo, "full_name") for repo in listed)
