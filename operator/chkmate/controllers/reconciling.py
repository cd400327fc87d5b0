"""The reconcile wrapper every kind shares: parse, run the kind's step, write conditions and status.

One place does, for every kind:

* validate ``spec`` through the kind's model; an invalid spec gives ``Ready=False``/``Stalled=True`` with
  reason ``InvalidSpec``, a message naming the field, and a Warning Event; it is not retried (the next edit
  of the object runs the handler again);
* call the kind's step with typed values and translate our errors (:mod:`chkmate.errors`) to conditions
  and to kopf's ``TemporaryError``/``PermanentError``, chaining the cause;
* set ``observedGeneration``, compute ``Ready`` from the kind's conditions, post an Event when ``Ready``
  changes, and echo the ``chkmate.dev/requestedAt`` annotation to ``status.lastHandledReconcileAt``.

I/O: writes only through kopf's ``patch`` and Events; the step does the kind's own I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import kopf
import pydantic

from chkmate import errors, metrics
from chkmate.api import base, common
from chkmate.api import conditions as conds
from chkmate.controllers import memos

REQUESTED_AT_ANNOTATION = "chkmate.dev/requestedAt"
REQUEUED = "Requeued to check again."

SpecT = TypeVar("SpecT", bound=base.Model)
StatusT = TypeVar("StatusT", bound=common.CommonStatus)


@dataclasses.dataclass(frozen=True)
class Set:
    """One condition a step wants set."""

    type: str
    status: conds.ConditionStatus
    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Request(Generic[SpecT, StatusT]):
    """What a step gets: the parsed spec, the previous status, and the context to do its I/O."""

    name: str
    namespace: str
    generation: int | None
    spec: SpecT
    status: StatusT
    body: kopf.Body
    memo: memos.Memo
    logger: logging.Logger | logging.LoggerAdapter[Any]
    now: datetime.datetime
    indexes: Mapping[str, Any]
    # True when chkmate.dev/requestedAt carries a value not handled before: a user asked for this reconcile.
    requested: bool = False

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.body.metadata.annotations


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[StatusT]):
    """What a step returns: its status fields (conditions are ignored here), conditions to set, and when to
    come back (None: only on the next change or resync)."""

    status: StatusT
    conditions: tuple[Set, ...] = ()
    removed: tuple[str, ...] = ()
    requeue_after: float | None = None
    ready_message: str = ""
    annotations: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # None removes one


Step = Callable[[Request[SpecT, StatusT]], Awaitable[Outcome[StatusT]]]


@dataclasses.dataclass(frozen=True)
class Reconciler(Generic[SpecT, StatusT]):
    """A kind's reconcile: its models, the conditions Ready depends on, and its step."""

    info: base.KindInfo
    spec_model: type[SpecT]
    status_model: type[StatusT]
    depends_on: tuple[str, ...]
    step: Step[SpecT, StatusT]

    async def __call__(
        self,
        *,
        body: kopf.Body,
        meta: kopf.Meta,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> None:
        """Reconcile one object; one at a time per object (handlers and the periodic resync share a lock).

        Records the reconcile's duration and result, and the object's Ready status, in the metrics.
        """
        ours = memos.of(memo)
        started = time.monotonic()
        result: metrics.ReconcileResult = "error"
        try:
            async with ours.lock(meta.uid or f"{meta.namespace}/{meta.name}"):
                result = await self._reconcile(body=body, meta=meta, patch=patch, logger=logger, memo=memo, **kwargs)
        except kopf.TemporaryError as e:
            result = "requeue" if e.args and e.args[0] == REQUEUED else "error"
            raise
        finally:
            namespace, name = meta.namespace or "", meta.name or ""
            ours.metrics.reconciled(self.info.kind, namespace, name, result, time.monotonic() - started)
            ready = _ready_status(patch, body)
            if ready is not None:
                ours.metrics.ready(self.info.kind, namespace, name, ready)

    async def _reconcile(
        self,
        *,
        body: kopf.Body,
        meta: kopf.Meta,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> metrics.ReconcileResult:
        """The reconcile itself; returns its result for the metrics (success, invalid)."""
        now = datetime.datetime.now(datetime.UTC)
        generation = meta.get("generation")
        previous = load_status(self.status_model, body.get("status"))
        requested_at = meta.annotations.get(REQUESTED_AT_ANNOTATION)
        # lastHandledReconcileAt moves only when a reconcile succeeds: a failed one is retried as requested.
        status = previous.model_copy(update={"observed_generation": generation})

        try:
            spec = parse_spec(self.spec_model, body.get("spec"))
        except errors.InvalidSpec as e:
            conditions = stalled(previous.conditions, e, generation=generation, now=now)
            write_status(patch, previous, status.model_copy(update={"conditions": conditions}))
            kopf.warn(body, reason=e.reason, message=e.message)
            logger.error(f"The spec is invalid and will not be reconciled until it changes: {e.message}")
            return "invalid"

        request = Request(
            name=meta["name"],
            namespace=meta["namespace"],
            generation=generation,
            spec=spec,
            status=status,
            body=body,
            memo=memos.of(memo),
            logger=logger,
            now=now,
            indexes=kwargs,
            requested=requested_at is not None and requested_at != previous.last_handled_reconcile_at,
        )
        try:
            outcome = await self.step(request)
        except errors.ChkmateError as e:
            self._fail(body, patch, previous, status, e, generation=generation, now=now, logger=logger)
            if e.retryable:
                delay = e.retry_after if e.retry_after is not None else request.memo.settings.retry_delay
                if isinstance(e, errors.DependencyNotReady | errors.DependencyNotFound) and e.retry_after is None:
                    delay = dependency_delay(delay, kwargs.get("retry") or 0)
                raise kopf.TemporaryError(e.message, delay=delay) from e
            raise kopf.PermanentError(e.message) from e

        conditions = conds.remove(previous.conditions, conds.Types.STALLED)
        for name in outcome.removed:
            conditions = conds.remove(conditions, name)
        for update in outcome.conditions:
            conditions = conds.set_condition(
                conditions,
                type_=update.type,
                status=update.status,
                reason=update.reason,
                message=update.message,
                generation=generation,
                now=now,
            )
        conditions = conds.summarize(
            conditions,
            depends_on=self.depends_on,
            generation=generation,
            now=now,
            ready_message=outcome.ready_message,
        )
        new = outcome.status.model_copy(
            update={
                "conditions": conditions,
                "observed_generation": generation,
                "last_handled_reconcile_at": requested_at or previous.last_handled_reconcile_at,
            }
        )
        write_status(patch, previous, new)
        for key, value in outcome.annotations.items():
            patch.metadata.annotations[key] = value
        announce(body, previous.conditions, conditions)
        if outcome.requeue_after is not None:
            raise kopf.TemporaryError(REQUEUED, delay=outcome.requeue_after)
        return "success"

    def _fail(
        self,
        body: kopf.Body,
        patch: kopf.Patch,
        previous: StatusT,
        status: StatusT,
        error: errors.ChkmateError,
        *,
        generation: int | None,
        now: datetime.datetime,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        if error.retryable:
            conditions = conds.remove(previous.conditions, conds.Types.STALLED)
            conditions = conds.set_condition(
                conditions,
                type_=conds.Types.READY,
                status=conds.FALSE,
                reason=error.reason,
                message=error.message,
                generation=generation,
                now=now,
            )
            logger.warning(f"Reconciling failed and will be retried: {error.message}")
        else:
            conditions = stalled(previous.conditions, error, generation=generation, now=now)
            logger.error(f"Reconciling failed and needs a change to the object: {error.message}")
        write_status(patch, previous, status.model_copy(update={"conditions": conditions}))
        announce(body, previous.conditions, conditions)


# An object waiting for a dependency is retried with a delay doubling up to this factor of the retry delay (and
# at most MAX_DEPENDENCY_DELAY seconds): the dependency turning Ready wakes it at once (controllers.dependents).
MAX_BACKOFF_FACTOR = 16
MAX_DEPENDENCY_DELAY = 300.0


def dependency_delay(base_delay: float, retry: int) -> float:
    """The delay before retry number ``retry`` + 1 of an object waiting for a dependency."""
    factor: int = min(2 ** max(int(retry), 0), MAX_BACKOFF_FACTOR)
    return min(base_delay * factor, max(base_delay, MAX_DEPENDENCY_DELAY))


def _ready_status(patch: kopf.Patch, body: kopf.Body) -> conds.ConditionStatus | None:
    """The Ready status this reconcile wrote (or the object had)."""
    written = patch.get("status", {}).get("conditions") or body.get("status", {}).get("conditions") or []
    ready = next((c for c in written if isinstance(c, Mapping) and c.get("type") == conds.Types.READY), None)
    status = ready.get("status") if ready is not None else None
    return status if status in (conds.TRUE, conds.FALSE, conds.UNKNOWN) else None


def parse_spec(model: type[SpecT], raw: Any) -> SpecT:
    """The spec as a model, or :class:`errors.InvalidSpec` naming the first bad field."""
    try:
        return model.model_validate(raw or {})
    except pydantic.ValidationError as e:
        raise errors.InvalidSpec(describe_validation_error(e, prefix="spec")) from e


def describe_validation_error(error: pydantic.ValidationError, *, prefix: str) -> str:
    """``spec.syncDirection: Input should be 'Push', 'Pull' or 'Bidirectional'`` (+ how many more)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    path = ".".join([prefix, *(str(part) for part in first["loc"])])
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{path}: {message}{more}"


def load_status(model: type[StatusT], raw: Any) -> StatusT:
    """The previous status; a status we cannot read (written by another version) starts afresh."""
    try:
        return model.model_validate(raw or {})
    except pydantic.ValidationError:
        return model()


def stalled(
    previous: Sequence[conds.Condition],
    error: errors.ChkmateError,
    *,
    generation: int | None,
    now: datetime.datetime,
) -> tuple[conds.Condition, ...]:
    """Conditions for an error only a change of the object can fix: Stalled=True and Ready=False."""
    conditions = conds.set_condition(
        previous,
        type_=conds.Types.STALLED,
        status=conds.TRUE,
        reason=error.reason,
        message=error.message,
        generation=generation,
        now=now,
    )
    return conds.set_condition(
        conditions,
        type_=conds.Types.READY,
        status=conds.FALSE,
        reason=error.reason,
        message=error.message,
        generation=generation,
        now=now,
    )


def write_status(patch: kopf.Patch, previous: common.CommonStatus, new: common.CommonStatus) -> None:
    """Patch ``.status`` from ``previous`` to ``new``: changed keys set, vanished keys nulled."""
    old_wire = previous.to_wire()
    new_wire = new.to_wire()
    for key, value in new_wire.items():
        if old_wire.get(key) != value:
            patch.status[key] = value
    for key in old_wire.keys() - new_wire.keys():
        patch.status[key] = None


def announce(body: kopf.Body, previous: Sequence[conds.Condition], current: Sequence[conds.Condition]) -> None:
    """An Event when Ready changes status or reason (not on every reconcile)."""
    before = conds.find(previous, conds.Types.READY)
    after = conds.find(current, conds.Types.READY)
    if after is None or (before is not None and (before.status, before.reason) == (after.status, after.reason)):
        return
    if after.status == conds.FALSE:
        kopf.warn(body, reason=after.reason, message=after.message or after.reason)
    else:
        kopf.info(body, reason=after.reason, message=after.message or f"Ready is {after.status}.")
