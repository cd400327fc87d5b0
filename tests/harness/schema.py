"""Structural-schema pruning, defaulting and validation, as the Kubernetes API server applies them.

The API server treats a custom resource's body in this order: drop unknown fields (``prune``),
fill in declared defaults (``apply_defaults``), then check the result (``validate``). The functions
here follow that contract for an ``openAPIV3Schema`` of a CustomResourceDefinition version:
types, ``required``, ``enum``, ``pattern``, lengths, bounds, item and property counts, ``nullable``,
``format: date-time`` (leniently), ``additionalProperties`` maps, ``x-kubernetes-preserve-unknown-fields``
and ``x-kubernetes-int-or-string``. Error wording mimics the API server's field errors.

Not covered: ``allOf``/``anyOf``/``oneOf``/``not``, CEL rules (``x-kubernetes-validations``),
list types (``x-kubernetes-list-type``) and embedded resources.

Pure: no I/O, no kmock or kopf imports; inputs are never mutated.
"""

import copy
import dataclasses
import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One rejected field, shaped like a cause in a Kubernetes ``Status``."""

    field: str  # e.g. "spec.items[0].name"
    reason: str  # a Kubernetes CauseType, e.g. "FieldValueRequired"
    detail: str  # e.g. 'Unsupported value: "Sideways": supported values: "Push", "Pull"'

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def prune(schema: Schema, value: Any) -> Any:
    """Drop the fields the schema does not declare, and nulls of fields that are not nullable."""
    if isinstance(value, dict):
        return _prune_object(schema, value)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [prune(items, item) for item in value]
    return value


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Fill in the ``default`` of every absent property, recursively (also inside the defaults)."""
    if isinstance(value, dict):
        result = dict(value)
        for key, subschema in schema.get("properties", {}).items():
            if key not in result and "default" in subschema:
                result[key] = copy.deepcopy(subschema["default"])
        return {key: _apply_child_defaults(schema, key, item) for key, item in result.items()}
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [apply_defaults(items, item) for item in value]
    return value


def validate(schema: Schema, value: Any, path: str = "") -> list[FieldError]:
    """Return every violation of the schema by the value, in document order (empty if valid)."""
    if value is None:
        return [] if schema.get("nullable") or not _declared_types(schema) else [_type_error(schema, path, value)]
    if not _has_valid_type(schema, value):
        return [_type_error(schema, path, value)]
    errors = [error for check in _VALUE_CHECKS if (error := check(schema, value, path)) is not None]
    if isinstance(value, dict):
        errors += _validate_object(schema, value, path)
    elif isinstance(value, list):
        errors += _validate_array(schema, value, path)
    return errors


def _child_schema(schema: Schema, key: str) -> Schema | None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if key in properties:
        return properties[key]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _keeps_unknown(schema: Schema) -> bool:
    return bool(schema.get(PRESERVE_UNKNOWN)) or schema.get("additionalProperties") is True


