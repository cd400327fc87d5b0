"""What a drift check found, in words: pure functions over the plans a check made.

:class:`Findings` holds one completed check of an Environment (the last applied revision planned against the
stored state, the refresh-only plan, the branch head, the linked Template's divergence); the functions here
turn it into the ``Drifted`` condition's message and reason, the drift report, and the Adopt pull request's
description. Used by :mod:`chkmate.controllers.environment_drift` and :mod:`chkmate.controllers.drift_actions`.
No I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from chkmate.api import conditions
from chkmate.domain import plans as plan_logic
from chkmate.domain import redaction

SHORT_SHA = 12
PLAN_NAME_SHA = plan_logic.PLAN_NAME_SHA  # as the Environment controller names the Plan of a commit
# Listed in the condition message: statuses stay small whatever drifted.
LISTED_IN_MESSAGE = 10
# What a plan's create/delete means when the code is right and the infrastructure drifted.
_MISSING = {"create": "missing from the infrastructure", "delete": "not in the code", "replace": "to be replaced"}
# What a refresh-only plan's changes mean: Terraform found the object changed or gone.
_CHANGED_OUTSIDE = {"delete": "deleted outside Terraform"}


@dataclasses.dataclass(frozen=True)
class Findings:
    """One completed check. ``planned``: the last applied revision planned against the state (what Reconcile
    would do); ``outside``: the refresh-only plan (what changed outside Terraform; None when the engine cannot
    tell); ``head_descends``: the branch head descends from the applied commit (False: history was rewritten);
    ``template``: why the Template of the Environment's link differs from the repository beyond what the link's
    direction explains (None: it does not, or the Environment has no link)."""

    revision: str
    head: str
    planned: plan_logic.PlanResult
    outside: plan_logic.PlanResult | None
    plan_id: str
    head_descends: bool = True
    template: str | None = None

    @property
    def applied_commit(self) -> str:
        return commit_of(self.revision)

    @property
    def infrastructure(self) -> bool:
        return self.planned.has_changes or (self.outside is not None and self.outside.has_changes)

    @property
    def source_ahead(self) -> bool:
        return self.head != self.applied_commit

    @property
    def source(self) -> bool:
        """Source drift: the branch moved on, or the linked Template went its own way."""
        return self.source_ahead or self.template is not None

    @property
    def resources(self) -> tuple[str, ...]:
        """Addresses of the drifted resources, from both plans."""
        changes = [*self.planned.changes, *(self.outside.changes if self.outside is not None else ())]
        return tuple(sorted({c.address for c in changes if c.changes_something}))


def commit_of(revision: str) -> str:
    return revision.rsplit(":", 1)[-1]


def changed_attributes(change: plan_logic.ResourceChange) -> tuple[str, ...]:
    """The top-level attributes whose values differ before and after (none for a create or delete)."""
    if change.action in ("create", "delete"):
        return ()
    before, after = change.before or {}, change.after or {}
    return tuple(sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key)))


def summarize(findings: Findings) -> str:
    """What drifted, in a few sentences: addresses and attribute names, never values."""
    parts = []
    if findings.infrastructure:
        parts.append(_infrastructure_sentence(findings))
    if findings.source_ahead:
        parts.append(_source_sentence(findings))
    if findings.template is not None:
        parts.append(findings.template)
    return " ".join(parts) or (
        f"No drift: the infrastructure matches {_short(findings.revision)} and the branch has not moved."
    )


def _infrastructure_sentence(findings: Findings) -> str:
    planned = findings.planned
    sentence = f"The infrastructure differs from {_short(findings.revision)}"
    listed = _listed(planned, _MISSING)
    sentence += f": {listed}" if listed else ""
    if not planned.summary.empty:
        sentence += f". Reconcile would: {planned.summary.line()}"
    else:
        sentence += ". Reconcile would update outputs only." if planned.has_changes else "."
    if findings.outside is not None and findings.outside.has_changes:
        sentence += f" Changed outside Terraform: {_listed(findings.outside, _CHANGED_OUTSIDE)}."
    return sentence


def _listed(result: plan_logic.PlanResult, words: Mapping[str, str]) -> str:
    items = [
        f"{c.address} ({', '.join(changed_attributes(c)) or words.get(c.action, c.action)})"
        for c in result.changes
        if c.changes_something
    ]
    outputs = sorted(name for name, action in result.output_changes.items() if action != "no-op")
    more = len(items) - LISTED_IN_MESSAGE
    items = items[:LISTED_IN_MESSAGE] + ([f"and {more} more"] if more > 0 else [])
    if outputs:
        items.append(f"outputs {', '.join(outputs)}")
    return "; ".join(items)


def _source_sentence(findings: Findings) -> str:
    branch, head, applied = findings.revision.split("@", 1)[0], findings.head[:SHORT_SHA], findings.applied_commit
    if findings.head_descends:
        return f"Branch {branch} is at {head}, ahead of the last applied commit {applied[:SHORT_SHA]}."
    return (
        f"Branch {branch} is at {head} and no longer contains the last applied commit {applied[:SHORT_SHA]} "
        "(its history was rewritten)."
    )


def _short(revision: str) -> str:
    return revision[: revision.index(":") + 1 + SHORT_SHA] if ":" in revision else revision


def report_text(findings: Findings) -> str:
    """The drift Plan's output: the summary, then both plans as the engine printed them (already redacted)."""
    sections = [
        f"Drift check of {findings.revision} (branch head {findings.head}).",
        summarize(findings),
        "",
        "# The last applied revision planned against the stored state (what Reconcile would do)",
        findings.planned.text or findings.planned.summary.line(),
    ]
    if findings.outside is not None:
        sections += [
            "",
            "# Refresh-only plan (what changed outside Terraform; what Adopt accepts into the state)",
            findings.outside.text or findings.outside.summary.line(),
        ]
    return "\n".join(sections) + "\n"


