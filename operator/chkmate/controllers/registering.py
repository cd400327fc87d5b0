"""Registers a kind's reconcile handler with kopf: on create, update and resume, under one stable id.

Handler ids are persisted in objects' annotations: rename only with an explicit id. No I/O.
"""

from __future__ import annotations

from typing import Any

import kopf

from chkmate import GROUP, VERSION
from chkmate.api import kinds
from chkmate.controllers import indexing, reconciling


def reconcile_on_changes(
    registry: kopf.OperatorRegistry, reconciler: reconciling.Reconciler[Any, Any], *, handler_id: str
) -> None:
    """Run ``reconciler`` when an object appears, changes (spec, labels, annotations) or the operator resumes."""
    resource = (GROUP, VERSION, reconciler.info.plural)

    # kopf runs a handler on its event loop only if it is a coroutine function; a callable object with an
    # async __call__ would be sent to a thread pool.
    async def handler(**kwargs: Any) -> None:
        await reconciler(**kwargs)

    handler.__name__ = handler.__qualname__ = handler_id
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(*resource, id=handler_id, registry=registry)(handler)


def all_index_names() -> tuple[str, ...]:
    return tuple(indexing.index_name(info) for info in kinds.KINDS)
