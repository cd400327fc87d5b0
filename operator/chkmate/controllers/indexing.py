"""In-memory indexes of our objects (kopf indexes), so handlers resolve references without API calls.

Each index maps ``(namespace, name)`` to a small :class:`Summary` of the object: enough to tell whether a
reference exists and is Ready. kopf keeps them current from its watch streams and starts handlers only
once they are filled. No I/O of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from chkmate import GROUP, VERSION, errors
from chkmate.api import base, kinds
from chkmate.api import conditions as conds

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Summary:
    """What an index knows of one object."""

    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    ready: conds.ConditionStatus
    ready_reason: str
    ready_message: str


def index_name(info: base.KindInfo) -> str:
    """The kwarg name handlers receive the index under, e.g. ``githubconnections_index``."""
    return f"{info.plural}_index"


def summarize(body: kopf.Body) -> Summary:
    ready: Mapping[str, Any] = next(
        (c for c in body.get("status", {}).get("conditions", []) if c.get("type") == conds.Types.READY), {}
    )
    return Summary(
        namespace=body.metadata.namespace or "",
        name=body.metadata.name or "",
        generation=body.metadata.get("generation"),
        spec=dict(body.get("spec", {})),
        ready=ready.get("status", conds.UNKNOWN),
        ready_reason=ready.get("reason", ""),
        ready_message=ready.get("message", ""),
    )


def lookup(indexes: Mapping[str, Any], info: base.KindInfo, namespace: str, name: str) -> Summary | None:
    """The indexed object, or None when there is no such object."""
    index: kopf.Index[Key, Summary] = indexes[index_name(info)]
    for summary in index.get((namespace, name), ()):
        return summary
    return None


def register(registry: kopf.OperatorRegistry) -> None:
    for info in kinds.KINDS:
        def indexer(body: kopf.Body, **_: Any) -> dict[Key, Summary]:
            summary = summarize(body)
            return {(summary.namespace, summary.name): summary}

        kopf.index(GROUP, VERSION, info.plural, id=index_name(info), registry=registry)(indexer)


def require(
    indexes: Mapping[str, Any], info: base.KindInfo, namespace: str, name: str, *, field: str
) -> Summary:
    """The referenced object, or :class:`errors.DependencyNotFound` naming the field that refers to it."""
    found = lookup(indexes, info, namespace, name)
    if found is None:
        raise errors.DependencyNotFound(f"{field}: {info.kind} {name!r} does not exist in namespace {namespace!r}.")
    return found
