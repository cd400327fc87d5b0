"""Plan: one record per plan run: what was planned, whether it was approved, how the apply went. Pure models."""

from __future__ import annotations

from typing import Literal

import pydantic

from chkmate.api import base, common, environments

PlanKind = Literal["plan", "drift"]
PlanPhase = Literal["Pending", "Planning", "Planned", "Applying", "Applied", "Failed", "Superseded", "NoChanges"]


class PlanSpec(base.Model):
    """What to plan. Created by the operator (on a new commit, a pull request, a drift check) or by hand."""

    environment_ref: common.LocalObjectReference = pydantic.Field(description="The Environment planned.")
    revision: str | None = pydantic.Field(
        default=None,
        pattern=common.REVISION_PATTERN,
        description="<branch>@sha1:<sha> to plan; the branch head when omitted.",
    )
    branch: str | None = pydantic.Field(default=None, description="Branch of the revision.")
    pull_request: int | None = pydantic.Field(default=None, ge=1, description="Pull request number, if any.")
    destroy: bool = pydantic.Field(default=False, description="Plan the destruction of everything.")
    kind: PlanKind = pydantic.Field(default="plan", description="plan, or drift for a drift report.")
    approved: str | None = pydantic.Field(
        default=None,
        pattern=r"^[0-9a-f]{12,64}$",
        description="The planId approved for apply; an approval of another planId does nothing.",
    )


class CostEstimate(base.Status):
    currency: str = pydantic.Field(default="USD", description="Currency of the figures.")
    monthly: str | None = pydantic.Field(default=None, description="Monthly total of priced resources.")
    delta: str | None = pydantic.Field(default=None, description="Change against the last applied plan.")
    unpriced: int = pydantic.Field(default=0, description="Resources without a price (never counted as 0).")


class SecurityReport(base.Status):
    score: int | None = pydantic.Field(default=None, ge=0, le=100, description="0 (worst) to 100 (no findings).")
    critical: int = pydantic.Field(default=0, description="Findings of severity critical.")
    high: int = pydantic.Field(default=0, description="Findings of severity high.")
    medium: int = pydantic.Field(default=0, description="Findings of severity medium.")
    low: int = pydantic.Field(default=0, description="Findings of severity low.")


class OutputRef(base.Status):
    config_map: str | None = pydantic.Field(default=None, description="ConfigMap with the readable plan text.")
    secret_prefix: str | None = pydantic.Field(default=None, description="Name prefix of the plan file Secrets.")
    chunks: int = pydantic.Field(default=0, description="Number of Secrets holding the gzip plan file.")
    sha256: str | None = pydantic.Field(default=None, description="sha256 of the plan file, checked before apply.")


class PlanStatus(common.CommonStatus):
    phase: PlanPhase | None = pydantic.Field(default=None, description="Where the run is.")
    revision: str | None = pydantic.Field(default=None, description="Resolved revision planned.")
    plan_id: str | None = pydantic.Field(
        default=None, description="Hash of revision, inputs and plan content; approvals bind to it."
    )
    summary: environments.PlanSummary | None = pydantic.Field(default=None, description="Counts of the plan.")
    cost: CostEstimate | None = pydantic.Field(default=None, description="Cost estimate.")
    security: SecurityReport | None = pydantic.Field(default=None, description="Security findings and score.")
    output_ref: OutputRef | None = pydantic.Field(default=None, description="Where the full output is stored.")
    comment_id: int | None = pydantic.Field(default=None, description="Sticky pull request comment id.")
    check_run_id: int | None = pydantic.Field(default=None, description="GitHub check run id.")
    started_at: str | None = pydantic.Field(default=None, description="When the run started.")
    finished_at: str | None = pydantic.Field(default=None, description="When the run finished.")
    applied_at: str | None = pydantic.Field(default=None, description="When the plan was applied.")
