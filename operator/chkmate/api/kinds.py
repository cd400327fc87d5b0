"""The six kinds of the chkmate.dev API: names, models and printer columns. Pure."""

from __future__ import annotations

from chkmate.api import base, connections, environments, links, plans, repositories, templates
from chkmate.api.base import PrinterColumn

READY = PrinterColumn(
    "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Whether the object is ready."
)
STATUS = PrinterColumn(
    "Status", '.status.conditions[?(@.type=="Ready")].message', priority=1, description="Ready message."
)

GITHUB_CONNECTION = base.KindInfo(
    kind="GitHubConnection",
    plural="githubconnections",
    singular="githubconnection",
    short_names=("ghc",),
    spec_model=connections.GitHubConnectionSpec,
    status_model=connections.GitHubConnectionStatus,
    description="A GitHub App installation (or token) the operator acts as.",
    printer_columns=(
        PrinterColumn("Account", ".status.account.login"),
        READY,
        PrinterColumn("Remaining", ".status.rateLimit.remaining", type="integer", description="Rate limit left."),
        STATUS,
    ),
)
GITHUB_REPOSITORY = base.KindInfo(
    kind="GitHubRepository",
    plural="githubrepositories",
    singular="githubrepository",
    short_names=("ghr",),
    spec_model=repositories.GitHubRepositorySpec,
    status_model=repositories.GitHubRepositoryStatus,
    description="A GitHub repository to adopt, or to create with a scaffold.",
    printer_columns=(
        PrinterColumn("Repository", ".status.fullName"),
        PrinterColumn("Visibility", ".spec.visibility"),
        PrinterColumn("Head", ".status.headRevision"),
        READY,
        STATUS,
    ),
)
TEMPLATE = base.KindInfo(
    kind="Template",
    plural="templates",
    singular="template",
    short_names=("tpl",),
    spec_model=templates.TemplateSpec,
    status_model=templates.TemplateStatus,
    description="Terraform files (one or many) with a version history.",
    printer_columns=(
        PrinterColumn("Files", ".status.files", type="integer"),
        PrinterColumn("Revision", ".status.revision"),
        READY,
        STATUS,
    ),
)
TEMPLATE_REPO_LINK = base.KindInfo(
    kind="TemplateRepoLink",
    plural="templaterepolinks",
    singular="templaterepolink",
    short_names=("trl", "link"),
    spec_model=links.TemplateRepoLinkSpec,
    status_model=links.TemplateRepoLinkStatus,
    description="Keeps a Template in sync with a path of a GitHub repository branch.",
    printer_columns=(
        PrinterColumn("Direction", ".spec.syncDirection"),
        PrinterColumn("Revision", ".status.lastSyncedRevision"),
        PrinterColumn("Synced", '.status.conditions[?(@.type=="Synced")].status'),
        READY,
        STATUS,
    ),
)
ENVIRONMENT = base.KindInfo(
    kind="Environment",
    plural="environments",
    singular="environment",
    short_names=("env",),
    spec_model=environments.EnvironmentSpec,
    status_model=environments.EnvironmentStatus,
    description="A branch mapped to a deployment target: planned on push and pull request, applied on approval.",
    printer_columns=(
        PrinterColumn("Branch", ".status.branch"),
        PrinterColumn("Plan", ".status.lastPlan.name"),
        PrinterColumn("Applied", ".status.lastAppliedRevision"),
        PrinterColumn("Drift", '.status.conditions[?(@.type=="Drifted")].status'),
        READY,
        STATUS,
    ),
)
PLAN = base.KindInfo(
    kind="Plan",
    plural="plans",
    singular="plan",
    short_names=("tfplan",),
    spec_model=plans.PlanSpec,
    status_model=plans.PlanStatus,
    description="One plan run: commit, summary, approval and apply result.",
    printer_columns=(
        PrinterColumn("Environment", ".spec.environmentRef.name"),
        PrinterColumn("Revision", ".status.revision"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Add", ".status.summary.add", type="integer"),
        PrinterColumn("Change", ".status.summary.change", type="integer"),
        PrinterColumn("Destroy", ".status.summary.destroy", type="integer"),
        PrinterColumn("Plan ID", ".status.planId", priority=1),
        READY,
        STATUS,
    ),
)

KINDS: tuple[base.KindInfo, ...] = (
    GITHUB_CONNECTION,
    GITHUB_REPOSITORY,
    TEMPLATE,
    TEMPLATE_REPO_LINK,
    ENVIRONMENT,
    PLAN,
)
BY_KIND = {info.kind: info for info in KINDS}
