"""Benchmark: a plan run through the operator against a bare ``terraform plan`` of the same code.

The operator path: a new commit, marked on the Environment as a push delivery or a poll would → a Plan object →
the commit fetched into the git mirror → terraform init/plan/show -json in a workspace built from it → outputs
stored in Secrets and a ConfigMap → the Plan's status says Planned (seen in a watch). Everything is real except
the API server (the strict emulator) and GitHub's REST API (the local double); the operator runs in a process of
its own, as in a cluster; git runs over smart HTTP. Baselines, in the same run: ``terraform init`` + ``terraform
plan -out`` by hand in a folder holding the same files, and the same plus ``show -json`` (the engine's own floor
for a plan whose changes can be read), and a bare ``git fetch`` of each new commit from the same git server (what
getting the code takes: the operator plans a commit it has to fetch, the bare runs read files already on disk).
Target (issue #5): at most 1.2x the first.

Run: ``.venv/bin/python -m bench.plan_overhead [--runs N] [--resources N]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import kopf
from tests.harness import github_api, gitserver

from bench import webhook_latency
from chkmate.clients import kube as kube_client

TOKEN = "ghp_bench_token_for_plan_overhead"
NAMESPACE = "bench"
FINISHED = frozenset({"Planned", "NoChanges", "Failed"})


def config(resources: int, generation: int) -> str:
    blocks = [f'resource "terraform_data" "r{i}" {{\n  input = "v{generation}-{i}"\n}}\n' for i in range(resources)]
    return "\n".join(blocks)


def bare_plan(folder: Path, text: str, cli_config: Path, *, show: bool) -> float:
    """``terraform init`` + ``plan -out`` by hand (and ``show -json``, when ``show``) in a folder of the files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.tf").write_text(text)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config)}
    commands = [["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color", "-out=plan.bin"]]
    commands += [["show", "-json", "plan.bin"]] if show else []
    started = time.perf_counter()
    for args in commands:
        subprocess.run(["terraform", *args], cwd=folder, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def bare_fetch(url: str, mirror: Path) -> float:
    """``git fetch`` of every branch into ``mirror`` by hand, the token sent with the first request."""
    if not mirror.exists():
        subprocess.run(["git", "init", "--bare", "--quiet", str(mirror)], check=True)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    env = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}", "GIT_TERMINAL_PROMPT": "0"}  # fmt: skip
    started = time.perf_counter()
    command = ["git", "fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*"]
    subprocess.run(command, cwd=mirror, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


async def operator_runs(root: Path, runs: int, resources: int) -> tuple[list[float], list[float]]:
    with github_api.GitHubDouble(root / "github") as github:
        github.add_user("octo")
        github.add_personal_token(TOKEN, "octo")
        github.create_repo("octo", "live")
        server = gitserver.GitServer(github.root, github.check_git_credentials)
        with server:
            github.web_url = f"http://127.0.0.1:{server.port}"
            server.commit_files("octo", "live", "main", {"main.tf": config(resources, 0)}, "init")
            async with webhook_latency.emulator_process() as emulator:
                url = emulator.url
                port = webhook_latency.free_port()  # the operator's webhook port (unused here)
                async with webhook_latency.operator_process(url, port, root / "work"):
                    return await _measure(url, github, server, runs, resources, root / "bare-mirror.git")


async def _measure(
    url: str, github: github_api.GitHubDouble, server: gitserver.GitServer, runs: int, resources: int, mirror: Path
) -> tuple[list[float], list[float]]:
    async with (
        kube_client.KubeClient(kopf.ConnectionInfo(server=url)) as client,
        aiohttp.ClientSession() as session,
    ):
        observer = Observed()
        watching = asyncio.create_task(observer.watch(session, url))
        await client.create(
            kube_client.SECRETS,
            NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "gh", "namespace": NAMESPACE},
                "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
            },
        )
        for kind, plural, name, spec in (
            ("GitHubConnection", "githubconnections", "gh",
             {"apiUrl": github.url, "tokenSecretRef": {"name": "gh", "key": "token"}}),
            ("GitHubRepository", "githubrepositories", "live",
             {"connectionRef": {"name": "gh"}, "owner": "octo", "name": "live"}),
            ("Environment", "environments", "prod",
             {"repositoryRef": {"name": "live"}, "branch": "main", "approval": {"mode": "manual"}}),
        ):  # fmt: skip
            body = {"apiVersion": "chkmate.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
            await client.create(kube_client.ours(plural), NAMESPACE, body)
        await observer.finished(f"prod-{(server.head('octo', 'live', 'main') or '')[:10]}")
        timings, fetches = [], []
        bare_fetch(server.url("octo", "live"), mirror)
        for generation in range(1, runs + 1):
            head = server.commit_files("octo", "live", "main", {"main.tf": config(resources, generation)}, "next")
            fetches.append(bare_fetch(server.url("octo", "live"), mirror))
            started = time.perf_counter()
            mark = {"metadata": {"annotations": {"chkmate.dev/polledRevision": f"main@sha1:{head}"}}}
            await client.patch(kube_client.ours("environments"), NAMESPACE, "prod", mark)  # as a push or a poll
            await observer.finished(f"prod-{head[:10]}")
            timings.append(time.perf_counter() - started)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        return timings, fetches


class Observed:
    """Plans reaching a final phase, seen in a watch (no polling of the API server)."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.changed = asyncio.Event()

    async def watch(self, session: aiohttp.ClientSession, url: str) -> None:
        path = f"{url}/apis/chkmate.dev/v1alpha1/namespaces/{NAMESPACE}/plans"
        async with session.get(path, params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as stream:
            async for line in stream.content:
                if not line.strip():
                    continue
                plan = json.loads(line)["object"]
                if plan.get("status", {}).get("phase") in FINISHED:
                    self.done.add(plan["metadata"]["name"])
                    self.changed.set()

    async def finished(self, name: str, timeout: float = 120) -> None:
        async with asyncio.timeout(timeout):
            while name not in self.done:
                self.changed.clear()
                await self.changed.wait()


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--resources", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cli_config = root / "terraformrc"
        cli_config.write_text("")
        text = [config(args.resources, i) for i in range(args.runs)]
        bare = [bare_plan(root / f"bare{i}", t, cli_config, show=False) for i, t in enumerate(text)]
        shown = [bare_plan(root / f"shown{i}", t, cli_config, show=True) for i, t in enumerate(text)]
        through, fetches = asyncio.run(operator_runs(root, args.runs, args.resources))
    b, s, o = statistics.median(bare), statistics.median(shown), statistics.median(through)
    f = statistics.median(fetches)
    print(f"{args.resources} terraform_data resources, {args.runs} runs each (medians)")
    print(f"bare terraform init + plan:                    {b:6.2f} s")
    print(f"bare terraform init + plan + show -json:       {s:6.2f} s  (what reading a plan's changes takes)")
    print(f"bare git fetch of the new commit:              {f:6.2f} s  (what getting the code takes)")
    print(f"through the operator (new commit -> Planned):  {o:6.2f} s")
    print(f"ratio operator/bare: {o / b:.2f}x (target <= 1.2x: {'met' if o / b <= 1.2 else 'NOT met'}); "
          f"operator/(plan + show): {o / s:.2f}x; operator/(fetch + plan + show): {o / (f + s):.2f}x; "
          f"overhead beyond the engine and the fetch: {o - s - f:.2f} s")


if __name__ == "__main__":
    main_cli()
