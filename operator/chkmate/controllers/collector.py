"""Python's cyclic garbage collector, kept from stopping the operator for long.

A full collection walks every object the collector tracks, and no thread runs meanwhile: not kopf's handlers, not
the webhook lane. With a thousand Environments the operator holds about 0.4 million such objects (kopf's memory of
every object, the indexes, the metric series), and a full collection takes 0.4-0.6 s. Python starts one whenever
the objects that survived grew by a quarter since the last one: under a stream of pushes (new Plans, new series)
that came every 6 to 8 seconds, and each one stalled every delivery in flight.

:func:`keep_collections_short` freezes what is alive every :data:`FREEZE` seconds (``gc.freeze``, which costs
nothing): frozen objects are left out of collections, so a collection walks only what was made since the last
freeze. Every ``refreeze`` seconds everything is unfrozen and collected once, reclaiming the garbage cycles that
were frozen meanwhile (an object deleted since, whose parts refer to each other), and the rest is frozen again.
Objects freed by reference counting, most of them, are freed at once, frozen or not. No I/O.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

FREEZE = 60.0  # seconds between freezes: collections walk at most this long's worth of survivors

logger = logging.getLogger(__name__)


def collect_all() -> float:
    """Unfreeze, collect everything, freeze what is left; returns the seconds it took (every thread waits)."""
    started = time.monotonic()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.monotonic() - started


async def keep_collections_short(refreeze: float, *, freeze: float = FREEZE) -> None:
    """Collect everything now and every ``refreeze`` seconds, freeze every ``freeze`` seconds, until cancelled."""
    full_at = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= full_at:
                took = collect_all()
                full_at = now + refreeze
                logger.debug(f"Full garbage collection in {took:.3f} s; {gc.get_freeze_count()} objects frozen.")
            else:
                gc.collect(1)  # the young garbage first: what is frozen is only reclaimed by the next full collection
                gc.freeze()
            await asyncio.sleep(min(freeze, refreeze))
    finally:
        gc.unfreeze()
