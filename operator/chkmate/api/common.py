"""Small value types shared by several kinds: references, durations, revisions, names. Pure."""

from __future__ import annotations

import re
from typing import Annotated

import pydantic

from chkmate.api import base
from chkmate.api import conditions as conds

# A Go-style duration, as Flux writes intervals: "30s", "1m", "1h30m".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
Duration = Annotated[str, pydantic.Field(pattern=DURATION_PATTERN, description="A duration such as 30s, 5m or 1h.")]

# A DNS-1123 subdomain: what Kubernetes accepts as an object name.
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
K8sName = Annotated[str, pydantic.Field(pattern=K8S_NAME_PATTERN, max_length=253)]

# A git revision as Flux writes it: "<branch>@sha1:<40 hex>".
REVISION_PATTERN = r"^[^@\s]+@sha1:[0-9a-f]{40}$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration string; raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


class LocalObjectReference(base.Model):
    """A reference to an object of a known kind in the same namespace."""

    name: K8sName = pydantic.Field(description="Name of the referenced object in the same namespace.")


class SecretKeyReference(base.Model):
    """A key of a Secret in the same namespace."""

    name: K8sName = pydantic.Field(description="Name of the Secret in the same namespace.")
    key: str = pydantic.Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in the Secret's data."
    )


class CommonStatus(base.Status):
    """Fields every kind's status carries."""

    observed_generation: int | None = pydantic.Field(
        default=None, description="The metadata.generation last reconciled."
    )
    last_handled_reconcile_at: str | None = pydantic.Field(
        default=None,
        description="The last chkmate.dev/requestedAt annotation value handled (the reconcile-request pattern).",
    )
    conditions: tuple[conds.Condition, ...] = pydantic.Field(
        default=(),
        description="Conditions after the Kubernetes conventions; Ready summarises the others.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
