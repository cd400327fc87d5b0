"""Registers a kind's reconcile with kopf: on create, update and resume, and periodically.

Handler ids are persisted in objects' annotations: rename only with an explicit id. No I/O.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import kopf

from chkmate import GROUP, VERSION
from chkmate.clients import kube
from chkmate.controllers import memos, reconciling

# kopf leaves out of its diffs every annotation under the prefix it keeps its own state in: a prefix of our
# own, so that user-facing annotations under chkmate.dev/ (requestedAt, approve, rollbackTo) trigger handlers.
STATE_PREFIX = f"state.{GROUP}"
# The id of each kind's reconcile handler (kind → id), as registered by reconcile_on_changes.
HANDLER_IDS: dict[str, str] = {}


def progress_annotation(kind: str) -> str | None:
    """The annotation where kopf keeps the progress (retries, the delay of the next one) of ``kind``'s reconcile;
    removing it makes kopf run the reconcile on the next event instead of at the delayed retry."""
    handler_id = HANDLER_IDS.get(kind)
    return f"{STATE_PREFIX}/{handler_id}" if handler_id is not None else None


def reconcile_on_changes(
    registry: kopf.OperatorRegistry, reconciler: reconciling.Reconciler[Any, Any], *, handler_id: str
) -> None:
    """Run ``reconciler`` when an object appears, changes (spec, labels, annotations) or the operator resumes."""
    resource = (GROUP, VERSION, reconciler.info.plural)
    HANDLER_IDS[reconciler.info.kind] = handler_id

    # kopf runs a handler on its event loop only if it is a coroutine function; a callable object with an
    # async __call__ would be sent to a thread pool.
    async def handler(**kwargs: Any) -> None:
        await reconciler(**kwargs)

    handler.__name__ = handler.__qualname__ = handler_id
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(*resource, id=handler_id, registry=registry)(handler)

    async def forget(*, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
        """The object is gone: drop its metric series and its lock (optional: adds no finalizer)."""
        ours = memos.of(memo)
        ours.metrics.forget(reconciler.info.kind, meta.namespace or "", meta.name or "")
        ours.forget(meta.uid or "")

    forget.__name__ = forget.__qualname__ = f"forget_{handler_id}"
    kopf.on.delete(*resource, id=f"forget_{handler_id}", registry=registry, optional=True)(forget)


async def apply_patch(memo: memos.Memo, plural: str, namespace: str, name: str, patch: kopf.Patch) -> None:
    """Apply what a reconcile put in ``patch`` outside kopf's own handling: metadata, then status."""
    annotations = dict(patch.get("metadata", {}).get("annotations", {}))
    if annotations:
        await memo.kube.patch(kube.ours(plural), namespace, name, {"metadata": {"annotations": annotations}})
    if patch.status:
        await memo.kube.patch(kube.ours(plural), namespace, name, {"status": dict(patch.status)}, status=True)


def resync_periodically(
    registry: kopf.OperatorRegistry,
    reconciler: reconciling.Reconciler[Any, Any],
    *,
    handler_id: str,
    interval: Callable[[memos.Memo, kopf.Body], float],
) -> None:
    """Reconcile every object again every ``interval(memo, body)`` seconds (±10 % jitter), as Flux's
    ``interval`` does (from the settings or from the object's own spec).

    A kopf daemon per object runs the same reconciler as the change handlers and writes the status
    itself (daemons get no patch applied for them). Errors are already recorded in the status by the
    reconciler; the daemon just waits for its next turn.
    """
    plural = reconciler.info.plural

    async def daemon(
        *,
        stopped: kopf.DaemonStopped,
        body: kopf.Body,
        meta: kopf.Meta,
        memo: kopf.Memo,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **kwargs: Any,
    ) -> None:
        ours = memos.of(memo)
        while not stopped:
            await stopped.wait(interval(ours, body) * random.uniform(0.9, 1.1))
            if stopped or meta.get("deletionTimestamp"):
                return
            patch = kopf.Patch()
            kwargs.pop("patch", None)  # kopf hands daemons a patch of their own; ours is applied below
            # Failures are recorded in the conditions by the reconciler; the next turn tries again.
            with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                await reconciler(body=body, meta=meta, patch=patch, logger=logger, memo=memo, **kwargs)
            if meta.name and meta.namespace:
                await apply_patch(ours, plural, meta.namespace, meta.name, patch)

    daemon.__name__ = daemon.__qualname__ = handler_id
    # No cancellation timeout: the daemon exits as soon as it is asked to (or when its current reconcile,
    # bounded by the clients' own deadlines, ends). With a timeout, kopf 1.45 keeps a waiter task alive
    # for the whole timeout even after the daemon exited, which holds the operator's shutdown.
    kopf.daemon(GROUP, VERSION, plural, id=handler_id, registry=registry, cancellation_timeout=None)(daemon)
