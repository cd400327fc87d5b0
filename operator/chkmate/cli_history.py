"""``chkmate history``: the commit timeline of a path beside the template revisions, and diffs between them.

For a path in a git repository: the commits touching it, newest first, each with the template revision its
``Chkmate-Template-Revision`` trailer names (commits chkmate pushed) and the content revision of the path at that
commit (what a Template holding those files would have as revision: equal to the trailer when the push wrote
exactly the template's files). ``--diff A B`` shows ``git diff`` of the path between two commits, each given as a
commit or as a template/content revision (``sha256:`` and a prefix). For a Template manifest
(``kubectl get template NAME -o yaml``): its revision and ``status.versions``. I/O: git subprocesses and files.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml

from chkmate import cli_render, cli_sources, local
from chkmate.api import templates as template_api
from chkmate.domain import sync, templates

SHORT = 12  # hex digits of a revision shown in tables
_FIELD, _RECORD = "\x1f", "\x1e"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "history",
        help="Show a path's commits beside the template revisions, or a Template's versions; diff two of them.",
        description="For a path in a git repository: its commits with the chkmate template revision each one "
        "carries and the content revision of the path. For a Template manifest file: its versions. "
        "--diff A B shows the changes between two commits or revisions.",
    )
    parser.add_argument(
        "target",
        metavar="PATH|TEMPLATE_FILE",
        help="A file or folder in a git repository, or a Template manifest (YAML).",
    )
    parser.add_argument("--diff", nargs=2, metavar=("A", "B"), help="Commits or revisions (sha256:...) to compare.")
    parser.add_argument("-n", "--max-count", type=int, default=20, metavar="N", help="Commits to show (20).")
    parser.set_defaults(run=run)


@dataclasses.dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str
    subject: str
    template_revision: str | None  # from the Chkmate-Template-Revision trailer


def run(args: argparse.Namespace) -> int:
    target = Path(args.target)
    if not target.exists():
        raise local.LocalError(f"{args.target}: no such file or directory")
    template = _template(target) if target.is_file() and target.suffix in (".yaml", ".yml", ".json") else None
    if template is not None:
        return _template_history(args, template)
    return _git_history(args, target)


# ---- git ------------------------------------------------------------------------------------------------------


def _git_history(args: argparse.Namespace, target: Path) -> int:
    folder = target if target.is_dir() else target.parent
    if not cli_sources.in_git_repository(folder):
        raise local.LocalError(f"{args.target} is neither in a git repository nor a Template manifest")
    top = Path(cli_sources.git(folder, "rev-parse", "--show-toplevel").strip())
    prefix = cli_sources.git(folder, "rev-parse", "--show-prefix").strip()
    path = (prefix + ("" if target.is_dir() else target.name)).rstrip("/") or "."
    if args.diff:
        _diff(top, path, args.diff)
    else:
        _timeline(top, path, args.max_count)
    return 0


def _timeline(top: Path, path: str, limit: int) -> None:
    commits = list(_log(top, path, limit))
    if not commits:
        raise local.LocalError(f"{path}: no commits touch this path")
    print(f"History of {path} in {top} (newest first, {cli_render.count(len(commits), 'commit')})")
    rows = [("COMMIT", "DATE", "AUTHOR", "CONTENT", "TEMPLATE", "SUBJECT")]
    for commit in commits:
        content = content_revision(top, path, commit.sha)
        template = commit.template_revision
        shown = (_short(content) if content else "(deleted)", _short(template) if template else "-")
        rows.append((commit.sha[:7], commit.date[:10], commit.author, *shown, commit.subject))
    print("\n".join(_aligned(rows)))


def _diff(top: Path, path: str, refs: Sequence[str]) -> None:
    first, second = (_resolve(top, path, ref) for ref in refs)
    diff = cli_sources.git(top, "diff", "--no-color", first, second, "--", path)
    if diff:
        print(diff, end="")
    else:
        print(f"No differences in {path} between {first[:7]} and {second[:7]}.")


def _log(top: Path, path: str, limit: int | None) -> Iterator[Commit]:
    count = [f"--max-count={limit}"] if limit else []
    text = cli_sources.git(top, "log", *count, f"--format=%H{_FIELD}%an{_FIELD}%aI{_FIELD}%B{_RECORD}", "--", path)
    for record in text.split(_RECORD):
        if not record.strip():
            continue
        sha, author, date, message = record.strip("\n").split(_FIELD, 3)
        trailers = sync.parse_trailers(message)
        subject = message.strip().splitlines()[0] if message.strip() else ""
        yield Commit(sha, author, date, subject, trailers.get(sync.TEMPLATE_REVISION_TRAILER))


def content_revision(top: Path, path: str, commit: str) -> str | None:
    """The revision a Template holding the files under ``path`` at ``commit`` would have; None if it is gone."""
    tree = commit if path == "." else f"{commit}:{path}"
    try:
        kind = cli_sources.git(top, "cat-file", "-t", tree).strip()
    except cli_sources.SourceError:  # the commit deleted the path
        return None
    if kind == "blob":
        return sync.repo_revision({Path(path).name: cli_sources.git_bytes(top, "cat-file", "blob", tree)})
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(cli_sources.git_bytes(top, "archive", "--format=tar", tree))) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return sync.repo_revision(files)


def _resolve(top: Path, path: str, ref: str) -> str:
    """A commit sha for a commit-ish, or for a revision: the newest commit carrying or holding it."""
    if not ref.startswith("sha256:"):
        return cli_sources.git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    commits = list(_log(top, path, None))
    for commit in commits:
        if commit.template_revision and commit.template_revision.startswith(ref):
            return commit.sha
    for commit in commits:
        if (content_revision(top, path, commit.sha) or "").startswith(ref):
            return commit.sha
    raise local.LocalError(f"no commit of {path} carries or holds revision {ref}")


def _short(revision: str) -> str:
    algorithm, _, digest = revision.partition(":")
    return f"{algorithm}:{digest[:SHORT]}" if digest else revision[:SHORT]


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


# ---- Template manifests ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Template:
    name: str
    namespace: str
    files: dict[str, str]
    status: template_api.TemplateStatus


def _template(path: Path) -> _Template | None:
    """The Template in a manifest file; None when the file holds none (then it is a path to show history of)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError:
        return None
    items = [item for doc in documents if isinstance(doc, dict) for item in (doc.get("items") or [doc])]
    found = next((item for item in items if isinstance(item, dict) and item.get("kind") == "Template"), None)
    if found is None:
        return None
    metadata = found.get("metadata") or {}
    try:
        spec = template_api.TemplateSpec.model_validate(found.get("spec") or {})
        status = template_api.TemplateStatus.model_validate(found.get("status") or {})
    except pydantic.ValidationError as e:
        raise local.LocalError(f"{path}: not a valid Template: {e.errors()[0]['msg']}") from e
    return _Template(metadata.get("name", "?"), metadata.get("namespace", "?"), dict(spec.files), status)


