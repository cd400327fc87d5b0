"""Read ``terraform show -json`` (and state files) into :mod:`chkmate.domain.plans` values, secrets masked.

The plan JSON holds every value in clear, sensitive ones included (variables, outputs, attributes): it must
never be stored or shown. :func:`parse_plan` keeps what later steps need, with values Terraform marks
sensitive replaced by :data:`plans.SENSITIVE`, unknown ones by :data:`KNOWN_AFTER_APPLY`, and any known
secret string redacted wherever it appears. :func:`sensitive_values` lists the secret strings a plan holds,
for redacting engine logs and texts with :func:`redact`. OpenTofu writes the same format.

Format: https://developer.hashicorp.com/terraform/internals/json-format. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chkmate.domain import plans

KNOWN_AFTER_APPLY = "(known after apply)"
REDACTED = "(redacted)"

# A resource block's header line in HCL: resource "type" "name" {  /  data "type" "name" {
_BLOCK_HEADER = re.compile(r'^\s*(resource|data)\s+"([^"]+)"\s+"([^"]+)"')


def parse_plan(
    show_json: Mapping[str, Any], *, refresh_only: bool = False, secrets: Iterable[str] = ()
) -> plans.PlanResult:
    """The changes and output changes of a plan (``text``/``engine`` left for the caller to fill).

    A refresh-only plan changes no resource: its ``changes`` are the drift Terraform found
    (``resource_drift``), i.e. what applying it would write to the state. ``secrets`` are redacted from every
    value on top of the plan's own :func:`sensitive_values`.
    """
    hidden = _ordered({*secrets, *sensitive_values(show_json)})
    key = "resource_drift" if refresh_only else "resource_changes"
    changes = tuple(_resource_change(item, hidden) for item in show_json.get(key) or ())
    outputs = {name: action(item["actions"]) for name, item in (show_json.get("output_changes") or {}).items()}
    return plans.PlanResult(changes=changes, output_changes=outputs)


def action(actions: Iterable[str]) -> plans.Action:
    """Terraform's action list as one :data:`plans.Action`; both orders of delete+create are a replacement.

    ``forget`` (a ``removed`` block keeping the real object) counts as a delete: plans.Action has no word
    for it, and overstating a removal is the safe side for an approval.
    """
    found = tuple(actions)
    if set(found) == {"delete", "create"}:
        return "replace"
    if found in (("no-op",), ("create",), ("read",), ("update",), ("delete",)):
        return found[0]
    if found == ("forget",):
        return "delete"
    raise ValueError(f"unknown terraform action list {list(found)}")


def parse_state_outputs(state_json: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a state file (format version 4), sensitive ones masked."""
    outputs = state_json.get("outputs") or {}
    return {name: plans.SENSITIVE if item.get("sensitive") else item.get("value") for name, item in outputs.items()}


def sensitive_values(show_json: Mapping[str, Any]) -> set[str]:
    """Every string the plan marks sensitive: root variables, outputs and resource attributes.

    Only strings are collected (and no empty ones): numbers and booleans would redact every matching digit
    or word of a log, and they are rarely secrets.
    """
    found: set[str] = set()
    variables = ((show_json.get("configuration") or {}).get("root_module") or {}).get("variables") or {}
    for name, value in (show_json.get("variables") or {}).items():
        if (variables.get(name) or {}).get("sensitive"):
            found.update(strings(value.get("value")))
    for outputs in _output_maps(show_json):
        for item in outputs.values():
            if item.get("sensitive"):
                found.update(strings(item.get("value")))
    for item in (show_json.get("output_changes") or {}).values():
        found.update(_masked_strings(item.get("before"), item.get("before_sensitive")))
        found.update(_masked_strings(item.get("after"), item.get("after_sensitive")))
    for key in ("resource_changes", "resource_drift"):
        for item in show_json.get(key) or ():
            change = item.get("change") or {}
            found.update(_masked_strings(change.get("before"), change.get("before_sensitive")))
            found.update(_masked_strings(change.get("after"), change.get("after_sensitive")))
    for resource in _state_resources(show_json):
        found.update(_masked_strings(resource.get("values"), resource.get("sensitive_values")))
    found.discard("")
    return found


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (a string or nested lists/dicts) with every occurrence of a secret replaced by ``(redacted)``.

    Longer secrets go first, so a secret containing another is replaced whole.
    """
    ordered = _ordered(secrets)
    return _redact(value, ordered) if ordered else value


def strings(value: Any) -> Iterator[str]:
    """The strings in ``value``, however deeply nested in lists and dicts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """:func:`redact` for a text (a log, a plan, an error message)."""
    redacted: str = redact(text, secrets)
    return redacted


