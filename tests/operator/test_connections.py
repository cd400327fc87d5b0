"""GitHubConnection against the GitHub API double: health in the status, precise reasons, rotation, deletion."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures import TOKEN, App, malformed_pem
from tests.harness import github_api, kube
from tests.operator.conftest import Cluster


def app_connection(github: github_api.GitHubDouble, app: App, name: str = "acme", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubConnection", "metadata": {"name": name},
        "spec": {"appId": app.app_id, "installationId": app.installation_id, "apiUrl": github.url,
                 "privateKeySecretRef": {"name": "gh-app", "key": "private-key.pem"}, **spec},
    }


def token_connection(github: github_api.GitHubDouble, name: str = "octo") -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubConnection", "metadata": {"name": name},
        "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh-token", "key": "token"}},
    }


async def test_app_connection_reports_account_installation_token_expiry_and_rate_limit(
    chkmate: Cluster, github: github_api.GitHubDouble, github_app: App
) -> None:
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.apply(app_connection(github, github_app))
    obj = await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "True")
    status = obj["status"]
    assert status["account"]["login"] == "acme" and status["account"]["type"] == "Organization"
    assert status["installation"] == {"id": github_app.installation_id, "suspended": False,
                                      "repositorySelection": "all"}
    assert status["tokenExpiresAt"].endswith("Z")
    assert status["rateLimit"]["limit"] == 5000 and status["rateLimit"]["remaining"] > 0
    connected = next(c for c in status["conditions"] if c["type"] == "Connected")
    assert connected["status"] == "True" and "'acme'" in connected["message"]


async def test_token_connection(chkmate: Cluster, github: github_api.GitHubDouble) -> None:
    await chkmate.secret("gh-token", {"token": TOKEN + "\n"})  # a trailing newline from `echo` is forgiven
    await chkmate.apply(token_connection(github))
    obj = await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "True")
    assert obj["status"]["account"]["login"] == "octo"
    assert "installation" not in obj["status"]


async def test_missing_secret_then_created(chkmate: Cluster, github: github_api.GitHubDouble, github_app: App) -> None:
    await chkmate.apply(app_connection(github, github_app))
    obj = await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "False", "SecretNotFound")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "spec.privateKeySecretRef" in ready["message"] and "gh-app" in ready["message"]
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "True")


async def test_malformed_key_is_invalid_private_key(
    chkmate: Cluster, github: github_api.GitHubDouble, github_app: App
) -> None:
    await chkmate.secret("gh-app", {"private-key.pem": malformed_pem("RSA PRIVATE KEY", "garbage", end=False)})
    await chkmate.apply(app_connection(github, github_app))
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "False", "InvalidPrivateKey")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"installationId": 999999}, "InstallationNotFound"),
        ({"appId": 777}, "Unauthorized"),
    ],
)
async def test_unknown_installation_or_app(
    chkmate: Cluster, github: github_api.GitHubDouble, github_app: App, edit: dict[str, int], reason: str
) -> None:
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.apply(app_connection(github, github_app, **edit))
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "False", reason)


async def test_suspended_installation(chkmate: Cluster, github: github_api.GitHubDouble, github_app: App) -> None:
    github.set_installation_suspended(github_app.installation_id)
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.apply(app_connection(github, github_app))
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "False", "InstallationSuspended")


async def test_rate_limited_and_unavailable_github(chkmate: Cluster, github: github_api.GitHubDouble) -> None:
    await chkmate.secret("gh-token", {"token": TOKEN})
    github.rate_limit(remaining=0, reset_in=1)
    await chkmate.apply(token_connection(github))
    await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "False", "RateLimited")
    await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "True")  # after the server's delay


async def test_key_rotation_is_picked_up_without_restart(
    chkmate: Cluster, github: github_api.GitHubDouble, github_app: App
) -> None:
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.apply(app_connection(github, github_app))
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "True")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    await chkmate.secret("gh-app", {"private-key.pem": other})  # a key GitHub does not know
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "False", "Unauthorized")
    github.rotate_app_key(github_app.app_id, other)  # the App's key rotated on GitHub too
    await chkmate.secret("gh-app", {"private-key.pem": other + "\n"})
    await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "True")


async def test_tokens_never_reach_status_events_or_logs(
    chkmate: Cluster, github: github_api.GitHubDouble, github_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    await chkmate.secret("gh-app", {"private-key.pem": github_app.private_key})
    await chkmate.apply(app_connection(github, github_app))
    obj = await chkmate.wait_condition("GitHubConnection", "acme", "Ready", "True")
    tokens = github.issued_tokens()
    assert tokens
    stored = repr(obj) + repr(await chkmate.events("acme"))
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in [*tokens, "PRIVATE KEY", github_app.private_key.splitlines()[1]]:
        assert secret not in stored and secret not in logs


async def test_deletion_waits_for_repositories_using_the_connection(
    chkmate: Cluster, github: github_api.GitHubDouble
) -> None:
    await chkmate.secret("gh-token", {"token": TOKEN})
    await chkmate.apply(token_connection(github))
    await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "True")
    github.create_repo("octo", "infra")
    await chkmate.apply({
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "GitHubRepository", "metadata": {"name": "infra"},
        "spec": {"connectionRef": {"name": "octo"}, "owner": "octo", "name": "infra"},
    })
    await chkmate.wait_condition("GitHubRepository", "infra", "Ready", "True")
    await chkmate.delete("GitHubConnection", "octo")
    obj = await chkmate.wait_condition("GitHubConnection", "octo", "Ready", "False", "DeletionBlocked")
    assert "infra" in next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")["message"]
    await asyncio.sleep(0.5)
    assert await chkmate.get("GitHubConnection", "octo") is not None
    await chkmate.delete("GitHubRepository", "infra")
    await kube.wait_for(lambda: _gone(chkmate, "GitHubConnection", "octo"), timeout=10)
    assert github.has_repo("octo/infra")  # deletionPolicy Retain: the repository stays on GitHub


async def _gone(cluster: Cluster, kind: str, name: str) -> bool:
    return await cluster.get(kind, name) is None