def pull_request_body(environment: str, findings: Findings, *, secrets: list[str]) -> str:
    """The Adopt pull request's description (and the file it commits): what the code must say now."""
    lines = [
        f"The drift check of Environment `{environment}` found the infrastructure different from "
        f"`{findings.revision}`. Its drift action is **Adopt**: the live values were accepted into the Terraform "
        "state. Change the code so that it describes them, and delete this file; or close this pull request and "
        "set `driftDetection.action: Reconcile` to undo the drift instead.",
        "",
        "## What differs (the infrastructure, then the code)",
        "",
    ]
    for change in findings.planned.changes:
        if change.changes_something:
            lines += _change_lines(change)
    for name, action in sorted(findings.planned.output_changes.items()):
        if action != "no-op":
            lines.append(f"- output `{name}`: {action}")
    return redaction.redact("\n".join(lines) + "\n", secrets)


def _change_lines(change: plan_logic.ResourceChange) -> list[str]:
    where = f" ({change.file}:{change.line})" if change.file and change.line else ""
    attributes = changed_attributes(change)
    if not attributes:
        return [f"- `{change.address}`{where}: {_MISSING.get(change.action, change.action)}"]
    before, after = change.before or {}, change.after or {}
    return [
        f"- `{change.address}`{where}:",
        *(
            f"  - `{name}`: {json.dumps(before.get(name))}, the code says {json.dumps(after.get(name))}"
            for name in attributes
        ),
    ]


def adopt_digest(findings: Findings) -> str:
    """Names the Adopt branch: the resource changes only, which adopting leaves as they are (outputs move)."""
    return plan_logic.digest(plan_logic.PlanResult(changes=findings.planned.changes))[:PLAN_NAME_SHA]


def condition(findings: Findings) -> tuple[conditions.ConditionStatus, str]:
    """The ``Drifted`` status and reason: infrastructure drift first, then the branch, then the Template."""
    if findings.infrastructure:
        return conditions.TRUE, conditions.Reasons.INFRASTRUCTURE_DRIFT
    if findings.source_ahead:
        return conditions.TRUE, conditions.Reasons.SOURCE_AHEAD
    if findings.template is not None:
        return conditions.TRUE, conditions.Reasons.TEMPLATE_DIVERGED
    return conditions.FALSE, conditions.Reasons.NO_DRIFT
