"""Which Environments plan a pull request: their own ``planOnPullRequest`` first, the base branch's ``.chkmate.yml``
when they leave it unset. Here the decisions that need no git; the operator tier reads real files."""

from typing import Any, cast

import pytest

from chkmate.api import conditions as conds
from chkmate.api import kinds
from chkmate.controllers import indexing, memos, pull_requests

NOTHING_READ = cast(memos.Memo, None)  # an Environment that says needs no I/O: touching this memo fails


def candidate(name: str, branch: str = "main", **spec: Any) -> pull_requests.Candidate:
    summary = indexing.Summary("ns", name, 1, {"repositoryRef": {"name": "infra"}, **spec}, conds.TRUE, "", "")
    return pull_requests.Candidate(summary, branch)


@pytest.mark.parametrize(
    ("spec", "own"),
    [
        ({}, None),
        ({"planOnPullRequest": None}, None),
        ({"planOnPullRequest": True}, True),
        ({"planOnPullRequest": False}, False),
    ],
)
def test_an_environment_that_does_not_say_leaves_it_to_the_file(spec: dict[str, Any], own: bool | None) -> None:
    assert candidate("production", **spec).plans_pull_requests is own


async def test_what_the_environment_says_needs_no_file() -> None:
    found = [
        candidate("on", planOnPullRequest=True),
        candidate("off", planOnPullRequest=False),
        candidate("elsewhere", "staging", planOnPullRequest=True),
    ]
    planned = await pull_requests.planned_for(NOTHING_READ, {}, "ns", found, "main")
    assert [c.name for c in planned] == ["on"]


async def test_a_file_that_cannot_be_read_skips_only_the_environments_leaving_it_to_the_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    indexes = {indexing.index_name(kinds.GITHUB_REPOSITORY): {}}  # the repository is gone: nothing to read
    found = [candidate("leaves"), candidate("on", planOnPullRequest=True)]
    planned = await pull_requests.planned_for(NOTHING_READ, indexes, "ns", found, "main")
    assert [c.name for c in planned] == ["on"]
    assert "Pull requests into 'main' are not planned for Environment ns/leaves" in caplog.text
