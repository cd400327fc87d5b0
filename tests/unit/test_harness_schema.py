"""Structural-schema pruning, defaulting and validation of the test harness (pure, table-driven)."""

import copy
from typing import Any

import pytest

from tests.harness import schema

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
PRESERVE = {"x-kubernetes-preserve-unknown-fields": True}


@pytest.mark.parametrize(("subschema", "value", "expected"), [
    pytest.param({"type": "object", "properties": {"a": STRING}}, {"a": "x", "b": "y"}, {"a": "x"},
                 id="unknown-field-dropped"),
    pytest.param({"type": "object"}, {"a": 1}, {}, id="object-without-properties-keeps-nothing"),
    pytest.param({"type": "object", **PRESERVE}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="preserve-unknown"),
    pytest.param({"type": "object", **PRESERVE, "properties": {"a": {"type": "object", "properties": {}}}},
                 {"a": {"x": 1}, "b": 2}, {"a": {}, "b": 2}, id="preserve-unknown-still-prunes-known"),
    pytest.param({"type": "object", "additionalProperties": {"type": "object", "properties": {"a": STRING}}},
                 {"k1": {"a": "x", "b": 1}}, {"k1": {"a": "x"}}, id="map-values-pruned"),
    pytest.param({"type": "array", "items": {"type": "object", "properties": {"a": STRING}}},
                 [{"a": "x", "b": 1}], [{"a": "x"}], id="array-items-pruned"),
    pytest.param({"type": "object", "properties": {"a": STRING}}, {"a": None}, {}, id="null-not-nullable-dropped"),
    pytest.param({"type": "object", "properties": {"a": {**STRING, "nullable": True}}}, {"a": None}, {"a": None},
                 id="null-nullable-kept"),
    pytest.param({"type": "object", "properties": {"a": {"x-kubernetes-int-or-string": True}}}, {"a": 5},
                 {"a": 5}, id="int-or-string-kept"),
    pytest.param(STRING, "text", "text", id="scalar-untouched"),
])
def test_prune(subschema: schema.Schema, value: Any, expected: Any) -> None:
    original = copy.deepcopy(value)
    assert schema.prune(subschema, value) == expected
    assert value == original  # not mutated


@pytest.mark.parametrize(("subschema", "value", "expected"), [
    pytest.param({"type": "object", "properties": {"a": {**STRING, "default": "d"}}}, {}, {"a": "d"},
                 id="absent-defaulted"),
    pytest.param({"type": "object", "properties": {"a": {**STRING, "default": "d"}}}, {"a": "x"}, {"a": "x"},
                 id="present-kept"),
    pytest.param({"type": "object", "properties": {"o": {
        "type": "object", "default": {}, "properties": {"n": {**INTEGER, "default": 3}}}}},
                 {}, {"o": {"n": 3}}, id="defaults-inside-a-default"),
    pytest.param({"type": "array", "items": {"type": "object", "properties": {"a": {**INTEGER, "default": 1}}}},
                 [{}, {"a": 2}], [{"a": 1}, {"a": 2}], id="array-items-defaulted"),
    pytest.param({"type": "object", "additionalProperties": {
        "type": "object", "properties": {"a": {**INTEGER, "default": 1}}}},
                 {"k": {}}, {"k": {"a": 1}}, id="map-values-defaulted"),
    pytest.param({"type": "object", "properties": {"o": {"type": "object", "properties": {
        "n": {**INTEGER, "default": 3}}}}}, {}, {}, id="absent-parent-without-default-stays-absent"),
])
def test_apply_defaults(subschema: schema.Schema, value: Any, expected: Any) -> None:
    original = copy.deepcopy(value)
    assert schema.apply_defaults(subschema, value) == expected
    assert value == original  # not mutated


