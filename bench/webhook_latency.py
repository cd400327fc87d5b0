"""Benchmark: push -> Plan object created, through the running operator, with webhooks and with polling only.

Everything is real except the API server (the strict emulator, in a child process) and GitHub's REST API (the local
double): git runs over smart HTTP and the whole operator runs in a process of its own (as in a cluster) with its
webhook receiver on 127.0.0.1; its CPU time during the webhook phase is printed per push. N
Environments (builtin engine, manual approval) over R repositories each follow a branch of their own, so a push
plans one Environment.

1. Webhooks: for ``--duration`` seconds, ``--rate`` times a second, a commit lands on the branch of the next
   Environment and a signed ``push`` delivery is posted. Measured from the delivery being sent: its answer, the
   Environment's ``polledRevision`` mark, and the Plan ``<env>-<sha10>`` being created. Every delivery id must be
   answered 202 and be planned, or be coalesced: an Environment plans its branch's head, so a push followed by
   another push to the same branch before the first was planned gets no Plan of its own. Anything else is lost.
2. Polling only, the baseline: ``--polling-samples`` commits that no delivery announces, measured from the commit to
   the Plan. The poller lists each repository once per interval (one minute when only Environments follow it).

Target (issue 6): p99 < 1 s at 20 deliveries/s for 2 minutes with 1,000 Environments, none lost:
``--environments 1000 --repositories 50 --duration 120``. The defaults are a short run. A Plan per push measures the
whole operator's throughput, the first two measurements the webhook path's. Times come from watch events (no
polling).

Run: ``.venv/bin/python -m bench.webhook_latency [--environments N] [--repositories R] [--rate N] [--duration S]
[--polling-samples N]``; ``BENCH_PROFILE=<file>`` (``BENCH_EMULATOR_PROFILE=<file>``) writes the operator's (the
emulator's) cProfile statistics there; ``BENCH_OPERATOR_HOOK=<file.py>`` (``BENCH_EMULATOR_HOOK``) runs that file in the
operator's (the emulator's) process first (to instrument it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import dataclasses
import gc
import hashlib
import hmac
import inspect
import json
import os
import runpy
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import kmock
import kopf
from kmock._internal import filtering as kmock_filtering
from tests.harness import github_api, gitserver, kube

from chkmate import main, settings
from chkmate.clients import kube as kube_client
from chkmate.webhooks import receiver

NAMESPACE = "bench"
TOKEN = "ghp_bench_token_for_webhook_latency"
SECRET = "bench-webhook-secret"
CRDS = sorted(Path(__file__).parents[1].joinpath("crds").glob("*.yaml"))
POLLED = "chkmate.dev/polledRevision"
PLANS = f"/apis/chkmate.dev/v1alpha1/namespaces/{NAMESPACE}/plans"
ENVIRONMENTS = f"/apis/chkmate.dev/v1alpha1/namespaces/{NAMESPACE}/environments"
FINISHED = frozenset({"Planned", "NoChanges", "Failed", "Superseded"})
QUIET = 3.0  # seconds for the reconciles that follow the first plans to end before measuring
POLL_INTERVAL = 60.0  # how often the poller lists a repository that only Environments follow (polling.py)


@dataclasses.dataclass(frozen=True)
class Target:
    environment: str
    repository: str
    branch: str


@dataclasses.dataclass(frozen=True)
class Sample:
    """One push: when its delivery was sent and how it was answered."""

    target: Target
    sha: str
    delivery: str
    sent: float  # loop time
    answered: int  # HTTP status
    answer_seconds: float

    @property
    def plan(self) -> str:
        return f"{self.target.environment}-{self.sha[:10]}"

    @property
    def polled(self) -> str:
        return f"{self.target.branch}@sha1:{self.sha}"


@attrs.define(kw_only=True)
class TrimmedEmulator(kube.StrictKubernetesEmulator):
    """The strict emulator keeping only the requests in flight: kmock routes a request by passing every request it
    kept through its filters (~0.1 ms each), which makes a long run quadratic."""

    async def _handle(self, request: kmock.Request) -> Any:
        try:
            return await super()._handle(request)
        finally:
            index = next((i for i, kept in enumerate(self._requests) if kept is request), None)
            if index is not None:
                del self._requests[index]


def remember_signatures() -> None:
    """kmock calls ``inspect.signature()`` of its function criteria on every request (a third of the emulator's time,
    parsing the text signature of a builtin): they never change, so compute each once."""
    known: dict[int, tuple[Any, inspect.Signature]] = {}

    def signature(fn: Any) -> inspect.Signature:
        found = known.get(id(fn))
        if found is None or found[0] is not fn:
            found = known[id(fn)] = (fn, inspect.signature(fn))
        return found[1]

    kmock_filtering.inspect = types.SimpleNamespace(signature=signature)  # type: ignore[attr-defined,assignment]


def run_profiled(main: Coroutine[Any, Any, None], profile: str | None) -> None:
    """``asyncio.run(main)``; with ``profile`` (a file name), under cProfile, its statistics written there."""
    if not profile:
        asyncio.run(main)
        return
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, main)
    profiler.dump_stats(profile)


def serve_emulator() -> None:
    """``--serve-emulator``: the emulator in a process of its own; prints its URL, serves until stdin closes."""
    remember_signatures()
    if os.environ.get("BENCH_EMULATOR_HOOK"):  # a Python file run first, as BENCH_OPERATOR_HOOK for the operator
        runpy.run_path(os.environ["BENCH_EMULATOR_HOOK"])

    async def serve() -> None:
        async with TrimmedEmulator() as emulator, kmock.Server(emulator):
            kube.load_crds(emulator, CRDS)
            print(emulator.url, flush=True)
            freezing = asyncio.create_task(freeze_survivors())
            await asyncio.to_thread(sys.stdin.read)
            freezing.cancel()
            await emulator.close_watches()

    run_profiled(serve(), os.environ.get("BENCH_EMULATOR_PROFILE"))


async def freeze_survivors(every: float = 5.0) -> None:
    """The emulator stands in for the API server, whose (Go) collector never stops it for long. Python's full
    collections of its growing store stopped it for up to 1.6 s, stalling every client at once; frozen survivors
    keep them short. Its cyclic garbage is never reclaimed: the process lives for one run."""
    while True:
        gc.freeze()
        await asyncio.sleep(every)


@dataclasses.dataclass(frozen=True)
class Child:
    url: str
    pid: int  # for its CPU time


@contextlib.asynccontextmanager
async def emulator_process() -> AsyncIterator[Child]:
    """The API server for the operator, in a child process: its work would otherwise share the operator's loop."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.webhook_latency",
        "--serve-emulator",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[1],
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        yield Child((await child.stdout.readline()).decode().strip(), child.pid)
    finally:
        child.stdin.close()
        await child.wait()


