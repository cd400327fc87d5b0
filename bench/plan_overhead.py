"""Benchmark: a plan run through the operator against a bare ``terraform plan`` of the same code.

The operator path: a new commit → the Environment notices (requested reconcile) → a Plan object → terraform
init/plan/show in a workspace built from the git mirror → outputs stored in Secrets and a ConfigMap → the
Plan's status says Planned. Everything is real except the API server (the strict emulator) and GitHub's
REST API (the local double); git runs over smart HTTP. The baseline is ``terraform init`` + ``terraform plan
-out`` run by hand in a folder holding the same files, in the same run. Target (issue #5): at most 1.2x.

Run: ``.venv/bin/python -m bench.plan_overhead [--runs N] [--resources N]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock
import kopf
from tests.harness import github_api, gitserver, kube

from chkmate import main, settings
from chkmate.clients import kube as kube_client

TOKEN = "ghp_bench_token_for_plan_overhead"
CRDS = sorted(Path(__file__).parents[1].joinpath("crds").glob("*.yaml"))


def config(resources: int, generation: int) -> str:
    blocks = [f'resource "terraform_data" "r{i}" {{\n  input = "v{generation}-{i}"\n}}\n' for i in range(resources)]
    return "\n".join(blocks)


def bare_plan(folder: Path, text: str, cli_config: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.tf").write_text(text)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config)}
    started = time.perf_counter()
    for args in (["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color", "-out=plan.bin"]):
        subprocess.run(["terraform", *args], cwd=folder, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


async def operator_runs(root: Path, runs: int, resources: int) -> list[float]:
    with github_api.GitHubDouble(root / "github") as github:
        github.add_user("octo")
        github.add_personal_token(TOKEN, "octo")
        github.create_repo("octo", "live")
        server = gitserver.GitServer(github.root, github.check_git_credentials)
        with server:
            github.web_url = f"http://127.0.0.1:{server.port}"
            server.commit_files("octo", "live", "main", {"main.tf": config(resources, 0)}, "init")
            async with kube.StrictKubernetesEmulator() as emulator, kmock.Server(emulator):
                kube.load_crds(emulator, CRDS)
                return await _measure(emulator, github, server, root, runs, resources)


async def _measure(emulator: Any, github: github_api.GitHubDouble, server: gitserver.GitServer, root: Path,
                   runs: int, resources: int) -> list[float]:
    url = str(emulator.url)
    ours = settings.Settings(retry_delay=0.3, liveness_port=0, metrics_port=0, namespaces=("default",),
                             work_dir=root / "work")
    registry = kopf.OperatorRegistry()
    main.register(registry, login=lambda logger, s: kopf.ConnectionInfo(server=url, default_namespace="default"),
                  settings=lambda: ours)
    async with kube_client.KubeClient(kopf.ConnectionInfo(server=url)) as client, \
            kube.run_operator(registry, url, namespaces=("default",), login=False):
        plans = kube_client.ours("plans")
        await client.create(kube_client.SECRETS, "default", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gh", "namespace": "default"},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
        for body in (
            {"kind": "GitHubConnection", "metadata": {"name": "gh"},
             "spec": {"apiUrl": github.url, "tokenSecretRef": {"name": "gh", "key": "token"}}},
            {"kind": "GitHubRepository", "metadata": {"name": "live"},
             "spec": {"connectionRef": {"name": "gh"}, "owner": "octo", "name": "live"}},
            {"kind": "Environment", "metadata": {"name": "prod"},
             "spec": {"repositoryRef": {"name": "live"}, "branch": "main", "approval": {"mode": "manual"}}},
        ):
            plural = {"GitHubConnection": "githubconnections", "GitHubRepository": "githubrepositories",
                      "Environment": "environments"}[body["kind"]]
            await client.create(kube_client.ours(plural), "default",
                                {"apiVersion": "chkmate.dev/v1alpha1", **body,
                                 "metadata": {**body["metadata"], "namespace": "default"}})
        await _planned(client, plans, f"prod-{(server.head('octo', 'live', 'main') or '')[:10]}")
        timings = []
        for generation in range(1, runs + 1):
            head = server.commit_files("octo", "live", "main", {"main.tf": config(resources, generation)}, "next")
            started = time.perf_counter()
            await client.patch(kube_client.ours("environments"), "default", "prod",
                               {"metadata": {"annotations": {"chkmate.dev/requestedAt": str(generation)}}})
            await _planned(client, plans, f"prod-{head[:10]}")
            timings.append(time.perf_counter() - started)
        return timings


async def _planned(client: kube_client.KubeClient, plans: kube_client.Resource, name: str) -> None:
    async def done() -> bool:
        found = await client.get(plans, "default", name)
        return bool(found and found.get("status", {}).get("phase") in ("Planned", "NoChanges", "Failed"))

    await kube.wait_for(done, timeout=120, interval=0.01)


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--resources", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cli_config = root / "terraformrc"
        cli_config.write_text("")
        bare = [bare_plan(root / f"bare{i}", config(args.resources, i), cli_config) for i in range(args.runs)]
        through = asyncio.run(operator_runs(root, args.runs, args.resources))
    b, o = statistics.median(bare), statistics.median(through)
    print(f"{args.resources} terraform_data resources, {args.runs} runs each (medians)")
    print(f"bare terraform init + plan:        {b:6.2f} s")
    print(f"through the operator (commit -> Planned): {o:6.2f} s")
    print(f"ratio operator/bare: {o / b:.2f}x (target <= 1.2x: {'met' if o / b <= 1.2 else 'NOT met'})")


if __name__ == "__main__":
    main_cli()
