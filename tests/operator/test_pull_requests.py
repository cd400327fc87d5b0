"""The pull-request workflow end to end: GitHub double, real git server, real terraform, running operator.

Pull requests are opened, pushed to and merged on the GitHub double over its API, and the operator hears of it
through signed webhook deliveries (the double sends none). It answers with Plans, one sticky comment per pull
request and Environment, check runs, applies after merge or on ``/chkmate apply``, and refusals as comments.
"""

from __future__ import annotations

import datetime
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chkmate.clients import github as github_client
from chkmate.clients import storage
from chkmate.domain import comments
from tests.fixtures import TOKEN, App
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import NAMESPACE, Cluster
from tests.operator.test_webhooks_operator import (  # noqa: F401  (fixtures: pytest finds them by name)
    GitHubHooks,
    connect,
    environment,
    hooks,
    operator_memo,
    operator_settings,
    payload,
    push,
    start_chkmate,
)

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

BOT = "chkmate[bot]"
MAIN = """resource "terraform_data" "app" {
  input = "app"
}
"""
EXTRA = """resource "terraform_data" "extra" {
  input = "extra"
}
"""


@pytest.fixture
async def octo(github: github_api.GitHubDouble) -> AsyncIterator[github_client.PullRequests]:
    """The pull request API of acme/infra as the user octo (who opens and merges pull requests)."""
    async with github_client.GitHubClient(github.url, github_client.TokenAuth(TOKEN)) as client:
        yield client.pulls("acme", "infra")


@pytest.fixture
async def live(
    chkmate: Cluster,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    github_app: App,
    hooks: GitHubHooks,
) -> Cluster:
    """acme/infra with one stack, reached through the GitHub App (check runs need one), webhooks listening."""
    github.create_repo("acme", "infra")
    git_server.commit_files("acme", "infra", "main", {"stacks/app/main.tf": MAIN}, "init")
    for login, level in (("bob", "write"), ("carol", "write"), ("mallory", "read")):
        github.add_user(login)
        github.set_permission("acme/infra", login, level)  # type: ignore[arg-type]
    await connect(chkmate, github, app=github_app)
    await kube.wait_for(hooks.listening, timeout=10)
    return chkmate


async def open_pull_request(
    octo: github_client.PullRequests, git_server: gitserver.GitServer, hooks: GitHubHooks, files: dict[str, str]
) -> github_client.PullRequest:
    base = git_server.head("acme", "infra", "main")
    git_server.commit_files("acme", "infra", "feature", files, "change", parent=base)
    pull = await octo.open(head="feature", base="main", title="Change", body="")
    await hooks.accepted("pull_request", pull_request_event("opened", pull))
    return pull


def pull_request_event(action: str, pull: github_client.PullRequest, **changes: Any) -> dict[str, Any]:
    name = {"closed": "pull_request-closed-merged"}.get(action, f"pull_request-{action}")
    return payload(
        name,
        number=pull.number,
        pull_request__number=pull.number,
        pull_request__head__ref=pull.head_ref,
        pull_request__head__sha=pull.head_sha,
        pull_request__base__ref=pull.base_ref,
        **changes,
    )


def comment_event(pull: github_client.PullRequest, author: str, body: str) -> dict[str, Any]:
    return payload(
        "issue_comment-created-pull_request",
        issue__number=pull.number,
        comment__body=body,
        comment__user__login=author,
        comment__id=uuid.uuid4().int % 10**9,
    )


async def plan_in(cluster: Cluster, name: str, *phases: str, timeout: float = 30) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        obj = await cluster.get("Plan", name)
        return obj if obj is not None and obj.get("status", {}).get("phase") in phases else None

    try:
        found: dict[str, Any] = await kube.wait_for(reached, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"Plan {name} never reached {phases}: {await cluster.get('Plan', name)}") from None
    return found


async def created(cluster: Cluster, name: str, timeout: float = 5) -> None:
    try:
        await kube.wait_for(lambda: cluster.get("Plan", name), timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"Plan {name} was never created") from None


