"""Tests of the git smart-HTTP test server: real git CLI clients clone, fetch and push against it."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import random
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.gitserver import GitServer, Push, RefUpdate, Service

TOKEN = "ghs_good_token_0123456789"
REPO = "acme/infra"
CREDENTIAL_HELPER = "credential.helper=!f() { echo username=x-access-token; echo password=$GIT_TOKEN; }; f"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    server = GitServer.with_tokens(tmp_path / "served", {TOKEN})
    server.create_repo("acme", "infra", files={"main.tf": "# root\n", "modules/net/main.tf": "# net\n"})
    with server:
        yield server


def client_env(home: Path, token: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Client",
        "GIT_AUTHOR_EMAIL": "client@example.invalid",
        "GIT_COMMITTER_NAME": "Client",
        "GIT_COMMITTER_EMAIL": "client@example.invalid",
    }
    return env | ({"GIT_TOKEN": token} if token is not None else {})


def git(
    tmp_path: Path, *args: str, cwd: Path | None = None, token: str | None = TOKEN, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a git client the way the operator does: the token comes from a credential helper, never the URL."""
    helper = ["-c", CREDENTIAL_HELPER] if token is not None else []
    result = subprocess.run(
        ["git", *helper, *args],
        cwd=cwd or tmp_path,
        env=client_env(tmp_path, token),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def clone(tmp_path: Path, server: GitServer, into: str = "wt") -> Path:
    git(tmp_path, "clone", "--quiet", server.url("acme", "infra"), into)
    return tmp_path / into


def commit_in(tmp_path: Path, worktree: Path, files: dict[str, str], message: str = "change") -> str:
    for path, content in files.items():
        (worktree / path).parent.mkdir(parents=True, exist_ok=True)
        (worktree / path).write_text(content)
    git(tmp_path, "add", "--all", cwd=worktree)
    git(tmp_path, "commit", "--quiet", "-m", message, cwd=worktree)
    return git(tmp_path, "rev-parse", "HEAD", cwd=worktree).stdout.strip()


# Auth


# First in the file: under pytest-asyncio 1.5, looptime 0.9 leaves an unclosed event loop behind each sync
# test that runs before an async test (its pytest_pyfunc_call hook calls policy.get_event_loop()).
@pytest.mark.looptime
async def test_serves_git_clients_of_an_async_test_on_virtual_time(tmp_path: Path, server: GitServer) -> None:
    process = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        CREDENTIAL_HELPER,
        "ls-remote",
        server.url("acme", "infra"),
        env=client_env(tmp_path, TOKEN),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    assert f"{server.head('acme', 'infra', 'main')}\trefs/heads/main" in stdout.decode()
    assert asyncio.get_running_loop().time() == 0  # virtual time did not move


def test_clone_with_a_good_token_gets_the_files(tmp_path: Path, server: GitServer) -> None:
    worktree = clone(tmp_path, server)
    assert (worktree / "modules/net/main.tf").read_text() == "# net\n"
    assert git(tmp_path, "rev-parse", "HEAD", cwd=worktree).stdout.strip() == server.head("acme", "infra", "main")
    assert TOKEN not in (worktree / ".git/config").read_text()


def test_clone_with_a_wrong_token_fails_without_echoing_it(tmp_path: Path, server: GitServer) -> None:
    wrong = "ghs_wrong_token_9876543210"
    result = git(tmp_path, "clone", server.url("acme", "infra"), "wt", token=wrong, check=False)
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert server.traffic.count() == 0


def test_no_credentials_fail_fast_with_an_auth_error(tmp_path: Path, server: GitServer) -> None:
    started = time.monotonic()
    result = git(tmp_path, "ls-remote", server.url("acme", "infra"), token=None, check=False)
    assert result.returncode != 0
    assert "could not read Username" in result.stderr
    assert time.monotonic() - started < 5


def test_missing_credentials_get_a_basic_challenge(server: GitServer) -> None:
    url = f"{server.url('acme', 'infra')}/info/refs?service=git-upload-pack"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)
    with caught.value:
        assert caught.value.code == 401
        assert caught.value.headers["WWW-Authenticate"] == 'Basic realm="GitHub"'