class Observer:
    """When each Plan appeared and each Environment got each mark, as watch events arrive (no polling)."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}  # Plan -> time.monotonic() (the event loop's clock)
        self.marked: dict[tuple[str, str], float] = {}  # (Environment, polledRevision) -> time

    async def watch(self, session: aiohttp.ClientSession, url: str) -> None:
        await asyncio.gather(
            self._watch(session, f"{url}{PLANS}", self._plan),
            self._watch(session, f"{url}{ENVIRONMENTS}", self._environment),
        )

    async def _watch(self, session: aiohttp.ClientSession, url: str, note: Callable[[dict[str, Any]], None]) -> None:
        async with session.get(url, params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as stream:
            async for line in stream.content:
                if line.strip():
                    note(json.loads(line))

    def _plan(self, event: dict[str, Any]) -> None:
        if event["type"] == "ADDED":
            self.created.setdefault(event["object"]["metadata"]["name"], time.monotonic())

    def _environment(self, event: dict[str, Any]) -> None:
        metadata = event["object"]["metadata"]
        polled = metadata.get("annotations", {}).get(POLLED)
        if polled:
            self.marked.setdefault((metadata["name"], polled), time.monotonic())


class Bench:
    """The running parts; Plans are awaited in the observer's notes, not by asking the API server."""

    def __init__(
        self,
        observer: Observer,
        github: github_api.GitHubDouble,
        git_server: gitserver.GitServer,
        session: aiohttp.ClientSession,
        port: int,
    ) -> None:
        self.observer, self.github, self.git_server = observer, github, git_server
        self.session, self.port = session, port

    async def commit(self, target: Target, generation: int) -> str:
        files = {"main.tf": f'resource "terraform_data" "app" {{\n  input = "{generation}"\n}}\n'}
        return await asyncio.to_thread(
            self.git_server.commit_files, "acme", target.repository, target.branch, files, f"change {generation}"
        )

    async def push(self, target: Target, generation: int) -> Sample:
        sha = await self.commit(target, generation)
        payload = {
            "ref": f"refs/heads/{target.branch}",
            "before": "0" * 40,
            "after": sha,
            "deleted": False,
            "repository": {"full_name": f"acme/{target.repository}", "name": target.repository},
        }
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        }
        url = f"http://127.0.0.1:{self.port}{receiver.DEFAULT_PATH}"
        loop = asyncio.get_running_loop()
        sent = loop.time()
        async with self.session.post(url, data=body, headers=headers) as response:
            return Sample(target, sha, delivery, sent, response.status, loop.time() - sent)

    def settled(self, sample: Sample, later: Sequence[Sample]) -> bool:
        """Planned, or coalesced: a later push to the same branch was planned (the Environment plans its head)."""
        return sample.plan in self.observer.created or any(
            s.target == sample.target and s.sent > sample.sent and s.plan in self.observer.created for s in later
        )


