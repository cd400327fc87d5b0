"""A real Prometheus scrapes the operator's ``/metrics`` endpoint and evaluates the alert rules the chart ships.

Prometheus (Debian's ``prometheus`` package, 2.42; ``bash dev/install-tools.sh`` installs it) runs as a subprocess
on a free 127.0.0.1 port with its own config and data folder under tmp_path, scraping and evaluating every second,
with charts/chkmate-operator/files/alerts.yaml as its rule file. :class:`chkmate.metrics.Metrics` serves on
another free port. Also here: the endpoint itself (format, port 0, a busy port).

I/O: a Prometheus subprocess, two HTTP servers on 127.0.0.1, files under tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from chkmate import metrics as metrics_
from tests.harness import kube

ALERT_RULES = Path(__file__).resolve().parents[2] / "charts" / "chkmate-operator" / "files" / "alerts.yaml"
JOB = "chkmate-operator"  # the chart's default metrics.jobName, which ChkmateOperatorDown selects
DRIFT_ALERT = "ChkmateEnvironmentDrifted"
STARTUP_TIMEOUT = 10.0  # Prometheus 2.42 is ready in ~1 s here; a slow machine gets more
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is not installed (Debian's prometheus package): run bash dev/install-tools.sh")
    return found


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


@dataclasses.dataclass
class Prometheus:
    """Test-side access to a running Prometheus' HTTP API."""

    url: str
    session: aiohttp.ClientSession

    async def api(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.url}/api/v1/{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql``: one {metric, value} per series."""
        data = await self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    async def alerts(self, name: str) -> list[dict[str, Any]]:
        return [alert for alert in (await self.api("alerts"))["alerts"] if alert["labels"]["alertname"] == name]


def write_config(folder: Path, target_port: int) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def running_prometheus(
    binary: str, folder: Path, target_port: int, session: aiohttp.ClientSession
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``127.0.0.1:target_port``, ready to answer; stopped with SIGTERM on exit."""
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, f"--config.file={write_config(folder, target_port)}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", session)
    try:
        await wait_until_ready(prometheus, process, log_path)
        yield prometheus
    finally:
        await stop(process)


async def wait_until_ready(prometheus: Prometheus, process: asyncio.subprocess.Process, log: Path) -> None:
    async def ready() -> bool:
        if process.returncode is not None:
            output = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{output}")
        try:
            async with prometheus.session.get(f"{prometheus.url}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await kube.wait_for(ready, timeout=STARTUP_TIMEOUT, interval=0.1)
    except TimeoutError:
        output = await asyncio.to_thread(log.read_text)
        raise AssertionError(f"prometheus was not ready after {STARTUP_TIMEOUT} s:\n{output}") from None


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"prometheus did not stop within {STOP_TIMEOUT} s of SIGTERM") from None


def record_a_little_of_everything(metrics: metrics_.Metrics) -> None:
    metrics.drifted("team-a", "prod", True)
    metrics.drifted("team-a", "staging", False)
    metrics.ready("Environment", "team-a", "prod", "True")
    metrics.reconciled("Environment", "team-a", "prod", "success", 0.3)
    metrics.plan_phases("team-a", "prod", {"Applied": 2, "Planned": 1})
    metrics.applied("team-a", "prod", "succeeded")
    metrics.awaiting_approval("team-a", "prod-3", "prod", datetime.datetime.now(datetime.UTC))
    metrics.sync_event("team-a", "network", "Push", "Succeeded")
    metrics.conflict_open("team-a", "network", False)
    metrics.webhook_delivery("push", "accepted")
    metrics.github_call("team-a", "acme", 304)
    metrics.rate_limit("team-a", "acme", 4800, 5000)
    metrics.git_operation("fetch", 0.02)


def expected_alert_state(alert: str) -> str:
    """What a drift alert is after a few seconds: firing at once without ``for:``, pending with one."""
    rules = yaml.safe_load(ALERT_RULES.read_text())
    [rule] = [r for group in rules["groups"] for r in group["rules"] if r.get("alert") == alert]
    return "pending" if rule.get("for") else "firing"


async def test_prometheus_scrapes_every_series_and_the_drift_alert_fires(
    prometheus_binary: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    metrics = metrics_.Metrics()
    record_a_little_of_everything(metrics)
    exposed = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    port = free_port()
    runner = await metrics.serve(port, host="127.0.0.1")
    assert runner is not None
    try:
        async with running_prometheus(prometheus_binary, tmp_path, port, session) as prometheus:
            up = await kube.wait_for(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'), timeout=10, interval=0.2)
            assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"

            drift = await prometheus.query("chkmate_environment_drifted")
            assert {(s["metric"]["name"], s["value"][1]) for s in drift} == {("prod", "1"), ("staging", "0")}
            names = await prometheus.query('group by (__name__) ({__name__=~"chkmate_.+"})')
            assert {s["metric"]["__name__"] for s in names} == exposed

            state = expected_alert_state(DRIFT_ALERT)

            async def drift_alerts() -> list[dict[str, Any]]:
                return [a for a in await prometheus.alerts(DRIFT_ALERT) if a["state"] == state]

            [alert] = await kube.wait_for(drift_alerts, timeout=10, interval=0.2)
            assert alert["labels"] == {
                "alertname": DRIFT_ALERT, "severity": "warning", "namespace": "team-a", "name": "prod",
                "job": JOB, "instance": f"127.0.0.1:{port}",
            }
            assert "team-a/prod has drifted" in alert["annotations"]["description"]
    finally:
        await runner.cleanup()


# -- the endpoint ------------------------------------------------------------------------------------------------


async def test_metrics_endpoint_serves_the_text_format(session: aiohttp.ClientSession) -> None:
    metrics = metrics_.Metrics()
    metrics.drifted("team-a", "prod", True)
    port = free_port()
    runner = await metrics.serve(port, host="127.0.0.1")
    assert runner is not None
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert await response.read() == metrics.exposition()
        async with session.get(f"http://127.0.0.1:{port}/") as response:
            assert response.status == 404
    finally:
        await runner.cleanup()


async def test_port_zero_serves_nothing() -> None:
    assert await metrics_.Metrics().serve(0) is None


async def test_a_busy_port_raises_and_leaves_nothing_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await metrics_.Metrics().serve(taken.getsockname()[1], host="127.0.0.1")
