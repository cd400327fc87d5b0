"""Benchmark: git traffic of link polling at steady state, and the cost of large pushes and small pulls.

1. Polling: N links over M repositories (default 1,000 over 100) at steady state. The operator's poller does
   one ``ls-remote`` per repository per interval and marks only the links whose branch moved; the baseline is
   the naive loop: every link refreshes its own branch. Counted on the real git server (smart HTTP).
2. Push: a 500-file template committed (no checkout) and pushed as a first commit; target under 2 s.
3. Pull: after one file changed among 500, the refresh fetches only the new commit's objects, and reading
   the tree is a ``diff-tree`` against the last listing plus one blob (the others are cached by sha),
   against reading every file (``ls-tree`` and 500 blobs): blobs read and time, as ratios.

Run: ``.venv/bin/python -m bench.sync_polling [--links N] [--repositories M] [--files F]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from tests.harness import gitserver

from chkmate.api import kinds
from chkmate.clients import git
from chkmate.controllers import indexing, polling

TOKEN = "bench-token"


async def token() -> str:
    return TOKEN


def summaries(links: int, repositories: int, heads: dict[str, str]) -> dict[str, list[indexing.Summary]]:
    """Index summaries of links already synced with their branch head (the steady state)."""
    by_repo: dict[str, list[indexing.Summary]] = {}
    for i in range(links):
        repo = f"repo{i % repositories}"
        spec = {"repositoryRef": {"name": repo}, "branch": "main", "interval": "1m", "path": f"stacks/s{i}"}
        synced = f"main@sha1:{heads[repo]}"
        by_repo.setdefault(repo, []).append(indexing.Summary(
            "bench", f"link{i}", 1, spec, "True", "", "", annotations={}, status={"lastSyncedRevision": synced}))
    return by_repo


class Index(dict[indexing.Key, list[indexing.Summary]]):
    pass


async def polling_traffic(server: gitserver.GitServer, links: int, repositories: int, root: Path) -> tuple[int, int]:
    heads = {f"repo{r}": server.head("acme", f"repo{r}", "main") or "" for r in range(repositories)}
    by_repository = Index()  # as the operator's index of links by repository holds them
    for repo, repo_links in summaries(links, repositories, heads).items():
        by_repository[("bench", repo)] = repo_links
    indexes = {
        indexing.reference_index_name(kinds.TEMPLATE_REPO_LINK, "repository"): by_repository,
        indexing.reference_index_name(kinds.ENVIRONMENT, "repository"): Index(),
        indexing.reference_index_name(kinds.ENVIRONMENT, "link"): Index(),
    }
    mirrors = git.Mirrors(root / "poller")
    server.traffic.reset()
    marked = 0
    for r in range(repositories):
        refs = await mirrors.ls_remote(git.Remote(server.url("acme", f"repo{r}"), token))
        marked += len(polling.moved(polling.dependents(indexes, "bench", f"repo{r}", "main"), refs))
    assert marked == 0, "at steady state nothing moved"
    return count(server)


async def naive_traffic(server: gitserver.GitServer, links: int, repositories: int, root: Path) -> tuple[int, int]:
    mirrors = git.Mirrors(root / "naive")
    for r in range(repositories):  # warm the mirrors: the steady state has every commit already
        await mirrors.fetch(git.Remote(server.url("acme", f"repo{r}"), token))
    server.traffic.reset()
    for i in range(links):
        await mirrors.refresh(git.Remote(server.url("acme", f"repo{i % repositories}"), token), "main")
    return count(server)


def count(server: gitserver.GitServer) -> tuple[int, int]:
    return (server.traffic.count(service=gitserver.Service.ADVERTISE_UPLOAD),
            server.traffic.count(service=gitserver.Service.UPLOAD_PACK))


@dataclasses.dataclass
class PullWork:
    seconds: float
    blobs: int  # blobs read from the mirror
    listing: str  # how the file list was found: "diff-tree" (against the last read) or "ls-tree" (everything)


async def push_and_pull(server: gitserver.GitServer, files: int, root: Path) -> tuple[float, float, PullWork, PullWork]:
    server.create_repo("acme", "big")
    remote = git.Remote(server.url("acme", "big"), token)
    mirrors = git.Mirrors(root / "big")
    content = {f"stacks/big/m{i:03d}/main.tf": f'resource "terraform_data" "r{i}" {{\n  input = "{i}"\n}}\n'.encode()
               for i in range(files)}
    started = time.perf_counter()
    commit = await mirrors.commit(remote, parent=None, change=git.Change(write=content), message="big",
                                  author=git.Author("bench", "bench@example.com"))
    await mirrors.push(remote, commit, "main")
    push_seconds = time.perf_counter() - started
    await mirrors.read_tree(remote, commit, "stacks/big")  # the last sync read it (the steady state before the change)

    changed = server.commit_files("acme", "big", "main", {"stacks/big/m007/main.tf": "# changed\n"}, "one file")
    started = time.perf_counter()
    await mirrors.refresh(remote, "main")  # one ls-remote, one fetch of the new commit's few objects
    refresh = time.perf_counter() - started
    warm = await timed_read(mirrors, remote, changed)  # diff-tree against the last listing, one new blob
    cold_reader = git.Mirrors(root / "big")  # the same mirror on disk, nothing read yet
    cold = await timed_read(cold_reader, remote, changed)
    await mirrors.close()
    await cold_reader.close()
    return push_seconds, refresh, warm, cold


async def timed_read(mirrors: git.Mirrors, remote: git.Remote, commit: str) -> PullWork:
    blobs, patched = mirrors.blobs_read, mirrors.listings_patched
    started = time.perf_counter()
    files = await mirrors.read_tree(remote, commit, "stacks/big")
    seconds = time.perf_counter() - started
    assert files is not None and b"# changed\n" in files.values()
    return PullWork(seconds, mirrors.blobs_read - blobs,
                    "diff-tree" if mirrors.listings_patched > patched else "ls-tree")


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = gitserver.GitServer.with_tokens(root / "git", {TOKEN})
        for r in range(args.repositories):
            server.create_repo("acme", f"repo{r}", files={"README.md": "x\n"})
        with server:
            ours = await polling_traffic(server, args.links, args.repositories, root)
            naive = await naive_traffic(server, args.links, args.repositories, root)
            push, refresh, warm, cold = await push_and_pull(server, args.files, root)
    print(f"{args.links} links over {args.repositories} repositories, one polling interval at steady state:")
    print(f"  per-repository poller: {ours[0]:5d} ls-remote  {ours[1]:3d} fetches")
    print(f"  naive per-link loop:   {naive[0]:5d} ls-remote  {naive[1]:3d} fetches")
    print(f"  ls-remote ratio (poller/naive): {ours[0] / max(1, naive[0]):.3f}x "
          f"(target: exactly {args.repositories} ls-remote and 0 fetches: "
          f"{'met' if ours == (args.repositories, 0) else 'NOT met'})")
    print(f"push of a {args.files}-file template: {push:.2f} s (target < 2 s: {'met' if push < 2 else 'NOT met'})")
    print(f"pull after 1 changed file of {args.files}: refresh (ls-remote + fetch of the change) {refresh:.3f} s, "
          f"then reading the tree:")
    print(f"  after the change ({warm.listing}): {warm.blobs:4d} blobs read, {warm.seconds * 1000:6.1f} ms")
    print(f"  reading everything ({cold.listing}): {cold.blobs:4d} blobs read, {cold.seconds * 1000:6.1f} ms")
    print(f"  ratio (change/everything): blobs {warm.blobs / max(1, cold.blobs):.3f}x, "
          f"time {warm.seconds / max(cold.seconds, 1e-9):.2f}x (the rest is one git process start)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--files", type=int, default=500)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
