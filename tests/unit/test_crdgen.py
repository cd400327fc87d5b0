"""The CRD generator on toy models: conversion rules, structural checks, YAML, files and the CLI."""

from __future__ import annotations

import datetime
import enum
import os
import sys
import types
import uuid
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
import yaml
from pydantic.config import JsonDict

import chkmate
from chkmate.api import base, crdgen

# --- toy models ----------------------------------------------------------------------------------------


class Colour(enum.Enum):
    """A colour."""

    RED = "red"
    BLUE = "blue"


class Cond(base.Model):
    """A condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""


class Sub(base.Model):
    """A nested value."""

    size: int = 1
    note: str | None = None


class Loose(base.Model):
    """Keeps unknown keys."""

    model_config = pydantic.ConfigDict(extra="allow")

    name: str = ""


class Node(base.Model):
    """A tree: recursive, so it has no structural schema."""

    children: tuple[Node, ...] = ()


class Pet(base.Model):
    kind: Literal["pet"] = "pet"


class Car(base.Model):
    kind: Literal["car"] = "car"


LIST_MAP: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def toy(annotation: Any, field: Any = ...) -> type[base.Model]:
    """A model with one field, ``some_value`` (``someValue`` on the wire)."""
    model: type[base.Model] = pydantic.create_model("Toy", __base__=base.Model, some_value=(annotation, field))
    return model


def prop(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = crdgen.openapi_schema(model)
    return dict(schema["properties"]["someValue"])


# --- conversion rules ----------------------------------------------------------------------------------

RULES: list[tuple[str, Any, Any, dict[str, Any]]] = [
    ("str", str, ..., {"type": "string"}),
    (
        "constr",
        str,
        pydantic.Field(min_length=1, max_length=9, pattern="^a", description="A name."),
        {"description": "A name.", "type": "string", "minLength": 1, "maxLength": 9, "pattern": "^a"},
    ),
    (
        "int bounds",
        int,
        pydantic.Field(3, ge=0, le=10),
        {"type": "integer", "default": 3, "minimum": 0, "maximum": 10},
    ),
    (
        "int exclusive bounds",
        int,
        pydantic.Field(gt=0, lt=5),
        {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 5, "exclusiveMaximum": True},
    ),
    (
        "stricter bound wins",
        int,
        pydantic.Field(ge=5, gt=0),
        {"type": "integer", "minimum": 5},
    ),
    ("float", float, 0.5, {"type": "number", "default": 0.5}),
    ("bool", bool, True, {"type": "boolean", "default": True}),
    ("optional", int | None, None, {"type": "integer", "nullable": True}),
    ("literal", Literal["a", "b"], "a", {"type": "string", "enum": ["a", "b"], "default": "a"}),
    ("literal of one (const)", Literal["x"], ..., {"type": "string", "enum": ["x"]}),
    ("literal with None", Literal[None, "a"], None, {"type": "string", "nullable": True, "enum": ["a"]}),
    ("integer literal", Literal[1, 2], 1, {"type": "integer", "enum": [1, 2], "default": 1}),
    (
        "enum",
        Colour,
        Colour.RED,
        {"description": "A colour.", "type": "string", "enum": ["red", "blue"], "default": "red"},
    ),
    (
        "optional enum",
        Colour | None,
        None,
        {"description": "A colour.", "type": "string", "nullable": True, "enum": ["red", "blue"]},
    ),
    (
        "dict of str",
        dict[str, str],
        {},
        {"type": "object", "default": {}, "additionalProperties": {"type": "string"}},
    ),
    (
        "dict of Any",
        dict[str, Any],
        ...,
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
    ("Any", Any, None, {"x-kubernetes-preserve-unknown-fields": True}),
    ("list", list[int], [], {"type": "array", "default": [], "items": {"type": "integer"}}),
    ("tuple of many", tuple[str, ...], (), {"type": "array", "default": [], "items": {"type": "string"}}),
    (
        "set of scalars",
        set[str],
        ...,
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    ),
    ("datetime", datetime.datetime, ..., {"type": "string", "format": "date-time"}),
    ("uuid", uuid.UUID, ..., {"type": "string", "format": "uuid"}),
    ("timedelta: ISO 8601 is not Go's duration", datetime.timedelta, ..., {"type": "string"}),
    ("int or str", int | str, 1, {"default": 1, "x-kubernetes-int-or-string": True}),
    (
        "optional str or int",
        str | int | None,
        None,
        {"nullable": True, "x-kubernetes-int-or-string": True},
    ),
    (
        "constrained int or str",
        int | pydantic.constr(pattern="^[0-9]+%$"),
        ...,
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%$"}],
        },
    ),
    (
        "nested model: the field's description wins over the docstring",
        Sub,
        pydantic.Field(default_factory=Sub, description="The sub."),
        {
            "description": "The sub.",
            "type": "object",
            "properties": {
                "size": {"type": "integer", "default": 1},
                "note": {"type": "string", "nullable": True},
            },
        },
    ),
    (
        "model default without nulls",
        Sub,
        Sub(size=2),
        {
            "description": "A nested value.",
            "type": "object",
            "default": {"size": 2},
            "properties": {
                "size": {"type": "integer", "default": 1},
                "note": {"type": "string", "nullable": True},
            },
        },
    ),
    ("NaN default dropped", float, float("nan"), {"type": "number"}),
    ("examples", str, pydantic.Field("e", examples=["x", "y"]), {"type": "string", "default": "e", "example": "x"}),
    ("deprecated dropped", str, pydantic.Field("e", deprecated=True), {"type": "string", "default": "e"}),
    (
        "list map on an optional list survives",
        tuple[Cond, ...] | None,
        pydantic.Field(None, json_schema_extra=LIST_MAP),
        {
            "type": "array",
            "nullable": True,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "description": "A condition.",
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "reason": {"type": "string", "default": ""},
                },
                "required": ["type", "status"],
            },
        },
    ),
    (
        "CEL rules survive",
        int,
        pydantic.Field(0, json_schema_extra={"x-kubernetes-validations": [{"rule": "self >= oldSelf"}]}),
        {"type": "integer", "default": 0, "x-kubernetes-validations": [{"rule": "self >= oldSelf"}]},
    ),
    (
        "extra=allow keeps unknown fields",
        Loose,
        ...,
        {
            "description": "Keeps unknown keys.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"name": {"type": "string", "default": ""}},
        },
    ),
]


@pytest.mark.parametrize(("annotation", "field", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_conversion_rule(annotation: Any, field: Any, expected: dict[str, Any]) -> None:
    assert prop(toy(annotation, field)) == expected


def test_model_root_keeps_order_docstring_and_required_aliases() -> None:
    class Spec(base.Model):
        """The spec.

        Second paragraph.
        """

        title: str = pydantic.Field(description="A field named like a JSON schema keyword.")
        first_name: str = "x"
        optional_thing: int | None = None

    assert crdgen.openapi_schema(Spec) == {
        "description": "The spec.\n\nSecond paragraph.",
        "type": "object",
        "properties": {
            "title": {"description": "A field named like a JSON schema keyword.", "type": "string"},
            "firstName": {"type": "string", "default": "x"},
            "optionalThing": {"type": "integer", "nullable": True},
        },
        "required": ["title"],
    }


def test_schemas_are_fresh_copies() -> None:
    model = toy(tuple[Cond, ...], pydantic.Field((), json_schema_extra=LIST_MAP))
    crdgen.openapi_schema(model)["properties"]["someValue"]["x-kubernetes-list-map-keys"].append("reason")
    assert prop(model)["x-kubernetes-list-map-keys"] == ["type"]


ERRORS: list[tuple[str, Any, Any, str]] = [
    ("union of objects", Pet | Car, ..., r"Toy\.someValue: union of object, object is not structural"),
    ("union of number and string", float | str, ..., r"Toy\.someValue: union of number, string"),
    ("tuple of fixed length", tuple[int, str], ..., r"Toy\.someValue: .*'prefixItems'"),
    ("recursive model", Node, ..., r"Toy\.someValue\.children\[\]: recursive model \(Node -> Node\)"),
    ("optional without default", int | None, ..., r"Toy\.someValue: is Optional but has no default"),
    ("dict with constrained keys", dict[Literal["a", "b"], int], ..., r"Toy\.someValue: .*'propertyNames'"),
    ("set of objects", set[Sub], ..., r"Toy\.someValue: x-kubernetes-list-type: set needs scalar items"),
    ("mixed literal", Literal[1, "a"], 1, r"Toy\.someValue: enum \[1, 'a'\] mixes JSON types"),
    ("None only", None, None, r"Toy\.someValue: type 'null'"),
    (
        "json_schema_extra replacing a nested schema",
        tuple[str, ...],
        pydantic.Field((), json_schema_extra={"items": {"pattern": "^a"}}),
        r"Toy\.someValue\[\]: has pattern but no type",
    ),
    (
        "typo in an extension",
        tuple[str, ...],
        pydantic.Field((), json_schema_extra={"x-kubernetes-list-typ": "set"}),
        r"'x-kubernetes-list-typ' has no structural equivalent",
    ),
    (
        "list map key not required",
        tuple[Sub, ...],
        pydantic.Field((), json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["note"]}),
        r"Toy\.someValue\[\]\.note: a list map key must be a scalar, required or defaulted",
    ),
    (
        "list map without keys",
        tuple[Cond, ...],
        pydantic.Field((), json_schema_extra={"x-kubernetes-list-type": "map"}),
        r"Toy\.someValue: x-kubernetes-list-type: map goes with a non-empty",
    ),
    (
        "serialization alias",
        int,
        pydantic.Field(0, serialization_alias="other"),
        r"Toy\.other: is serialized but not accepted",
    ),
]


@pytest.mark.parametrize(("annotation", "field", "match"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_non_structural_models_raise(annotation: Any, field: Any, match: str) -> None:
    with pytest.raises(crdgen.CRDSchemaError, match=match):
        crdgen.openapi_schema(toy(annotation, field))


def test_computed_fields_raise_because_the_server_would_prune_them() -> None:
    class Status(base.Status):
        count: int = 0

        @pydantic.computed_field  # type: ignore[prop-decorator]
        @property
        def double(self) -> int:
            return self.count * 2

    with pytest.raises(crdgen.CRDSchemaError, match=r"Status\.double: is serialized but not accepted"):
        crdgen.openapi_schema(Status)


STRUCTURAL: list[tuple[str, dict[str, Any], str]] = [
    ("no type", {"type": "object", "properties": {"a": {"description": "?"}}}, r"X\.a: has no type"),
    (
        "anyOf without int-or-string",
        {"type": "object", "anyOf": [{"type": "integer"}]},
        r"X: anyOf is only allowed",
    ),
    (
        "properties and additionalProperties",
        {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
        r"X: properties and additionalProperties are mutually exclusive",
    ),
    (
        "list type on an object",
        {"type": "object", "x-kubernetes-list-type": "set"},
        r"X: x-kubernetes-list-type must be atomic, set or map, on an array",
    ),
    ("item without type", {"type": "array", "items": {}}, r"X\[\]: has no type"),
    ("map value without type", {"type": "object", "additionalProperties": {}}, r"X\.\*: has no type"),
]


@pytest.mark.parametrize(("schema", "match"), [s[1:] for s in STRUCTURAL], ids=[s[0] for s in STRUCTURAL])
def test_structural_check_rejects(schema: dict[str, Any], match: str) -> None:
    with pytest.raises(crdgen.CRDSchemaError, match=match):
        crdgen.check_structural(schema, "X")


@pytest.mark.parametrize(
    "schema",
    [
        {"x-kubernetes-preserve-unknown-fields": True},
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "object"}},
    ],
)
def test_structural_check_accepts(schema: dict[str, Any]) -> None:
    crdgen.check_structural(schema, "X")


def test_errors_carry_the_path() -> None:
    with pytest.raises(crdgen.CRDSchemaError) as caught:
        crdgen.openapi_schema(toy(Pet | Car))
    assert caught.value.path == "Toy.someValue"
    assert "union" in caught.value.problem


# --- CRD -----------------------------------------------------------------------------------------------


class WidgetSpec(base.Model):
    """What a widget should be."""

    size: int = pydantic.Field(1, ge=1, description="How big.")


class WidgetStatus(base.Status):
    """What a widget is."""

    conditions: tuple[Cond, ...] = pydantic.Field((), json_schema_extra=LIST_MAP)


class StrictStatus(base.Model):
    phase: str = ""


def widget(spec: type[base.Model] = WidgetSpec, plural: str = "widgets", kind: str = "Widget") -> base.KindInfo:
    return base.KindInfo(
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        short_names=("wd",),
        spec_model=spec,
        status_model=WidgetStatus,
        description="A toy kind.",
        printer_columns=(
            base.PrinterColumn("Size", ".spec.size", type="integer"),
            base.PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready?"),
            base.PrinterColumn("Message", ".status.message", priority=1),
        ),
    )


def test_build_crd() -> None:
    crd = crdgen.build_crd(widget())
    assert list(crd) == ["apiVersion", "kind", "metadata", "spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"] == {"name": f"widgets.{chkmate.GROUP}"}
    assert crd["spec"]["group"] == chkmate.GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
        "categories": ["chkmate"],
    }
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == (chkmate.VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"] == [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            "description": "Ready?",
        },
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["description"] == "A toy kind."
    assert schema["type"] == "object"
    assert schema["required"] == ["spec"]
    assert list(schema["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["properties"]["spec"] == crdgen.openapi_schema(WidgetSpec)


def test_status_root_preserves_unknown_fields_and_keeps_list_maps() -> None:
    status = crdgen.build_crd(widget())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "x-kubernetes-preserve-unknown-fields" not in conditions["items"]


def test_strict_status_is_pruned() -> None:
    info = base.KindInfo("Strict", "stricts", "strict", (), WidgetSpec, StrictStatus, "Strict.")  # type: ignore[arg-type]
    crd = crdgen.build_crd(info)
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert "shortNames" not in crd["spec"]["names"]


# --- YAML ----------------------------------------------------------------------------------------------


def test_render_yaml_round_trips_with_header_and_order() -> None:
    crd = crdgen.build_crd(widget())
    text = crdgen.render_yaml(crd)
    assert text.startswith("# Generated by chkmate.api.crdgen from the pydantic models. Do not edit.\n")
    assert yaml.safe_load(text) == crd
    assert [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()] == [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    ]
    assert crdgen.render_yaml(crdgen.build_crd(widget())) == text


def test_render_yaml_keeps_field_order() -> None:
    class Ordered(base.Model):
        zulu: int = 0
        alpha: int = 0

    text = crdgen.render_yaml(crdgen.build_crd(widget(Ordered)))
    assert text.index("zulu:") < text.index("alpha:")


def test_render_yaml_writes_shared_values_twice_and_docstrings_as_blocks() -> None:
    shared = {"type": "string"}
    text = crdgen.render_yaml({"a": shared, "b": shared, "description": "One.\n\nTwo."})
    assert "&" not in text
    assert "*" not in text
    assert "description: |-\n  One.\n\n  Two.\n" in text
    assert yaml.safe_load(text) == {"a": shared, "b": shared, "description": "One.\n\nTwo."}


# --- files ---------------------------------------------------------------------------------------------


class BiggerWidgetSpec(WidgetSpec):
    colour: Colour = Colour.RED


@pytest.fixture
def out_dirs(tmp_path: Path) -> list[Path]:
    return [tmp_path / "crds", tmp_path / "chart" / "crds"]


def test_write_then_check_is_clean(out_dirs: list[Path]) -> None:
    paths = crdgen.write_crds([widget(), widget(plural="gadgets", kind="Gadget")], out_dirs)
    assert paths == [
        out_dirs[0] / f"widgets.{chkmate.GROUP}.yaml",
        out_dirs[0] / f"gadgets.{chkmate.GROUP}.yaml",
        out_dirs[1] / f"widgets.{chkmate.GROUP}.yaml",
        out_dirs[1] / f"gadgets.{chkmate.GROUP}.yaml",
    ]
    assert yaml.safe_load(paths[0].read_text()) == crdgen.build_crd(widget())
    assert crdgen.check_crds([widget(), widget(plural="gadgets", kind="Gadget")], out_dirs) == []


def test_check_reports_stale_files_when_a_model_gains_a_field(out_dirs: list[Path]) -> None:
    crdgen.write_crds([widget()], out_dirs)
    assert crdgen.check_crds([widget(BiggerWidgetSpec)], out_dirs) == [
        f"{out_dir / f'widgets.{chkmate.GROUP}.yaml'}: stale" for out_dir in out_dirs
    ]


def test_check_reports_missing_and_extra_files(out_dirs: list[Path]) -> None:
    crdgen.write_crds([widget(plural="gadgets", kind="Gadget")], out_dirs[:1])
    assert crdgen.check_crds([widget()], out_dirs) == [
        f"{out_dirs[0] / f'widgets.{chkmate.GROUP}.yaml'}: missing",
        f"{out_dirs[0] / f'gadgets.{chkmate.GROUP}.yaml'}: extra",
        f"{out_dirs[1] / f'widgets.{chkmate.GROUP}.yaml'}: missing",
    ]


def test_write_removes_stale_generated_files_only(out_dirs: list[Path]) -> None:
    crdgen.write_crds([widget(), widget(plural="gadgets", kind="Gadget")], out_dirs)
    hand_written = out_dirs[0] / "hand-written.yaml"
    hand_written.write_text("apiVersion: v1\n")
    notes = out_dirs[0] / "README.md"
    notes.write_text(crdgen.HEADER)
    crdgen.write_crds([widget()], out_dirs)
    assert sorted(path.name for path in out_dirs[0].iterdir()) == [
        "README.md",
        "hand-written.yaml",
        f"widgets.{chkmate.GROUP}.yaml",
    ]
    assert crdgen.check_crds([widget()], out_dirs) == []


def test_write_leaves_up_to_date_files_untouched(out_dirs: list[Path]) -> None:
    (path, *_) = crdgen.write_crds([widget()], out_dirs)
    os.utime(path, ns=(0, 0))
    crdgen.write_crds([widget()], out_dirs)
    assert path.stat().st_mtime_ns == 0


def test_two_kinds_with_one_plural_are_refused(out_dirs: list[Path]) -> None:
    with pytest.raises(ValueError, match="two kinds share the plural 'widgets'"):
        crdgen.write_crds([widget(), widget(kind="Other")], out_dirs)


# --- CLI -----------------------------------------------------------------------------------------------


@pytest.fixture
def fake_kinds(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-in for ``chkmate.api.kinds`` so these tests do not depend on the real models."""
    module = types.SimpleNamespace(KINDS=(widget(),))
    monkeypatch.setitem(sys.modules, "chkmate.api.kinds", module)
    monkeypatch.setattr(chkmate.api, "kinds", module, raising=False)
    return module


@pytest.mark.usefixtures("fake_kinds")
def test_main_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--out", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "a" / f"widgets.{chkmate.GROUP}.yaml"),
        str(tmp_path / "b" / f"widgets.{chkmate.GROUP}.yaml"),
    ]
    assert crdgen.main(["--check", "--out", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    (tmp_path / "b" / f"widgets.{chkmate.GROUP}.yaml").write_text(crdgen.HEADER)
    assert crdgen.main(["--check", "--out", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 1
    assert f"widgets.{chkmate.GROUP}.yaml: stale" in capsys.readouterr().err


def test_main_reports_schema_errors(
    tmp_path: Path, fake_kinds: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_kinds.KINDS = (widget(toy(Pet | Car)),)
    assert crdgen.main(["--out", str(tmp_path)]) == 2
    assert "error: Toy.someValue: union of object, object" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_default_out_dirs_are_in_the_repository() -> None:
    assert (crdgen.REPO_ROOT / "pyproject.toml").is_file()
    assert crdgen.DEFAULT_OUT_DIRS == (
        crdgen.REPO_ROOT / "crds",
        crdgen.REPO_ROOT / "charts" / "chkmate-operator" / "crds",
    )