async def webhook_phase(
    bench: Bench, targets: Sequence[Target], rate: float, duration: float, timeout: float
) -> list[Sample]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = []
    for k in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, started + k / rate - loop.time()))
        pending.append(asyncio.create_task(bench.push(targets[k % len(targets)], k)))
    samples = list(await asyncio.gather(*pending))
    with contextlib.suppress(TimeoutError):  # the report lists what never settled
        await kube.wait_for(lambda: all(bench.settled(s, samples) for s in samples), timeout=timeout, interval=0.1)
    return samples


async def polling_phase(bench: Bench, targets: Sequence[Target], samples: int, timeout: float) -> list[float | None]:
    """Commits nobody is told about: how long until the poller notices and the Plan exists."""

    async def one(target: Target, generation: int) -> float | None:
        sha = await bench.commit(target, generation)
        landed = asyncio.get_running_loop().time()
        name = f"{target.environment}-{sha[:10]}"
        await kube.wait_for(lambda: name in bench.observer.created, timeout=timeout, interval=0.05)
        return bench.observer.created[name] - landed

    async def bounded(target: Target, generation: int) -> float | None:
        try:
            return await one(target, generation)
        except TimeoutError:
            return None

    return list(await asyncio.gather(*(bounded(t, 1_000_000 + i) for i, t in enumerate(targets[:samples]))))


def prepare_git(
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    targets: Sequence[Target],
    repositories: Sequence[str] = (),
) -> None:
    """Repositories (those of the targets, and ``repositories``) with one commit on main and a branch per
    Environment (one ``update-ref`` per repository)."""
    for repository in sorted({t.repository for t in targets} | set(repositories)):
        github.create_repo("acme", repository)
        head = git_server.commit_files("acme", repository, "main", {"main.tf": "# start\n"}, "init")
        branches = "".join(f"create refs/heads/{t.branch} {head}\n" for t in targets if t.repository == repository)
        if not branches:
            continue
        subprocess.run(
            ["git", "update-ref", "--stdin"],
            input=branches.encode(),
            check=True,
            cwd=github.bare_repo_path(f"acme/{repository}"),
        )


