"""Status conditions after the Kubernetes API conventions: names, reasons and the one helper that sets them.

Conventions (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties):

* ``type`` is CamelCase, ``status`` is ``"True" | "False" | "Unknown"``, ``reason`` is CamelCase and
  machine-readable, ``message`` is for humans.
* ``lastTransitionTime`` changes only when ``status`` changes; a new reason or message alone keeps it.
* ``observedGeneration`` records which ``metadata.generation`` the condition speaks about.
* ``Ready`` is a summary computed from the others (:func:`summarize`), never set directly by a step.
* ``Reconciling`` and ``Stalled`` are abnormal-true: present only while true (Flux's kstatus).

Pure: no I/O, no clock reads (callers pass ``now``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Literal

import pydantic

from chkmate.api import base

ConditionStatus = Literal["True", "False", "Unknown"]
TRUE: ConditionStatus = "True"
FALSE: ConditionStatus = "False"
UNKNOWN: ConditionStatus = "Unknown"


class Types:
    """Condition types. Every kind has ``Ready``; the rest depend on the kind."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # Domain conditions.
    CONNECTED = "Connected"
    AVAILABLE = "Available"
    VALID = "Valid"
    SYNCED = "Synced"
    CONFLICT = "Conflict"
    PLANNED = "Planned"
    APPROVED = "Approved"
    APPLIED = "Applied"
    DRIFTED = "Drifted"


class Reasons:
    """Condition reasons, CamelCase. Grouped by who sets them."""

    # Generic, set by the reconcile wrapper.
    SUCCEEDED = "Succeeded"
    PROGRESSING = "Progressing"
    INVALID_SPEC = "InvalidSpec"
    DEPENDENCY_NOT_FOUND = "DependencyNotFound"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    RECONCILE_FAILED = "ReconcileFailed"
    SUSPENDED = "Suspended"
    DELETION_BLOCKED = "DeletionBlocked"
    # GitHub connections and repositories.
    SECRET_NOT_FOUND = "SecretNotFound"
    INVALID_PRIVATE_KEY = "InvalidPrivateKey"
    INSTALLATION_NOT_FOUND = "InstallationNotFound"
    INSTALLATION_SUSPENDED = "InstallationSuspended"
    UNAUTHORIZED = "Unauthorized"
    RATE_LIMITED = "RateLimited"
    GITHUB_UNAVAILABLE = "GitHubUnavailable"
    REPOSITORY_NOT_FOUND = "RepositoryNotFound"
    REPOSITORY_NOT_ALLOWED = "RepositoryNotAllowed"
    DELETION_FAILED = "DeletionFailed"
    # Templates and sync.
    INVALID_HCL = "InvalidHCL"
    TOO_LARGE = "TooLarge"
    BRANCH_NOT_FOUND = "BranchNotFound"
    PATH_NOT_FOUND = "PathNotFound"
    IN_SYNC = "InSync"
    PUSHED = "Pushed"
    PULLED = "Pulled"
    CONFLICT_OPENED = "ConflictOpened"
    NO_CONFLICT = "NoConflict"
    # Environments and plans.
    INVALID_REPO_CONFIG = "InvalidRepoConfig"
    ENGINE_NOT_FOUND = "EngineNotFound"
    PLAN_FAILED = "PlanFailed"
    APPLY_FAILED = "ApplyFailed"
    AWAITING_APPROVAL = "AwaitingApproval"
    SUPERSEDED = "Superseded"
    LOCKED = "Locked"
    # Runner Jobs (spec.runner.mode Job) that end without a result from the engine.
    RUN_FAILED = "RunFailed"
    RUN_TIMED_OUT = "RunTimedOut"
    # Drift.
    NO_DRIFT = "NoDrift"
    INFRASTRUCTURE_DRIFT = "InfrastructureDrift"
    SOURCE_AHEAD = "SourceAhead"
    TEMPLATE_DIVERGED = "TemplateDiverged"
    DRIFT_CHECK_FAILED = "DriftCheckFailed"