async def ours(octo: github_client.PullRequests, number: int) -> list[github_client.IssueComment]:
    return [c for c in await octo.comments(number) if c.author == BOT]


async def check_runs(octo: github_client.PullRequests, sha: str) -> list[dict[str, Any]]:
    found = await octo.client.request("GET", f"/repos/acme/infra/commits/{sha}/check-runs")
    runs: list[dict[str, Any]] = found.data["check_runs"]
    return runs


async def comment_saying(octo: github_client.PullRequests, number: int, text: str, timeout: float = 20) -> str:
    async def found() -> str | None:
        return next((c.body for c in await octo.comments(number) if c.author == BOT and text in c.body), None)

    try:
        body: str | None = await kube.wait_for(found, timeout=timeout, interval=0.2)
    except TimeoutError:
        bodies = [c.body[:300] for c in await octo.comments(number)]
        raise AssertionError(f"No comment on #{number} says {text!r}: {bodies}") from None
    assert body is not None
    return body


async def test_open_plan_comment_push_same_comment_merge_apply(
    live: Cluster,
    octo: github_client.PullRequests,
    git_server: gitserver.GitServer,
    hooks: GitHubHooks,
) -> None:
    await live.apply(environment("production", "main", engine="terraform", path="stacks/app", applyOnMerge=True))
    pull = await open_pull_request(octo, git_server, hooks, {"stacks/app/extra.tf": EXTRA})
    first = await plan_in(live, f"production-pr{pull.number}-{pull.head_sha[:10]}", "Planned")
    assert first["status"]["summary"] == {"add": 2, "change": 0, "destroy": 0}
    await comment_saying(octo, pull.number, f"planned at `{pull.head_sha[:7]}`")
    (sticky,) = await ours(octo, pull.number)
    assert comments.find_marker(sticky.body) == "production" and "Plan: 2 to add" in sticky.body
    (run,) = await check_runs(octo, pull.head_sha)
    assert (run["name"], run["conclusion"]) == ("chkmate/production", "success")
    assert run["output"]["title"] == "2 to add, 0 to change, 0 to destroy."

    # A new head: a new Plan, and the same comment edited in place.
    changed = EXTRA.replace('extra"\n', 'extra2"\n')
    newer = git_server.commit_files("acme", "infra", "feature", {"stacks/app/extra.tf": changed}, "2")
    again = await octo.get(pull.number)
    assert again is not None and again.head_sha == newer
    await hooks.accepted("pull_request", pull_request_event("synchronize", again))
    await plan_in(live, f"production-pr{pull.number}-{newer[:10]}", "Planned")
    await comment_saying(octo, pull.number, f"planned at `{newer[:7]}`")
    (edited,) = await ours(octo, pull.number)
    assert edited.id == sticky.id
    assert await live.get("Plan", first["metadata"]["name"]) is None  # the older head's idle Plan is gone

    # Merged: the push of the base branch plans the merge commit; the merge applies it (applyOnMerge), even
    # though the push arrived first and its Plan was already waiting for a manual approval.
    merged = (await octo.client.request("PUT", f"/repos/acme/infra/pulls/{pull.number}/merge", json={})).data["sha"]
    await hooks.accepted("push", push("main", merged))
    await plan_in(live, f"production-{merged[:10]}", "Planned")
    closed = await octo.get(pull.number)
    assert closed is not None and closed.merged
    await hooks.accepted(
        "pull_request",
        pull_request_event("closed", closed, pull_request__merged=True, pull_request__merge_commit_sha=merged),
    )
    await plan_in(live, f"production-{merged[:10]}", "Applied")
    assert await live.get("Plan", f"production-pr{pull.number}-{newer[:10]}") is None
    state = json.loads((await storage.load_state(live.client, NAMESPACE, "production")).terraform or b"{}")
    assert {r["name"] for r in state["resources"]} == {"app", "extra"}

    async def recorded() -> bool:
        env = await live.get("Environment", "production") or {}
        return bool(env.get("status", {}).get("lastAppliedRevision") == f"main@sha1:{merged}")

    await kube.wait_for(recorded, timeout=10)


