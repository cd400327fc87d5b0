"""Tests of the GitHub REST API double, driven mostly through githubkit (the client the operator uses).

Each test starts its own double on a free port with bare repositories under `tmp_path`.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import PrimaryRateLimitExceeded, RequestFailed, SecondaryRateLimitExceeded
from githubkit_schemas.latest.models import ContentFile

from tests.harness import github_api

APP_ID = 7
PAT = "ghp_alice_token"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def private_pem(private_key: rsa.RSAPrivateKey) -> str:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


@pytest.fixture
def gh(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> Iterator[github_api.GitHubDouble]:
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with github_api.GitHubDouble(tmp_path) as double:
        double.add_user("alice")
        double.add_org("acme", members=["alice"])
        double.add_org("other")
        double.add_app(APP_ID, public_pem, slug="chkmate")
        double.add_installation(APP_ID, "acme", installation_id=42)
        double.add_personal_token(PAT, "alice")
        double.create_repo("acme", "infra", auto_init=True, description="Terraform")
        double.create_repo("other", "secret", private=True, auto_init=True)
        yield double


def _client(gh: github_api.GitHubDouble, auth: Any) -> GitHub[Any]:
    return GitHub(auth, base_url=gh.url, cache_strategy=MemCacheStrategy(), auto_retry=False)


@pytest.fixture
def app(gh: github_api.GitHubDouble, private_pem: str) -> GitHub[Any]:
    return _client(gh, AppAuthStrategy(APP_ID, private_pem))


@pytest.fixture
def bot(gh: github_api.GitHubDouble, private_pem: str) -> GitHub[Any]:
    return _client(gh, AppInstallationAuthStrategy(APP_ID, private_pem, 42))


@pytest.fixture
def alice(gh: github_api.GitHubDouble) -> GitHub[Any]:
    return _client(gh, TokenAuthStrategy(PAT))


def _git(bare: Path, *args: str) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["git", "-C", str(bare), *args], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _error(excinfo: pytest.ExceptionInfo[RequestFailed]) -> tuple[int, dict[str, Any]]:
    response = excinfo.value.response
    return response.status_code, response.json()


def _sign(claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """An RS256 JWT built by hand, so that claims PyJWT refuses to encode (an integer `iss`) can be sent."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = part(b'{"alg":"RS256","typ":"JWT"}') + b"." + part(json.dumps(claims).encode())
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + part(signature)).decode()


def _file(client: GitHub[Any], path: str) -> ContentFile:
    content = client.rest.repos.get_content("acme", "infra", path).parsed_data
    assert isinstance(content, ContentFile)
    return content


def _add_branch_commit(client: GitHub[Any], branch: str, path: str, text: str, sha: str | None = None) -> str:
    """Branch off acme/infra's main and commit one file there (`sha`: the blob it replaces)."""
    main = client.rest.git.get_ref("acme", "infra", "heads/main").parsed_data.object_.sha
    client.rest.git.create_ref("acme", "infra", ref=f"refs/heads/{branch}", sha=main)
    put = client.rest.repos.create_or_update_file_contents(
        "acme", "infra", path, message=f"Change {path}", content=_b64(text), branch=branch, sha=sha
    )
    return put.parsed_data.commit.sha or ""


