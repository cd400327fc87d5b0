"""The garbage collector kept short: frozen survivors, and a full collection now and then that reclaims cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from chkmate.controllers import collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A garbage cycle in the making: two nodes referring to each other, and a weak reference to one."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


async def test_young_garbage_is_collected_before_a_freeze() -> None:
    keeping = asyncio.create_task(collector.keep_collections_short(3600, freeze=0.01))
    await asyncio.sleep(0.02)
    gone = cycle()  # garbage already: not kept for ten minutes by the next freeze
    await asyncio.sleep(0.05)
    keeping.cancel()
    await asyncio.gather(keeping, return_exceptions=True)
    assert gone() is None


def test_a_frozen_cycle_outlives_collections_until_everything_is_collected() -> None:
    alive = cycle()
    gc.freeze()
    gc.collect()
    assert alive() is not None  # frozen: collections leave it alone (the pauses this module avoids)
    collector.collect_all()
    assert alive() is None
    assert gc.get_freeze_count() > 0  # what survived is frozen again


async def test_survivors_are_frozen_on_schedule_and_unfrozen_when_stopped() -> None:
    keeping = asyncio.create_task(collector.keep_collections_short(3600, freeze=0.01))
    await asyncio.sleep(0.05)
    kept = Node()
    kept.other = Node()
    kept.other.other = kept
    alive = weakref.ref(kept)
    await asyncio.sleep(0.05)  # frozen by a later turn while still in use...
    del kept
    gc.collect()
    assert alive() is not None and gc.get_freeze_count() > 0  # ...so a collection leaves it alone once garbage
    keeping.cancel()
    await asyncio.gather(keeping, return_exceptions=True)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
