"""Template: Terraform files kept in the cluster, with a version history. Pure models."""

from __future__ import annotations

import posixpath
from typing import Literal, Self

import pydantic

from chkmate.api import base, common

# Kubernetes stores an object in etcd up to ~1.5 MiB; `kubectl apply` also copies it into an annotation
# limited to 256 KiB in total. Keep templates well below both (checked in chkmate.domain.templates).
MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_VERSIONS = 20

VersionSource = Literal["user", "github-sync", "rollback"]


def check_relative_path(path: str) -> str:
    """A clean, relative POSIX path inside the template; raises ValueError otherwise."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ValueError(f"{path!r} must be a relative POSIX path")
    normal = posixpath.normpath(path)
    if normal != path or normal == "." or normal.split("/")[0] == "..":
        raise ValueError(f"{path!r} must be a normalised path inside the template (no '.', '..' or '//')")
    if normal.split("/")[0] == ".git":
        raise ValueError(f"{path!r} must not be inside .git")
    return path


class TemplateSpec(base.Model):
    """Terraform files, one or many, keyed by their path relative to the template root."""

    files: dict[str, str] = pydantic.Field(
        min_length=1,
        description="File contents keyed by relative path, e.g. main.tf or modules/net/main.tf.",
    )
    description: str = pydantic.Field(default="", max_length=1024, description="What this template builds.")

    @pydantic.model_validator(mode="after")
    def _paths_are_relative(self) -> Self:
        for path in self.files:
            try:
                check_relative_path(path)
            except ValueError as e:
                raise ValueError(f"files: {e}") from None
        return self


class TemplateVersion(base.Status):
    revision: str = pydantic.Field(description="Content hash of the files (sha256:...).")
    source: VersionSource = pydantic.Field(description="user, github-sync or rollback.")
    commit: str | None = pydantic.Field(default=None, description="The git commit the version came from or went to.")
    at: str = pydantic.Field(description="When the version was recorded (RFC 3339).")
    message: str = pydantic.Field(default="", description="A short note, such as the commit subject.")


class TemplateStatus(common.CommonStatus):
    revision: str | None = pydantic.Field(default=None, description="sha256 of the files, as sha256:<hex>.")
    files: int | None = pydantic.Field(default=None, description="Number of files.")
    size_bytes: int | None = pydantic.Field(default=None, description="Total size of the files in bytes.")
    versions: tuple[TemplateVersion, ...] = pydantic.Field(
        default=(), description=f"The last {MAX_VERSIONS} versions, newest first."
    )
