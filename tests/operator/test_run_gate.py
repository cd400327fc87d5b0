"""``Settings.run_concurrency``: at most that many local plan runs at once, operator-wide; the others wait in line.

Local runs go through a wrapper of the real terraform that writes when each ``plan`` starts and ends (and takes
long enough for runs to overlap if they may), so the log says how many ran at once. Job runs scale out in the
cluster and are not held back: each is a Kubernetes Job that stays until the test finishes it (as the Job
controller would), so the Jobs present are the runs going on.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from chkmate import settings as settings_
from tests.harness import github_api, gitserver, kube
from tests.operator.conftest import Cluster, connect_repository, quick_settings
from tests.operator.test_job_runner import IMAGE, MAIN, finish, runner_jobs

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

ENVIRONMENTS = ("alpha", "beta", "gamma")


@pytest.fixture(params=[1, 3], ids=["one-at-a-time", "three-at-a-time"])
def run_concurrency(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    return tmp_path / "runs.log"


@pytest.fixture
def operator_settings(tmp_path: Path, run_concurrency: int, run_log: Path) -> settings_.Settings:
    wrapper = tmp_path / "terraform-logging-runs"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = plan ]; then echo "start $(date +%s.%N)" >> {run_log}; sleep 0.6; fi\n'
        f'{shutil.which("terraform")} "$@"; code=$?\n'
        f'if [ "$1" = plan ]; then echo "end $(date +%s.%N)" >> {run_log}; fi\n'
        "exit $code\n"
    )
    wrapper.chmod(0o755)
    return quick_settings(
        tmp_path,
        terraform_binary=str(wrapper),
        runner_image=IMAGE,
        runner_poll_interval=0.05,
        run_concurrency=run_concurrency,
    )


def environment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chkmate.dev/v1alpha1", "kind": "Environment", "metadata": {"name": name},
        "spec": {"repositoryRef": {"name": "live"}, "branch": "main", "engine": "terraform",
                 "approval": {"mode": "manual"}, **spec},
    }  # fmt: skip


async def test_local_runs_beyond_the_limit_wait_in_line(
    chkmate: Cluster,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    run_concurrency: int,
    run_log: Path,
) -> None:
    await connect_repository(chkmate, github, git_server, "live", {"main.tf": MAIN})
    for name in ENVIRONMENTS:
        await chkmate.apply(environment(name))
    for name in ENVIRONMENTS:  # every run ends, none is lost in the line
        await chkmate.wait_condition("Environment", name, "Ready", "True", timeout=30)
    log = await asyncio.to_thread(run_log.read_text)
    events = sorted(
        (float(stamp), 1 if kind == "start" else -1) for kind, stamp in (line.split() for line in log.splitlines())
    )
    assert sum(1 for _, step in events if step == 1) == len(ENVIRONMENTS)
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    if run_concurrency == 1:
        assert most == 1, log
    else:  # the control: without a tight limit, the same runs do overlap
        assert most >= 2, log


@pytest.mark.parametrize("run_concurrency", [1], ids=["limit-1"], indirect=True)
async def test_job_runs_are_not_held_back(
    chkmate: Cluster, github: github_api.GitHubDouble, git_server: gitserver.GitServer
) -> None:
    await connect_repository(chkmate, github, git_server, "live", {"main.tf": MAIN})
    for name in ENVIRONMENTS:
        await chkmate.apply(environment(name, runner={"mode": "Job"}))

    async def all_running() -> list[dict[str, Any]] | None:
        jobs = await runner_jobs(chkmate, "plan")
        return jobs if len(jobs) == len(ENVIRONMENTS) else None

    for job in await kube.wait_for(all_running, timeout=30):
        await finish(chkmate, job, reason="DeadlineExceeded", message="stopped by the test")
