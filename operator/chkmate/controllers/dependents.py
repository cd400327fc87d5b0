"""Wake the objects waiting for a dependency the moment it becomes Ready (Flux-style), not at their next retry.

An object whose reference is missing or not Ready fails with ``DependencyNotFound``/``DependencyNotReady`` and is
retried with a growing delay (:func:`reconciling.dependency_delay`). When the object it waits for turns Ready, a
watch-event handler asks every waiting dependent (found through the reference indexes,
:data:`indexing.REFERENCES`) to reconcile now, with the ``chkmate.dev/dependencyReady`` annotation. It runs on the
dependency's own watch event, after kopf updated the indexes, so the dependent's reconcile sees the dependency
Ready. Applying a connection, a repository and ten Environments together then settles in a few reconciles
instead of a retry storm. I/O: Kubernetes (annotation patches).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import kopf

from chkmate import GROUP, VERSION
from chkmate.api import base
from chkmate.api import conditions as conds
from chkmate.clients import kube
from chkmate.controllers import indexing, memos, registering

# Written on a waiting object to wake it (any chkmate.dev/ annotation change runs its reconcile).
WOKEN_ANNOTATION = "chkmate.dev/dependencyReady"
# Seconds after a wake-up when the objects still waiting are woken once more (see dependency_moved.again).
RECHECK_AFTER = 5.0
WAITING_REASONS = frozenset({conds.Reasons.DEPENDENCY_NOT_READY, conds.Reasons.DEPENDENCY_NOT_FOUND})


def waiting(indexes: dict[str, Any], info: base.KindInfo, namespace: str, name: str) -> list[
    tuple[base.KindInfo, indexing.Summary]
]:
    """The objects referring to ``info``/``name`` that are not Ready because of a dependency."""
    found = []
    for referrer, reference in indexing.referrers_of(info):
        for summary in indexing.referring(indexes, referrer, reference, namespace, name):
            if summary.ready != conds.TRUE and summary.ready_reason in WAITING_REASONS:
                found.append((referrer, summary))
    return found


def handler_for(info: base.KindInfo) -> Callable[..., Coroutine[Any, Any, None]]:
    async def dependency_moved(
        *, type: str | None, body: kopf.Body, memo: Any, logger: Any, **indexes: Any
    ) -> None:
        """``info``'s object changed: when it turned Ready, wake what waits for it."""
        ours = memos.of(memo)
        uid = body.metadata.uid or f"{body.metadata.namespace}/{body.metadata.name}"
        ready = _ready(body)
        before = ours.ready_seen.get(uid)
        if type == "DELETED":
            ours.ready_seen.pop(uid, None)
            return
        ours.ready_seen[uid] = ready
        if ready != conds.TRUE or before == conds.TRUE or type is None:  # type None: the listing at startup
            return
        namespace, name = body.metadata.namespace or "", body.metadata.name or ""
        stamp = f"{info.kind}/{name}@{body.metadata.get('resourceVersion', '')}"
        woken = await _wake(ours, waiting(indexes, info, namespace, name), stamp)
        if not woken:
            return  # the usual case (an Environment's Ready moves with every plan): nothing to look at again
        logger.info(f"{info.kind} {name!r} is Ready: woke {woken} object(s) waiting for it.")

        async def again() -> None:
            # A dependent whose failing reconcile was still running when woken has its retry delay written back
            # by kopf afterwards, and sleeps through it: whoever still waits a moment later is woken once more.
            await asyncio.sleep(RECHECK_AFTER)
            await _wake(ours, waiting(indexes, info, namespace, name), f"{stamp}+{RECHECK_AFTER:g}s")

        ours.run_later(again())

    return dependency_moved


async def _wake(ours: memos.Memo, dependents: list[tuple[base.KindInfo, indexing.Summary]], stamp: str) -> int:
    async def wake(referrer: base.KindInfo, summary: indexing.Summary) -> None:
        # Not chkmate.dev/requestedAt: that is a person asking (a link then pushes even without autoSync, an
        # Environment lists the remote afresh); this only says "what you wait for is Ready now".
        annotations: dict[str, str | None] = {WOKEN_ANNOTATION: stamp}
        progress = registering.progress_annotation(referrer.kind)
        if progress is not None:  # kopf holds a failed handler until its retry delay: forget that delay
            annotations[progress] = None
        patch = {"metadata": {"annotations": annotations}}
        with contextlib.suppress(kube.NotFound):
            await ours.kube.patch(kube.ours(referrer.plural), summary.namespace, summary.name, patch)

    await asyncio.gather(*(wake(referrer, summary) for referrer, summary in dependents))
    return len(dependents)


def _ready(body: kopf.Body) -> str:
    for condition in body.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == conds.Types.READY:
            return str(condition.get("status", conds.UNKNOWN))
    return conds.UNKNOWN


def register(registry: kopf.OperatorRegistry) -> None:
    for info in indexing.referred_kinds():
        kopf.on.event(GROUP, VERSION, info.plural, id=f"wake_dependents_of_{info.singular}", registry=registry)(
            handler_for(info)
        )