SPEC = {
    "type": "object",
    "required": ["repo"],
    "properties": {
        "repo": {"type": "string", "minLength": 1, "maxLength": 10, "pattern": "^[a-z]+$"},
        "syncDirection": {"type": "string", "enum": ["Push", "Pull", "Bidirectional"]},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 3},
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "multipleOf": 0.5},
        "enabled": {"type": "boolean"},
        "at": {"type": "string", "format": "date-time"},
        "note": {"type": "string", "nullable": True},
        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
        "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
        "items": {"type": "array", "items": {"type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"}}}},
        "port": {"x-kubernetes-int-or-string": True},
        "raw": {"x-kubernetes-preserve-unknown-fields": True},
    },
}


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param({"repo": "abc"}, [], id="minimal-valid"),
    pytest.param({"repo": "abc", "syncDirection": "Pull", "replicas": 2, "ratio": 1.5, "enabled": False,
                  "at": "2026-01-02T03:04:05Z", "note": None, "tags": ["a"], "labels": {"k": "v"},
                  "items": [{"name": "n"}], "port": "http", "raw": {"any": [1, None]}}, [], id="full-valid"),
    pytest.param({"repo": "abc", "replicas": 2.0, "port": 80}, [], id="integral-float-is-integer"),
    pytest.param({}, ["spec.repo: Required value"], id="required"),
    pytest.param({"repo": "abc", "syncDirection": "Sideways"},
                 ['spec.syncDirection: Unsupported value: "Sideways": supported values: "Push", "Pull", '
                  '"Bidirectional"'], id="enum"),
    pytest.param({"repo": 5},
                 ['spec.repo: Invalid value: "integer": spec.repo in body must be of type string: "integer"'],
                 id="type-string"),
    pytest.param({"repo": "abc", "replicas": True},
                 ['spec.replicas: Invalid value: "boolean": spec.replicas in body must be of type integer: '
                  '"boolean"'], id="bool-is-not-integer"),
    pytest.param({"repo": "abc", "enabled": "yes"},
                 ['spec.enabled: Invalid value: "string": spec.enabled in body must be of type boolean: "string"'],
                 id="type-boolean"),
    pytest.param({"repo": "abc", "tags": "a"},
                 ['spec.tags: Invalid value: "string": spec.tags in body must be of type array: "string"'],
                 id="type-array"),
    pytest.param({"repo": "abc", "labels": []},
                 ['spec.labels: Invalid value: "array": spec.labels in body must be of type object: "array"'],
                 id="type-object"),
    pytest.param({"repo": "abc", "syncDirection": None},
                 ['spec.syncDirection: Invalid value: "null": spec.syncDirection in body must be of type string: '
                  '"null"'], id="null-not-nullable"),
    pytest.param({"repo": "ABC"}, ["spec.repo: Invalid value: \"ABC\": spec.repo in body should match '^[a-z]+$'"],
                 id="pattern"),
    pytest.param({"repo": ""}, ['spec.repo: Invalid value: "": spec.repo in body should be at least 1 chars long',
                                "spec.repo: Invalid value: \"\": spec.repo in body should match '^[a-z]+$'"],
                 id="min-length-and-pattern"),
    pytest.param({"repo": "abcdefghijk"},
                 ['spec.repo: Invalid value: "abcdefghijk": spec.repo in body should be at most 10 chars long'],
                 id="max-length"),
    pytest.param({"repo": "abc", "replicas": 0},
                 ["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"],
                 id="minimum"),
    pytest.param({"repo": "abc", "replicas": 4},
                 ["spec.replicas: Invalid value: 4: spec.replicas in body should be less than or equal to 3"],
                 id="maximum"),
    pytest.param({"repo": "abc", "ratio": 0},
                 ["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"],
                 id="exclusive-minimum"),
    pytest.param({"repo": "abc", "ratio": 0.7},
                 ["spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"],
                 id="multiple-of"),
    pytest.param({"repo": "abc", "tags": []},
                 ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"], id="min-items"),
    pytest.param({"repo": "abc", "tags": ["a", "b", "c"]}, ["spec.tags: Too many: 3: must have at most 2 items"],
                 id="max-items"),
    pytest.param({"repo": "abc", "tags": ["a", 1]},
                 ['spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'],
                 id="array-item-path"),
    pytest.param({"repo": "abc", "items": [{"name": "a"}, {}]}, ["spec.items[1].name: Required value"],
                 id="nested-required-path"),
    pytest.param({"repo": "abc", "labels": {"k": 1}},
                 ['spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: '
                  '"integer"'], id="map-value-path"),
    pytest.param({"repo": "abc", "labels": {"a": "1", "b": "2", "c": "3"}},
                 ["spec.labels: Invalid value: 3: spec.labels in body should have at most 2 properties"],
                 id="max-properties"),
    pytest.param({"repo": "abc", "at": "yesterday"},
                 ['spec.at: Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday"'],
                 id="date-time"),
    pytest.param({"repo": "abc", "at": "2026-01-02T03:04:05.123+02:00"}, [], id="date-time-with-offset"),
    pytest.param({"repo": "abc", "port": True},
                 ['spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: '
                  '"boolean"'], id="int-or-string"),
    pytest.param({"repo": 1, "replicas": 9, "extra": "pruned-elsewhere"},
                 ['spec.repo: Invalid value: "integer": spec.repo in body must be of type string: "integer"',
                  "spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 3"],
                 id="all-errors-in-document-order"),
])
def test_validate(value: Any, expected: list[str]) -> None:
    assert [str(error) for error in schema.validate(SPEC, value, "spec")] == expected


@pytest.mark.parametrize(("value", "reason"), [
    pytest.param({}, "FieldValueRequired", id="required"),
    pytest.param({"repo": "abc", "syncDirection": "Up"}, "FieldValueNotSupported", id="enum"),
    pytest.param({"repo": 1}, "FieldValueTypeInvalid", id="type"),
    pytest.param({"repo": "ABC"}, "FieldValueInvalid", id="pattern"),
    pytest.param({"repo": "abc", "tags": ["a", "b", "c"]}, "FieldValueTooMany", id="max-items"),
])
def test_error_reasons_are_kubernetes_cause_types(value: Any, reason: str) -> None:
    [error] = schema.validate(SPEC, value, "spec")
    assert error.reason == reason


def test_root_path_defaults_to_empty_and_names_fields_from_the_root() -> None:
    errors = schema.validate({"type": "object", "required": ["spec"]}, {})
    assert errors == [schema.FieldError("spec", "FieldValueRequired", "Required value")]


def test_untyped_schema_accepts_anything() -> None:
    assert schema.validate(PRESERVE, None) == []
    assert schema.validate(PRESERVE, {"x": [1, "a"]}) == []
