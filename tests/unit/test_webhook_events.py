"""Routing GitHub webhook deliveries to marks, on real-shaped payloads (tests/data/webhooks)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chkmate.domain import access
from chkmate.webhooks import events

DATA = Path(__file__).parents[1] / "data" / "webhooks"
HEAD = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def pull_request_mark(action: str, merged: bool = False) -> events.PullRequestMark:
    return events.PullRequestMark(
        repo="acme/infra",
        number=42,
        action=action,
        head_ref="feature/bigger-web",
        head_sha=HEAD,
        base_ref="main",
        merged=merged,
    )


def command_mark(command: events.Command, env: str | None) -> events.CommentCommandMark:
    return events.CommentCommandMark(
        repo="acme/infra", number=42, command=command, env=env, author="bob", comment_id=1990001
    )


ROUTED = [
    ("push", "push", [events.PushMark("acme/infra", "main", HEAD, deleted=False)]),
    ("push", "push-branch-deleted", [events.PushMark("acme/infra", "feature/bigger-web", "0" * 40, deleted=True)]),
    ("pull_request", "pull_request-opened", [pull_request_mark("opened")]),
    ("pull_request", "pull_request-synchronize", [pull_request_mark("synchronize")]),
    ("pull_request", "pull_request-reopened", [pull_request_mark("reopened")]),
    ("pull_request", "pull_request-closed-merged", [pull_request_mark("closed", merged=True)]),
    ("pull_request", "pull_request-closed-unmerged", [pull_request_mark("closed", merged=False)]),
    ("pull_request", "pull_request-labeled", []),
    (
        "installation",
        "installation-created",
        [events.InstallationMark(48213377, "created", repositories_added=("acme/infra", "acme/platform"))],
    ),
    (
        "installation",
        "installation-deleted",
        [events.InstallationMark(48213377, "deleted", repositories_removed=("acme/infra", "acme/platform"))],
    ),
    ("installation", "installation-suspend", [events.InstallationMark(48213377, "suspend")]),
    ("installation", "installation-unsuspend", [events.InstallationMark(48213377, "unsuspend")]),
    (
        "installation_repositories",
        "installation_repositories-added",
        [events.InstallationMark(48213377, "added", repositories_added=("acme/networking",))],
    ),
    (
        "installation_repositories",
        "installation_repositories-removed",
        [events.InstallationMark(48213377, "removed", repositories_removed=("acme/platform",))],
    ),
    ("issue_comment", "issue_comment-created-pull_request", [command_mark("plan", "prod")]),
    ("issue_comment", "issue_comment-created-issue", []),
    ("ping", "ping", []),
]


@pytest.mark.parametrize(("event", "fixture", "expected"), ROUTED, ids=[fixture for _, fixture, _ in ROUTED])
def test_deliveries_route_to_marks(event: str, fixture: str, expected: list[events.Mark]) -> None:
    assert events.route(event, payload(fixture)) == expected


def test_a_tag_push_moves_no_branch() -> None:
    tag = {**payload("push"), "ref": "refs/tags/v1.2.0"}
    assert events.route("push", tag) == []


@pytest.mark.parametrize("action", ["edited", "deleted"])
def test_edited_and_deleted_comments_run_nothing(action: str) -> None:
    assert events.route("issue_comment", {**payload("issue_comment-created-pull_request"), "action": action}) == []


def test_unknown_events_route_to_nothing() -> None:
    assert events.route("star", {"action": "created", "repository": {"full_name": "acme/infra"}}) == []


def comment(body: str) -> dict[str, Any]:
    delivered = copy.deepcopy(payload("issue_comment-created-pull_request"))
    delivered["comment"]["body"] = body
    return delivered


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/chkmate plan", [command_mark("plan", None)]),
        ("/chkmate apply", [command_mark("apply", None)]),
        ("/chkmate apply staging", [command_mark("apply", "staging")]),
        ("  /chkmate plan prod  \nthanks!", [command_mark("plan", "prod")]),
        ("/CHKMATE Plan prod", [command_mark("plan", "prod")]),
        ("/chkmate destroy prod", []),
        ("/chkmate plan prod now please", []),
        ("/chkmate plan Prod_1", []),
        ("/chkmate", []),
        ("please /chkmate plan", []),
        ("LGTM\n/chkmate apply", []),
        ("", []),
    ],
)
def test_only_a_first_line_command_on_a_pull_request_is_a_command(body: str, expected: list[events.Mark]) -> None:
    assert events.route("issue_comment", comment(body)) == expected


def test_the_repository_of_a_delivery() -> None:
    assert events.repository(payload("push")) == "acme/infra"
    assert events.repository(payload("installation-created")) is None


@pytest.mark.parametrize(
    ("event", "fixture", "path"),
    [
        ("push", "push", ["ref"]),
        ("push", "push", ["repository", "full_name"]),
        ("pull_request", "pull_request-opened", ["pull_request", "head", "sha"]),
        ("installation", "installation-created", ["installation", "id"]),
        ("issue_comment", "issue_comment-created-pull_request", ["comment", "user"]),
    ],
)
def test_a_payload_missing_what_github_always_sends_is_malformed(event: str, fixture: str, path: list[str]) -> None:
    broken = copy.deepcopy(payload(fixture))
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(events.MalformedPayload, match=".".join(path)):
        events.route(event, broken)


@pytest.mark.parametrize(
    ("event", "fixture", "key", "value"),
    [
        ("push", "push", "deleted", "false"),
        ("pull_request", "pull_request-opened", "number", "42"),
        ("pull_request", "pull_request-opened", "number", True),
        ("installation", "installation-created", "repositories", {"full_name": "acme/infra"}),
        ("issue_comment", "issue_comment-created-pull_request", "issue", "42"),
    ],
)
def test_a_field_of_the_wrong_type_is_malformed(event: str, fixture: str, key: str, value: object) -> None:
    with pytest.raises(events.MalformedPayload, match=key):
        events.route(event, {**payload(fixture), key: value})


def test_metric_labels_are_bounded() -> None:
    assert [events.label(name) for name in ("push", "ping", "star", "x" * 300)] == ["push", "ping", "other", "other"]


def from_a_fork(fixture: str) -> dict[str, Any]:
    document = payload(fixture)
    pull = dict(document["pull_request"])
    pull["head"] = {**pull["head"], "repo": {**pull["head"]["repo"], "full_name": "mallory/infra"}}
    return {**document, "pull_request": pull}


@pytest.mark.parametrize("fixture", ["pull_request-opened", "pull_request-synchronize", "pull_request-reopened"])
def test_pull_requests_from_forks_are_never_planned(fixture: str) -> None:
    assert events.route("pull_request", payload(fixture))  # the same pull request from the repository itself
    assert events.route("pull_request", from_a_fork(fixture)) == []


def test_a_closed_fork_pull_request_still_cleans_up() -> None:
    assert events.route("pull_request", from_a_fork("pull_request-closed-unmerged"))


@pytest.mark.parametrize(
    ("head", "base", "fork"),
    [
        ({"repo": {"full_name": "acme/infra"}}, {"repo": {"full_name": "acme/infra"}}, False),
        ({"repo": {"full_name": "mallory/infra"}}, {"repo": {"full_name": "acme/infra"}}, True),
        ({"repo": None}, {"repo": {"full_name": "acme/infra"}}, True),  # the fork was deleted
        ({}, {}, False),  # nothing to tell by
    ],
)
def test_which_pull_requests_come_from_forks(head: dict[str, object], base: dict[str, object], fork: bool) -> None:
    assert access.from_fork({"head": head, "base": base}) is fork