async def test_apply_from_a_comment_needs_write_access_reviews_and_the_lock(
    live: Cluster,
    octo: github_client.PullRequests,
    git_server: gitserver.GitServer,
    hooks: GitHubHooks,
    github: github_api.GitHubDouble,
) -> None:
    approval = {"mode": "pullRequestReviews", "requiredApprovals": 1}
    env = await live.apply(environment("production", "main", path="stacks/app", approval=approval))
    pull = await open_pull_request(octo, git_server, hooks, {"stacks/app/extra.tf": EXTRA})
    name = f"production-pr{pull.number}-{pull.head_sha[:10]}"
    await plan_in(live, name, "Planned")

    await hooks.accepted("issue_comment", comment_event(pull, "mallory", "/chkmate apply production"))
    await comment_saying(octo, pull.number, "@mallory `/chkmate apply production` needs write access")
    github.add_review("acme/infra", pull.number, "octo", "APPROVED")  # the author's own approval does not count
    await hooks.accepted("issue_comment", comment_event(pull, "bob", "/chkmate apply production"))
    await comment_saying(octo, pull.number, "and the pull request has 0.")
    assert (await live.get("Plan", name) or {})["spec"].get("approved") is None

    # Approved by a reviewer with write access, applied on bob's command once another pull request's lock is gone.
    github.add_review("acme/infra", pull.number, "carol", "APPROVED")
    holder = "Plan/production-pr99-0123456789"
    await storage.acquire_lock(
        live.client,
        NAMESPACE,
        "production",
        env,
        holder,
        now=datetime.datetime.now(datetime.UTC),
        stale_after=datetime.timedelta(hours=1),
    )
    await hooks.accepted("issue_comment", comment_event(pull, "bob", "/chkmate apply production"))
    await comment_saying(octo, pull.number, "#99 holds the lock on `production`")
    await storage.release_lock(live.client, NAMESPACE, "production", holder)
    await plan_in(live, name, "Applied")
    await comment_saying(octo, pull.number, f"applied at `{pull.head_sha[:7]}`")
    assert len(await ours(octo, pull.number)) == 3  # two refusals, and the one sticky comment


async def test_a_200_kb_plan_is_three_comments_and_a_small_one_takes_their_place(
    live: Cluster,
    octo: github_client.PullRequests,
    git_server: gitserver.GitServer,
    hooks: GitHubHooks,
) -> None:
    await live.apply(environment("production", "main", path="stacks/app"))
    many = "".join(f'resource "terraform_data" "r{i}" {{\n  input = "value-{i}-{"x" * 60}"\n}}\n' for i in range(1200))
    pull = await open_pull_request(octo, git_server, hooks, {"stacks/app/many.tf": many})
    await plan_in(live, f"production-pr{pull.number}-{pull.head_sha[:10]}", "Planned")
    await comment_saying(octo, pull.number, "part 3/3")
    parts = await ours(octo, pull.number)
    assert [comments.find_part(c.body) for c in parts] == [1, 2, 3]
    assert all(len(c.body) <= comments.COMMENT_LIMIT for c in parts)
    assert "lines cut" in parts[0].body and "terraform_data.r999" in parts[2].body  # the tail is kept

    small = git_server.commit_files("acme", "infra", "feature", {"stacks/app/many.tf": EXTRA}, "smaller")
    again = await octo.get(pull.number)
    assert again is not None and again.head_sha == small
    await hooks.accepted("pull_request", pull_request_event("synchronize", again))
    await comment_saying(octo, pull.number, f"planned at `{small[:7]}`")
    (only,) = await ours(octo, pull.number)
    assert only.id == parts[0].id


