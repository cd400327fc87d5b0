"""TemplateRepoLink: ties a Template to a repository, branch and path, and says how they sync. Pure models."""

from __future__ import annotations

from typing import Literal, Self

import pydantic

from chkmate.api import base, common, repositories, templates

SyncDirection = Literal["Push", "Pull", "Bidirectional"]
MAX_HISTORY = 10


class Author(base.Model):
    name: str = pydantic.Field(min_length=1, max_length=256, description="Commit author name.")
    email: str = pydantic.Field(pattern=r"^[^@\s]+@[^@\s]+$", description="Commit author e-mail.")


class TemplateRepoLinkSpec(base.Model):
    """Where a Template lives in git, and which way changes flow."""

    template_ref: common.LocalObjectReference = pydantic.Field(description="The Template to sync.")
    repository_ref: common.LocalObjectReference = pydantic.Field(description="The GitHubRepository to sync with.")
    branch: str = pydantic.Field(
        default="main", pattern=repositories.BRANCH_PATTERN, max_length=255, description="Branch to sync with."
    )
    path: str = pydantic.Field(
        default=".",
        description="Folder in the repository holding the template's files ('.' is the root), or a single file "
        "path for a one-file template.",
    )
    sync_direction: SyncDirection = pydantic.Field(
        default="Push",
        description="Push: cluster to GitHub. Pull: GitHub to cluster. Bidirectional: both; edits on both sides "
        "since the last sync open a conflict pull request instead of overwriting.",
    )
    auto_sync: bool = pydantic.Field(
        default=False,
        description="Push on every template change. Without it, push only on request (chkmate.dev/requestedAt).",
    )
    interval: common.Duration = pydantic.Field(default="1m", description="How often to poll the branch.")
    suspend: bool = pydantic.Field(default=False, description="Pause syncing.")
    prune: bool = pydantic.Field(
        default=True,
        description="On push, delete files under the path that the template does not hold. Without it, such "
        "files are left alone.",
    )
    author: Author | None = pydantic.Field(default=None, description="Commit author; the operator's by default.")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auto_sync and self.sync_direction == "Pull":
            raise ValueError("autoSync pushes template changes; a Pull link cannot push (use Push or Bidirectional)")
        if self.path != ".":
            try:
                templates.check_relative_path(self.path.rstrip("/"))
            except ValueError as e:
                raise ValueError(f"path: {e}") from None
        common.parse_duration(self.interval)
        return self


class Conflict(base.Status):
    branch: str = pydantic.Field(description="Branch holding the cluster side of the conflict.")
    pull_request: int | None = pydantic.Field(default=None, description="Number of the conflict pull request.")
    url: str | None = pydantic.Field(default=None, description="Web page of the pull request.")
    template_revision: str | None = pydantic.Field(default=None, description="Template revision on that branch.")
    commit: str | None = pydantic.Field(default=None, description="Commit on the linked branch at conflict time.")


class SyncEvent(base.Status):
    direction: Literal["Push", "Pull", "Conflict", "Rollback", "None"] = pydantic.Field(description="What happened.")
    result: Literal["Succeeded", "Failed", "Skipped"] = pydantic.Field(description="How it ended.")
    commit: str | None = pydantic.Field(default=None, description="Commit pushed or pulled.")
    template_revision: str | None = pydantic.Field(default=None, description="Template revision involved.")
    message: str = pydantic.Field(default="", description="Details.")
    at: str = pydantic.Field(description="When (RFC 3339).")


class TemplateRepoLinkStatus(common.CommonStatus):
    last_synced_revision: str | None = pydantic.Field(
        default=None, description="Commit of the last sync, as <branch>@sha1:<sha>."
    )
    last_synced_template_revision: str | None = pydantic.Field(
        default=None, description="Template revision of the last sync."
    )
    last_push_at: str | None = pydantic.Field(default=None, description="Time of the last push.")
    last_pull_at: str | None = pydantic.Field(default=None, description="Time of the last pull.")
    history: tuple[SyncEvent, ...] = pydantic.Field(
        default=(), description=f"The last {MAX_HISTORY} sync events, newest first."
    )
    conflict: Conflict | None = pydantic.Field(default=None, description="The open conflict, if any.")
