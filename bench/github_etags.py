"""Benchmark: GitHub API calls per resync interval at steady state, with ETags against without.

100 GitHubConnections (token auth) x 10 GitHubRepositories each, reconciled by the operator's real
reconcile steps against the local GitHub API double. The first pass warms up (creates nothing: the
repositories exist); the next passes are the steady state. The baseline is the same code with each
client's HTTP cache off. Target (issue #3): at least 90 % of steady-state calls answered 304.

Run: ``.venv/bin/python -m bench.github_etags [--connections N] [--repositories N] [--passes N]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness import github_api

from chkmate import settings
from chkmate.api import connections as connection_models
from chkmate.api import repositories as repository_models
from chkmate.controllers import connections, indexing, memos, reconciling, repositories


class Secrets:
    """Stands in for the Kubernetes client: the benchmark measures GitHub traffic, not Secret reads."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        return self.tokens.get(name)


class Index(dict[indexing.Key, list[indexing.Summary]]):
    """A kopf index's read interface over a plain dict."""


def summary(name: str, spec: dict[str, Any], ready: str = "True") -> indexing.Summary:
    return indexing.Summary("bench", name, 1, spec, ready, "", "")  # type: ignore[arg-type]


def request(memo: memos.Memo, name: str, spec: Any, status: Any, indexes: dict[str, Any]) -> Any:
    return reconciling.Request(
        name=name, namespace="bench", generation=1, spec=spec, status=status, body=None,  # type: ignore[arg-type]
        memo=memo, logger=logging.getLogger("bench"), now=datetime.datetime.now(datetime.UTC), indexes=indexes,
    )


async def run(double: github_api.GitHubDouble, connections_count: int, repositories_count: int, passes: int,
              *, cache: bool) -> tuple[collections.Counter[int], float]:
    tokens = {f"conn-{c}": f"ghp_bench_token_{c:04d}_{'x' * 20}" for c in range(connections_count)}
    memo = memos.Memo(settings=settings.Settings(work_dir=Path(tempfile.mkdtemp())))
    memo._kube = Secrets(tokens)  # type: ignore[assignment]
    connection_index, repository_index = Index(), Index()
    indexes = {indexing.index_name(connections.RECONCILER.info): connection_index,
               indexing.index_name(repositories.RECONCILER.info): repository_index}
    specs = {}
    for c in range(connections_count):
        spec = {"apiUrl": double.url, "tokenSecretRef": {"name": f"conn-{c}", "key": "token"}}
        specs[f"conn-{c}"] = connection_models.GitHubConnectionSpec.model_validate(spec)
        connection_index[("bench", f"conn-{c}")] = [summary(f"conn-{c}", spec)]

    counts: collections.Counter[int] = collections.Counter()
    started = 0.0
    for turn in range(passes + 1):  # pass 0 warms the caches up
        if turn == 1:
            for client in memo.github.all().values():
                client.calls.clear()
            started = time.perf_counter()
        for c in range(connections_count):
            name = f"conn-{c}"
            await connections.reconcile_github_connection(
                request(memo, name, specs[name], connection_models.GitHubConnectionStatus(), indexes))
            for r in range(repositories_count):
                spec = repository_models.GitHubRepositorySpec.model_validate(
                    {"connectionRef": {"name": name}, "owner": f"user{c}", "name": f"repo{r}"})
                await repositories.reconcile_github_repository(
                    request(memo, f"{name}-{r}", spec, repository_models.GitHubRepositoryStatus(), indexes))
            if not cache and turn == 0:
                cached = memo.github.cached("bench", name)
                assert cached is not None
                cached.disable_http_cache()
    elapsed = time.perf_counter() - started
    for client in memo.github.all().values():
        counts.update(client.calls)
    return counts, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--repositories", type=int, default=10)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as root,
        github_api.GitHubDouble(Path(root), rate_limit_per_hour=10**6) as double,
    ):
        for c in range(args.connections):
            double.add_user(f"user{c}")
            double.add_personal_token(f"ghp_bench_token_{c:04d}_{'x' * 20}", f"user{c}")
            for r in range(args.repositories):
                double.create_repo(f"user{c}", f"repo{r}", auto_init=True)
        with_etags, t_etags = asyncio.run(run(double, args.connections, args.repositories, args.passes, cache=True))
        without, t_plain = asyncio.run(run(double, args.connections, args.repositories, args.passes, cache=False))

    def line(label: str, counts: collections.Counter[int], seconds: float) -> float:
        total = sum(counts.values()) / args.passes
        share = counts[304] / max(1, sum(counts.values()))
        per_pass = seconds / args.passes
        print(f"{label:<16} {total:8.0f} calls/interval  {share:6.1%} answered 304  {per_pass:6.2f} s/pass")
        return share

    print(f"{args.connections} connections x {args.repositories} repositories, {args.passes} steady-state passes")
    line("without ETags", without, t_plain)
    share = line("with ETags", with_etags, t_etags)
    counted = sum(with_etags.values()) - with_etags[304]
    counted_plain = sum(without.values())
    print(f"rate-limited calls with/without ETags: {counted / max(1, counted_plain):.3f}x")
    print(f"wall time with/without ETags (client-side cache cost): {t_etags / max(t_plain, 1e-9):.2f}x")
    print(f"target >= 90% answered 304: {'met' if share >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
