"""A lane: an event loop of its own on a thread of its own, for work that must not queue behind kopf's handlers.

The operator's event loop carries every watch event and every reconcile. Under load (a thousand Environments,
twenty pushes a second) a callback waits there for tenths of a second, and a webhook delivery waits that long at
each of its awaits. GitHub gives up on a delivery after 10 seconds, and a push should be planned within one. The
webhook receiver therefore runs in a lane: it answers and marks while the operator's loop is busy, and hands the
rare work that needs the operator's own clients (git mirrors, GitHub) back to that loop with :meth:`Lane.call_home`.

Python's GIL still serializes the two threads, but the interpreter hands it over every few milliseconds, so a
delivery waits milliseconds, not for the whole queue of the operator's loop. Objects bound to one loop (aiohttp
sessions, asyncio locks) must stay in it: the lane keeps clients of its own. No I/O of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_TIMEOUT = 10.0  # seconds the lane's thread may take to finish after being asked to stop


class LaneStopped(RuntimeError):
    """Work was handed to a lane that is not running."""


class Lane:
    """A thread running an event loop; :meth:`start` it from the operator's loop, which becomes its home."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._home: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread and wait until its loop runs (milliseconds); the calling loop is the home loop."""
        self._home = asyncio.get_running_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name=self.name, daemon=True)
        self._thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``work`` in the lane; its outcome arrives in the returned future (from any thread)."""
        if self._loop is None or not self.running:
            work.close()
            raise LaneStopped(f"The {self.name} lane is not running.")
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """From another loop: run ``work`` in the lane and wait for its result."""
        return await asyncio.wrap_future(self.submit(work))

    async def call_home(self, work: Coroutine[Any, Any, T]) -> T:
        """From the lane: run ``work`` on the home loop (where the operator's clients live) and wait for it."""
        if self._home is None or self._home.is_closed():
            work.close()
            raise LaneStopped(f"The {self.name} lane has no home loop.")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._home))

    async def stop(self) -> None:
        """Cancel what still runs in the lane and end its thread; the caller's loop keeps running meanwhile."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join, STOP_TIMEOUT)
        self._loop = self._thread = None