def test_an_unknown_repository_is_404(tmp_path: Path, server: GitServer) -> None:
    result = git(tmp_path, "ls-remote", server.url("acme", "missing"), check=False)
    assert result.returncode != 0
    assert "not found" in result.stderr
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url('acme', 'missing')}/info/refs?service=git-upload-pack",
        headers={"Authorization": f"Basic {basic}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    with caught.value:
        assert caught.value.code == 404


def test_authorize_receives_username_token_and_owner_slash_name(tmp_path: Path) -> None:
    calls: list[tuple[str, str, str]] = []

    def authorize(username: str, password: str, repo: str) -> bool:
        calls.append((username, password, repo))
        return repo == "acme/infra"

    server = GitServer(tmp_path / "served", authorize)
    server.create_repo("acme", "infra", files={"a.txt": "a"})
    server.create_repo("acme", "other", files={"a.txt": "a"})
    with server:
        git(tmp_path, "ls-remote", server.url("acme", "infra"))
        denied = git(tmp_path, "ls-remote", server.url("acme", "other"), check=False)
    assert "Authentication failed" in denied.stderr
    assert ("x-access-token", TOKEN, "acme/infra") in calls
    assert ("x-access-token", TOKEN, "acme/other") in calls


def test_urls_without_the_git_suffix_work(tmp_path: Path, server: GitServer) -> None:
    result = git(tmp_path, "ls-remote", server.url("acme", "infra").removesuffix(".git"))
    assert f"{server.head('acme', 'infra', 'main')}\trefs/heads/main" in result.stdout


# Pushes


def test_a_pushed_commit_is_the_new_head_and_is_recorded(tmp_path: Path, server: GitServer) -> None:
    worktree = clone(tmp_path, server)
    old = server.head("acme", "infra", "main")
    new = commit_in(tmp_path, worktree, {"modules/dns/main.tf": "# dns\n"})
    git(tmp_path, "push", "--quiet", "origin", "main", cwd=worktree)
    assert server.head("acme", "infra", "main") == new
    assert server.read_file("acme", "infra", "main", "modules/dns/main.tf") == b"# dns\n"
    assert server.traffic.pushes == [Push(REPO, (RefUpdate("refs/heads/main", str(old), new),))]
    assert server.traffic.count(REPO, Service.RECEIVE_PACK) == 1


def test_a_non_fast_forward_push_is_rejected(tmp_path: Path, server: GitServer) -> None:
    worktree = clone(tmp_path, server)
    moved = server.commit_files("acme", "infra", "main", {"main.tf": "# moved on\n"}, "Server-side change")
    commit_in(tmp_path, worktree, {"main.tf": "# stale\n"})
    result = git(tmp_path, "push", "origin", "main", cwd=worktree, check=False)
    assert result.returncode != 0
    assert "[rejected]" in result.stderr
    assert server.head("acme", "infra", "main") == moved
    assert server.traffic.pushes == []


def test_a_push_of_200_files_streams_a_chunked_body(tmp_path: Path, server: GitServer) -> None:
    worktree = clone(tmp_path, server)
    rng = random.Random(0)
    files = {f"modules/m{i % 10}/file{i}.tf": rng.randbytes(1024).hex() for i in range(200)}
    new = commit_in(tmp_path, worktree, files)
    # Bodies over http.postBuffer (at least 64 KiB) are sent with chunked transfer encoding.
    push = subprocess.run(
        ["git", "-c", CREDENTIAL_HELPER, "-c", "http.postBuffer=65536", "push", "origin", "main"],
        cwd=worktree,
        env=client_env(tmp_path, TOKEN) | {"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert push.returncode == 0, push.stderr[-2000:]
    assert "Transfer-Encoding: chunked" in push.stderr
    assert server.head("acme", "infra", "main") == new
    assert len(server.list_files("acme", "infra", "main")) == 202


def test_concurrent_pushes_one_wins_and_one_is_rejected(tmp_path: Path, server: GitServer) -> None:
    worktrees = [clone(tmp_path, server, f"wt{i}") for i in range(2)]
    commits = [commit_in(tmp_path, wt, {f"client{i}.txt": f"{i}\n"}) for i, wt in enumerate(worktrees)]
    pushes = [
        subprocess.Popen(
            ["git", "-c", CREDENTIAL_HELPER, "push", "origin", "main"],
            cwd=wt,
            env=client_env(tmp_path, TOKEN),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for wt in worktrees
    ]
    stderrs = [p.communicate(timeout=20)[1] for p in pushes]
    assert sorted(p.returncode == 0 for p in pushes) == [False, True]
    loser = next(stderr for p, stderr in zip(pushes, stderrs, strict=True) if p.returncode != 0)
    assert "rejected" in loser
    assert server.head("acme", "infra", "main") in commits
    assert len(server.traffic.pushes) == 1


# Traffic counting


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_ls_remote_is_counted_apart_from_fetches(tmp_path: Path, server: GitServer, protocol: str) -> None:
    worktree = clone(tmp_path, server)
    server.traffic.reset()
    git(tmp_path, "-c", f"protocol.version={protocol}", "ls-remote", "origin", cwd=worktree)
    assert server.traffic.count(REPO, Service.ADVERTISE_UPLOAD) == 1
    assert server.traffic.count(REPO, Service.LS_REFS) == (1 if protocol == "2" else 0)
    assert server.traffic.count(REPO, Service.UPLOAD_PACK) == 0

    server.commit_files("acme", "infra", "main", {"new.txt": "new"}, "New")
    git(tmp_path, "-c", f"protocol.version={protocol}", "fetch", "--quiet", "origin", cwd=worktree)
    assert server.traffic.count(REPO, Service.ADVERTISE_UPLOAD) == 2
    assert server.traffic.count(REPO, Service.UPLOAD_PACK) == 1
    assert server.traffic.count(service=Service.RECEIVE_PACK) == 0


def test_a_large_fetch_request_is_gzipped_and_served(tmp_path: Path, server: GitServer) -> None:
    for i in range(30):  # 30 distinct tips make a >1 KiB list of wants, which git gzips
        server.commit_files("acme", "infra", f"branch-{i}", {"n.txt": str(i)}, f"Branch {i}")
    clone_ = subprocess.run(
        ["git", "-c", CREDENTIAL_HELPER, "clone", "--mirror", server.url("acme", "infra"), "mirror"],
        cwd=tmp_path,
        env=client_env(tmp_path, TOKEN) | {"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert clone_.returncode == 0, clone_.stderr[-2000:]
    assert "Content-Encoding: gzip" in clone_.stderr
    refs = git(tmp_path, "for-each-ref", "--format=%(refname)", cwd=tmp_path / "mirror").stdout.split()
    assert len(refs) == 31


def test_reset_clears_counts_and_pushes(tmp_path: Path, server: GitServer) -> None:
    worktree = clone(tmp_path, server)
    commit_in(tmp_path, worktree, {"x.txt": "x"})
    git(tmp_path, "push", "--quiet", "origin", "main", cwd=worktree)
    assert server.traffic.counts()
    server.traffic.reset()
    assert server.traffic.counts() == {}
    assert server.traffic.pushes == []


# Repository helpers


def test_repository_helpers_build_deterministic_commits_with_plumbing(tmp_path: Path) -> None:
    servers = [GitServer.with_tokens(tmp_path / f"root{i}", set()) for i in range(2)]
    for server in servers:
        path = server.create_repo("o", "r", default_branch="trunk", files={"a/b/c.txt": "c", "top.bin": b"\0\1"})
        assert path == server.root / "o" / "r.git"
    first, second = (server.head("o", "r", "trunk") for server in servers)
    assert first is not None
    assert first == second


def test_commit_files_writes_nested_paths_and_deletes(tmp_path: Path) -> None:
    server = GitServer.with_tokens(tmp_path, set())
    server.create_repo("o", "r", files={"keep.txt": "k", "gone/old.txt": "o"})
    base = server.head("o", "r", "main")
    new = server.commit_files("o", "r", "main", {"modules/x/main.tf": "x"}, "Edit", delete=["gone/old.txt"])
    assert server.head("o", "r", "main") == new != base
    assert server.list_files("o", "r", "main") == {"keep.txt": b"k", "modules/x/main.tf": b"x"}
    assert server.read_file("o", "r", str(base), "gone/old.txt") == b"o"
    assert server.read_file("o", "r", "main", "gone/old.txt") is None
    assert server.read_file("o", "r", "main", "modules") is None


def test_commit_files_with_an_explicit_parent_rewrites_the_branch(tmp_path: Path) -> None:
    server = GitServer.with_tokens(tmp_path, set())
    server.create_repo("o", "r", files={"a.txt": "1"})
    base = server.head("o", "r", "main")
    server.commit_files("o", "r", "main", {"a.txt": "2"}, "Second")
    forked = server.commit_files("o", "r", "main", {"a.txt": "3"}, "Forked", parent=base)
    assert server.head("o", "r", "main") == forked
    assert server.read_file("o", "r", "main", "a.txt") == b"3"


def test_empty_and_deleted_repositories(tmp_path: Path) -> None:
    server = GitServer.with_tokens(tmp_path, set())
    server.create_repo("o", "empty")
    assert server.head("o", "empty", "main") is None
    with pytest.raises(LookupError):
        server.list_files("o", "empty", "main")
    with pytest.raises(FileExistsError):
        server.create_repo("o", "empty")
    server.delete_repo("o", "empty")
    assert not (tmp_path / "o" / "empty.git").exists()
    with pytest.raises(ValueError, match="invalid"):
        server.create_repo("o", "..")


# Lifecycle


def test_stop_drops_idle_connections_and_joins_threads(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    server = GitServer.with_tokens(tmp_path, {TOKEN})
    server.create_repo("o", "r", files={"a.txt": "a"})
    server.start()
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    idle.request("GET", "/o/r.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Basic {basic}"})
    with idle.getresponse() as response:
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert b"refs/heads/main" in response.read()
    started = time.monotonic()
    server.stop()
    idle.close()
    assert time.monotonic() - started < 2
    assert threading.active_count() == threads_before
    with pytest.raises(RuntimeError, match="not running"):
        server.url("o", "r")
