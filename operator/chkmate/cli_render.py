"""How ``chkmate plan`` and ``chkmate drift`` show a plan: a terminal summary, JSON, or a pull request comment.

:func:`text` is the readable summary (resources with action symbols, the summary line, the cost estimate and the
security findings as tables); :func:`document` the ``--json`` document (schema version :data:`SCHEMA_VERSION`,
described in docs/cli.md: keys are only ever added within a version); :func:`markdown` the sticky comment body
(:func:`chkmate.domain.comments.plan_comment`). Pure: builds strings, prints nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from chkmate import local
from chkmate.domain import comments, costs, plans, security

SCHEMA_VERSION = 1
COST_LINES = 10  # the dearest resources shown in the terminal; --json has them all
FINDINGS = 20

SYMBOLS: Mapping[str, str] = {
    "create": "+",
    "update": "~",
    "delete": "-",
    "replace": "-/+",
    "read": "<=",
    "no-op": " ",
}
_COLORS: Mapping[str, str] = {"+": "32", "~": "33", "-": "31", "-/+": "35", "<=": "36"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def count(number: int, noun: str) -> str:
    """``1 resource``, ``2 resources``: English plurals of the nouns used here (all take an s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cost_line(estimate: costs.Estimate) -> str:
    """``$593.53 per month (+$593.53); 3 usage-based; 1 not priced``."""
    money = f"{costs.format_money(estimate.monthly)} per month ({costs.format_money(estimate.delta, signed=True)})"
    extra = [f"{len(estimate.usage_based)} usage-based"] if estimate.usage_based else []
    extra += [f"{len(estimate.unpriced)} not priced"] if estimate.unpriced else []
    return "; ".join([money, *extra])


def security_line(report: security.Report) -> str:
    """``54/100 (1 critical, 2 high, 1 low)``, or ``100/100, no findings``."""
    counts = [f"{count} {severity}" for severity, count in report.counts.items() if count]
    return f"{report.score}/100 ({', '.join(counts)})" if counts else f"{report.score}/100, no findings"


def drift_line(result: plans.PlanResult) -> str:
    drifted = sum(1 for change in result.changes if change.changes_something)
    outputs = sum(1 for action in result.output_changes.values() if action != "no-op")
    if not drifted and not outputs:
        return "No drift: the infrastructure matches the state."
    parts = [f"{count(drifted, 'resource')} changed outside Terraform"] if drifted else []
    parts += [f"{outputs} output{' differs' if outputs == 1 else 's differ'} from the state"] if outputs else []
    return "Drift: " + ", ".join(parts) + "."


# ---- the terminal ---------------------------------------------------------------------------------------------


def text(found: local.LocalPlan, *, color: bool = False) -> str:
    """The readable summary of a plan or drift check."""
    sections = [_header(found), _changes(found, color)]
    if found.cost is not None:
        sections.append(_cost(found.cost))
    if found.security is not None:
        sections.append(_security(found.security))
    notes = _notes(found)
    if notes:
        sections.append("\n".join(f"Note: {note}" for note in notes))
    return "\n\n".join(sections) + "\n"


def _header(found: local.LocalPlan) -> str:
    env = found.target.env
    engine = found.engine.kind if found.engine.kind != "builtin" else "builtin engine"
    version = found.result.engine_version
    rows = [
        ("Environment", f"{found.target.name} ({found.target.reason})"),
        ("Source", found.source.describe()),
        ("Folder", env.path),
        ("Engine", f"{engine} {version}".strip()),
    ]
    if env.region:
        rows.append(("Region", env.region))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def _changes(found: local.LocalPlan, color: bool) -> str:
    changed = [change for change in found.result.changes if change.action != "no-op"]
    lines = _table([["", _symbol(c.action, color), c.address, _location(c.file, c.line)] for c in changed])
    unchanged = len(found.result.changes) - len(changed)
    if unchanged:
        lines.append(f"({count(unchanged, 'resource')} unchanged)")
    summary = drift_line(found.result) if found.kind == "drift" else f"Plan: {found.result.summary.line()}"
    lines.append(summary)
    outputs = _output_line(found.result.output_changes)
    if outputs:
        lines.append(outputs)
    return "\n".join(lines)


def _symbol(action: str, color: bool) -> str:
    symbol = SYMBOLS[action]
    return f"\x1b[{_COLORS[symbol]}m{symbol}\x1b[0m" if color and symbol in _COLORS else symbol


def _output_line(outputs: Mapping[str, plans.Action]) -> str:
    changed = {name: action for name, action in outputs.items() if action != "no-op"}
    if not changed:
        return ""
    return "Outputs: " + ", ".join(f"{SYMBOLS[action]}{name}" for name, action in sorted(changed.items()))


def _cost(estimate: costs.Estimate) -> str:
    lines = [f"Cost ({estimate.region} prices, {estimate.currency}): {cost_line(estimate)}"]
    priced = sorted((line for line in estimate.lines if line.monthly), key=lambda line: (-_amount(line), line.address))
    rows = [["", line.address, costs.format_money(_amount(line)), line.note] for line in priced[:COST_LINES]]
    lines += _table(rows, right={2})
    rest = priced[COST_LINES:]
    if rest:
        total = costs.format_money(sum((_amount(line) for line in rest), Decimal(0)))
        lines.append(f"  ... and {count(len(rest), 'more priced resource')}, {total} together")
    if estimate.unpriced:
        lines.append("  Not priced: " + ", ".join(estimate.unpriced))
    if priced or estimate.usage_based or estimate.unpriced:  # else the prices used do not matter
        lines += [f"  {note}" for note in estimate.notes]
    return "\n".join(lines)


def _amount(line: costs.Line) -> Decimal:
    return line.monthly or Decimal(0)


def _security(report: security.Report) -> str:
    lines = [f"Security: {security_line(report)}"]
    rows = [
        [
            "",
            finding.severity,
            finding.rule_id,
            finding.address or "",
            _location(finding.file, finding.line),
            finding.message,
        ]
        for finding in report.findings[:FINDINGS]
    ]
    lines += _table(rows)
    hidden = len(report.findings) - FINDINGS
    if hidden > 0:
        lines.append(f"  ... and {count(hidden, 'more finding')} (see --json)")
    return "\n".join(lines)


def _notes(found: local.LocalPlan) -> list[str]:
    notes = []
    if found.engine.kind == "builtin" and not found.has_state:
        notes.append(
            "the builtin engine plans from the code alone: without --state every resource is new, and values "
            "only a provider knows show as (known after apply)"
        )
    return notes + list(found.warnings)


def _location(file: str | None, line: int | None) -> str:
    if file is None:
        return ""
    return f"{file}:{line}" if line else file


def _table(rows: Sequence[Sequence[str]], *, right: Iterable[int] = ()) -> list[str]:
    """Rows as aligned columns, two spaces apart (colour codes take no width); ``right`` columns align right."""
    if not rows:
        return []
    widths = [max(_width(row[column]) for row in rows) for column in range(len(rows[0]))]
    aligned = set(right)
    lines = []
    for row in rows:
        cells = []
        for column, cell in enumerate(row):
            pad = " " * (widths[column] - _width(cell))
            cells.append(pad + cell if column in aligned else cell + pad)
        lines.append("  ".join(cells).rstrip())
    return lines


def _width(cell: str) -> int:
    return len(_ANSI.sub("", cell))


# ---- JSON -----------------------------------------------------------------------------------------------------


def document(found: local.LocalPlan) -> dict[str, Any]:
    """The ``--json`` document (docs/cli.md describes every key)."""
    result = found.result
    return {
        "schemaVersion": SCHEMA_VERSION,
        "kind": found.kind,
        "environment": found.target.name,
        "source": {
            "location": found.source.location,
            "branch": found.source.branch,
            "commit": found.source.commit,
            "worktree": found.source.worktree,
            "path": found.target.env.path,
        },
        "engine": {"name": found.engine.kind, "version": result.engine_version, "note": found.engine.note or None},
        "hasChanges": result.has_changes,
        "exitCode": found.exit_code,
        "summary": {"add": result.summary.add, "change": result.summary.change, "destroy": result.summary.destroy},
        "resources": [_resource(change) for change in result.changes],
        "outputs": dict(sorted(result.output_changes.items())),
        "cost": _cost_document(found.cost) if found.cost is not None else None,
        "security": _security_document(found.security) if found.security is not None else None,
        "warnings": list(found.warnings),
        "digest": plans.digest(result),
    }


def _resource(change: plans.ResourceChange) -> dict[str, Any]:
    return {
        "address": change.address,
        "type": change.type,
        "name": change.name,
        "module": change.module,
        "action": change.action,
        "file": change.file,
        "line": change.line,
    }


def _cost_document(estimate: costs.Estimate) -> dict[str, Any]:
    return {
        "currency": estimate.currency,
        "region": estimate.region,
        "monthly": _decimal(estimate.monthly),
        "delta": _decimal(estimate.delta),
        "usageBased": list(estimate.usage_based),
        "unpriced": list(estimate.unpriced),
        "notes": list(estimate.notes),
        "lines": [
            {
                "address": line.address,
                "type": line.type,
                "pricing": line.pricing,
                "monthly": None if line.monthly is None else _decimal(line.monthly),
                "note": line.note,
            }
            for line in estimate.lines
        ],
    }


def _decimal(amount: Decimal) -> str:
    """An amount in the currency with two decimals, as text (JSON numbers would lose cents to floats)."""
    return str(amount.quantize(costs.CENT))


def _security_document(report: security.Report) -> dict[str, Any]:
    return {
        "score": report.score,
        "counts": dict(report.counts),
        "findings": [
            {
                "ruleId": f.rule_id,
                "severity": f.severity,
                "title": f.title,
                "address": f.address,
                "file": f.file,
                "line": f.line,
                "message": f.message,
            }
            for f in report.findings
        ],
    }


# ---- the pull request comment ---------------------------------------------------------------------------------


def markdown(found: local.LocalPlan) -> str:
    """The sticky comment body, in one part (the plan keeps its tail when it is too long)."""
    drift = found.kind == "drift"
    summary = drift_line(found.result) if drift else found.result.summary.line()
    details = security.markdown(found.security) if found.security is not None and found.security.findings else ""
    engine = f"{found.engine.kind} {found.result.engine_version}".strip()
    bodies = comments.plan_comment(
        f"{found.target.name}/drift" if drift else found.target.name,
        found.source.revision,
        summary,
        cost_line(found.cost) if found.cost is not None else "",
        security_line(found.security) if found.security is not None else "",
        found.result.text,
        status="planned",
        secrets=found.secrets,
        details=details,
        footer=f"<sub>{'Drift check' if drift else 'Planned'} by `chkmate` with the {engine} engine.</sub>",
        max_parts=1,
    )
    return bodies[0]
