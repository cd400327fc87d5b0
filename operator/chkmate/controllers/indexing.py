"""In-memory indexes of our objects (kopf indexes), so handlers resolve references without API calls.

Each index maps ``(namespace, name)`` to a small :class:`Summary` of the object: enough to tell whether a
reference exists and is Ready. kopf keeps them current from its watch streams and starts handlers only
once they are filled. The readers here may run on another thread than kopf's (the webhook lane,
:mod:`chkmate.controllers.lanes`): each copies what it iterates in one C-level call, so kopf changing an index
meanwhile never breaks the iteration, and a :class:`Summary` is never changed once made. No I/O of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import kopf

from chkmate import GROUP, VERSION, errors
from chkmate.api import base, kinds
from chkmate.api import conditions as conds

Key = tuple[str, str]
# Status fields other objects need to see (kept small: indexes live in memory for every object).
SUMMARIZED_STATUS = frozenset(
    {
        "revision",
        "fullName",
        "cloneUrl",
        "defaultBranch",
        "lastSyncedRevision",
        "headRevision",
        "lastPlan",
        "phase",
        "planId",
        "summary",
        "startedAt",
        "finishedAt",
        "appliedAt",
        "cost",
        "security",
    }
)


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
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    status: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    uid: str = ""  # for ownerReferences made without reading the object


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
        annotations={k: v for k, v in body.metadata.annotations.items() if k.startswith(f"{GROUP}/")},
        status={k: v for k, v in body.get("status", {}).items() if k in SUMMARIZED_STATUS},
        uid=body.metadata.uid or "",
    )


def all_of(indexes: Mapping[str, Any], info: base.KindInfo, namespace: str | None = None) -> list[Summary]:
    """Every indexed object of a kind (in a namespace)."""
    index: kopf.Index[Key, Summary] = indexes[index_name(info)]
    return [s for key in list(index) for s in list(index.get(key, ())) if namespace is None or s.namespace == namespace]


def lookup(indexes: Mapping[str, Any], info: base.KindInfo, namespace: str, name: str) -> Summary | None:
    """The indexed object, or None when there is no such object."""
    index: kopf.Index[Key, Summary] = indexes[index_name(info)]
    found = list(index.get((namespace, name), ()))
    return found[0] if found else None


# Secondary indexes: the objects of a kind by the object a spec field refers to, so that "the Plans of this
# Environment" or "the links of this repository" cost what they hold, not a scan of every object of the kind.
REFERENCES: tuple[tuple[base.KindInfo, str, tuple[str, ...]], ...] = (
    (kinds.PLAN, "environment", ("environmentRef", "name")),
    (kinds.TEMPLATE_REPO_LINK, "repository", ("repositoryRef", "name")),
    (kinds.TEMPLATE_REPO_LINK, "template", ("templateRef", "name")),
    (kinds.ENVIRONMENT, "repository", ("repositoryRef", "name")),
    (kinds.ENVIRONMENT, "link", ("linkRef", "name")),
    (kinds.GITHUB_REPOSITORY, "connection", ("connectionRef", "name")),
)
# The kind each reference names.
REFERENCED: Mapping[str, base.KindInfo] = {
    "environment": kinds.ENVIRONMENT,
    "repository": kinds.GITHUB_REPOSITORY,
    "template": kinds.TEMPLATE,
    "link": kinds.TEMPLATE_REPO_LINK,
    "connection": kinds.GITHUB_CONNECTION,
}


def referrers_of(info: base.KindInfo) -> list[tuple[base.KindInfo, str]]:
    """``(kind, reference)`` of every reference that can name an object of ``info``."""
    return [(referrer, reference) for referrer, reference, _ in REFERENCES if REFERENCED[reference] is info]


def referred_kinds() -> list[base.KindInfo]:
    """The kinds some reference names, in :data:`kinds.KINDS` order."""
    named = {REFERENCED[reference].kind for _, reference, _ in REFERENCES}
    return [info for info in kinds.KINDS if info.kind in named]


def reference_index_name(info: base.KindInfo, reference: str) -> str:
    """E.g. ``plans_by_environment``: the kwarg name of the index of ``info`` by ``reference``."""
    return f"{info.plural}_by_{reference}"


def referring(
    indexes: Mapping[str, Any], info: base.KindInfo, reference: str, namespace: str, name: str
) -> list[Summary]:
    """The objects of ``info`` whose ``reference`` (one of :data:`REFERENCES`) names ``name`` in ``namespace``."""
    index: kopf.Index[Key, Summary] = indexes[reference_index_name(info, reference)]
    return list(index.get((namespace, name), ()))


def register(registry: kopf.OperatorRegistry) -> None:
    for info in kinds.KINDS:

        async def indexer(body: kopf.Body, **_: Any) -> dict[Key, Summary]:
            summary = summarize(body)
            return {(summary.namespace, summary.name): summary}

        kopf.index(GROUP, VERSION, info.plural, id=index_name(info), registry=registry)(indexer)
    for info, reference, path in REFERENCES:
        kopf.index(GROUP, VERSION, info.plural, id=reference_index_name(info, reference), registry=registry)(
            _by_reference(path)
        )


def _by_reference(path: tuple[str, ...]) -> Callable[..., Coroutine[Any, Any, dict[Key, Summary]]]:
    # Indexers are coroutines though they never wait: kopf runs a plain function in its thread pool, a hop (and
    # a few tasks) on every watch event of the kind.
    async def indexer(body: kopf.Body, **_: Any) -> dict[Key, Summary]:
        value: Any = body.get("spec", {})
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if not isinstance(value, str) or not value:
            return {}
        return {(body.metadata.namespace or "", value): summarize(body)}

    return indexer


def require(indexes: Mapping[str, Any], info: base.KindInfo, namespace: str, name: str, *, field: str) -> Summary:
    """The referenced object, or :class:`errors.DependencyNotFound` naming the field that refers to it."""
    found = lookup(indexes, info, namespace, name)
    if found is None:
        raise errors.DependencyNotFound(f"{field}: {info.kind} {name!r} does not exist in namespace {namespace!r}.")
    return found
