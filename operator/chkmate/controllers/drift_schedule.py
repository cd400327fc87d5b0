"""When each Environment's drift check runs: a fixed slot in every interval per Environment, jittered, and an
operator-wide limit on checks running at once.

Each Environment checks on its own phase of ``spec.driftDetection.interval`` (a hash of its uid), so checks spread
over the interval whenever the operator started, with ±5 % jitter on top; at most ``Settings.drift_concurrency``
checks run at once operator-wide (:func:`gate`). Used by :mod:`chkmate.controllers.environment_drift`'s daemons
and by ``bench/drift_schedule.py``. No I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
import weakref
from collections.abc import Mapping
from typing import Any

import kopf
import pydantic

from chkmate.api import common, environments
from chkmate.controllers import memos

DEFAULT_INTERVAL = common.parse_duration(environments.DriftDetection().interval)
# Of the interval, either way: Environments that share a slot (hash collisions) do not start together. Less than
# the half interval next_check_in keeps between checks, so a jittered check keeps its slot.
JITTER = 0.05

_GATES: dict[int, asyncio.Semaphore] = {}


def gate(memo: memos.Memo) -> asyncio.Semaphore:
    """The operator-wide limit on concurrent checks (``Settings.drift_concurrency``): one semaphore per memo.

    Kept here, keyed by the memo's id and dropped with the memo, because the memo is not this module's (a
    ``Memo.drift_gate`` field would do the same).
    """
    found = _GATES.get(id(memo))
    if found is None:
        found = _GATES[id(memo)] = asyncio.Semaphore(max(1, memo.settings.drift_concurrency))
        weakref.finalize(memo, _GATES.pop, id(memo), None)
    return found


def phase_of(key: str, interval: float) -> float:
    """Where in every interval an Environment's checks fall: keys spread evenly and stably over [0, interval)."""
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return fraction * interval


def next_check_in(now: float, interval: float, phase: float) -> float:
    """Seconds from ``now`` to the next slot ``phase + k * interval`` at least half an interval away.

    Half an interval: a check that ran a little early (the daemon's jitter) does not run again at the same slot,
    and the first check after a start falls in [interval/2, 3 * interval/2), spread by phase.
    """
    earliest = now + interval / 2
    return phase + math.ceil((earliest - phase) / interval) * interval - now


def check_delay(now: float, interval: float, key: str, spread: float) -> float:
    """The wait before the next check of the Environment ``key``: its next slot, moved by ``spread`` (in [-1, 1],
    random in the daemon) times :data:`JITTER` of the interval."""
    return max(0.0, next_check_in(now, interval, phase_of(key, interval)) + spread * JITTER * interval)


def check_interval(body: kopf.Body) -> float:
    """The daemon's wait before the Environment's next check, on the wall clock (slots are the same whenever
    and wherever the operator runs)."""
    key = body.metadata.uid or f"{body.metadata.namespace}/{body.metadata.name}"
    return check_delay(time.time(), _interval(body.get("spec") or {}), key, random.uniform(-1, 1))


def _interval(spec: Mapping[str, Any]) -> float:
    try:
        detection = environments.DriftDetection.model_validate(spec.get("driftDetection") or {})
    except pydantic.ValidationError:
        return DEFAULT_INTERVAL  # the reconciler reports the invalid spec
    return common.parse_duration(detection.interval)
