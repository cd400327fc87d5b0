"""Our own errors: each carries a condition reason and says whether retrying can help.

Controllers translate them to kopf's ``PermanentError``/``TemporaryError`` and to a condition in one place
(:mod:`chkmate.controllers.reconciling`). No I/O; imports nothing of kopf.
"""

from __future__ import annotations

from chkmate.api.conditions import Reasons


class ChkmateError(Exception):
    """An error with a CamelCase ``reason`` for conditions and Events.

    ``retryable`` says whether a retry may succeed without the user changing anything; ``retry_after``
    is the delay the cause asks for (e.g. GitHub's ``Retry-After``), or None for the operator's default.
    """

    reason: str = Reasons.RECONCILE_FAILED
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after


class InvalidSpec(ChkmateError):
    """The object's spec is not valid: only the user can fix it."""

    reason = Reasons.INVALID_SPEC


class DependencyNotFound(ChkmateError):
    """A referenced object does not exist (yet): retry later, it may be applied after us."""

    reason = Reasons.DEPENDENCY_NOT_FOUND
    retryable = True


class DependencyNotReady(ChkmateError):
    """A referenced object exists but is not Ready: retry later."""

    reason = Reasons.DEPENDENCY_NOT_READY
    retryable = True


class TransientError(ChkmateError):
    """Something outside our control failed and may work later (network, 5xx, rate limit)."""

    retryable = True
