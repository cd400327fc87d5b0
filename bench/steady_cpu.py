"""Benchmark: the operator's CPU at steady state with N Environments, against an idle operator.

Two operators, one after the other, each alone in a process of its own (as in a cluster) against the strict
emulator in another process, with git over smart HTTP and the GitHub double in this one:

1. idle: the connection and its repositories, no Environment;
2. loaded: the same plus ``--environments`` Environments (builtin engine, drift detection every hour, the
   default) spread over the repositories, once their first Plans are done.

Each is then watched for ``--window`` seconds with nothing happening but what a steady state does: the
per-repository pollers (one ``ls-remote`` per repository per minute), the periodic resyncs, the drift daemons
(each sleeping until its slot in the hour) and the checks that fall due. Prints the CPU seconds each used, as
a share of one core, and the loaded one as a ratio against the idle one.

Run: ``.venv/bin/python -m bench.steady_cpu [--environments 500] [--repositories 50] [--window 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import kopf
from tests.harness import github_api, gitserver

from bench import webhook_latency as wl
from chkmate.clients import kube as kube_client


async def measure(
    targets: Sequence[wl.Target], repositories: Sequence[str], root: Path, window: float, settle_timeout: float
) -> tuple[float, float]:
    """CPU seconds the operator used over ``window`` at steady state, and the seconds it took to get there."""
    with github_api.GitHubDouble(root / "github") as github:
        github.add_user("octo")
        github.add_org("acme", owners=("octo",))
        github.add_personal_token(wl.TOKEN, "octo")
        git_server = gitserver.GitServer(github.root, github.check_git_credentials)
        with git_server:
            github.web_url = f"http://127.0.0.1:{git_server.port}"
            wl.prepare_git(github, git_server, targets, repositories)
            async with (
                wl.emulator_process() as emulator,
                wl.operator_process(emulator.url, wl.free_port(), root / "work") as pid,
                kube_client.KubeClient(kopf.ConnectionInfo(server=emulator.url)) as client,
                aiohttp.ClientSession(),
            ):
                started = time.monotonic()
                await wl.create_objects(client, github, targets, repositories=repositories)
                await wl.settled(client, targets, settle_timeout)
                settle = time.monotonic() - started
                before = wl.cpu_seconds(pid)
                await asyncio.sleep(window)
                return wl.cpu_seconds(pid) - before, settle


async def run(args: argparse.Namespace) -> None:
    repositories = [f"infra-{r}" for r in range(args.repositories)]
    targets = [wl.Target(f"env-{i}", repositories[i % args.repositories], f"env-{i}") for i in range(args.environments)]
    with tempfile.TemporaryDirectory() as idle_root:
        idle, _ = await measure([], repositories, Path(idle_root), args.window, args.settle_timeout)
    with tempfile.TemporaryDirectory() as loaded_root:
        loaded, settle = await measure(targets, repositories, Path(loaded_root), args.window, args.settle_timeout)
    print(f"{args.repositories} repositories; steady state watched for {args.window:g} s")
    print(f"idle operator (no Environment):     {idle:6.2f} CPU s = {idle / args.window:.3f} of a core")
    print(
        f"{args.environments} Environments (settled in {settle:.0f} s): {loaded:6.2f} CPU s = "
        f"{loaded / args.window:.3f} of a core"
    )
    print(
        f"ratio loaded/idle: {loaded / max(idle, 1e-9):.2f}x; "
        f"{(loaded - idle) / max(1, args.environments) / args.window * 1000:.3f} ms of CPU per Environment per second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=500)
    parser.add_argument("--repositories", type=int, default=50)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of steady state to measure")
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
