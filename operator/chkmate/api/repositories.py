"""GitHubRepository: a repository to adopt, or to create with a scaffold. Pure models."""

from __future__ import annotations

from typing import Literal, Self

import pydantic

from chkmate.api import base, common

# What GitHub accepts as a repository name (it rewrites other characters; we refuse them instead).
REPOSITORY_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
OWNER_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
BRANCH_PATTERN = r"^[^\s~^:?*\[\\]+$"

Visibility = Literal["public", "private", "internal"]
DeletionPolicy = Literal["Retain", "Delete"]
ScaffoldPurpose = Literal["terraform", "webapp"]


class Scaffold(base.Model):
    """Files written into a repository the operator creates."""

    purpose: ScaffoldPurpose = pydantic.Field(
        default="terraform",
        description="terraform: README, .gitignore, .chkmate.yml, main/variables/outputs.tf; "
        "webapp: README and .gitignore.",
    )
    readme: bool = pydantic.Field(default=True, description="Write a README.md explaining the layout.")
    gitignore: bool = pydantic.Field(default=True, description="Write a .gitignore for the purpose.")


class GitHubRepositorySpec(base.Model):
    """A repository on GitHub, adopted or created."""

    connection_ref: common.LocalObjectReference = pydantic.Field(
        description="The GitHubConnection used to reach the repository."
    )
    owner: str = pydantic.Field(pattern=OWNER_PATTERN, description="User or organization owning the repository.")
    name: str = pydantic.Field(pattern=REPOSITORY_NAME_PATTERN, description="Repository name.")
    description: str = pydantic.Field(default="", max_length=350, description="Repository description.")
    visibility: Visibility = pydantic.Field(default="private", description="public, private or internal.")
    default_branch: str = pydantic.Field(
        default="main", pattern=BRANCH_PATTERN, max_length=255, description="Default branch of a created repository."
    )
    create: bool = pydantic.Field(
        default=False, description="Create the repository when it does not exist; otherwise only adopt it."
    )
    scaffold: Scaffold | None = pydantic.Field(
        default=None, description="Initial files for a created repository; never written into a non-empty one."
    )
    deletion_policy: DeletionPolicy = pydantic.Field(
        default="Retain",
        description="Retain leaves the repository on GitHub when this object is deleted; Delete deletes it.",
    )

    @pydantic.model_validator(mode="after")
    def _scaffold_needs_create(self) -> Self:
        if self.scaffold is not None and not self.create:
            raise ValueError("scaffold applies only to repositories the operator creates (create: true)")
        if self.name in {".", ".."} or self.name.endswith(".git"):
            raise ValueError(f"name: {self.name!r} is not a valid repository name")
        return self

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHubRepositoryStatus(common.CommonStatus):
    full_name: str | None = pydantic.Field(default=None, description="owner/name on GitHub.")
    html_url: str | None = pydantic.Field(default=None, description="The repository's web page.")
    clone_url: str | None = pydantic.Field(default=None, description="HTTPS URL git clones and pushes with.")
    default_branch: str | None = pydantic.Field(default=None, description="The default branch on GitHub.")
    visibility: str | None = pydantic.Field(default=None, description="Visibility on GitHub.")
    head_revision: str | None = pydantic.Field(
        default=None, description="Head of the default branch, as <branch>@sha1:<sha>."
    )
    created: bool | None = pydantic.Field(default=None, description="Whether the operator created the repository.")
