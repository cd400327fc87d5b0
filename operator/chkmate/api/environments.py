"""Environment: a branch of a repository mapped to a deployment target, planned and applied. Pure models."""

from __future__ import annotations

import re
from typing import Any, Literal, Self

import pydantic

from chkmate.api import base, common, repositories, templates

Engine = Literal["terraform", "tofu", "builtin"]
ApprovalMode = Literal["auto", "manual", "pullRequestReviews"]
DriftAction = Literal["Notify", "Reconcile", "Adopt"]
RunnerMode = Literal["Local", "Job"]
VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class Approval(base.Model):
    """When a plan may be applied."""

    mode: ApprovalMode = pydantic.Field(
        default="manual",
        description="auto: apply at once. manual: wait for spec.approved=<planId> on the Plan (or the "
        "chkmate.dev/approve annotation). pullRequestReviews: wait for approving pull request reviews.",
    )
    required_approvals: int | None = pydantic.Field(
        default=None, ge=1, le=10, description="Approving reviews needed (pullRequestReviews only)."
    )

    @pydantic.model_validator(mode="after")
    def _approvals_need_reviews(self) -> Self:
        if self.required_approvals is not None and self.mode != "pullRequestReviews":
            raise ValueError("requiredApprovals applies only to mode pullRequestReviews")
        return self


class DriftDetection(base.Model):
    enabled: bool = pydantic.Field(default=True, description="Check for drift on a schedule.")
    interval: common.Duration = pydantic.Field(default="1h", description="How often to check (jittered).")
    action: DriftAction = pydantic.Field(
        default="Notify",
        description="Notify: condition, Event and metric. Reconcile: plan and apply the code, respecting the "
        "approval mode. Adopt: accept live values into state and open a pull request.",
    )


class Runner(base.Model):
    mode: RunnerMode = pydantic.Field(
        default="Local",
        description="Local: a subprocess of the operator. Job: a Kubernetes Job per plan, apply and drift check, "
        "in this namespace (docs/runners.md).",
    )
    timeout: common.Duration = pydantic.Field(
        default="30m",
        description="Deadline of one run; a Job's activeDeadlineSeconds is this plus the operator's runner grace.",
    )
    pod_template: dict[str, Any] | None = pydantic.Field(
        default=None,
        description="A pod template (metadata, spec) for Job runs, merged over the operator's default pod: objects "
        "merge, containers and volumeMounts merge by name, env and volumes entries are replaced by name, null "
        "removes a key. The runner container's command and restartPolicy Never stay.",
    )

    @pydantic.model_validator(mode="after")
    def _pod_template_needs_job(self) -> Self:
        if self.pod_template is not None and self.mode != "Job":
            raise ValueError("podTemplate applies only to mode Job")
        return self


class VarsFrom(base.Model):
    """Terraform variables read from every key of a Secret or ConfigMap."""

    kind: Literal["Secret", "ConfigMap"] = pydantic.Field(description="Secret or ConfigMap.")
    name: common.K8sName = pydantic.Field(description="Name in the same namespace.")
    optional: bool = pydantic.Field(default=False, description="Do not fail when it is missing.")


class EnvironmentSpec(base.Model):
    """A branch of a repository (or a TemplateRepoLink) mapped to one deployment target."""

    repository_ref: common.LocalObjectReference | None = pydantic.Field(
        default=None, description="The GitHubRepository holding the code (or use linkRef)."
    )
    link_ref: common.LocalObjectReference | None = pydantic.Field(
        default=None, description="A TemplateRepoLink whose repository, branch and path hold the code."
    )
    branch: str | None = pydantic.Field(
        default=None,
        pattern=repositories.BRANCH_PATTERN,
        max_length=255,
        description="Branch deployed to this environment; the repository's default branch when omitted.",
    )
    path: str = pydantic.Field(default=".", description="Folder of the Terraform root module.")
    engine: Engine = pydantic.Field(
        default="terraform", description="terraform, tofu, or builtin (no binary: a plan from the parsed HCL)."
    )
    credentials_secret_ref: common.LocalObjectReference | None = pydantic.Field(
        default=None, description="Secret whose keys become environment variables of the run (e.g. AWS keys)."
    )
    region: str | None = pydantic.Field(default=None, max_length=64, description="Cloud region, for pricing too.")
    vars: dict[str, str] = pydantic.Field(default_factory=dict, description="Terraform input variables.")
    vars_from: tuple[VarsFrom, ...] = pydantic.Field(default=(), description="Variables from Secrets or ConfigMaps.")
    approval: Approval = pydantic.Field(default_factory=Approval, description="When plans may be applied.")
    # No default in the schema: the API server would store it, and the .chkmate.yml entry could never apply.
    plan_on_pull_request: bool | None = pydantic.Field(
        default=None,
        description="Plan pull requests against this branch. Unset: the .chkmate.yml entry of this environment at "
        "the branch's head decides, else true.",
    )
    apply_on_merge: bool | None = pydantic.Field(
        default=None,
        description="Apply when a pull request is merged. Unset: the .chkmate.yml entry of this environment at the "
        "planned commit decides, else false.",
    )
    drift_detection: DriftDetection = pydantic.Field(
        default_factory=DriftDetection, description="Scheduled drift checks."
    )
    runner: Runner = pydantic.Field(default_factory=Runner, description="Where runs execute.")
    suspend: bool = pydantic.Field(default=False, description="Pause planning, applying and drift checks.")

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.repository_ref is None) == (self.link_ref is None):
            raise ValueError("set exactly one of repositoryRef or linkRef")
        if self.path != ".":
            try:
                templates.check_relative_path(self.path.rstrip("/"))
            except ValueError as e:
                raise ValueError(f"path: {e}") from None
        for name in self.vars:
            if re.fullmatch(VAR_NAME_PATTERN, name) is None:
                raise ValueError(f"vars: {name!r} is not a valid Terraform variable name")
        return self


class PlanSummary(base.Status):
    add: int = pydantic.Field(default=0, description="Resources to create.")
    change: int = pydantic.Field(default=0, description="Resources to update in place.")
    destroy: int = pydantic.Field(default=0, description="Resources to destroy (replacements count here too).")


class LastPlan(base.Status):
    name: str = pydantic.Field(description="Plan object name.")
    revision: str | None = pydantic.Field(default=None, description="Planned revision.")
    plan_id: str | None = pydantic.Field(default=None, description="planId of the plan.")
    summary: PlanSummary | None = pydantic.Field(default=None, description="Counts of the plan.")


class DriftStatus(base.Status):
    detected: bool = pydantic.Field(default=False, description="Whether drift was found at the last check.")
    checked_at: str | None = pydantic.Field(default=None, description="Time of the last check.")
    summary: str = pydantic.Field(default="", description="What drifted, in one line.")
    resources: tuple[str, ...] = pydantic.Field(default=(), description="Addresses of the drifted resources.")


class Lock(base.Status):
    holder: str = pydantic.Field(description="Who holds the lock (Plan name or PR).")
    since: str = pydantic.Field(description="When it was taken.")


class EnvironmentStatus(common.CommonStatus):
    repository: str | None = pydantic.Field(default=None, description="owner/name of the source repository.")
    branch: str | None = pydantic.Field(default=None, description="Branch resolved for this environment.")
    last_plan: LastPlan | None = pydantic.Field(default=None, description="The latest Plan.")
    last_applied_revision: str | None = pydantic.Field(default=None, description="Revision last applied.")
    drift: DriftStatus | None = pydantic.Field(default=None, description="The last drift check.")
    lock: Lock | None = pydantic.Field(default=None, description="The state lock, while held.")
