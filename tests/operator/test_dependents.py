"""Objects waiting for a dependency are woken when it turns Ready, not at their next retry.

The retry delay here is two minutes: without the wake-up, nothing below would settle within the waits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chkmate import settings as settings_
from tests.fixtures import TOKEN
from tests.harness import github_api, gitserver
from tests.operator.conftest import Cluster, quick_settings

MAIN = 'resource "terraform_data" "app" {\n  input = "v1"\n}\n'


@pytest.fixture
def operator_settings(tmp_path: Path) -> settings_.Settings:
    return quick_settings(tmp_path, retry_delay=120)


async def test_a_chain_applied_in_reverse_order_settles_without_waiting_for_retries(
    chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    github.create_repo("octo", "live")
    git_server.commit_files("octo", "live", "main", {"main.tf": MAIN}, "init")
    await chkmate.apply({
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "production"},
        "spec": {"repositoryRef": {"name": "live"}, "branch": "main", "engine": "builtin",
                 "approval": {"mode": "manual"}},
    })
    await chkmate.wait_condition("Environment", "production", "Ready", "False", "DependencyNotFound")
    await chkmate.apply({
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubRepository", "metadata": {"name": "live"},
        "spec": {"connectionRef": {"name": "octo"}, "owner": "octo", "name": "live"},
    })
    await chkmate.wait_condition("GitHubRepository", "live", "Ready", "False", "DependencyNotFound")

    await chkmate.secret("gh-token", {"token": TOKEN})
    await chkmate.apply({
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubConnection", "metadata": {"name": "octo"},
        "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-token", "key": "token"}},
    })
    await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "True")
    # The connection wakes the repository, which wakes the Environment, which plans.
    await chkmate.wait_condition("GitHubRepository", "live", "Ready", "True", timeout=15)
    env = await chkmate.wait_condition("Environment", "production", "Ready", "True", timeout=15)
    assert env["status"]["lastPlan"]["name"].startswith("production-")
    # Woken, not "requested": chkmate.dev/requestedAt is a person asking (a link would push without autoSync).
    annotations = env["metadata"]["annotations"]
    assert annotations["chkmate.dev/dependencyReady"].startswith("GitHubRepository/live@")
    assert "chkmate.dev/requestedAt" not in annotations
