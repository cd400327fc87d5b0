"""The git client against a real git server over smart HTTP with token auth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chkmate.clients import git
from tests.fixtures import TOKEN
from tests.harness import github_api, gitserver

AUTHOR = git.Author("chkmate", "chkmate@example.com")


async def token() -> str:
    return TOKEN


@pytest.fixture
def remote(github: github_api.GitHubDouble, git_server: gitserver.GitServer) -> git.Remote:
    github.create_repo("octo", "infra")
    git_server.commit_files(
        "octo",
        "infra",
        "main",
        {"README.md": "hi\n", "stacks/net/main.tf": "a = 1\n", "stacks/net/modules/x/main.tf": "b = 2\n"},
        "init",
    )
    return git.Remote(git_server.url("octo", "infra"), token)


@pytest.fixture
def mirrors(tmp_path: Path) -> git.Mirrors:
    return git.Mirrors(tmp_path / "mirrors", timeout=30)


async def test_ls_remote_fetch_and_read(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    refs = await mirrors.ls_remote(remote)
    head = git_server.head("octo", "infra", "main")
    assert refs == {"refs/heads/main": head}
    await mirrors.fetch(remote, ["main"])
    assert mirrors.head(remote, "main") == head
    assert mirrors.read_tree(remote, head or "", "stacks/net") == {
        "main.tf": b"a = 1\n",
        "modules/x/main.tf": b"b = 2\n",
    }
    assert mirrors.read_tree(remote, head or "", "stacks/net/main.tf") == {"main.tf": b"a = 1\n"}
    assert mirrors.read_tree(remote, head or "", "nope") is None
    assert set(mirrors.read_tree(remote, head or "") or {}) == {
        "README.md",
        "stacks/net/main.tf",
        "stacks/net/modules/x/main.tf",
    }


async def test_commit_and_push_change_only_what_is_asked(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    await mirrors.fetch(remote, ["main"])
    parent = mirrors.head(remote, "main")
    change = git.Change(
        write={"stacks/net/main.tf": b"a = 2\n", "stacks/net/new.tf": b"c = 3\n"},
        delete=frozenset({"stacks/net/modules/x/main.tf"}),
    )
    commit = await mirrors.commit(
        remote, parent=parent, change=change, message="Update net\n\nTrailer: x\n", author=AUTHOR
    )
    await mirrors.push(remote, commit, "main")
    assert git_server.head("octo", "infra", "main") == commit
    assert git_server.list_files("octo", "infra", "main") == {
        "README.md": b"hi\n",
        "stacks/net/main.tf": b"a = 2\n",
        "stacks/net/new.tf": b"c = 3\n",
    }
    assert mirrors.commit_message(remote, commit).startswith("Update net")


async def test_push_to_a_moved_branch_is_rejected_not_forced(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    await mirrors.fetch(remote, ["main"])
    parent = mirrors.head(remote, "main")
    theirs = git_server.commit_files("octo", "infra", "main", {"other.tf": "z = 1\n"}, "someone else")
    ours = await mirrors.commit(
        remote, parent=parent, change=git.Change(write={"x.tf": b""}), message="m", author=AUTHOR
    )
    with pytest.raises(git.NonFastForward):
        await mirrors.push(remote, ours, "main")
    assert git_server.head("octo", "infra", "main") == theirs


async def test_root_commit_into_an_empty_repository(
    mirrors: git.Mirrors, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    github.create_repo("octo", "empty")
    remote = git.Remote(git_server.url("octo", "empty"), token)
    assert await mirrors.ls_remote(remote) == {}
    commit = await mirrors.commit(
        remote, parent=None, change=git.Change(write={"README.md": b"# x\n"}), message="Initial", author=AUTHOR
    )
    await mirrors.push(remote, commit, "main")
    assert git_server.list_files("octo", "empty", "main") == {"README.md": b"# x\n"}


async def test_bad_token_fails_clearly_without_leaking_it(mirrors: git.Mirrors, remote: git.Remote) -> None:
    secret = "ghs_wrong_secret_value_42"

    async def wrong() -> str:
        return secret

    with pytest.raises(git.AuthenticationFailed) as e:
        await mirrors.ls_remote(git.Remote(remote.url, wrong))
    assert secret not in str(e.value)
    assert not e.value.retryable


async def test_missing_repository(mirrors: git.Mirrors, git_server: gitserver.GitServer) -> None:
    with pytest.raises(git.RepositoryNotFound):
        await mirrors.ls_remote(git.Remote(git_server.url("octo", "nothing"), token))


async def test_token_never_lands_in_the_mirror_config(mirrors: git.Mirrors, remote: git.Remote) -> None:
    await mirrors.fetch(remote)
    config = (mirrors.path(remote) / "config").read_text()
    assert TOKEN not in config


async def test_operations_are_counted_and_concurrent_fetches_are_safe(mirrors: git.Mirrors, remote: git.Remote) -> None:
    async def locked_fetch() -> None:
        async with mirrors.lock(remote):
            await mirrors.fetch(remote)

    await asyncio.gather(*(locked_fetch() for _ in range(4)))
    await mirrors.ls_remote(remote)
    assert mirrors.operations == {"fetch": 4, "ls-remote": 1}
