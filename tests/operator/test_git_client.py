"""The git client against a real git server over smart HTTP with token auth."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
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
async def mirrors(tmp_path: Path) -> AsyncIterator[git.Mirrors]:
    mirrors = git.Mirrors(tmp_path / "mirrors", timeout=30)
    yield mirrors
    await mirrors.close()


async def test_ls_remote_fetch_and_read(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    refs = await mirrors.ls_remote(remote)
    head = git_server.head("octo", "infra", "main")
    assert refs == {"refs/heads/main": head}
    await mirrors.fetch(remote, ["main"])
    assert await mirrors.head(remote, "main") == head
    assert await mirrors.read_tree(remote, head or "", "stacks/net") == {
        "main.tf": b"a = 1\n",
        "modules/x/main.tf": b"b = 2\n",
    }
    assert await mirrors.read_tree(remote, head or "", "stacks/net/main.tf") == {"main.tf": b"a = 1\n"}
    assert await mirrors.read_tree(remote, head or "", "nope") is None
    assert set(await mirrors.read_tree(remote, head or "") or {}) == {
        "README.md",
        "stacks/net/main.tf",
        "stacks/net/modules/x/main.tf",
    }


async def test_a_read_larger_than_the_blob_cache_is_whole(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache is bounded and shared: a read returns what it read, not what is left in the cache afterwards."""
    monkeypatch.setattr(git, "BLOB_CACHE_BYTES", 8)  # holds one of the files at most
    head = git_server.head("octo", "infra", "main") or ""
    await mirrors.fetch(remote)
    first = await mirrors.read_tree(remote, head)
    nested = {"net/main.tf": b"a = 1\n", "net/modules/x/main.tf": b"b = 2\n"}
    assert first == {"README.md": b"hi\n", **{f"stacks/{name}": data for name, data in nested.items()}}
    assert await mirrors.read_tree(remote, head, "stacks") == nested


async def test_a_second_read_costs_what_changed_and_equals_a_cold_read(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer, tmp_path: Path
) -> None:
    await mirrors.fetch(remote, ["main"])
    first = git_server.head("octo", "infra", "main") or ""
    assert await mirrors.read_tree(remote, first, "stacks/net") is not None
    assert (mirrors.listings_full, mirrors.blobs_read) == (1, 2)

    second = git_server.commit_files(
        "octo",
        "infra",
        "main",
        {"stacks/net/main.tf": "a = 2\n", "stacks/net/new.tf": "c = 3\n", "stacks/network/x.tf": "d = 4\n"},
        "change one, add one, delete one; touch a sibling folder",
        delete=["stacks/net/modules/x/main.tf"],
    )
    await mirrors.fetch(remote, ["main"])
    warm = await mirrors.read_tree(remote, second, "stacks/net")
    assert warm == {"main.tf": b"a = 2\n", "new.tf": b"c = 3\n"}  # stacks/network is not under stacks/net
    assert (mirrors.listings_full, mirrors.listings_patched, mirrors.blobs_read) == (1, 1, 4)
    cold = git.Mirrors(mirrors.root)
    assert await cold.read_tree(remote, second, "stacks/net") == warm
    await cold.close()
    assert await mirrors.read_tree(remote, first, "stacks/net") == {  # going back is a cache hit
        "main.tf": b"a = 1\n",
        "modules/x/main.tf": b"b = 2\n",
    }
    assert mirrors.blobs_read == 4

    third = git_server.commit_files(
        "octo", "infra", "main", {}, "remove the folder", delete=["stacks/net/main.tf", "stacks/net/new.tf"]
    )
    await mirrors.fetch(remote, ["main"])
    assert await mirrors.read_tree(remote, third, "stacks/net") is None
    assert await mirrors.read_tree(remote, second, "stacks/net/new.tf") == {"new.tf": b"c = 3\n"}
    assert await mirrors.read_tree(remote, third, "stacks/net/new.tf") is None
    assert await mirrors.read_tree(remote, third, "stacks/ne") is None  # a prefix is not a folder
    assert await mirrors.read_tree(remote, third, "stacks/*") is None  # paths are literal, never globs


