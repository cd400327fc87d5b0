"""TemplateRepoLink sync against a real git server and the GitHub double: every direction, conflicts,
rejected pushes, a crash between push and status write, polling, invalid HCL from GitHub, rollback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chkmate.domain import sync
from tests.fixtures import TOKEN
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import Cluster, Starter, connect_repository

MAIN = 'resource "terraform_data" "net" {\n  input = "v1"\n}\n'
MAIN_V2 = 'resource "terraform_data" "net" {\n  input = "v2"\n}\n'
VARIABLES = 'variable "name" {\n  default = "demo"\n}\n'
MODULE = 'resource "terraform_data" "sub" {}\n'


async def setup_cluster(cluster: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> None:
    await connect_repository(cluster, github, git_server, "infra",
                             {"README.md": "# infra\n", "other/x.tf": "locals {}\n"})


@pytest.fixture
async def ready(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    await setup_cluster(chkmate, github, git_server)
    return chkmate


def template(files: dict[str, str], name: str = "net") -> dict[str, Any]:
    return {"apiVersion": "chkmate.dev/v1alpha1", "kind": "Template", "metadata": {"name": name},
            "spec": {"files": files}}


def link(direction: str = "Push", *, path: str = "stacks/net", name: str = "net", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "chkmate.dev/v1alpha1", "kind": "TemplateRepoLink", "metadata": {"name": name},
            "spec": {"templateRef": {"name": "net"}, "repositoryRef": {"name": "infra"}, "branch": "main",
                     "path": path, "syncDirection": direction, "interval": "1s", **spec}}


async def wait_status(cluster: Cluster, kind: str, name: str, check: Any, timeout: float = 15) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        obj = await cluster.get(kind, name)
        return obj if obj is not None and check(obj) else None

    try:
        return await kube.wait_for(matches, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{kind}/{name} never matched: {await cluster.get(kind, name)}") from None


def files_under(git_server: gitserver.GitServer, prefix: str, branch: str = "main") -> dict[str, str]:
    return {path.removeprefix(prefix): data.decode()
            for path, data in git_server.list_files("octo", "infra", branch).items() if path.startswith(prefix)}


def synced_to(commit: str | None) -> Any:
    return lambda obj: obj.get("status", {}).get("lastSyncedRevision") == f"main@sha1:{commit}"


async def test_push_writes_only_the_path_with_trailers_and_follows_edits(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    await ready.apply(template({"main.tf": MAIN, "modules/sub/main.tf": MODULE}))
    await ready.apply(link("Push", autoSync=True))
    obj = await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    head = git_server.head("octo", "infra", "main")
    assert obj["status"]["lastSyncedRevision"] == f"main@sha1:{head}"
    assert files_under(git_server, "stacks/net/") == {"main.tf": MAIN, "modules/sub/main.tf": MODULE}
    assert set(git_server.list_files("octo", "infra", "main")) >= {"README.md", "other/x.tf"}  # untouched
    tpl = await ready.get("Template", "net") or {}
    message = subprocess_log(git_server, "main")
    assert sync.parse_trailers(message)[sync.TEMPLATE_REVISION_TRAILER] == tpl["status"]["revision"]
    assert obj["status"]["history"][0]["direction"] == "Push" and obj["status"]["lastPushAt"]

    # An edit of the template (a file changed, one deleted) is pushed as the next commit.
    await ready.patch("Template", "net", {"spec": {"files": {"main.tf": MAIN_V2, "modules/sub/main.tf": None}}})
    await wait_status(ready, "TemplateRepoLink", "net",
                      lambda o: o["status"].get("lastSyncedRevision") != obj["status"]["lastSyncedRevision"])
    assert files_under(git_server, "stacks/net/") == {"main.tf": MAIN_V2}
    assert git_server.read_file("octo", "infra", "main", "README.md") == b"# infra\n"


def subprocess_log(git_server: gitserver.GitServer, ref: str) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(git_server.repo_path("octo", "infra")), "log", "-1", "--format=%B", ref],
                          capture_output=True, text=True, check=True).stdout


async def test_push_without_auto_sync_waits_for_a_request(ready: Cluster, git_server: gitserver.GitServer) -> None:
    before = git_server.head("octo", "infra", "main")
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Push", autoSync=False))
    await ready.wait_condition("TemplateRepoLink", "net", "Synced", "False", sync.PUSH_PENDING)
    assert git_server.head("octo", "infra", "main") == before
    await ready.patch("TemplateRepoLink", "net", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "1"}}})
    await ready.wait_condition("TemplateRepoLink", "net", "Synced", "True")
    assert files_under(git_server, "stacks/net/") == {"main.tf": MAIN}


async def test_pull_records_github_sync_versions_and_follows_the_branch_by_polling(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    first = git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": MAIN,
                                                              "stacks/net/variables.tf": VARIABLES}, "add net")
    await ready.apply(template({"main.tf": "# placeholder\n"}))
    await ready.apply(link("Pull"))
    await wait_status(ready, "TemplateRepoLink", "net", synced_to(first))
    tpl = await ready.get("Template", "net") or {}
    assert tpl["spec"]["files"] == {"main.tf": MAIN, "variables.tf": VARIABLES}
    tpl = await wait_status(ready, "Template", "net", lambda o: o.get("status", {}).get("versions", [{}])[0].get(
        "source") == "github-sync")
    assert tpl["status"]["versions"][0]["commit"] == first

    # A commit on GitHub (a file changed, one deleted) reaches the template through the repository poller.
    second = git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": MAIN_V2}, "bump",
                                     delete=["stacks/net/variables.tf"])
    await wait_status(ready, "TemplateRepoLink", "net", synced_to(second))
    tpl = await ready.get("Template", "net") or {}
    assert tpl["spec"]["files"] == {"main.tf": MAIN_V2}
    link_obj = await ready.get("TemplateRepoLink", "net") or {}
    assert link_obj["status"]["lastPullAt"] and link_obj["status"]["history"][0]["direction"] == "Pull"


async def test_pull_of_a_missing_branch(ready: Cluster) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Pull", branch="nope"))
    await ready.wait_condition("TemplateRepoLink", "net", "Ready", "False", "BranchNotFound")


async def test_push_creates_a_missing_branch(ready: Cluster, git_server: gitserver.GitServer) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Push", autoSync=True, branch="infra-dev"))
    await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    assert git_server.read_file("octo", "infra", "infra-dev", "stacks/net/main.tf") == MAIN.encode()


async def test_invalid_hcl_from_github_leaves_the_template_unchanged(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    good = git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": MAIN}, "good")
    await ready.apply(template({"main.tf": MAIN}))  # both sides agree: the first sync only records them
    await ready.apply(link("Bidirectional"))
    await wait_status(ready, "TemplateRepoLink", "net", synced_to(good))
    bad = git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": 'resource "x" "y" {\n  a = \n}\n'},
                                  "broken")
    obj = await ready.wait_condition("TemplateRepoLink", "net", "Ready", "False", "InvalidHCL")
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")["message"]
    assert bad[:12] in message and "main.tf:2" in message
    tpl = await ready.get("Template", "net") or {}
    assert tpl["spec"]["files"] == {"main.tf": MAIN}


async def test_bidirectional_edits_on_both_sides_open_a_conflict_and_lose_nothing(
    ready: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Bidirectional", autoSync=True, interval="1h"))  # no polling: edits land together
    synced = await ready.wait_condition("TemplateRepoLink", "net", "Synced", "True")
    theirs = git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": "# edited on GitHub\n"}, "gh")
    await ready.patch("Template", "net", {"spec": {"files": {"main.tf": MAIN_V2}}})
    obj = await ready.wait_condition("TemplateRepoLink", "net", "Conflict", "True")
    conflict = obj["status"]["conflict"]
    assert conflict["branch"].startswith("chkmate/conflict/net-") and conflict["pullRequest"]
    # Neither edit is lost: the branch keeps GitHub's, the conflict branch holds the cluster's.
    assert git_server.head("octo", "infra", "main") == theirs
    assert git_server.read_file("octo", "infra", conflict["branch"], "stacks/net/main.tf") == MAIN_V2.encode()
    assert (await ready.get("Template", "net") or {})["spec"]["files"] == {"main.tf": MAIN_V2}
    pulls = github.calls("POST", r"/repos/octo/infra/pulls$")
    assert len(pulls) == 1
    assert synced["status"]["lastSyncedRevision"] == obj["status"]["lastSyncedRevision"]

    # Merging the pull request resolves it: what the merge leaves is pulled, the conflict closes.
    import httpx  # the merge is done on GitHub, as a user would

    async with httpx.AsyncClient(base_url=github.url, headers={"Authorization": f"token {TOKEN}"}) as http:
        merged = await http.put(f"/repos/octo/infra/pulls/{conflict['pullRequest']}/merge",
                                json={"merge_method": "merge"})
        assert merged.status_code == 200, merged.text
    await ready.patch("TemplateRepoLink", "net", {"metadata": {"annotations": {"chkmate.dev/requestedAt": "m"}}})
    done = await ready.wait_condition("TemplateRepoLink", "net", "Conflict", "False")
    assert "conflict" not in done["status"]
    await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")


async def test_resolve_cluster_pushes_the_template_over_the_branch(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    git_server.commit_files("octo", "infra", "main", {"stacks/net/main.tf": "# theirs\n"}, "theirs")
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Push", autoSync=True))  # a first push would overwrite unknown content: conflict
    await ready.wait_condition("TemplateRepoLink", "net", "Conflict", "True")
    await ready.patch("TemplateRepoLink", "net", {"metadata": {"annotations": {sync.RESOLVE_ANNOTATION: "cluster"}}})
    obj = await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    assert files_under(git_server, "stacks/net/") == {"main.tf": MAIN}
    assert sync.RESOLVE_ANNOTATION not in obj["metadata"].get("annotations", {})


async def test_a_rejected_push_is_decided_again_never_forced(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Push", autoSync=True, interval="1h"))
    await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    moved: list[str] = []
    git_server.traffic.before_next_push(lambda repo: moved.append(
        git_server.commit_files("octo", "infra", "main", {"other/y.tf": "locals {}\n"}, "racing")))
    await ready.patch("Template", "net", {"spec": {"files": {"main.tf": MAIN_V2}}})
    await wait_status(ready, "TemplateRepoLink", "net",
                      lambda o: (o["status"].get("lastSyncedTemplateRevision") or "") != ""
                      and files_under(git_server, "stacks/net/").get("main.tf") == MAIN_V2)
    assert moved, "the racing commit was not made"
    # The racing commit survived (no force push) and ours sits on top of it.
    assert git_server.read_file("octo", "infra", "main", "other/y.tf") == b"locals {}\n"


async def test_a_crash_between_push_and_status_makes_no_second_commit(
    cluster: Cluster, start_chkmate: Starter, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    async with start_chkmate():
        await setup_cluster(cluster, github, git_server)
        await cluster.apply(template({"main.tf": MAIN}))
        await cluster.apply(link("Push", autoSync=True, interval="1h"))
        await cluster.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    pushed = git_server.head("octo", "infra", "main")
    pushes = len(git_server.traffic.pushes)
    # As if the operator died after the push and before its status write: the status knows nothing.
    await cluster.client.patch(
        kube_resource(), "default", "net",
        {"status": {"lastSyncedRevision": None, "lastSyncedTemplateRevision": None, "history": None}}, status=True)
    async with start_chkmate():
        obj = await wait_status(cluster, "TemplateRepoLink", "net", synced_to(pushed))
    assert git_server.head("octo", "infra", "main") == pushed
    assert len(git_server.traffic.pushes) == pushes
    assert obj["status"]["history"][0]["direction"] == "Push"


def kube_resource() -> Any:
    from chkmate.clients import kube as kube_client

    return kube_client.ours("templaterepolinks")


async def test_rollback_restores_a_commit_as_a_new_commit(ready: Cluster, git_server: gitserver.GitServer) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    await ready.apply(link("Bidirectional", autoSync=True, interval="1h"))
    await ready.wait_condition("TemplateRepoLink", "net", "Ready", "True")
    old = git_server.head("octo", "infra", "main")
    await ready.patch("Template", "net", {"spec": {"files": {"main.tf": MAIN_V2}}})
    await wait_status(ready, "TemplateRepoLink", "net", lambda o: files_under(git_server, "stacks/net/") == {
        "main.tf": MAIN_V2} and not synced_to(old)(o))
    await ready.patch("TemplateRepoLink", "net", {"metadata": {"annotations": {"chkmate.dev/rollbackTo": old}}})
    await wait_status(ready, "TemplateRepoLink", "net",
                      lambda o: files_under(git_server, "stacks/net/") == {"main.tf": MAIN}
                      and o["status"].get("lastSyncedRevision", "").endswith(git_server.head("octo", "infra", "main")
                                                                            or "?"))
    assert git_server.head("octo", "infra", "main") != old  # a new commit, history not rewritten
    tpl = await wait_status(ready, "Template", "net", lambda o: o["status"]["versions"][0]["source"] == "rollback")
    assert tpl["status"]["versions"][0]["commit"] == old


async def test_many_links_on_one_repository_share_one_ls_remote_per_interval(
    ready: Cluster, git_server: gitserver.GitServer
) -> None:
    await ready.apply(template({"main.tf": MAIN}))
    for i in range(5):
        await ready.apply(link("Push", autoSync=True, path=f"stacks/n{i}", name=f"n{i}"))
    for i in range(5):
        await ready.wait_condition("TemplateRepoLink", f"n{i}", "Ready", "True")
    # The first poll marks each link with the head the other links' pushes left; they record it, and
    # from then on nothing moves: that is the steady state measured below.
    for i in range(5):
        await wait_status(ready, "TemplateRepoLink", f"n{i}",
                          synced_to(git_server.head("octo", "infra", "main")), timeout=10)
    await asyncio.sleep(0.5)
    git_server.traffic.reset()
    await asyncio.sleep(3.2)  # about three polling intervals of 1 s
    advertised = git_server.traffic.count("octo/infra", gitserver.Service.ADVERTISE_UPLOAD)
    fetched = git_server.traffic.count("octo/infra", gitserver.Service.UPLOAD_PACK)
    assert 2 <= advertised <= 4, advertised  # one ls-remote per interval for the repository, not one per link
    assert fetched == 0
