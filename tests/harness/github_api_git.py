"""Plumbing access to the bare git repositories behind the GitHub API double.

Every method runs a plain `git` subprocess (disk I/O) against one bare repository, with a clean
environment: no global or system config, a fixed default identity, no prompts. Only plumbing
commands are used (cat-file, ls-tree, hash-object, mktree, commit-tree, update-ref, rev-parse,
merge-base, merge-tree, for-each-ref, rev-list, diff-tree), so no worktree or index is ever needed.
This module knows nothing about HTTP or GitHub's JSON shapes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_OBJECT_ID = re.compile(r"[0-9a-f]{4,64}")
_IDENTITY = {"name": "GitHub", "email": "noreply@github.com"}


class GitError(RuntimeError):
    """A git command failed unexpectedly (not a condition the API maps to a status code)."""


@dataclasses.dataclass(frozen=True)
class Signature:
    """An author or committer line: who and when (always UTC)."""

    name: str
    email: str
    timestamp: int


@dataclasses.dataclass(frozen=True)
class CommitData:
    """A parsed commit object."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


@dataclasses.dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree: `kind` is blob, tree or commit (a submodule); `size` only for blobs."""

    mode: str
    kind: str
    sha: str
    size: int | None
    name: str


@dataclasses.dataclass(frozen=True)
class DiffStats:
    """Line and file counts between two commits, as a pull request reports them."""

    additions: int
    deletions: int
    changed_files: int


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment that isolates git from the machine's configuration."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": _IDENTITY["name"],
        "GIT_AUTHOR_EMAIL": _IDENTITY["email"],
        "GIT_COMMITTER_NAME": _IDENTITY["name"],
        "GIT_COMMITTER_EMAIL": _IDENTITY["email"],
    }
    env.update(extra or {})
    return env


def _parse_signature(line: str) -> Signature:
    name_email, _, when = line.rpartition("> ")
    name, _, email = name_email.partition(" <")
    return Signature(name=name, email=email, timestamp=int(when.split()[0]))


def _line_count(numstat_field: str) -> int:
    return int(numstat_field) if numstat_field.isdigit() else 0  # "-" for binary files


class BareRepo:
    """One bare repository on disk, read and written with git plumbing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, default_branch: str) -> BareRepo:
        """Initialise a bare repository that accepts smart-HTTP pushes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo._run("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path), cwd=False)
        repo._run("config", "http.receivepack", "true")
        return repo

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def move_to(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path.rename(path)
        self.path = path

    def _run(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        ok_codes: Sequence[int] = (0,),
        cwd: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        prefix = ["git", "-C", str(self.path)] if cwd else ["git"]
        done = subprocess.run([*prefix, *args], input=stdin, capture_output=True, env=git_environment(env), check=False)
        if done.returncode not in ok_codes:
            raise GitError(f"git {' '.join(args)} failed ({done.returncode}): {done.stderr.decode().strip()}")
        return done

    def _text(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return self._run(*args, stdin=stdin, env=env).stdout.decode().strip()

    # Reading

    def resolve_commit(self, rev: str) -> str | None:
        """The commit sha a branch, tag, full ref or (abbreviated) sha names; None if none."""
        if not rev or rev.startswith("-"):
            return None
        done = self._run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", ok_codes=(0, 1, 128))
        if done.returncode != 0:
            return None
        return done.stdout.decode().strip() or None

    def ref_target(self, ref: str) -> str | None:
        """The object a full ref name (refs/...) points to; None if the ref does not exist."""
        for name, sha in self.refs(ref):
            if name == ref:
                return sha
        return None

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str]]:
        """(full ref name, object sha) pairs whose name starts with `prefix`, sorted by name."""
        out = self._text("for-each-ref", "--format=%(refname) %(objectname)", "refs/")
        pairs = [tuple(line.split(" ", 1)) for line in out.splitlines() if line]
        return sorted((name, sha) for name, sha in pairs if name.startswith(prefix))

    def branches(self) -> list[tuple[str, str]]:
        """(branch name, commit sha) pairs, sorted by name."""
        return [(name.removeprefix("refs/heads/"), sha) for name, sha in self.refs("refs/heads/")]

    def valid_ref_name(self, ref: str) -> bool:
        return self._run("check-ref-format", ref, ok_codes=(0, 1)).returncode == 0

    def object_type(self, sha: str) -> str | None:
        if not _OBJECT_ID.fullmatch(sha):
            return None
        done = self._run("cat-file", "-t", sha, ok_codes=(0, 1, 128))
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def read_commit(self, sha: str) -> CommitData:
        raw = self._run("cat-file", "commit", sha).stdout.decode()
        header, _, message = raw.partition("\n\n")
        fields: dict[str, list[str]] = {}
        for line in header.splitlines():
            if not line.startswith(" "):  # continuation lines belong to gpgsig/mergetag
                key, _, value = line.partition(" ")
                fields.setdefault(key, []).append(value)
        return CommitData(
            sha=sha,
            tree=fields["tree"][0],
            parents=tuple(fields.get("parent", [])),
            author=_parse_signature(fields["author"][0]),
            committer=_parse_signature(fields["committer"][0]),
            message=message,
        )

    def read_blob(self, sha: str) -> bytes:
        return self._run("cat-file", "blob", sha).stdout

    def list_tree(self, tree_ish: str) -> list[TreeEntry]:
        """The entries of a tree (or of a commit's root tree), sorted by name."""
        out = self._run("ls-tree", "-l", "-z", tree_ish).stdout.decode()
        return [self._parse_tree_line(line) for line in out.split("\0") if line]

    def entry_at(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at `path` in `commit`; the root tree for an empty path; None if absent."""
        if not path:
            return TreeEntry("040000", "tree", self._text("rev-parse", f"{commit}^{{tree}}"), None, "")
        out = self._run("ls-tree", "-l", "-z", commit, "--", path).stdout.decode()
        lines = [line for line in out.split("\0") if line]
        return self._parse_tree_line(lines[0]) if lines else None

    @staticmethod
    def _parse_tree_line(line: str) -> TreeEntry:
        meta, _, name = line.partition("\t")
        mode, kind, sha, size = meta.split()
        return TreeEntry(mode, kind, sha, None if size == "-" else int(size), name.rpartition("/")[2])

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        done = self._run("merge-base", "--is-ancestor", ancestor, descendant, ok_codes=(0, 1))
        return done.returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        done = self._run("merge-base", a, b, ok_codes=(0, 1))
        return done.stdout.decode().strip() or None

    def commits_between(self, base: str, head: str) -> list[str]:
        """Commits reachable from `head` but not from `base`, oldest first."""
        return self._text("rev-list", "--reverse", f"{base}..{head}").split()

    def diff_stats(self, base: str, head: str) -> DiffStats:
        out = self._text("diff-tree", "-r", "--numstat", base, head)
        rows = [line.split("\t", 2) for line in out.splitlines() if line]
        return DiffStats(
            additions=sum(_line_count(row[0]) for row in rows),
            deletions=sum(_line_count(row[1]) for row in rows),
            changed_files=len(rows),
        )

    def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The tree of a clean three-way merge of two commits; None on conflict."""
        done = self._run("merge-tree", "--write-tree", "--no-messages", ours, theirs, ok_codes=(0, 1))
        return done.stdout.decode().split()[0] if done.returncode == 0 else None

    # Writing

    def write_blob(self, data: bytes) -> str:
        return self._text("hash-object", "-w", "--stdin", stdin=data)

    def write_tree(self, entries: Sequence[TreeEntry]) -> str:
        lines = "".join(f"{e.mode} {e.kind} {e.sha}\t{e.name}\0" for e in entries)
        return self._text("mktree", "-z", stdin=lines.encode())

    def tree_with(self, base_tree: str | None, path: str, blob: str | None) -> str:
        """A new root tree: `base_tree` with the file at `path` set to `blob` (or removed if None)."""
        return self._edit_tree(base_tree, path.strip("/").split("/"), blob) or EMPTY_TREE

    def _edit_tree(self, tree: str | None, parts: list[str], blob: str | None) -> str | None:
        entries = {e.name: e for e in self.list_tree(tree)} if tree else {}
        name, existing = parts[0], entries.get(parts[0])
        if len(parts) == 1:
            entries.pop(name, None)
            if blob is not None:
                mode = existing.mode if existing and existing.kind == "blob" else "100644"
                entries[name] = TreeEntry(mode, "blob", blob, None, name)
        else:
            subtree = existing.sha if existing and existing.kind == "tree" else None
            new_subtree = self._edit_tree(subtree, parts[1:], blob)
            entries.pop(name, None)
            if new_subtree is not None:
                entries[name] = TreeEntry("040000", "tree", new_subtree, None, name)
        return self.write_tree(list(entries.values())) if entries else None

    def write_commit(
        self, tree: str, parents: Sequence[str], message: str, author: Signature, committer: Signature
    ) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": f"@{author.timestamp} +0000",
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": f"@{committer.timestamp} +0000",
        }
        parent_args = [arg for sha in parents for arg in ("-p", sha)]
        return self._text("commit-tree", tree, *parent_args, stdin=message.encode(), env=env)

    def update_ref(self, ref: str, new: str, expected_old: str | None = None) -> bool:
        """Point `ref` at `new`; with `expected_old`, only if it still points there. False if it moved."""
        args = ["update-ref", ref, new] + ([expected_old] if expected_old is not None else [])
        return self._run(*args, ok_codes=(0, 1, 128)).returncode == 0

    def delete_ref(self, ref: str) -> None:
        self._run("update-ref", "-d", ref)
