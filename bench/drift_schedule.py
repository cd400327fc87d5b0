"""Benchmark: how drift checks of 500 Environments with a 1h interval spread over the hour, against the limit.

Simulates the drift daemons of :mod:`chkmate.controllers.environment_drift` on virtual time (looptime): each
Environment waits :func:`drift_schedule.check_delay` on the loop's clock, then queues for the operator-wide
:func:`drift_schedule.gate` (``Settings.drift_concurrency``) and holds it for ``--duration`` seconds (one
check). Compared with two other schedules on the same gate:

* unjittered (the baseline): every daemon waits exactly one interval from the operator's start, as a plain
  timer does, so all checks fall due together;
* jitter only: one interval times uniform(0.9, 1.1) from the start, as ``registering.resync_periodically`` does.

Prints, per schedule, the histogram of the times checks fell due and started over the steady-state hour (the
second one), the peak of checks running at once against the limit, the longest queue and the longest wait, and
the figures as ratios against the baseline.

Run: ``.venv/bin/python -m bench.drift_schedule [--environments 500] [--interval 3600] [--duration 10]
[--limit 4] [--hours 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import looptime

from chkmate import settings
from chkmate.controllers import drift_schedule, memos

BUCKETS = 12  # five minutes each over a 1h interval
BAR_WIDTH = 40

# (environment key, now, random source) -> seconds to wait before the next check
Schedule = Callable[[str, float, random.Random], float]


@dataclasses.dataclass
class Run:
    """What one simulated operator saw."""

    due: list[float] = dataclasses.field(default_factory=list)
    started: list[float] = dataclasses.field(default_factory=list)
    waits: list[float] = dataclasses.field(default_factory=list)
    running: int = 0
    queued: int = 0
    peak_running: int = 0
    peak_queued: int = 0


def schedules(interval: float) -> dict[str, Schedule]:
    return {
        "unjittered": lambda key, now, rng: interval,
        "jitter only": lambda key, now, rng: interval * rng.uniform(0.9, 1.1),
        "chkmate": lambda key, now, rng: drift_schedule.check_delay(now, interval, key, rng.uniform(-1, 1)),
    }


async def simulate(schedule: Schedule, keys: list[str], *, limit: int, duration: float, horizon: float) -> Run:
    with tempfile.TemporaryDirectory() as work:
        memo = memos.Memo(settings=settings.Settings(drift_concurrency=limit, work_dir=Path(work)))
        gate, run, rng = drift_schedule.gate(memo), Run(), random.Random(7)
        loop = asyncio.get_running_loop()

        async def daemon(key: str) -> None:
            while (now := loop.time()) < horizon:
                await asyncio.sleep(schedule(key, now, rng))
                due = loop.time()
                run.due.append(due)
                run.queued += 1
                run.peak_queued = max(run.peak_queued, run.queued)
                async with gate:
                    run.queued -= 1
                    run.running += 1
                    run.peak_running = max(run.peak_running, run.running)
                    run.started.append(loop.time())
                    run.waits.append(loop.time() - due)
                    await asyncio.sleep(duration)
                    run.running -= 1

        await asyncio.gather(*(daemon(key) for key in keys))
        return run


def histogram(times: list[float], start: float, interval: float) -> list[int]:
    width = interval / BUCKETS
    counts = [0] * BUCKETS
    for moment in times:
        if start <= moment < start + interval:
            counts[int((moment - start) // width)] += 1
    return counts


def flatness(counts: list[int]) -> float:
    """The fullest bucket against the mean: 1.0 is a perfectly even spread."""
    return max(counts) / max(sum(counts) / len(counts), 1e-9)


def report(name: str, run: Run, args: argparse.Namespace) -> dict[str, float]:
    due = histogram(run.due, args.interval, args.interval)
    started = histogram(run.started, args.interval, args.interval)
    print(f"\n{name}: checks due / started per {args.interval / BUCKETS / 60:g} min of the second hour")
    scale = BAR_WIDTH / max(max(due), 1)
    for index, (d, s) in enumerate(zip(due, started, strict=True)):
        minute = index * args.interval / BUCKETS / 60
        print(f"  {minute:5.0f}m  {d:4d} {s:4d}  {'#' * round(d * scale)}")
    figures = {
        "peak_running": float(run.peak_running),
        "peak_queued": float(run.peak_queued),
        "max_wait": max(run.waits, default=0.0),
        "flatness": flatness(due),
    }
    print(
        f"  peak running {run.peak_running}/{args.limit} (limit), longest queue {run.peak_queued}, "
        f"longest wait {figures['max_wait']:.0f} s, fullest bucket {figures['flatness']:.2f}x the mean"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=500)
    parser.add_argument("--interval", type=float, default=3600.0, help="driftDetection.interval, seconds")
    parser.add_argument("--duration", type=float, default=10.0, help="one check (two engine plans), seconds")
    parser.add_argument("--limit", type=int, default=settings.Settings().drift_concurrency)
    parser.add_argument("--hours", type=int, default=3, help="simulated intervals")
    args = parser.parse_args()
    rng = random.Random(42)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(args.environments)]
    horizon = args.hours * args.interval
    print(
        f"{args.environments} Environments, interval {args.interval:g} s, checks of {args.duration:g} s, "
        f"at most {args.limit} at once, {args.hours} simulated intervals (virtual time)"
    )
    results = {}
    for name, schedule in schedules(args.interval).items():
        loop = looptime.new_event_loop(start=0.0)  # time compaction on: sleeps take no real time
        try:
            run = loop.run_until_complete(
                simulate(schedule, keys, limit=args.limit, duration=args.duration, horizon=horizon)
            )
        finally:
            loop.close()
        results[name] = report(name, run, args)
    base = results["unjittered"]
    print("\nagainst the unjittered baseline (lower is better; 1.00x = the same):")
    for name, figures in results.items():
        print(
            f"  {name:<12} longest queue {figures['peak_queued'] / max(base['peak_queued'], 1):5.2f}x  "
            f"longest wait {figures['max_wait'] / max(base['max_wait'], 1e-9):5.2f}x  "
            f"fullest bucket {figures['flatness'] / base['flatness']:5.2f}x  "
            f"peak running {figures['peak_running'] / args.limit:4.2f} of the limit"
        )


if __name__ == "__main__":
    main()
