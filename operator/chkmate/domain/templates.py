"""Template revisions, size limits and the version list. Pure.

A revision is a content hash over the sorted (path, content) pairs: equal files give equal revisions
whatever order they were written in, and a rename changes the revision.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence

from chkmate.api import conditions, templates
from chkmate.domain import hcl


def revision(files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over the files; stable across dict order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        content = files[path].encode()
        # Length-prefix both parts so no two different file sets can produce the same byte stream.
        digest.update(f"{len(path.encode())}:{path}\0{len(content)}:".encode())
        digest.update(content)
    return f"sha256:{digest.hexdigest()}"


def size(files: Mapping[str, str]) -> int:
    return sum(len(path.encode()) + len(content.encode()) for path, content in files.items())


def problems(files: Mapping[str, str], *, max_bytes: int = templates.MAX_TEMPLATE_BYTES) -> tuple[str, str] | None:
    """(reason, message) for the first thing that stops a template from being used, or None."""
    total = size(files)
    if total > max_bytes:
        return (
            conditions.Reasons.TOO_LARGE,
            f"The template holds {total} bytes; the limit is {max_bytes} bytes (Kubernetes keeps objects under "
            "1.5 MiB in etcd). Split it into several templates or move large files out.",
        )
    errors = hcl.check_files(dict(files))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return conditions.Reasons.INVALID_HCL, f"{errors[0]}{more}"
    return None


def record_version(
    versions: Sequence[templates.TemplateVersion],
    *,
    revision: str,
    source: templates.VersionSource,
    now: datetime.datetime,
    commit: str | None = None,
    message: str = "",
    keep: int = templates.MAX_VERSIONS,
) -> tuple[templates.TemplateVersion, ...]:
    """Prepend a version unless the newest already has this revision; keep the newest ``keep``."""
    if versions and versions[0].revision == revision:
        return tuple(versions[:keep])
    new = templates.TemplateVersion(
        revision=revision, source=source, commit=commit, at=conditions.timestamp(now), message=message
    )
    return (new, *versions)[:keep]
