"""The lane: work on a thread and event loop of its own, and back on the home loop when asked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator

import pytest

from chkmate.controllers import lanes


@pytest.fixture
async def lane() -> AsyncIterator[lanes.Lane]:
    started = lanes.Lane("test-lane")
    started.start()
    yield started
    await started.stop()


async def thread_name() -> str:
    return threading.current_thread().name


async def test_work_runs_in_the_lane_and_home_work_on_the_home_loop(lane: lanes.Lane) -> None:
    assert await lane.run(thread_name()) == "test-lane"

    async def from_the_lane() -> str:
        return await lane.call_home(thread_name())

    assert await lane.run(from_the_lane()) == threading.current_thread().name


async def test_the_lane_goes_on_while_the_home_loop_is_blocked(lane: lanes.Lane) -> None:
    done = lane.submit(asyncio.sleep(0.05, result="answered"))
    time.sleep(0.5)  # noqa: ASYNC251 -- the point: the home loop is stuck in a long synchronous stretch
    assert done.done() and done.result() == "answered"


async def test_failures_reach_the_caller_both_ways(lane: lanes.Lane) -> None:
    async def fails() -> None:
        raise ValueError("in the lane")

    with pytest.raises(ValueError, match="in the lane"):
        await lane.run(fails())

    async def fails_at_home() -> None:
        await lane.call_home(fails())

    with pytest.raises(ValueError, match="in the lane"):
        await lane.run(fails_at_home())


async def test_stop_cancels_what_still_runs_and_refuses_more_work() -> None:
    lane = lanes.Lane("test-lane")
    lane.start()
    waiting = lane.submit(asyncio.sleep(3600))
    await lane.stop()
    assert not lane.running
    with pytest.raises(concurrent.futures.CancelledError):
        waiting.result(timeout=1)
    work = thread_name()
    with pytest.raises(lanes.LaneStopped):
        lane.submit(work)
    assert work.cr_frame is None  # closed, not left "never awaited"
    await lane.stop()  # stopping twice is harmless