def _prune_object(schema: Schema, value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        subschema = _child_schema(schema, key)
        if subschema is None:
            if _keeps_unknown(schema):
                result[key] = item
        elif item is not None or subschema.get("nullable"):
            result[key] = prune(subschema, item)
    return result


def _apply_child_defaults(schema: Schema, key: str, value: Any) -> Any:
    subschema = _child_schema(schema, key)
    return value if subschema is None else apply_defaults(subschema, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate_object(schema: Schema, value: dict[str, Any], path: str) -> list[FieldError]:
    errors = [
        FieldError(_join(path, key), "FieldValueRequired", "Required value")
        for key in schema.get("required", [])
        if key not in value
    ]
    for key, item in value.items():
        subschema = _child_schema(schema, key)
        if subschema is not None:
            errors += validate(subschema, item, _join(path, key))
    return errors


def _validate_array(schema: Schema, value: list[Any], path: str) -> list[FieldError]:
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return []
    return [error for index, item in enumerate(value) for error in validate(items, item, f"{path}[{index}]")]


# Type checks. JSON has one number type: an integral float (1.0) is a valid integer, as in the server.
def _is_integer(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "number": _is_number,
}


def _declared_types(schema: Schema) -> list[str]:
    if schema.get(INT_OR_STRING):
        return ["integer", "string"]
    declared = schema.get("type")
    return [declared] if isinstance(declared, str) else []


def _has_valid_type(schema: Schema, value: Any) -> bool:
    declared = _declared_types(schema)
    return not declared or any(_TYPE_CHECKS[name](value) for name in declared if name in _TYPE_CHECKS)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return next(name for name in ("boolean", "integer", "number", "string", "array", "object")
                if _TYPE_CHECKS[name](value))


def _type_error(schema: Schema, path: str, value: Any) -> FieldError:
    actual = json.dumps(_json_type(value))
    expected = ",".join(_declared_types(schema))
    return FieldError(path, "FieldValueTypeInvalid",
                      f"Invalid value: {actual}: {path or 'body'} in body must be of type {expected}: {actual}")


# Value checks: each applies when its keyword is present and the value has the matching type.
def _shown(value: Any) -> str:
    """Render a value as the API server quotes it in messages (containers by their type)."""
    return json.dumps(value) if not isinstance(value, dict | list) else json.dumps(_json_type(value))


def _invalid(path: str, value: Any, rule: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path or 'body'} in body {rule}")


def _check_enum(schema: Schema, value: Any, path: str) -> FieldError | None:
    allowed = schema.get("enum")
    if allowed is None or value in allowed:
        return None
    supported = ", ".join(_shown(option) for option in allowed)
    return FieldError(path, "FieldValueNotSupported",
                      f"Unsupported value: {_shown(value)}: supported values: {supported}")


def _check_pattern(schema: Schema, value: Any, path: str) -> FieldError | None:
    pattern = schema.get("pattern")
    if pattern is None or not isinstance(value, str) or re.search(pattern, value):
        return None
    return _invalid(path, value, f"should match '{pattern}'")


def _check_length(schema: Schema, value: Any, path: str) -> FieldError | None:
    if not isinstance(value, str):
        return None
    if "minLength" in schema and len(value) < schema["minLength"]:
        return _invalid(path, value, f"should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return _invalid(path, value, f"should be at most {schema['maxLength']} chars long")
    return None


def _check_bounds(schema: Schema, value: Any, path: str) -> FieldError | None:
    if not _is_number(value):
        return None
    if "minimum" in schema:
        minimum, exclusive = schema["minimum"], schema.get("exclusiveMinimum", False)
        if value < minimum or (exclusive and value == minimum):
            return _invalid(path, value, f"should be greater than {'' if exclusive else 'or equal to '}{minimum}")
    if "maximum" in schema:
        maximum, exclusive = schema["maximum"], schema.get("exclusiveMaximum", False)
        if value > maximum or (exclusive and value == maximum):
            return _invalid(path, value, f"should be less than {'' if exclusive else 'or equal to '}{maximum}")
    return None


def _check_multiple_of(schema: Schema, value: Any, path: str) -> FieldError | None:
    factor = schema.get("multipleOf")
    if factor is None or not _is_number(value) or (value / factor).is_integer():
        return None
    return _invalid(path, value, f"should be a multiple of {factor}")


def _check_items_count(schema: Schema, value: Any, path: str) -> FieldError | None:
    if not isinstance(value, list):
        return None
    if "minItems" in schema and len(value) < schema["minItems"]:
        return _invalid(path, len(value), f"should have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
        return FieldError(path, "FieldValueTooMany", detail)
    return None


def _check_properties_count(schema: Schema, value: Any, path: str) -> FieldError | None:
    if not isinstance(value, dict):
        return None
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        return _invalid(path, len(value), f"should have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return _invalid(path, len(value), f"should have at most {schema['maxProperties']} properties")
    return None


def _check_date_time(schema: Schema, value: Any, path: str) -> FieldError | None:
    if schema.get("format") != "date-time" or not isinstance(value, str):
        return None
    try:
        datetime.datetime.fromisoformat(value)  # lenient: any ISO 8601 that Python reads, incl. "Z"
    except ValueError:
        return FieldError(path, "FieldValueInvalid",
                          f"Invalid value: {_shown(value)}: {path or 'body'} in body must be of type date-time: "
                          f"{_shown(value)}")
    return None


_VALUE_CHECKS: list[Callable[[Schema, Any, str], FieldError | None]] = [
    _check_enum,
    _check_length,
    _check_pattern,
    _check_bounds,
    _check_multiple_of,
    _check_items_count,
    _check_properties_count,
    _check_date_time,
]


# Built-in kinds (Deployments, Jobs, ...) are checked against Kubernetes' own published schemas instead.
KUBERNETES_VERSION = "1.35"


def kubernetes_validate() -> Any:
    """The kubernetes-validate package (installed by dev/install-tools.sh); a test fails clearly without it."""
    try:
        import kubernetes_validate as found  # type: ignore[import-untyped]
    except ImportError:
        import pytest

        pytest.fail("kubernetes-validate is not installed: run `bash dev/install-tools.sh`", pytrace=False)
    return found


def kubernetes_errors(obj: Mapping[str, Any]) -> list[str]:
    """What is wrong with a built-in object against :data:`KUBERNETES_VERSION`'s schemas, strictly (unknown fields
    too); raises kubernetes-validate's ``SchemaNotFoundError`` for a kind it has no schema of."""
    validator = kubernetes_validate()
    try:
        validator.validate(dict(obj), KUBERNETES_VERSION, strict=True)
    except validator.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    return []
