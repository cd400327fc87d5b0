"""Base classes shared by every API model: frozen values with camelCase aliases.

No I/O, no settings lookups. Models here are the single source of the CRD schemas
(see :mod:`chkmate.api.crdgen`).
"""

from __future__ import annotations

import dataclasses

import pydantic
from pydantic.alias_generators import to_camel


class Model(pydantic.BaseModel):
    """A frozen API value: camelCase on the wire, snake_case in Python, unknown keys rejected."""

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, object]:
        """The object as the Kubernetes API sees it: camelCase keys, unset optionals dropped."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Status(Model):
    """Status models accept unknown keys: the status is written by older and newer operators alike."""

    model_config = pydantic.ConfigDict(extra="ignore")


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD."""

    name: str
    json_path: str
    type: str = "string"  # string | integer | number | boolean | date
    description: str = ""
    priority: int = 0


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """Everything the CRD generator needs to know about one kind, beside its models."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[Model]
    status_model: type[Status]
    description: str
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ("chkmate",)