async def create_objects(
    client: kube_client.KubeClient,
    github: github_api.GitHubDouble,
    targets: Sequence[Target],
    repositories: Sequence[str] = (),
) -> None:
    def ours(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "chkmate.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }

    data = {"token": base64.b64encode(TOKEN.encode()).decode(), "webhook": base64.b64encode(SECRET.encode()).decode()}
    await client.create(
        kube_client.SECRETS,
        NAMESPACE,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gh", "namespace": NAMESPACE}, "data": data},
    )
    await client.create(
        kube_client.ours("githubconnections"),
        NAMESPACE,
        ours(
            "GitHubConnection",
            "gh",
            {
                "apiUrl": github.url,
                "tokenSecretRef": {"name": "gh", "key": "token"},
                "webhookSecretRef": {"name": "gh", "key": "webhook"},
            },
        ),
    )
    for repository in sorted({t.repository for t in targets} | set(repositories)):
        await client.create(
            kube_client.ours("githubrepositories"),
            NAMESPACE,
            ours(
                "GitHubRepository", repository, {"connectionRef": {"name": "gh"}, "owner": "acme", "name": repository}
            ),
        )
    for t in targets:
        await client.create(
            kube_client.ours("environments"),
            NAMESPACE,
            ours(
                "Environment",
                t.environment,
                {
                    "repositoryRef": {"name": t.repository},
                    "branch": t.branch,
                    "engine": "builtin",
                    "approval": {"mode": "manual"},
                },
            ),
        )


async def settled(client: kube_client.KubeClient, targets: Sequence[Target], timeout: float) -> float:
    """Wait until every Environment's first Plan has run and the operator is quiet again; how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def done() -> bool:
        found = await client.list(kube_client.ours("plans"), NAMESPACE)
        return len(found) >= len(targets) and all(p.get("status", {}).get("phase") in FINISHED for p in found)

    await kube.wait_for(done, timeout=timeout, interval=1.0)
    await asyncio.sleep(QUIET)  # the Environments take note of their plans
    return loop.time() - started


async def run(args: argparse.Namespace, root: Path) -> None:
    targets = [Target(f"env-{i}", f"infra-{i % args.repositories}", f"env-{i}") for i in range(args.environments)]
    with github_api.GitHubDouble(root / "github") as github:
        github.add_user("octo")
        github.add_org("acme", owners=("octo",))
        github.add_personal_token(TOKEN, "octo")
        git_server = gitserver.GitServer(github.root, github.check_git_credentials)
        with git_server:
            github.web_url = f"http://127.0.0.1:{git_server.port}"
            prepare_git(github, git_server, targets)
            async with emulator_process() as emulator:
                await operate(args, root, emulator, github, git_server, targets)


def serve_operator(url: str, port: int, work_dir: str) -> None:
    """``--serve-operator``: the operator alone in its process (as in a cluster): its CPU time is its own, and the
    driver, the GitHub double and the git server do not share its event loop or GIL. Serves until stdin closes."""
    ours = settings.Settings(
        retry_delay=1,
        liveness_port=0,
        metrics_port=0,
        namespaces=(NAMESPACE,),
        work_dir=Path(work_dir),
        webhook_port=port,
    )
    registry = kopf.OperatorRegistry()
    main.register(
        registry,
        login=lambda logger, s: kopf.ConnectionInfo(server=url, default_namespace=NAMESPACE),
        settings=lambda: ours,
        webhook_host="127.0.0.1",
    )

    async def serve() -> None:
        async with kube.run_operator(registry, url, namespaces=(NAMESPACE,), login=False, wait_seconds=60):
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.read)

    if os.environ.get("BENCH_OPERATOR_HOOK"):  # a Python file run first, e.g. to wrap functions with timers
        runpy.run_path(os.environ["BENCH_OPERATOR_HOOK"])
    run_profiled(serve(), os.environ.get("BENCH_PROFILE"))


@contextlib.asynccontextmanager
async def operator_process(url: str, port: int, work_dir: Path) -> AsyncIterator[int]:
    """The operator in a child process, once kopf is ready; yields its pid."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.webhook_latency",
        "--serve-operator",
        url,
        str(port),
        str(work_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[1],
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        if (await child.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the operator process did not start")
        yield child.pid
    finally:
        child.stdin.close()
        await child.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def operate(
    args: argparse.Namespace,
    root: Path,
    emulator: Child,
    github: github_api.GitHubDouble,
    git_server: gitserver.GitServer,
    targets: Sequence[Target],
) -> None:
    url, port = emulator.url, free_port()
    async with (
        kube_client.KubeClient(kopf.ConnectionInfo(server=url)) as client,
        aiohttp.ClientSession() as session,
        operator_process(url, port, root / "work") as pid,
    ):
        observer = Observer()
        watching = asyncio.create_task(observer.watch(session, url))
        bench = Bench(observer, github, git_server, session, port)
        await create_objects(client, github, targets)
        settle = await settled(client, targets, args.settle_timeout)
        await kube.wait_for(lambda: listening(session, port), timeout=30, interval=0.2)
        hooked = targets[: max(1, len(targets) - args.polling_samples)]
        pids = (pid, emulator.pid, os.getpid())
        before, wall_before = [cpu_seconds(p) for p in pids], time.monotonic()
        samples = await webhook_phase(bench, hooked, args.rate, args.duration, args.timeout)
        spent = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
        cpu = Usage(*spent, time.monotonic() - wall_before)
        polled = await polling_phase(bench, targets[len(hooked) :], args.polling_samples, 2.5 * POLL_INTERVAL)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        report(args, bench, samples, polled, settle, cpu)


@dataclasses.dataclass(frozen=True)
class Usage:
    """CPU seconds of each process during the webhook phase, and its wall time."""

    cpu: float  # the operator
    emulator: float  # the API server
    driver: float  # this process: the GitHub double, the git server's front, the driver
    wall: float


async def listening(session: aiohttp.ClientSession, port: int) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{port}/") as response:
            return response.status > 0
    except aiohttp.ClientConnectionError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def describe(name: str, values: Sequence[float]) -> str:
    if not values:
        return f"{name:<32} no samples"
    return (
        f"{name:<32} n={len(values):5d}  p50 {percentile(values, 0.5) * 1000:9.1f} ms  "
        f"p99 {percentile(values, 0.99) * 1000:9.1f} ms  max {max(values) * 1000:9.1f} ms"
    )


def report(
    args: argparse.Namespace,
    bench: Bench,
    samples: list[Sample],
    polled: list[float | None],
    settle: float,
    usage: Usage,
) -> None:
    created, marked = bench.observer.created, bench.observer.marked
    planned = [created[s.plan] - s.sent for s in samples if s.plan in created]
    marks = [
        marked[s.target.environment, s.polled] - s.sent for s in samples if (s.target.environment, s.polled) in marked
    ]
    lost = [s for s in samples if s.answered != 202 or not bench.settled(s, samples)]
    coalesced = len(samples) - len(planned) - len(lost)
    polled_ok = [p for p in polled if p is not None]
    print(
        f"{args.environments} Environments over {args.repositories} repositories (first plans took {settle:.1f} s); "
        f"{len(samples)} push deliveries at {args.rate:g}/s for {args.duration:g} s"
    )
    print(
        f"operator CPU during the webhook phase: {usage.cpu:.1f} s in {usage.wall:.1f} s "
        f"({usage.cpu / max(usage.wall, 1e-9):.2f} of a core; "
        f"{usage.cpu / max(1, len(samples)) * 1000:.1f} ms per push); beside it the API server emulator "
        f"{usage.emulator:.1f} s and the driver with the GitHub double {usage.driver:.1f} s"
    )
    print(describe("delivery answered", [s.answer_seconds for s in samples]))
    print(describe("push -> Environment marked", marks))
    print(describe("push -> Plan created (webhook)", planned))
    print(
        describe("commit -> Plan created (polling)", polled_ok)
        + f"  (polls every {POLL_INTERVAL:.0f} s; {len(polled) - len(polled_ok)} never planned)"
    )
    if planned and polled_ok:
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            ratio = percentile(planned, fraction) / percentile(polled_ok, fraction)
            print(f"{label} webhook/polling: {ratio:.4f}x")
    print(
        f"deliveries accounted for: {len(samples) - len(lost)}/{len(samples)} ({len(planned)} planned, "
        f"{coalesced} coalesced into a later push of the same branch)"
        + "".join(f"\n  LOST {s.delivery} (answered {s.answered}, Plan {s.plan})" for s in lost)
    )
    if planned:
        p99 = percentile(planned, 0.99)
        met = p99 < 1.0 and not lost
        print(f"target p99 < 1 s and none lost: {'met' if met else 'NOT met'} (p99 {p99 * 1000:.0f} ms)")


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=100)
    parser.add_argument("--repositories", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="push deliveries per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of deliveries")
    parser.add_argument("--polling-samples", type=int, default=10, help="commits left to the poller (0: none)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds after which a Plan counts as lost")
    parser.add_argument("--settle-timeout", type=float, default=600.0, help="seconds for the first plans")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-operator", nargs=3, metavar=("URL", "PORT", "WORK_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator()
        return
    if args.serve_operator:
        url, port, work_dir = args.serve_operator
        serve_operator(url, int(port), work_dir)
        return
    if args.polling_samples >= args.environments:
        parser.error("--polling-samples must leave Environments for the webhook phase")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main_cli()
