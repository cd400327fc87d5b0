"""``Settings.run_concurrency``: at most that many plan runs at once, operator-wide; the others wait in line.

Runs are made visible with the Job runner: each run is a Kubernetes Job that stays until the test finishes it
(as the Job controller would), so the number of Jobs present is the number of runs going on.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from chkmate import settings as settings_
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import Cluster, connect_repository, quick_settings
from tests.operator.test_job_runner import IMAGE, MAIN, finish, runner_jobs

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

ENVIRONMENTS = ("alpha", "beta", "gamma")


@pytest.fixture(params=[1, 2], ids=["one-at-a-time", "two-at-a-time"])
def run_concurrency(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def operator_settings(tmp_path: Path, run_concurrency: int) -> settings_.Settings:
    return quick_settings(
        tmp_path, runner_image=IMAGE, runner_poll_interval=0.05, run_concurrency=run_concurrency
    )


async def test_plan_runs_beyond_the_limit_wait_in_line(
    chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer, run_concurrency: int
) -> None:
    await connect_repository(chkmate, github, git_server, "live", {"main.tf": MAIN})
    for name in ENVIRONMENTS:
        await chkmate.apply({
            "apiVersion": "chkmate.dev/v1alpha1", "kind": "Environment", "metadata": {"name": name},
            "spec": {"repositoryRef": {"name": "live"}, "branch": "main", "engine": "terraform",
                     "approval": {"mode": "manual"}, "runner": {"mode": "Job"}},
        })
    finished: set[str] = set()
    while len(finished) < len(ENVIRONMENTS):
        running = await kube.wait_for(lambda: _running(chkmate, finished), timeout=30)
        await asyncio.sleep(0.5)  # time for any run beyond the limit to start, were it not held back
        running = await _running(chkmate, finished) or running
        assert len(running) == min(run_concurrency, len(ENVIRONMENTS) - len(finished)), running
        job = running[0]
        await finish(chkmate, job, reason="DeadlineExceeded", message="stopped by the test")
        finished.add(job["metadata"]["name"])
    for name in ENVIRONMENTS:  # every run ended (here: failed, as the test stopped it), none was lost
        await chkmate.wait_condition("Environment", name, "Ready", "False", "RunTimedOut")


async def _running(cluster: Cluster, finished: set[str]) -> list[dict[str, object]] | None:
    jobs = [j for j in await runner_jobs(cluster, "plan") if j["metadata"]["name"] not in finished]
    return sorted(jobs, key=lambda j: str(j["metadata"]["name"])) or None