def declarations(files: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Where each resource of a module is declared: ``type.name`` / ``data.type.name`` → (file, line).

    ``files`` are the module's ``.tf`` files by name. A line scan of block headers, which is what plan JSON
    lacks; resources made by JSON configuration (``.tf.json``) are not located.
    """
    found: dict[str, tuple[str, int]] = {}
    for path, text in sorted(files.items()):
        if not path.endswith(".tf"):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            match = _BLOCK_HEADER.match(line)
            if match:
                kind, type_, name = match.groups()
                address = f"{type_}.{name}" if kind == "resource" else f"data.{type_}.{name}"
                found.setdefault(address, (path, number))
    return found


def locate(result: plans.PlanResult, declared: Mapping[str, tuple[str, int]]) -> plans.PlanResult:
    """``result`` with ``file``/``line`` set on the root-module changes found in ``declared``."""
    located = []
    for change in result.changes:
        where = None if change.module else declared.get(_config_address(change))
        if where is not None:
            change = dataclasses.replace(change, file=where[0], line=where[1])
        located.append(change)
    return dataclasses.replace(result, changes=tuple(located))


def _resource_change(item: Mapping[str, Any], secrets: list[str]) -> plans.ResourceChange:
    change = item.get("change") or {}
    address = item["address"]
    if item.get("deposed"):
        address = f"{address} (deposed object {item['deposed']})"
    found = action(change.get("actions") or ["no-op"])
    if item.get("mode") == "data" and found != "no-op":
        found = "read"
    return plans.ResourceChange(
        address=address,
        type=item.get("type", ""),
        name=item.get("name", ""),
        action=found,
        before=_values(change.get("before"), None, change.get("before_sensitive"), secrets),
        after=_values(change.get("after"), change.get("after_unknown"), change.get("after_sensitive"), secrets),
        module=item.get("module_address", ""),
    )


def _values(value: Any, unknown: Any, sensitive: Any, secrets: list[str]) -> Mapping[str, Any] | None:
    if value is None and not unknown:
        return None
    shown = _redact(_mask(_fill_unknown(value, unknown), sensitive), secrets)
    return shown if isinstance(shown, Mapping) else None


def _fill_unknown(value: Any, unknown: Any) -> Any:
    """``value`` with the parts ``after_unknown`` marks (``true`` at that place) as :data:`KNOWN_AFTER_APPLY`."""
    if unknown is True:
        return KNOWN_AFTER_APPLY
    if isinstance(unknown, Mapping) and (value is None or isinstance(value, Mapping)):
        base = dict(value or {})
        for key, mark in unknown.items():
            if key in base or _has_unknown(mark):
                base[key] = _fill_unknown(base.get(key), mark)
        return base
    if isinstance(unknown, list) and isinstance(value, list):
        return [_fill_unknown(v, unknown[i] if i < len(unknown) else False) for i, v in enumerate(value)]
    return value


def _has_unknown(mark: Any) -> bool:
    if isinstance(mark, Mapping):
        return any(_has_unknown(m) for m in mark.values())
    if isinstance(mark, list):
        return any(_has_unknown(m) for m in mark)
    return mark is True


def _mask(value: Any, sensitive: Any) -> Any:
    """``value`` with the parts the sensitivity mask marks ``true`` replaced by :data:`plans.SENSITIVE`."""
    if sensitive is True:
        return plans.SENSITIVE
    if isinstance(sensitive, Mapping) and isinstance(value, Mapping):
        return {k: _mask(v, sensitive.get(k)) for k, v in value.items()}
    if isinstance(sensitive, list) and isinstance(value, list):
        return [_mask(v, sensitive[i] if i < len(sensitive) else False) for i, v in enumerate(value)]
    return value


def _masked_strings(value: Any, sensitive: Any) -> Iterator[str]:
    """The strings under the parts of ``value`` the sensitivity mask marks ``true``."""
    if sensitive is True:
        yield from strings(value)
    elif isinstance(sensitive, Mapping) and isinstance(value, Mapping):
        for key, mark in sensitive.items():
            yield from _masked_strings(value.get(key), mark)
    elif isinstance(sensitive, list) and isinstance(value, list):
        for item, mark in zip(value, sensitive, strict=False):
            yield from _masked_strings(item, mark)


def _ordered(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


def _output_maps(show_json: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield (show_json.get("planned_values") or {}).get("outputs") or {}
    yield ((show_json.get("prior_state") or {}).get("values") or {}).get("outputs") or {}


def _state_resources(show_json: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Resources of planned values and prior state, in every module."""
    roots = [
        (show_json.get("planned_values") or {}).get("root_module"),
        ((show_json.get("prior_state") or {}).get("values") or {}).get("root_module"),
    ]
    pending = [root for root in roots if root]
    while pending:
        module = pending.pop()
        yield from module.get("resources") or ()
        pending.extend(module.get("child_modules") or ())


def _config_address(change: plans.ResourceChange) -> str:
    """``aws_s3_bucket.logs[0]`` → ``aws_s3_bucket.logs``: the address of the block that declares it."""
    prefix = "data." if change.address.startswith("data.") else ""
    return f"{prefix}{change.type}.{change.name}"
