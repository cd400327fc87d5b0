"""Reading a repository for the ``chkmate`` CLI: a folder's working tree, a branch of its git repository, or a
git URL.

:func:`read_source` returns a :class:`Source`: every file (relative POSIX path to bytes) and where it came from.
A folder is read as it is on disk (uncommitted changes included; :data:`SKIPPED_FOLDERS` left out); ``--branch``
reads a commit with ``git archive``; a URL is cloned shallowly into a temporary folder that is removed at once.
:func:`git` runs other git commands for :mod:`chkmate.cli_history` and :mod:`chkmate.cli_import`.
I/O: files and ``git`` subprocesses.
"""

from __future__ import annotations

import dataclasses
import io
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from chkmate import errors
from chkmate.domain import hcl

GIT_TIMEOUT = 120.0
# Folders that never hold code to plan: VCS data, downloaded providers and modules, dependencies.
SKIPPED_FOLDERS = frozenset({".git", ".terraform", "node_modules", ".venv", "__pycache__"})
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class SourceError(errors.ChkmateError):
    """The repository cannot be read: a missing folder, an unknown branch, git failing."""


@dataclasses.dataclass(frozen=True)
class Source:
    """The files of a repository (relative POSIX paths) and where they come from."""

    location: str  # as given on the command line
    files: Mapping[str, bytes] = dataclasses.field(repr=False)
    branch: str | None = None  # the branch read, or the one checked out; None outside git
    commit: str | None = None
    worktree: bool = True  # files of a working folder, uncommitted changes included

    @property
    def revision(self) -> str:
        """``<branch>@sha1:<sha>`` like the operator's revisions; ``worktree`` for a folder outside git."""
        if self.commit is None:
            return "worktree"
        return f"{self.branch or 'HEAD'}@sha1:{self.commit}"

    def describe(self) -> str:
        """One line saying what was read, for the summary header."""
        where = self.location
        if self.commit is None:
            return f"{where} (a folder, not a git repository)"
        if self.worktree:
            return f"{where} (working tree of {self.branch or 'a detached HEAD'} at {self.commit[:7]})"
        return f"{where} ({f'branch {self.branch}' if self.branch else 'commit'} at {self.commit[:7]})"

    def shown(self, path: str) -> str:
        """A path of the repository as the user can open it: under the location they gave."""
        return path if self.location in ("", ".") or is_url(self.location) else posixpath.join(self.location, path)

    def texts(self, folder: str) -> dict[str, str]:
        """The Terraform files under ``folder`` ('.' for all), as text."""
        prefix = "" if folder in ("", ".") else folder.rstrip("/") + "/"
        return {
            path: text_of(path, data)
            for path, data in self.files.items()
            if path.startswith(prefix) and hcl.is_terraform_file(path)
        }


def is_url(location: str) -> bool:
    """Whether ``location`` is a git URL (``https://...``, ``file://...``, ``git@host:owner/name``)."""
    return _URL.match(location) is not None


def read_source(location: str, *, branch: str | None = None) -> Source:
    """The files of a folder's working tree, of ``branch`` of the git repository there, or of a git URL."""
    if is_url(location):
        return _read_url(location, branch)
    folder = Path(location)
    if not folder.exists():
        raise SourceError(f"{location}: no such file or directory")
    if not folder.is_dir():
        raise SourceError(f"{location}: not a folder (give the repository's folder, where .chkmate.yml is)")
    in_git = in_git_repository(folder)
    if branch is not None:
        if not in_git:
            raise SourceError(f"--branch needs a git repository, and {location} is not in one")
        resolved = _resolve(folder, branch)
        return Source(location, _archive(folder, resolved), branch=branch, commit=resolved, worktree=False)
    head_branch, head = _head(folder) if in_git else (None, None)
    return Source(location, _walk(folder), branch=head_branch, commit=head, worktree=True)


def _read_url(url: str, branch: str | None) -> Source:
    with tempfile.TemporaryDirectory(prefix="chkmate-clone-") as folder:
        clone = ["clone", "--quiet", "--depth", "1", "--no-tags", "--single-branch"]
        git(Path(folder), *clone, *(["--branch", branch] if branch else []), "--", url, "repo")
        repository = Path(folder) / "repo"
        head_branch, commit = _head(repository)
        assert commit is not None  # a clone has a head commit
        return Source(url, _archive(repository, commit), branch=branch or head_branch, commit=commit, worktree=False)


def _walk(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS)
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def _archive(folder: Path, commit: str) -> dict[str, bytes]:
    """The files of ``commit`` under ``folder`` (``git archive`` run in a subfolder keeps only that subfolder)."""
    data = git_bytes(folder, "archive", "--format=tar", commit)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def in_git_repository(folder: Path) -> bool:
    """Whether ``folder`` is inside a git working tree (False when git is not installed)."""
    if shutil.which("git") is None:
        return False
    done = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "true"


def _head(folder: Path) -> tuple[str | None, str | None]:
    """The checked-out branch (None when detached) and commit (None before the first commit)."""
    try:
        commit = git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
    except SourceError:
        return None, None
    name = git(folder, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return (None if name == "HEAD" else name), commit


def _resolve(folder: Path, ref: str) -> str:
    try:
        return git(folder, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    except SourceError:
        raise SourceError(f"no branch or commit {ref!r} in the git repository at {folder}") from None


def git(folder: Path, *args: str) -> str:
    """The output of ``git -C folder ARGS...``; :class:`SourceError` with git's first error line on failure."""
    return git_bytes(folder, *args).decode(errors="replace")


def git_bytes(folder: Path, *args: str) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, env=env, timeout=GIT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise SourceError("git is not installed; it is needed for --branch and repository URLs") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} did not finish within {GIT_TIMEOUT:g}s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]
        errors_first = [line for line in lines if line.startswith(("fatal:", "error:"))] + lines[::-1]
        raise SourceError(f"git {args[0]} failed: {errors_first[0] if lines else f'exit status {done.returncode}'}")
    return done.stdout


def text_of(path: str, data: bytes) -> str:
    """A file's text (UTF-8, a BOM dropped); :class:`SourceError` when it is not text."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text (byte {e.start})") from None
