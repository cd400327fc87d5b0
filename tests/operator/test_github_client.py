"""The GitHub client against the GitHub API double: App auth, tokens, ETags, faults, and no leaked secrets."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chkmate.clients import github as gh
from tests.fixtures import TOKEN, App, malformed_pem
from tests.harness import github_api

Clients = Callable[..., gh.GitHubClient]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Makes GitHub clients and closes their connection pools after the test."""
    made: list[gh.GitHubClient] = []

    def make(*args: Any, **kwargs: Any) -> gh.GitHubClient:
        made.append(gh.GitHubClient(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def app_client(github: github_api.GitHubDouble, github_app: App, clients: Clients) -> Callable[[], gh.GitHubClient]:
    auth = gh.AppAuth(github_app.app_id, github_app.installation_id, github_app.private_key)
    return lambda: clients(github.url, auth, timeout=5)


async def test_app_auth_end_to_end(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient]
) -> None:
    client = app_client()
    installation = await client.installation()
    assert installation.account.login == "acme" and installation.account.type == "Organization"
    assert installation.id == github_app.installation_id and not installation.suspended
    token = await client.token()
    assert token.value.startswith("ghs_") and token.expires_at is not None
    github.create_repo("acme", "infra")
    repo = await client.repository("acme", "infra")
    assert repo is not None and repo.full_name == "acme/infra"
    assert await client.repository("acme", "missing") is None


async def test_concurrent_callers_share_one_token_request(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient]
) -> None:
    client = app_client()
    tokens = await asyncio.gather(*(client.token() for _ in range(20)))
    assert len({t.value for t in tokens}) == 1
    assert len(github.calls("POST", r"/access_tokens$")) == 1


async def test_token_is_renewed_before_expiry(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient]
) -> None:
    client = app_client()
    first = await client.token()
    assert first.expires_at is not None
    assert (await client.token(now=first.expires_at - datetime.timedelta(minutes=10))) == first
    renewed = await client.token(now=first.expires_at - datetime.timedelta(minutes=4))
    assert renewed.value != first.value


async def test_an_expired_token_is_replaced_on_401(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient]
) -> None:
    client = app_client()
    github.create_repo("acme", "infra")
    await client.repository("acme", "infra")
    github.expire_tokens()
    assert await client.repository("acme", "infra") is not None
    assert len(github.calls("POST", r"/access_tokens$")) == 2


async def test_etags_make_repeated_gets_free(github: github_api.GitHubDouble, clients: Clients) -> None:
    client = clients(github.url, gh.TokenAuth(TOKEN))
    github.create_repo("octo", "infra")
    for _ in range(5):
        await client.repository("octo", "infra")
    assert client.calls == {200: 1, 304: 4}
    assert client.rate_limit is not None and client.rate_limit.remaining == client.rate_limit.limit - 1


@pytest.mark.parametrize(
    ("setup", "error", "reason"),
    [
        (lambda g: g.rate_limit(remaining=0, reset_in=120), gh.RateLimited, "RateLimited"),
        (lambda g: g.secondary_rate_limit(retry_after=30), gh.RateLimited, "RateLimited"),
        (lambda g: g.fail_next("GET", r"^/repos/", 502), gh.GitHubUnavailable, "GitHubUnavailable"),
    ],
)
async def test_faults_become_retryable_errors_with_the_servers_delay(
    github: github_api.GitHubDouble, setup: object, error: type[gh.GitHubError], reason: str, clients: Clients
) -> None:
    client = clients(github.url, gh.TokenAuth(TOKEN))
    github.create_repo("octo", "infra")
    setup(github)  # type: ignore[operator]
    with pytest.raises(error) as e:
        await client.repository("octo", "infra")
    assert e.value.retryable and e.value.reason == reason
    if error is gh.RateLimited:
        assert e.value.retry_after is not None and e.value.retry_after >= 1


async def test_bad_inputs_give_precise_errors(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient], clients: Clients
) -> None:
    with pytest.raises(gh.InvalidPrivateKey):
        clients(github.url, gh.AppAuth(1, 2, malformed_pem("PRIVATE KEY", "nope")))
    ec_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(gh.InvalidPrivateKey, match="not an RSA key"):
        clients(github.url, gh.AppAuth(1, 2, ec_key))
    unknown = clients(github.url, gh.AppAuth(github_app.app_id, 999, github_app.private_key))
    with pytest.raises(gh.InstallationNotFound):
        await unknown.token()
    github.set_installation_suspended(github_app.installation_id)
    with pytest.raises(gh.InstallationSuspended):
        await app_client().token()
    with pytest.raises(gh.Unauthorized):
        await clients(github.url, gh.TokenAuth("ghp_not_a_real_token")).authenticated_user()


async def test_repository_name_github_rejects(github: github_api.GitHubDouble, clients: Clients) -> None:
    client = clients(github.url, gh.TokenAuth(TOKEN))
    with pytest.raises(gh.GitHubError) as e:
        await client.create_repository("octo", "bad name!", organization=False, visibility="private", description="")
    assert e.value.status == 422 and not e.value.retryable


async def test_secrets_never_appear_in_errors(
    github: github_api.GitHubDouble, github_app: App, app_client: Callable[[], gh.GitHubClient]
) -> None:
    client = app_client()
    token = await client.token()
    github.fail_next("GET", r"^/repos/", 500)
    with pytest.raises(gh.GitHubError) as e:
        await client.repository("acme", "infra")
    text = f"{e.value} {e.value!r} {e.value.__cause__!r} {e.value.__context__!r}"
    assert token.value not in text and "PRIVATE KEY" not in text
    assert "PRIVATE KEY" not in repr(client.auth) and token.value not in repr(token)
