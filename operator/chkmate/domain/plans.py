"""What a plan says, whichever engine made it: resource changes, their counts, and the plan's identity.

The terraform/tofu engines fill these from ``terraform show -json``; the builtin engine from parsed HCL.
Cost estimates, security rules and pull request comments read these values. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

# Terraform's action lists, normalised (https://developer.hashicorp.com/terraform/internals/json-format).
Action = Literal["no-op", "create", "read", "update", "delete", "replace"]


@dataclasses.dataclass(frozen=True)
class ResourceChange:
    """One resource in a plan: its address, type, what happens to it, and its configuration before/after.

    ``before``/``after`` hold attribute values (``None`` when absent, e.g. ``before`` of a create); values
    Terraform marks sensitive are already replaced by :data:`SENSITIVE` by whoever built the change.
    ``file``/``line`` say where the resource is declared, when known (builtin engine, HCL parse).
    """

    address: str
    type: str
    name: str
    action: Action
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    module: str = ""
    file: str | None = None
    line: int | None = None

    @property
    def changes_something(self) -> bool:
        return self.action not in ("no-op", "read")


SENSITIVE = "(sensitive value)"


@dataclasses.dataclass(frozen=True)
class Summary:
    """Counts as Terraform prints them: a replacement counts in both add and destroy."""

    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.destroy)

    def line(self) -> str:
        if self.empty:
            return "No changes."
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy."


def summarize(changes: Iterable[ResourceChange]) -> Summary:
    add = change = destroy = 0
    for item in changes:
        if item.action == "create":
            add += 1
        elif item.action == "update":
            change += 1
        elif item.action == "delete":
            destroy += 1
        elif item.action == "replace":
            add += 1
            destroy += 1
    return Summary(add, change, destroy)


@dataclasses.dataclass(frozen=True)
class PlanResult:
    """Everything a plan run produced that later steps need (the binary plan file travels separately)."""

    changes: tuple[ResourceChange, ...]
    output_changes: Mapping[str, Action] = dataclasses.field(default_factory=dict)
    text: str = ""  # the human-readable plan, secrets already redacted
    engine: str = ""
    engine_version: str = ""

    @property
    def summary(self) -> Summary:
        return summarize(self.changes)

    @property
    def has_changes(self) -> bool:
        """Like ``-detailed-exitcode`` 2: a resource or an output would change."""
        return not self.summary.empty or any(a != "no-op" for a in self.output_changes.values())


PLAN_NAME_SHA = 10  # hex digits of the commit in a branch Plan's name


def branch_plan_name(environment: str, commit: str) -> str:
    """The name of an Environment's Plan of a commit of its branch: one per commit, so creating it twice is
    harmless."""
    return f"{environment}-{commit[:PLAN_NAME_SHA]}"


def plan_id(*, revision: str, inputs: Mapping[str, Any], plan_digest: str) -> str:
    """The identity approvals bind to: the revision, the inputs (vars, engine, destroy...) and the plan.

    Same code, same inputs and the same planned changes give the same id; anything else gives another.
    """
    canonical = json.dumps({"revision": revision, "inputs": inputs, "plan": plan_digest}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def digest(result: PlanResult) -> str:
    """A digest of the planned changes (not of the text, which carries timestamps on some engines)."""
    payload = [[c.address, c.action, _stable(c.before), _stable(c.after)] for c in sorted(result.changes, key=_key)]
    outputs = sorted(result.output_changes.items())
    return hashlib.sha256(json.dumps([payload, outputs], sort_keys=True, default=str).encode()).hexdigest()


def _key(change: ResourceChange) -> str:
    return change.address


def _stable(value: Mapping[str, Any] | None) -> Any:
    return None if value is None else json.loads(json.dumps(value, sort_keys=True, default=str))