class TestAppAuthentication:
    def test_app_jwt_gets_an_installation_token(self, app: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        assert app.rest.apps.get_authenticated().raw_response.json()["slug"] == "chkmate"
        assert [i.id for i in app.rest.apps.list_installations().parsed_data] == [42]
        token = app.rest.apps.create_installation_access_token(42).parsed_data
        expires = datetime.datetime.strptime(token.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        assert token.token.startswith("ghs_")
        assert 3590 < (expires - datetime.datetime.now(datetime.UTC)).total_seconds() <= 3600
        assert token.repository_selection == "all"
        assert gh.calls("POST", r"/access_tokens$")[0].status == 201

    def test_installation_strategy_uses_the_token(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        assert bot.rest.repos.get("acme", "infra").parsed_data.description == "Terraform"
        assert [r.actor for r in gh.requests] == ["app:7", "installation:42"]

    def test_integer_issuer_is_accepted(self, gh: github_api.GitHubDouble, private_key: rsa.RSAPrivateKey) -> None:
        now = int(time.time())
        token = _sign({"iss": APP_ID, "iat": now - 60, "exp": now + 540}, private_key)
        response = httpx.get(f"{gh.url}/app", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("iat_offset", "exp_offset", "message"),
        [
            (-60, 660, "'Expiration time' claim ('exp') is too far in the future"),
            (-1200, -700, "'Expiration time' claim ('exp') must be a numeric value"),
            (300, 600, "'Issued at' claim ('iat') must be an Integer"),
        ],
    )
    def test_jwt_times_are_checked(
        self,
        gh: github_api.GitHubDouble,
        private_key: rsa.RSAPrivateKey,
        iat_offset: int,
        exp_offset: int,
        message: str,
    ) -> None:
        now = int(time.time())
        token = _sign({"iss": str(APP_ID), "iat": now + iat_offset, "exp": now + exp_offset}, private_key)
        response = httpx.get(f"{gh.url}/app", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["message"].startswith(message)

    def test_jwt_signed_by_another_key_is_rejected(self, gh: github_api.GitHubDouble) -> None:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        client = _client(gh, AppAuthStrategy(APP_ID, pem.decode()))  # githubkit's namespaces hold it weakly
        with pytest.raises(RequestFailed) as excinfo:
            client.rest.apps.get_authenticated()
        status, body = _error(excinfo)
        assert (status, body["message"]) == (401, "A JSON web token could not be decoded")
        assert body["documentation_url"].startswith("https://docs.github.com/rest")

    def test_suspended_and_unknown_installations(self, app: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        gh.set_installation_suspended(42)
        with pytest.raises(RequestFailed) as excinfo:
            app.rest.apps.create_installation_access_token(42)
        assert _error(excinfo)[0] == 403
        assert _error(excinfo)[1]["message"] == "This installation has been suspended"
        with pytest.raises(RequestFailed) as excinfo:
            app.rest.apps.create_installation_access_token(999)
        assert _error(excinfo)[0] == 404

    def test_token_narrowed_to_repositories_and_permissions(
        self, app: GitHub[Any], gh: github_api.GitHubDouble
    ) -> None:
        gh.create_repo("acme", "hidden")
        token = app.rest.apps.create_installation_access_token(
            42, repositories=["infra"], permissions={"contents": "read"}
        ).parsed_data
        assert token.repository_selection == "selected"
        narrowed = _client(gh, TokenAuthStrategy(token.token))
        assert narrowed.rest.repos.get("acme", "infra").status_code == 200
        with pytest.raises(RequestFailed) as excinfo:
            narrowed.rest.repos.get("acme", "hidden")
        assert _error(excinfo)[0] == 404
        with pytest.raises(RequestFailed) as excinfo:
            narrowed.rest.git.create_ref("acme", "infra", ref="refs/heads/x", sha="0" * 40)
        assert _error(excinfo)[1]["message"] == "Resource not accessible by integration"

    def test_expired_tokens_answer_bad_credentials(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        bot.rest.repos.get("acme", "infra")
        gh.expire_tokens()
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.get("acme", "infra")
        assert _error(excinfo)[0] == 401
        assert _error(excinfo)[1]["message"] == "Bad credentials"

    def test_token_ttl_is_configurable(self, app: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        gh.token_ttl = 0
        token = app.rest.apps.create_installation_access_token(42).parsed_data.token
        response = httpx.get(f"{gh.url}/repos/acme/infra", headers={"Authorization": f"token {token}"})
        assert response.status_code == 401


class TestVisibility:
    def test_repositories_outside_the_installation_are_hidden(self, bot: GitHub[Any]) -> None:
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.get("other", "secret")
        assert _error(excinfo)[1]["message"] == "Not Found"

    def test_selected_repositories_only(self, gh: github_api.GitHubDouble, private_pem: str) -> None:
        gh.create_repo("other", "shared")
        gh.add_installation(
            APP_ID, "other", installation_id=43, repository_selection="selected", repositories=["shared"]
        )
        client = _client(gh, AppInstallationAuthStrategy(APP_ID, private_pem, 43))
        listing = client.rest.apps.list_repos_accessible_to_installation().parsed_data
        assert [r.full_name for r in listing.repositories] == ["other/shared"]
        with pytest.raises(RequestFailed):
            client.rest.repos.get("other", "secret")

    def test_anonymous_callers(self, gh: github_api.GitHubDouble) -> None:
        assert httpx.get(f"{gh.url}/repos/acme/infra").status_code == 200
        assert httpx.get(f"{gh.url}/repos/other/secret").status_code == 404
        response = httpx.get(f"{gh.url}/user")
        assert (response.status_code, response.json()["message"]) == (401, "Requires authentication")

    def test_personal_tokens_and_permissions(self, alice: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        assert alice.rest.users.get_authenticated().parsed_data.login == "alice"
        with pytest.raises(RequestFailed) as excinfo:
            alice.rest.git.create_ref("acme", "infra", ref="refs/heads/x", sha="0" * 40)
        assert _error(excinfo)[0] == 403
        gh.set_permission("acme/infra", "alice", "write")
        level = alice.rest.repos.get_collaborator_permission_level("acme", "infra", "alice").parsed_data
        assert level.permission == "write"
        assert alice.rest.repos.get("acme", "infra").json()["permissions"]["push"] is True

    def test_users_and_orgs(self, bot: GitHub[Any]) -> None:
        assert bot.rest.users.get_by_username("alice").parsed_data.login == "alice"
        assert bot.rest.orgs.get("acme").parsed_data.public_repos == 1
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.users.get_authenticated()
        assert _error(excinfo)[1]["message"] == "Resource not accessible by integration"


class TestRepositories:
    def test_create_get_update_delete(self, alice: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        created = alice.rest.repos.create_for_authenticated_user(name="tf", private=True).parsed_data
        assert (created.full_name, created.private, created.default_branch) == ("alice/tf", True, "main")
        bare = gh.bare_repo_path("alice/tf")
        assert _git(bare, "config", "http.receivepack") == "true"
        assert _git(bare, "symbolic-ref", "HEAD") == "refs/heads/main"
        updated = alice.rest.repos.update("alice", "tf", description="new", name="terraform").parsed_data
        assert (updated.full_name, updated.description) == ("alice/terraform", "new")
        assert alice.rest.repos.delete("alice", "terraform").status_code == 204
        assert not (gh.root / "alice" / "terraform.git").exists()
        assert not (gh.root / "alice" / "tf.git").exists()

    def test_duplicate_and_invalid_names(self, alice: GitHub[Any]) -> None:
        alice.rest.repos.create_for_authenticated_user(name="dup")
        with pytest.raises(RequestFailed) as excinfo:
            alice.rest.repos.create_for_authenticated_user(name="DUP")
        status, body = _error(excinfo)
        assert status == 422
        assert body["message"] == "Repository creation failed."
        assert body["errors"] == [
            {
                "resource": "Repository",
                "code": "custom",
                "field": "name",
                "message": "name already exists on this account",
            }
        ]
        for name in ("has space", "x" * 101):
            with pytest.raises(RequestFailed) as excinfo:
                alice.rest.repos.create_for_authenticated_user(name=name)
            assert _error(excinfo)[0] == 422

    def test_installation_creates_org_repositories(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        created = bot.rest.repos.create_in_org("acme", name="env", auto_init=True).parsed_data
        assert created.full_name == "acme/env"
        assert len(_git(gh.bare_repo_path("acme/env"), "rev-parse", "main")) == 40
        with pytest.raises(RequestFailed):
            bot.rest.repos.create_for_authenticated_user(name="mine")

    def test_lists_paginate_with_link_headers(self, gh: github_api.GitHubDouble, bot: GitHub[Any]) -> None:
        for n in range(5):
            gh.create_repo("acme", f"r{n}")
        first = bot.rest.repos.list_for_org("acme", sort="full_name", per_page=2)
        link = first.headers["link"]
        assert 'rel="next"' in link and 'rel="last"' in link and "page=3" in link
        names = [
            r.name for r in bot.rest.paginate(bot.rest.repos.list_for_org, org="acme", sort="full_name", per_page=2)
        ]
        assert names == ["infra", "r0", "r1", "r2", "r3", "r4"]
        last = httpx.get(f"{gh.url}/orgs/acme/repos", params={"per_page": 2, "page": 3, "sort": "full_name"}).headers[
            "link"
        ]
        assert 'rel="prev"' in last and 'rel="first"' in last and 'rel="next"' not in last

    def test_user_repository_lists(self, alice: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        gh.create_repo("alice", "b")
        gh.create_repo("alice", "a", private=True)
        listed = alice.rest.repos.list_for_authenticated_user().parsed_data
        assert [r.full_name for r in listed] == ["acme/infra", "alice/a", "alice/b"]
        assert [r.name for r in alice.rest.repos.list_for_user("alice").parsed_data] == ["a", "b"]
        anonymous = httpx.get(f"{gh.url}/users/alice/repos").json()
        assert [r["name"] for r in anonymous] == ["b"]


class TestGitData:
    def test_contents_round_trip_makes_real_commits(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        put = bot.rest.repos.create_or_update_file_contents(
            "acme", "infra", "envs/dev/main.tf", message="Add dev", content=_b64("a = 1\n")
        ).parsed_data
        bare = gh.bare_repo_path("acme/infra")
        assert _git(bare, "rev-parse", "main") == put.commit.sha
        assert _git(bare, "cat-file", "-p", "main:envs/dev/main.tf") == "a = 1"
        assert _git(bare, "log", "-1", "--format=%an|%cn", "main") == "chkmate[bot]|chkmate[bot]"
        got = _file(bot, "envs/dev/main.tf")
        assert base64.b64decode(got.content) == b"a = 1\n" and put.content and got.sha == put.content.sha
        listing = bot.rest.repos.get_content("acme", "infra", "envs").json()
        assert isinstance(listing, list) and [(i["name"], i["type"]) for i in listing] == [("dev", "dir")]
        raw = bot.rest.repos.get_content("acme", "infra", "README.md", headers={"Accept": "application/vnd.github.raw"})
        assert raw.content == b"# infra\n\nTerraform\n"

    def test_contents_sha_checks(self, bot: GitHub[Any]) -> None:
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.create_or_update_file_contents("acme", "infra", "README.md", message="m", content=_b64("x"))
        assert _error(excinfo)[0] == 422
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.create_or_update_file_contents(
                "acme", "infra", "README.md", message="m", content=_b64("x"), sha="0" * 40
            )
        assert _error(excinfo)[0] == 409
        current = _file(bot, "README.md").sha
        bot.rest.repos.create_or_update_file_contents(
            "acme", "infra", "README.md", message="m", content=_b64("x"), sha=current
        )
        new_sha = _file(bot, "README.md").sha
        deleted = bot.rest.repos.delete_file("acme", "infra", "README.md", message="rm", sha=new_sha).parsed_data
        assert deleted.content is None
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.get_content("acme", "infra", "README.md")
        assert _error(excinfo)[0] == 404

    def test_refs(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        main = bot.rest.git.get_ref("acme", "infra", "heads/main").parsed_data.object_.sha
        feature = _add_branch_commit(bot, "feature/x", "a.txt", "a")
        assert [r.ref for r in bot.rest.git.list_matching_refs("acme", "infra", "heads/feat").parsed_data] == [
            "refs/heads/feature/x"
        ]
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.git.create_ref("acme", "infra", ref="refs/heads/feature/x", sha=main)
        assert _error(excinfo)[1]["message"] == "Reference already exists"
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.git.update_ref("acme", "infra", "heads/feature/x", sha=main)
        assert _error(excinfo)[1]["message"] == "Update is not a fast forward"
        assert bot.rest.git.update_ref("acme", "infra", "heads/feature/x", sha=main, force=True).status_code == 200
        assert bot.rest.git.update_ref("acme", "infra", "heads/main", sha=feature, force=False).status_code == 200
        assert bot.rest.git.delete_ref("acme", "infra", "heads/feature/x").status_code == 204
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.git.get_ref("acme", "infra", "heads/feature/x")
        assert _error(excinfo)[0] == 404
        names = [b.name for b in bot.rest.repos.list_branches("acme", "infra").parsed_data]
        assert names == ["main"]
        assert bot.rest.repos.get_branch("acme", "infra", "main").parsed_data.commit.sha == feature

    def test_commits(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        commit = bot.rest.repos.get_commit("acme", "infra", "main").parsed_data
        assert commit.commit.message == "Initial commit" and commit.parents == []
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.repos.get_commit("acme", "infra", "nope")
        assert _error(excinfo)[1]["message"] == "No commit found for SHA: nope"


class TestPullRequests:
    def test_create_and_merge_writes_a_merge_commit(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        head = _add_branch_commit(bot, "feature", "a.txt", "a")
        pull = bot.rest.pulls.create("acme", "infra", head="acme:feature", base="main", title="Add a").parsed_data
        assert (pull.number, pull.state, pull.head.sha, pull.mergeable, pull.user.login) == (
            1,
            "open",
            head,
            True,
            "chkmate[bot]",
        )
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.pulls.create("acme", "infra", head="feature", base="main", title="Again")
        assert _error(excinfo)[1]["errors"][0]["message"] == "A pull request already exists for acme:feature."
        gh.add_review("acme/infra", 1, "alice", "APPROVED")
        assert [r["state"] for r in bot.rest.pulls.list_reviews("acme", "infra", 1).raw_response.json()] == ["APPROVED"]
        merged = bot.rest.pulls.merge("acme", "infra", 1, sha=head).parsed_data
        bare = gh.bare_repo_path("acme/infra")
        assert _git(bare, "rev-parse", "main") == merged.sha
        assert _git(bare, "rev-parse", "main^2") == head
        after = bot.rest.pulls.get("acme", "infra", 1)
        assert (after.parsed_data.merged, after.parsed_data.state) == (True, "closed")
        assert after.raw_response.json()["merge_commit_sha"] == merged.sha  # not in githubkit's 2026-03-10 model
        assert bot.rest.pulls.list("acme", "infra", state="closed", head="acme:feature").parsed_data[0].number == 1
        assert bot.rest.pulls.list("acme", "infra").parsed_data == []

    def test_no_commits_and_conflicts(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        main = bot.rest.git.get_ref("acme", "infra", "heads/main").parsed_data.object_.sha
        bot.rest.git.create_ref("acme", "infra", ref="refs/heads/same", sha=main)
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.pulls.create("acme", "infra", head="same", base="main", title="Nothing")
        assert _error(excinfo)[1]["errors"][0]["message"] == "No commits between main and same"
        readme = _file(bot, "README.md").sha
        _add_branch_commit(bot, "left", "README.md", "left\n", sha=readme)
        bot.rest.repos.create_or_update_file_contents(
            "acme", "infra", "README.md", message="right", content=_b64("right\n"), sha=readme
        )
        pull = bot.rest.pulls.create("acme", "infra", head="left", base="main", title="Conflict").parsed_data
        assert bot.rest.pulls.get("acme", "infra", pull.number).parsed_data.mergeable is False
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.pulls.merge("acme", "infra", pull.number)
        assert _error(excinfo)[0] == 405
        assert _error(excinfo)[1]["message"] == "Pull Request is not mergeable"
        closed = bot.rest.pulls.update("acme", "infra", pull.number, state="closed").parsed_data
        assert (closed.state, closed.merged) == ("closed", False)

    def test_squash_merge_and_pushed_merges(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        head = _add_branch_commit(bot, "squash", "s.txt", "s")
        first = bot.rest.pulls.create("acme", "infra", head="squash", base="main", title="Squash").parsed_data
        squashed = bot.rest.pulls.merge("acme", "infra", first.number, merge_method="squash").parsed_data
        bare = gh.bare_repo_path("acme/infra")
        assert _git(bare, "log", "-1", "--format=%s|%P", "main").startswith("Squash (#1)|")
        assert head not in _git(bare, "rev-list", "main")
        pushed = _add_branch_commit(bot, "pushed", "p.txt", "p")
        second = bot.rest.pulls.create("acme", "infra", head="pushed", base="main", title="Pushed").parsed_data
        _git(bare, "update-ref", "refs/heads/main", pushed)  # what a `git push` of the merge would do
        assert bot.rest.pulls.get("acme", "infra", second.number).parsed_data.merged is True
        assert squashed.merged


class TestComments:
    def test_comment_lifecycle(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        _add_branch_commit(bot, "feature", "a.txt", "a")
        number = bot.rest.pulls.create("acme", "infra", head="feature", base="main", title="T").parsed_data.number
        ids = [bot.rest.issues.create_comment("acme", "infra", number, body=f"c{i}").parsed_data.id for i in range(3)]
        page = bot.rest.issues.list_comments("acme", "infra", number, per_page=2)
        assert [c["body"] for c in page.raw_response.json()] == ["c0", "c1"] and 'rel="next"' in page.headers["link"]
        edited = bot.rest.issues.update_comment("acme", "infra", ids[0], body="edited").parsed_data
        assert edited.body == "edited" and edited.user and edited.user.login == "chkmate[bot]"
        assert bot.rest.issues.delete_comment("acme", "infra", ids[1]).status_code == 204
        assert [c["body"] for c in bot.rest.issues.list_comments("acme", "infra", number).raw_response.json()] == [
            "edited",
            "c2",
        ]
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.issues.create_comment("acme", "infra", number, body="x" * 65537)
        status, body = _error(excinfo)
        assert status == 422
        assert body["errors"][0]["message"] == "Body is too long (maximum is 65536 characters)"
        with pytest.raises(RequestFailed):
            bot.rest.issues.create_comment("acme", "infra", 99, body="no such issue")


class TestChecksAndStatuses:
    def test_check_runs(self, bot: GitHub[Any], alice: GitHub[Any]) -> None:
        sha = bot.rest.git.get_ref("acme", "infra", "heads/main").parsed_data.object_.sha
        run = bot.rest.checks.create("acme", "infra", name="plan", head_sha=sha, status="in_progress").parsed_data
        done = bot.rest.checks.update(
            "acme", "infra", run.id, conclusion="success", output={"title": "Plan", "summary": "No changes"}
        ).parsed_data
        assert (done.status, done.conclusion, done.output.summary, done.app and done.app.slug) == (
            "completed",
            "success",
            "No changes",
            "chkmate",
        )
        listed = bot.rest.checks.list_for_ref("acme", "infra", "main").parsed_data
        assert listed.total_count == 1 and listed.check_runs[0].id == run.id
        with pytest.raises(RequestFailed) as excinfo:
            alice.rest.checks.create("acme", "infra", name="plan", head_sha=sha)
        assert _error(excinfo)[0] == 403

    def test_combined_status(self, bot: GitHub[Any]) -> None:
        sha = bot.rest.git.get_ref("acme", "infra", "heads/main").parsed_data.object_.sha
        assert bot.rest.repos.get_combined_status_for_ref("acme", "infra", "main").parsed_data.state == "pending"
        bot.rest.repos.create_commit_status("acme", "infra", sha, state="failure", context="ci")
        bot.rest.repos.create_commit_status("acme", "infra", sha, state="success", context="ci")
        combined = bot.rest.repos.get_combined_status_for_ref("acme", "infra", "main").parsed_data
        assert (combined.state, combined.total_count) == ("success", 1)


class TestConditionalRequests:
    def test_githubkit_revalidates_and_gets_304(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        first = bot.rest.repos.get("acme", "infra")
        second = bot.rest.repos.get("acme", "infra")
        assert second.parsed_data.full_name == first.parsed_data.full_name
        assert [r.status for r in gh.calls("GET", r"^/repos/acme/infra$")] == [200, 304]
        assert gh.not_modified_count == 1
        bot.rest.repos.update("acme", "infra", description="changed")
        assert bot.rest.repos.get("acme", "infra").parsed_data.description == "changed"
        assert gh.calls("GET", r"^/repos/acme/infra$")[-1].status == 200

    def test_304_costs_no_rate_limit(self, gh: github_api.GitHubDouble) -> None:
        headers = {"Authorization": f"token {PAT}"}
        with httpx.Client(base_url=gh.url, headers=headers) as client:
            first = client.get("/repos/acme/infra")
            etag, remaining = first.headers["etag"], int(first.headers["x-ratelimit-remaining"])
            assert etag.startswith('W/"') and "last-modified" in first.headers
            again = client.get("/repos/acme/infra", headers={"If-None-Match": etag})
            assert (again.status_code, again.content) == (304, b"")
            assert int(again.headers["x-ratelimit-remaining"]) == remaining
            assert int(client.get("/repos/acme/infra").headers["x-ratelimit-remaining"]) == remaining - 1


class TestLimitsAndFaults:
    def test_every_response_carries_github_headers(self, gh: github_api.GitHubDouble) -> None:
        response = httpx.get(f"{gh.url}/nope")
        assert response.status_code == 404
        for name in (
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-used",
            "x-ratelimit-reset",
            "x-ratelimit-resource",
            "x-github-request-id",
        ):
            assert name in response.headers
        assert response.headers["content-type"].startswith("application/json")

    def test_primary_rate_limit(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        bot.rest.repos.get("acme", "infra")
        gh.rate_limit(remaining=0, reset_in=120)
        with pytest.raises(PrimaryRateLimitExceeded) as excinfo:
            bot.rest.repos.get("acme", "infra")
        assert 100 < excinfo.value.retry_after.total_seconds() <= 120
        response = excinfo.value.response
        assert response.status_code == 403 and response.headers["x-ratelimit-remaining"] == "0"
        assert response.json()["message"] == "API rate limit exceeded for installation ID 42."
        assert bot.rest.rate_limit.get().parsed_data.resources.core.remaining == 0

    def test_limit_is_spent_per_call(self, gh: github_api.GitHubDouble) -> None:
        gh.rate_limit(remaining=2)
        statuses = [
            httpx.get(f"{gh.url}/user", headers={"Authorization": f"token {PAT}"}).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 403]

    @pytest.mark.parametrize("status", [403, 429])
    def test_secondary_rate_limit(
        self, bot: GitHub[Any], gh: github_api.GitHubDouble, status: Literal[403, 429]
    ) -> None:
        bot.rest.repos.get("acme", "infra")  # fetch the installation token first
        gh.secondary_rate_limit(retry_after=30, status=status)
        with pytest.raises(SecondaryRateLimitExceeded) as excinfo:
            bot.rest.repos.get("acme", "infra")
        assert excinfo.value.retry_after.total_seconds() == 30
        assert excinfo.value.response.status_code == status
        assert "secondary rate limit" in excinfo.value.response.json()["message"]
        assert bot.rest.repos.get("acme", "infra").status_code == 200

    def test_fail_next(self, bot: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        bot.rest.repos.get("acme", "infra")
        gh.fail_next("GET", r"^/repos/acme/infra$", 502, count=2)
        for _ in range(2):
            with pytest.raises(RequestFailed) as excinfo:
                bot.rest.repos.get("acme", "infra")
            assert _error(excinfo)[0] == 502
        gh.fail_next("*", r"/pulls", 404, body={"message": "Gone"})
        with pytest.raises(RequestFailed) as excinfo:
            bot.rest.pulls.list("acme", "infra")
        assert _error(excinfo) == (404, {"message": "Gone"})
        assert bot.rest.repos.get("acme", "infra").status_code == 200
        gh.reset_counters()
        assert gh.requests == []


class TestGitCredentials:
    def test_installation_and_personal_tokens(self, app: GitHub[Any], gh: github_api.GitHubDouble) -> None:
        token = app.rest.apps.create_installation_access_token(42).parsed_data.token
        assert gh.check_git_credentials("x-access-token", token, "acme/infra", write=True)
        assert not gh.check_git_credentials("x-access-token", token, "other/secret")
        assert not gh.check_git_credentials("x-access-token", "ghs_forged", "acme/infra")
        assert gh.check_git_credentials("alice", PAT, "acme/infra")
        assert not gh.check_git_credentials("alice", PAT, "acme/infra", write=True)
        gh.expire_tokens()
        assert not gh.check_git_credentials("x-access-token", token, "acme/infra")


class TestServer:
    async def test_works_from_async_tests(self, gh: github_api.GitHubDouble, private_pem: str) -> None:
        client = _client(gh, AppInstallationAuthStrategy(APP_ID, private_pem, 42))
        repo = await client.rest.repos.async_get("acme", "infra")
        assert repo.parsed_data.name == "infra"

    def test_shuts_down_its_thread(self, tmp_path: Path) -> None:
        with github_api.GitHubDouble(tmp_path) as double:
            assert httpx.get(f"{double.url}/rate_limit").status_code == 200
        assert not [t for t in threading.enumerate() if t.name == "github-api-double"]
        with pytest.raises(RuntimeError):
            _ = double.url