def _template_history(args: argparse.Namespace, template: _Template) -> int:
    versions = template.status.versions
    if args.diff:
        commits = [_version_commit(versions, ref) for ref in args.diff]
        raise local.LocalError(
            "a Template keeps the files of its current revision only; diff the commits of those versions in the "
            f"repository: chkmate history REPO_PATH --diff {commits[0]} {commits[1]}"
        )
    revision = templates.revision(template.files)
    recorded = template.status.revision
    files = cli_render.count(len(template.files), "file")
    print(f"Template {template.namespace}/{template.name}: revision {_short(revision)}, {files}")
    if recorded and recorded != revision:
        print(f"(status.revision is {_short(recorded)}: the operator has not seen the current files yet)")
    if not versions:
        print("No versions recorded yet.")
        return 0
    rows = [("REVISION", "SOURCE", "COMMIT", "AT", "MESSAGE")]
    rows += [(_short(v.revision), v.source, (v.commit or "-")[:7], v.at, v.message) for v in versions]
    print("\n".join(_aligned(rows)))
    return 0


def _version_commit(versions: Sequence[template_api.TemplateVersion], ref: str) -> str:
    for version in versions:
        if version.revision.startswith(ref) or (version.commit or "").startswith(ref):
            if version.commit is None:
                raise local.LocalError(f"version {_short(version.revision)} has no commit to diff")
            return version.commit
    raise local.LocalError(f"no version {ref} in the Template's status.versions")
