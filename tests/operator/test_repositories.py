"""GitHubRepository: adopt or create (with a scaffold read back over git), idempotence, deletion policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chkmate.api import repoconfig
from chkmate.clients import git
from chkmate.clients import kube as kube_client
from tests.fixtures import TOKEN
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import Cluster


@pytest.fixture
async def connected(chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> Cluster:
    """The operator with a Ready token connection 'octo' (user octo, owner of org acme)."""
    await chkmate.secret("gh-token", {"token": TOKEN})
    await chkmate.apply({
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubConnection", "metadata": {"name": "octo"},
        "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-token", "key": "token"},
                 "allowedRepositories": ["octo/*", "acme/infra-*"]},
    })
    await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "True")
    return chkmate


def repository(name: str, owner: str = "octo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubRepository", "metadata": {"name": name},
        "spec": {"connectionRef": {"name": "octo"}, "owner": owner, "name": name, **spec},
    }


async def test_adopts_an_existing_repository(
    connected: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    github.create_repo("octo", "infra-live")
    head = git_server.commit_files("octo", "infra-live", "main", {"main.tf": "locals {}\n"}, "init")
    await connected.apply(repository("infra-live"))
    obj = await connected.wait_condition("GitHubRepository", "infra-live", "Ready", "True")
    status = obj["status"]
    assert status["fullName"] == "octo/infra-live" and status["defaultBranch"] == "main"
    assert status["headRevision"] == f"main@sha1:{head}"
    assert status["created"] is False and status["visibility"] == "public"
    assert status["htmlUrl"].endswith("/octo/infra-live")


async def test_missing_repository_without_create(connected: Cluster) -> None:
    await connected.apply(repository("nothing"))
    await connected.wait_condition("GitHubRepository", "nothing", "Ready", "False", "RepositoryNotFound")


@pytest.mark.parametrize("owner", ["octo", "acme"])
async def test_creates_with_a_terraform_scaffold_readable_over_git(
    connected: Cluster, git_server: gitserver.GitServer, owner: str, tmp_path: Path
) -> None:
    manifest = repository("infra-new" if owner == "acme" else "fresh", owner=owner, create=True,
                          visibility="private", description="Made by chkmate", defaultBranch="trunk",
                          scaffold={"purpose": "terraform"})
    name = manifest["spec"]["name"]
    await connected.apply(manifest)
    obj = await connected.wait_condition("GitHubRepository", name, "Ready", "True")
    assert obj["status"]["created"] is True
    assert obj["status"]["visibility"] == "private" and obj["status"]["defaultBranch"] == "trunk"
    files = await clone(git_server.url(owner, name), tmp_path, "trunk")
    assert {".chkmate.yml", "README.md", ".gitignore", "main.tf", "variables.tf", "outputs.tf"} <= set(files)
    config = repoconfig.parse(files[".chkmate.yml"].decode())
    assert [env.branch for env in config.environments.values()] == ["trunk"]
    assert obj["status"]["headRevision"] == f"trunk@sha1:{git_server.head(owner, name, 'trunk')}"


async def clone(url: str, tmp_path: Path, branch: str) -> dict[str, bytes]:
    """The files of ``branch``, fetched over smart HTTP with a token, as any git client would."""

    async def token() -> str:
        return TOKEN

    remote = git.Remote(url, token)
    mirrors = git.Mirrors(tmp_path / "clone")
    await mirrors.fetch(remote, [branch])
    head = await mirrors.head(remote, branch)
    assert head is not None
    try:
        return await mirrors.read_tree(remote, head) or {}
    finally:
        await mirrors.close()


async def test_create_is_idempotent_and_never_overwrites_a_non_empty_repository(
    connected: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    github.create_repo("octo", "existing")
    head = git_server.commit_files("octo", "existing", "main", {"app.py": "print(1)\n"}, "theirs")
    await connected.apply(repository("existing", create=True, scaffold={"purpose": "terraform"}))
    obj = await connected.wait_condition("GitHubRepository", "existing", "Ready", "True")
    assert obj["status"]["created"] is False
    assert git_server.head("octo", "existing", "main") == head
    assert set(git_server.list_files("octo", "existing", "main")) == {"app.py"}
    assert len(github.calls("POST", r"/repos$")) == 0
    # Reconciling again (a requested reconcile) neither creates nor pushes anything.
    await connected.patch("GitHubRepository", "existing",
                          {"metadata": {"annotations": {"chkmate.dev/requestedAt": "again"}}})
    await kube.wait_for(lambda: _handled(connected, "existing", "again"), timeout=10)
    assert git_server.head("octo", "existing", "main") == head
    assert len(github.calls("POST", r"/repos$")) == 0


async def _handled(cluster: Cluster, name: str, token: str) -> bool:
    obj = await cluster.get("GitHubRepository", name) or {}
    return bool(obj.get("status", {}).get("lastHandledReconcileAt") == token)


async def test_a_repository_the_connection_does_not_allow(connected: Cluster) -> None:
    await connected.apply(repository("other", owner="acme", create=True))
    obj = await connected.wait_condition("GitHubRepository", "other", "Ready", "False", "RepositoryNotAllowed")
    assert "acme/other" in next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")["message"]


async def test_a_name_github_rejects_is_refused_by_the_api_server(connected: Cluster) -> None:
    manifest = repository("bad")
    manifest["spec"]["name"] = "bad name"
    with pytest.raises(kube_client.KubeError) as e:
        await connected.apply(manifest)
    assert e.value.status == 422 and "spec.name" in e.value.message


async def test_github_5xx_on_create_is_retried(
    connected: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    github.fail_next("POST", r"^/user/repos$", 502, count=2)
    await connected.apply(repository("flaky", create=True))
    await connected.wait_condition("GitHubRepository", "flaky", "Ready", "False", "GitHubUnavailable")
    await connected.wait_condition("GitHubRepository", "flaky", "Ready", "True")
    assert github.has_repo("octo/flaky")


async def test_deletion_policies(connected: Cluster, github: github_api.GitHubDouble) -> None:
    github.create_repo("octo", "kept")
    github.create_repo("octo", "doomed")
    await connected.apply(repository("kept"))
    await connected.apply(repository("doomed", deletionPolicy="Delete"))
    await connected.wait_condition("GitHubRepository", "kept", "Ready", "True")
    await connected.wait_condition("GitHubRepository", "doomed", "Ready", "True")
    await connected.delete("GitHubRepository", "kept")
    await connected.delete("GitHubRepository", "doomed")
    await kube.wait_for(lambda: _gone(connected, "doomed"), timeout=10)
    assert github.has_repo("octo/kept") and not github.has_repo("octo/doomed")


async def test_github_refusing_deletion_is_reported_and_retried(
    connected: Cluster, github: github_api.GitHubDouble
) -> None:
    github.create_repo("octo", "sticky")
    await connected.apply(repository("sticky", deletionPolicy="Delete"))
    await connected.wait_condition("GitHubRepository", "sticky", "Ready", "True")
    github.fail_next("DELETE", r"^/repos/octo/sticky$", 403, count=3,
                     body={"message": "Must have admin rights to Repository."})
    await connected.delete("GitHubRepository", "sticky")
    obj = await connected.wait_condition("GitHubRepository", "sticky", "Ready", "False", "DeletionFailed")
    assert "admin rights" in next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")["message"]
    await kube.wait_for(lambda: _gone(connected, "sticky"), timeout=15)
    assert not github.has_repo("octo/sticky")


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.get("GitHubRepository", name) is None