class Condition(base.Status):
    """One entry of ``status.conditions``."""

    type: str = pydantic.Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: ConditionStatus = pydantic.Field(description="True, False or Unknown.")
    reason: str = pydantic.Field(
        default="", description="A CamelCase, machine-readable reason for the condition's last transition."
    )
    message: str = pydantic.Field(default="", description="A human-readable message with details.")
    last_transition_time: str | None = pydantic.Field(
        default=None, description="When the condition last changed its status (RFC 3339)."
    )
    observed_generation: int | None = pydantic.Field(
        default=None, description="The metadata.generation the condition was set from."
    )


def timestamp(now: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision and a ``Z``, as Kubernetes writes it."""
    return now.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of that type, if any."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    *,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    generation: int | None,
    now: datetime.datetime,
) -> tuple[Condition, ...]:
    """Return the conditions with one set: ``lastTransitionTime`` moves only when the status changes."""
    previous = find(conditions, type_)
    unchanged = previous is not None and previous.status == status and previous.last_transition_time
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time if unchanged and previous else timestamp(now),
        observed_generation=generation,
    )
    if previous is None:
        return (*conditions, new)
    return tuple(new if c.type == type_ else c for c in conditions)


def remove(conditions: Sequence[Condition], type_: str) -> tuple[Condition, ...]:
    return tuple(c for c in conditions if c.type != type_)


# Conditions whose True means something is wrong ("abnormal-true" / negative polarity).
NEGATIVE_POLARITY = frozenset({Types.RECONCILING, Types.STALLED, Types.CONFLICT, Types.DRIFTED})


def summarize(
    conditions: Sequence[Condition],
    *,
    depends_on: Iterable[str],
    generation: int | None,
    now: datetime.datetime,
    ready_message: str = "",
) -> tuple[Condition, ...]:
    """Compute ``Ready`` from the other conditions, like Flux's ``summarize`` helper.

    Order of precedence: ``Stalled`` (a terminal error) → any listed condition in its bad polarity →
    ``Reconciling`` (work in progress) → every listed condition good → Ready=True.
    A listed condition that is missing counts as Unknown, except an abnormal-true one (Conflict, Drifted),
    which is absent while all is well.
    """
    stalled = find(conditions, Types.STALLED)
    if stalled is not None and stalled.status == TRUE:
        return set_condition(
            conditions,
            type_=Types.READY,
            status=FALSE,
            reason=stalled.reason,
            message=stalled.message,
            generation=generation,
            now=now,
        )
    pending: Condition | None = None
    for type_ in depends_on:
        found = find(conditions, type_)
        if found is None and type_ in NEGATIVE_POLARITY:
            continue  # abnormal-true conditions are absent while all is well
        if found is None or found.status == UNKNOWN:
            pending = pending or found or Condition(type=type_, status=UNKNOWN, reason=Reasons.PROGRESSING)
            continue
        bad = found.status == (TRUE if type_ in NEGATIVE_POLARITY else FALSE)
        if bad:
            return set_condition(
                conditions,
                type_=Types.READY,
                status=FALSE,
                reason=found.reason,
                message=found.message,
                generation=generation,
                now=now,
            )
    reconciling = find(conditions, Types.RECONCILING)
    if reconciling is not None and reconciling.status == TRUE:
        pending = reconciling
    if pending is not None:
        message = pending.message or f"Waiting for {pending.type}."
        return set_condition(
            conditions,
            type_=Types.READY,
            status=UNKNOWN,
            reason=pending.reason or Reasons.PROGRESSING,
            message=message,
            generation=generation,
            now=now,
        )
    return set_condition(
        conditions,
        type_=Types.READY,
        status=TRUE,
        reason=Reasons.SUCCEEDED,
        message=ready_message,
        generation=generation,
        now=now,
    )