async def test_commit_questions_are_answered_from_the_mirror(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    first = git_server.head("octo", "infra", "main") or ""
    assert not await mirrors.has_commit(remote, first)  # no mirror yet
    assert await mirrors.head(remote, "main") is None
    second = git_server.commit_files("octo", "infra", "main", {"a.tf": "x = 1\n"}, "second\n\nbody")
    await mirrors.fetch(remote, ["main"])
    assert await mirrors.has_commit(remote, first) and await mirrors.has_commit(remote, second)
    assert not await mirrors.has_commit(remote, "f" * 40)
    assert not await mirrors.has_commit(remote, "--help")
    assert await mirrors.head(remote, "main") == second
    assert await mirrors.head(remote, "nope") is None
    assert (await mirrors.commit_message(remote, second)).rstrip("\n") == "second\n\nbody"
    assert await mirrors.is_ancestor(remote, first, second)
    assert not await mirrors.is_ancestor(remote, second, first)
    assert not await mirrors.is_ancestor(remote, "f" * 40, second)


async def test_a_dead_object_reader_is_replaced(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    await mirrors.fetch(remote, ["main"])
    head = git_server.head("octo", "infra", "main") or ""
    assert await mirrors.has_commit(remote, head)
    reader = mirrors._readers[mirrors.path(remote)]
    assert reader._process is not None
    reader._process.kill()
    await reader._process.wait()
    assert await mirrors.read_tree(remote, head, "stacks/net/main.tf") == {"main.tf": b"a = 1\n"}
    assert reader._process is not None and reader._process.returncode is None  # a new one
    await mirrors.close()
    assert reader._process is None


async def read_two_mirrors(
    mirrors: git.Mirrors, remote: git.Remote, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> tuple[git.Remote, str, str, git.ObjectReader]:
    """``remote`` and a second repository fetched, then read in that order: the second remote, both heads, and the
    reader the first read started."""
    github.create_repo("octo", "other")
    other_head = git_server.commit_files("octo", "other", "main", {"b.tf": "b = 1\n"}, "init")
    other = git.Remote(git_server.url("octo", "other"), token)
    for each in (remote, other):
        await mirrors.fetch(each, ["main"])
    head = git_server.head("octo", "infra", "main") or ""
    assert await mirrors.has_commit(remote, head)
    first = mirrors._readers[mirrors.path(remote)]
    assert await mirrors.has_commit(other, other_head)
    return other, head, other_head, first


async def test_only_the_most_recently_read_mirrors_keep_a_reader(
    mirrors: git.Mirrors,
    remote: git.Remote,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(git, "READERS", 1)
    other, head, _, first = await read_two_mirrors(mirrors, remote, github, git_server)
    assert list(mirrors._readers) == [mirrors.path(other)] and first._process is None  # stopped
    assert await mirrors.read_tree(remote, head, "stacks/net/main.tf") == {"main.tf": b"a = 1\n"}  # a new one


async def test_a_reader_unread_for_a_while_stops(
    mirrors: git.Mirrors,
    remote: git.Remote,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other, _, other_head, first = await read_two_mirrors(mirrors, remote, github, git_server)
    assert len(mirrors._readers) == 2 and first._process is not None  # both kept: far below READERS, recently read
    monkeypatch.setattr(git, "READER_IDLE", 0.0)
    assert await mirrors.read_tree(other, other_head) == {"b.tf": b"b = 1\n"}
    assert list(mirrors._readers) == [mirrors.path(other)] and first._process is None  # the idle one stopped


async def test_commit_and_push_change_only_what_is_asked(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    await mirrors.fetch(remote, ["main"])
    parent = await mirrors.head(remote, "main")
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
    assert (await mirrors.commit_message(remote, commit)).startswith("Update net")


async def test_the_token_goes_with_the_first_request(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    """No 401 round trip before git asks its credential helper: against GitHub that is one network round trip
    more for every fetch, ls-remote and push."""
    await mirrors.ls_remote(remote)
    await mirrors.fetch(remote, ["main"])
    parent = await mirrors.head(remote, "main")
    change = git.Change(write={"y.tf": b""})
    commit = await mirrors.commit(remote, parent=parent, change=change, message="m", author=AUTHOR)
    await mirrors.push(remote, commit, "main")
    assert git_server.head("octo", "infra", "main") == commit
    assert git_server.traffic.refused == 0


async def test_push_to_a_moved_branch_is_rejected_not_forced(
    mirrors: git.Mirrors, remote: git.Remote, git_server: gitserver.GitServer
) -> None:
    await mirrors.fetch(remote, ["main"])
    parent = await mirrors.head(remote, "main")
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
    assert base64.b64encode(f"x-access-token:{secret}".encode()).decode() not in str(e.value)
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