async def test_apply_on_merge_from_chkmate_yml_applies_the_merge_commit(
    live: Cluster,
    octo: github_client.PullRequests,
    git_server: gitserver.GitServer,
    hooks: GitHubHooks,
) -> None:
    """The Environment does not set applyOnMerge (so the API server stores nothing): the file's true holds."""
    config = "version: 1\nenvironments:\n  production: {branch: main, path: stacks/app, applyOnMerge: true}\n"
    git_server.commit_files("acme", "infra", "main", {".chkmate.yml": config}, "apply on merge")
    await live.apply(environment("production", "main", path="stacks/app"))
    pull = await open_pull_request(octo, git_server, hooks, {"stacks/app/extra.tf": EXTRA})
    merged = (await octo.client.request("PUT", f"/repos/acme/infra/pulls/{pull.number}/merge", json={})).data["sha"]
    await hooks.accepted("push", push("main", merged))
    await plan_in(live, f"production-{merged[:10]}", "Planned")  # approval manual: it waits for the merge
    closed = await octo.get(pull.number)
    assert closed is not None and closed.merged
    await hooks.accepted(
        "pull_request",
        pull_request_event("closed", closed, pull_request__merged=True, pull_request__merge_commit_sha=merged),
    )
    await plan_in(live, f"production-{merged[:10]}", "Applied", timeout=15)
    stored = await live.get("Environment", "production") or {}
    assert "applyOnMerge" not in stored["spec"]


async def test_plan_on_pull_request_from_the_base_branchs_chkmate_yml(
    live: Cluster,
    octo: github_client.PullRequests,
    git_server: gitserver.GitServer,
    hooks: GitHubHooks,
) -> None:
    """``quiet`` leaves planOnPullRequest to the file of main, which says false: no Plan, even though the pull
    request's own file says true (it is not reviewed yet). ``insists`` says true itself and wins over the file;
    ``production`` has no entry in the file: planned (true). An invalid file on main plans only ``insists``."""
    config = (
        "version: 1\nenvironments:\n"
        "  quiet: {branch: main, path: stacks/app, planOnPullRequest: false}\n"
        "  insists: {branch: main, path: stacks/insists, planOnPullRequest: false}\n"
    )
    base = git_server.commit_files("acme", "infra", "main", {".chkmate.yml": config}, "quiet")
    await live.apply(environment("quiet", "main", path="stacks/app"))
    await live.apply(environment("insists", "main", path="stacks/app", planOnPullRequest=True))
    await live.apply(environment("production", "main", path="stacks/app"))
    for env in ("quiet", "insists", "production"):  # indexed, and main is in the mirror
        await created(live, f"{env}-{base[:10]}", timeout=10)
    proposed = config.replace("planOnPullRequest: false}\n  insists", "planOnPullRequest: true}\n  insists")
    pull = await open_pull_request(octo, git_server, hooks, {"stacks/app/extra.tf": EXTRA, ".chkmate.yml": proposed})
    for env in ("insists", "production"):
        await created(live, f"{env}-pr{pull.number}-{pull.head_sha[:10]}")
    assert await live.get("Plan", f"quiet-pr{pull.number}-{pull.head_sha[:10]}") is None

    # An invalid file on main: the delivery is still handled, and only what an Environment says itself counts.
    broken = git_server.commit_files("acme", "infra", "main", {".chkmate.yml": config + "  bad: {}\n"}, "broken")
    await hooks.accepted("push", push("main", broken, before=base))
    for env in ("quiet", "insists", "production"):  # each has seen the new head of main
        await live.wait_condition("Environment", env, "Ready", "False", "InvalidRepoConfig")
    newer = git_server.commit_files("acme", "infra", "feature", {"stacks/app/extra.tf": EXTRA + "\n"}, "2")
    again = await octo.get(pull.number)
    assert again is not None and again.head_sha == newer
    await hooks.accepted("pull_request", pull_request_event("synchronize", again))
    await created(live, f"insists-pr{pull.number}-{newer[:10]}")
    for env in ("quiet", "production"):
        assert await live.get("Plan", f"{env}-pr{pull.number}-{newer[:10]}") is None
