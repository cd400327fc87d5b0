"""git over HTTPS: one bare mirror per repository, ls-remote, fetch, read trees, build commits, push.

Every git command is an ``asyncio`` subprocess of the real ``git`` with a deadline, so the event loop never
blocks and a hung server cannot hang the operator. Reading a tree costs what changed since the last read
(``diff-tree`` against a cached listing, then one ``cat-file --batch`` for the blobs not cached by sha);
immutable answers (commit present, message, ancestry) are cached. Commits are built without a checkout,
with a temporary index (blobs are written in-process by GitPython's object database). Pushes are never
forced: a rejected push raises :class:`NonFastForward`.

Tokens reach git only through the child's environment (FACTS.md): an ``Authorization`` header sent with the first
request, and a credential helper reading ``$GIT_TOKEN`` should the server ask anyway; never in URLs, argv, the repo
config or error messages. I/O: subprocesses and the work dir.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import git as gitpython
from gitdb.base import IStream

from chkmate import errors
from chkmate.api import conditions

ZERO_SHA = "0" * 40
CREDENTIAL_HELPER = '!f() { echo username=x-access-token; echo "password=$GIT_TOKEN"; }; f'
DEFAULT_TIMEOUT = 120.0
BLOB_CACHE_BYTES = 64 * 1024 * 1024  # file contents kept in memory, by blob sha (shared by every repository)
LISTING_CACHE_ENTRIES = 512  # (repository, commit, path) -> {path: blob sha}; the base of the next diff-tree
READERS = 64  # long-lived cat-file processes kept at most, one per recently read mirror (about 3 MB each)
READER_IDLE = 300.0  # seconds unread after which a mirror's reader stops (quiet repositories keep no process)
ANSWER_CACHE_ENTRIES = 4096  # immutable answers: commits present, commit messages, ancestry
BLOB_MODES = frozenset({"100644", "100755", "120000"})  # files and symlinks; not submodules (160000)

_SHA = re.compile(r"[0-9a-f]{40}")
K = TypeVar("K")
V = TypeVar("V")

TokenProvider = Callable[[], Awaitable[str]]


class GitError(errors.TransientError):
    """A git command failed; retrying may help (network, server)."""

    exit_status: int | None = None  # git's exit status; None when it did not exit (timed out)


class AuthenticationFailed(GitError):
    reason = conditions.Reasons.UNAUTHORIZED


class RepositoryNotFound(GitError):
    reason = conditions.Reasons.REPOSITORY_NOT_FOUND


class NonFastForward(GitError):
    """The branch moved on the remote since we fetched: refetch and decide again; never force."""


@dataclasses.dataclass(frozen=True)
class Remote:
    """A repository to talk to: its HTTPS URL and how to get a token for it (None: anonymous)."""

    url: str
    token: TokenProvider | None = None


@dataclasses.dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclasses.dataclass(frozen=True)
class Change:
    """What a commit does under the repository root: files written and paths removed."""

    write: Mapping[str, bytes]
    delete: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.write and not self.delete


class Mirrors:
    """Bare mirrors of remote repositories under ``root``, one per URL, each behind its own lock."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_operation: Callable[[str, float], None] | None = None,
    ) -> None:
        self.root = root
        self.timeout = timeout
        self.on_operation = on_operation  # told of every network operation and its duration
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.operations: collections.Counter[str] = collections.Counter()  # for metrics and benchmarks
        self._blobs: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._listed: dict[str, tuple[float, dict[str, str]]] = {}  # url -> (when, refs) of the last ls-remote
        self._blob_bytes = 0
        self._listings: collections.OrderedDict[tuple[str, str, str], dict[str, str]] = collections.OrderedDict()
        self._last_listed: dict[tuple[str, str], str] = {}  # (url, path) -> the commit listed last
        self._commits: collections.OrderedDict[tuple[str, str], bool] = collections.OrderedDict()
        self._messages: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self._ancestry: collections.OrderedDict[tuple[str, str, str], bool] = collections.OrderedDict()
        self._readers: collections.OrderedDict[Path, ObjectReader] = collections.OrderedDict()
        self.blobs_read = 0  # for benchmarks and tests: the work reads do
        self.listings_full = 0
        self.listings_patched = 0

    def path(self, remote: Remote) -> Path:
        return self.root / (hashlib.sha256(remote.url.encode()).hexdigest()[:24] + ".git")

    def lock(self, remote: Remote) -> asyncio.Lock:
        return self._locks[remote.url]

    async def _read(self, mirror: Path, names: list[str]) -> list[tuple[str, bytes] | None]:
        """Objects of ``mirror`` through its long-lived reader. At most :data:`READERS` are kept (the least
        recently used one stops), so a thousand repositories do not keep a thousand processes, and one unread for
        :data:`READER_IDLE` seconds stops too. The limit is well above the repositories that change at once: a
        reader stopped and started again on every read would cost two process starts per read."""
        now = time.monotonic()
        reader = self._readers.get(mirror)
        if reader is None:
            reader = self._readers[mirror] = ObjectReader(mirror, timeout=self.timeout)
        reader.used_at = now
        self._readers.move_to_end(mirror)
        idle = []
        while len(self._readers) > READERS or now - next(iter(self._readers.values())).used_at > READER_IDLE:
            idle.append(self._readers.popitem(last=False)[1])
        await asyncio.gather(*(each.close() for each in idle))
        return await reader.read(names)

    async def close(self) -> None:
        """Stop the long-lived ``cat-file`` processes (the mirrors stay on disk)."""
        readers, self._readers = list(self._readers.values()), collections.OrderedDict()
        for reader in readers:
            await reader.close()

    async def ls_remote(self, remote: Remote) -> dict[str, str]:
        """``{ref: sha}`` of the remote's branches and tags: one round trip, no objects transferred."""
        out = await self._git(remote, "ls-remote", "--heads", "--tags", remote.url, cwd=None, op="ls-remote")
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref and not ref.endswith("^{}"):
                refs[ref] = sha
        return refs

    async def fetch(self, remote: Remote, branches: Iterable[str] = ()) -> Path:
        """Bring the mirror up to date (only ``branches`` when given); returns its path."""
        mirror = await self._ensure(remote)
        wanted = list(branches)
        refspecs = [f"+refs/heads/{b}:refs/heads/{b}" for b in wanted] or ["+refs/heads/*:refs/heads/*"]
        await self._git(remote, "fetch", "--prune", "--no-tags", remote.url, *refspecs, cwd=mirror, op="fetch")
        return mirror

    async def head(self, remote: Remote, branch: str) -> str | None:
        """The mirror's commit for ``branch`` (as of the last fetch), or None."""
        if not (self.path(remote) / "HEAD").exists():
            return None
        code, out = await self._status(self.path(remote), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return out.decode().strip() if code == 0 else None

    async def has_commit(self, remote: Remote, commit: str) -> bool:
        """Whether the mirror holds ``commit`` (answers are cached: a mirror never loses objects)."""
        if (remote.url, commit) in self._commits:
            return True
        if not _SHA.fullmatch(commit) or not (self.path(remote) / "HEAD").exists():
            return False
        found = (await self._read(self.path(remote), [f"{commit}^{{commit}}"]))[0]
        if found is not None:
            self._remember(self._commits, (remote.url, commit), True)
        return found is not None

    async def refresh(self, remote: Remote, branch: str, *, max_age: float = 0.0) -> str | None:
        """The branch's head on the remote (one ls-remote), fetched into the mirror only if it moved.

        ``max_age`` lets callers share an ls-remote made that many seconds ago at most: several objects
        reconciling together after one push ask the remote once.
        """
        seen = self._listed.get(remote.url)
        now = time.monotonic()
        if seen is not None and now - seen[0] <= max_age:
            refs = seen[1]
        else:
            refs = await self.ls_remote(remote)
            self._listed[remote.url] = (now, refs)
        head = refs.get(f"refs/heads/{branch}")
        if head is not None and not await self.has_commit(remote, head):
            await self.fetch(remote, [branch])
        return head

    async def read_tree(self, remote: Remote, commit: str, path: str = ".") -> dict[str, bytes] | None:
        """Files under ``path`` at ``commit``, keyed relative to ``path``; None if ``path`` is absent.

        A file ``path`` gives ``{basename: content}``. The work is proportional to what changed since the last
        read of the same path: the listing comes from ``git diff-tree`` against the last listing (a full
        ``ls-tree`` only the first time), and only blobs not already cached (by sha) are read, in one
        ``cat-file --batch``. Nothing here runs in the event loop's thread.
        """
        mirror = self.path(remote)
        where = path.strip("/") if path not in {".", ""} else ""
        listing = await self._listing(mirror, remote.url, commit, where)
        if not listing:
            return None
        # The contents are taken from the cache now and from the read below, not from the cache afterwards: other
        # reads during the await may evict them (the cache is shared and bounded).
        wanted = set(listing.values())
        contents = {sha: self._blob(sha) for sha in wanted if sha in self._blobs}
        missing = sorted(wanted - contents.keys())
        if missing:
            contents.update(await self._read_blobs(mirror, missing))
        if where in listing:  # a file
            return {posix_basename(where): contents[listing[where]]}
        prefix = len(where) + 1 if where else 0
        return {name[prefix:]: contents[sha] for name, sha in listing.items()}

    async def _listing(self, mirror: Path, url: str, commit: str, where: str) -> dict[str, str]:
        """``{path from the root: blob sha}`` under ``where`` at ``commit`` (cached per commit and path)."""
        key = (url, commit, where)
        cached = self._listings.get(key)
        if cached is not None:
            self._listings.move_to_end(key)
            return cached
        spec = ["--", where] if where else []
        base = self._last_listed.get((url, where))
        if base is not None and (url, base, where) in self._listings:
            listing = dict(self._listings[(url, base, where)])
            out = await self._bytes(mirror, "diff-tree", "-r", "-z", "--no-renames", base, commit, *spec)
            fields = out.split(b"\0")
            for meta, name in zip(fields[0::2], fields[1::2], strict=False):
                _, mode, _, sha, status = meta.decode().split(" ")
                if status == "D" or mode not in BLOB_MODES:
                    listing.pop(name.decode(), None)
                else:
                    listing[name.decode()] = sha
            self.listings_patched += 1
        else:
            out = await self._bytes(mirror, "ls-tree", "-r", "-z", "--full-tree", commit, *spec)
            listing = {}
            for entry in filter(None, out.split(b"\0")):
                meta, _, name = entry.partition(b"\t")
                mode, kind, sha = meta.decode().split(" ")
                if kind == "blob" and mode in BLOB_MODES:
                    listing[name.decode()] = sha
            self.listings_full += 1
        self._remember(self._listings, key, listing, limit=LISTING_CACHE_ENTRIES)
        self._last_listed[(url, where)] = commit
        return listing

    async def _read_blobs(self, mirror: Path, shas: list[str]) -> dict[str, bytes]:
        """``{sha: content}`` of ``shas``, read through the mirror's long-lived ``cat-file --batch`` and cached."""
        read = {}
        for sha, found in zip(shas, await self._read(mirror, shas), strict=True):
            if found is None or found[0] != "blob":
                raise GitError(f"git cat-file: {sha} is {'missing' if found is None else 'a ' + found[0]}")
            self._store(sha, found[1])
            read[sha] = found[1]
        self.blobs_read += len(shas)
        return read

    def _store(self, sha: str, data: bytes) -> None:
        self._blobs[sha] = data
        self._blob_bytes += len(data)
        while self._blob_bytes > BLOB_CACHE_BYTES and len(self._blobs) > 1:
            _, dropped = self._blobs.popitem(last=False)
            self._blob_bytes -= len(dropped)

    def _blob(self, sha: str) -> bytes:
        self._blobs.move_to_end(sha)
        return self._blobs[sha]

    async def commit_message(self, remote: Remote, commit: str) -> str:
        cached = self._messages.get((remote.url, commit))
        if cached is None:
            found = (await self._read(self.path(remote), [f"{commit}^{{commit}}"]))[0]
            if found is None:
                raise GitError(f"git cat-file: commit {commit} is not in the mirror")
            cached = found[1].partition(b"\n\n")[2].decode(errors="replace")
            self._remember(self._messages, (remote.url, commit), cached)
        return cached

    async def is_ancestor(self, remote: Remote, ancestor: str, descendant: str) -> bool:
        key = (remote.url, ancestor, descendant)
        if key not in self._ancestry:
            code, _ = await self._status(self.path(remote), "merge-base", "--is-ancestor", ancestor, descendant)
            if code not in {0, 1}:
                return False  # an unknown commit: not known to descend (not cached: a fetch may bring it)
            self._remember(self._ancestry, key, code == 0)
        return self._ancestry[key]

    @staticmethod
    def _remember(cache: collections.OrderedDict[K, V], key: K, value: V, *, limit: int = ANSWER_CACHE_ENTRIES) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)

    async def commit(self, remote: Remote, *, parent: str | None, change: Change, message: str, author: Author) -> str:
        """A new commit on top of ``parent`` (None: a root commit) applying ``change``; nothing is pushed."""
        started = time.monotonic()
        try:
            return await self._commit(remote, parent=parent, change=change, message=message, author=author)
        finally:
            if self.on_operation is not None:
                self.on_operation("commit", time.monotonic() - started)

    async def _commit(
        self, remote: Remote, *, parent: str | None, change: Change, message: str, author: Author
    ) -> str:
        mirror = await self._ensure(remote)
        with tempfile.TemporaryDirectory(prefix="chkmate-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent is not None:
                await self._local(mirror, "read-tree", parent, env=env)
            else:
                await self._local(mirror, "read-tree", "--empty", env=env)
            index_lines = [f"100644 {sha}\t{path}" for path, sha in self._store_blobs(mirror, change.write).items()]
            for path in sorted(change.delete):
                index_lines.append(f"0 {ZERO_SHA}\t{path}")
            if index_lines:
                await self._local(
                    mirror, "update-index", "--index-info", env=env, stdin=("\n".join(index_lines) + "\n").encode()
                )
            tree = (await self._local(mirror, "write-tree", env=env)).strip()
        identity = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        args = ["commit-tree", tree, *(["-p", parent] if parent else [])]
        return (await self._local(mirror, *args, env=identity, stdin=message.encode())).strip()

    @staticmethod
    def _store_blobs(mirror: Path, files: Mapping[str, bytes]) -> dict[str, str]:
        """Write the contents as blobs in-process (one git process per file would cost ~2 ms each)."""
        repo = gitpython.Repo(mirror)
        try:
            return {
                path: repo.odb.store(IStream(b"blob", len(data), io.BytesIO(data))).hexsha.decode()
                for path, data in sorted(files.items())
            }
        finally:
            repo.close()

    async def push(self, remote: Remote, commit: str, branch: str) -> None:
        """Push ``commit`` to ``branch``; :class:`NonFastForward` when the branch moved on. Never forced."""
        mirror = await self._ensure(remote)
        await self._git(
            remote, "push", "--porcelain", remote.url, f"{commit}:refs/heads/{branch}", cwd=mirror, op="push"
        )
        await self._local(mirror, "update-ref", f"refs/heads/{branch}", commit)

    async def _ensure(self, remote: Remote) -> Path:
        mirror = self.path(remote)
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            await self._local(None, "init", "--bare", "--quiet", str(mirror))
        return mirror

    async def _local(
        self, cwd: Path | None, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
    ) -> str:
        return (await self._bytes(cwd, *args, env=env, stdin=stdin)).decode(errors="replace")

    async def _bytes(
        self, cwd: Path | None, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
    ) -> bytes:
        command = ["git", "--literal-pathspecs", *args]
        return await _run(command, cwd=cwd, env=_environment(env), stdin=stdin, timeout=self.timeout, secrets=())

    async def _status(self, cwd: Path, *args: str) -> tuple[int, bytes]:
        """Exit status and output of a local git command whose failure is an answer (not an error)."""
        try:
            return 0, await self._bytes(cwd, *args)
        except GitError as failed:
            if failed.exit_status is None:
                raise  # timed out
            return failed.exit_status, b""

    async def _git(self, remote: Remote, *args: str, cwd: Path | None, op: str) -> str:
        """A network git command authenticated with the remote's token (:func:`_authorization`)."""
        token = await remote.token() if remote.token is not None else None
        env = _authorization(remote.url, token) if token else {}
        self.operations[op] += 1
        command = ["git", "-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}", *args]
        started = time.monotonic()
        try:
            secrets = (token, _basic(token)) if token else ()
            out = await _run(command, cwd=cwd, env=_environment(env), stdin=None, timeout=self.timeout, secrets=secrets)
            return out.decode(errors="replace")
        finally:
            if self.on_operation is not None:
                self.on_operation(op, time.monotonic() - started)


class ObjectReader:
    """A long-lived ``git cat-file --batch`` on one mirror: objects are read with no process start.

    Requests are serialized; each writes every name first and then reads every answer (asyncio buffers the
    writes, so a large batch cannot deadlock on full pipes). Objects fetched after it started are found (git
    looks for new packs when an object is missing). Any failure or timeout kills the process; the next
    request starts a new one.
    """

    def __init__(self, mirror: Path, *, timeout: float) -> None:
        self.mirror = mirror
        self.timeout = timeout
        self.used_at = time.monotonic()
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def read(self, names: list[str]) -> list[tuple[str, bytes] | None]:
        """``(type, content)`` of each object name (a sha, or ``sha^{commit}``), None for a missing one."""
        async with self._lock:
            for attempt in (1, 2):  # a process that died since the last request is replaced once
                try:
                    return await asyncio.wait_for(self._exchange(names), self.timeout)
                except TimeoutError:
                    await self._stop()
                    raise GitError(f"git cat-file timed out after {self.timeout:.0f}s") from None
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    await self._stop()
                    if attempt == 2:
                        raise GitError(f"git cat-file failed: {e}") from e
            raise AssertionError("unreachable")

    async def _exchange(self, names: list[str]) -> list[tuple[str, bytes] | None]:
        process = await self._start()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("".join(f"{name}\n" for name in names).encode())
        answers: list[tuple[str, bytes] | None] = []
        for _ in names:
            header = (await process.stdout.readline()).decode()
            if not header:
                raise OSError("cat-file exited")
            fields = header.split()
            if len(fields) != 3 or not fields[2].isdigit():  # "<name> missing" / "<name> ambiguous"
                answers.append(None)
                continue
            data = await process.stdout.readexactly(int(fields[2]) + 1)
            answers.append((fields[1], data[:-1]))
        await process.stdin.drain()
        return answers

    async def _start(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            self._process = await asyncio.create_subprocess_exec(
                "git",
                "cat-file",
                "--batch",
                cwd=self.mirror,
                env=_environment(None),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                limit=1024 * 1024,
            )
        return self._process

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def close(self) -> None:
        async with self._lock:
            process, self._process = self._process, None
            if process is not None and process.returncode is None:
                assert process.stdin is not None
                process.stdin.close()
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def posix_basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }
    env.update(extra or {})
    return env


async def _run(
    command: list[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    stdin: bytes | None,
    timeout: float,
    secrets: tuple[str, ...],
) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitError(f"git {_verb(command)} timed out after {timeout:.0f}s") from None
    if process.returncode != 0:
        raise _error(
            command,
            process.returncode or 1,
            _redact(err.decode(errors="replace"), secrets),
            _redact(out.decode(errors="replace"), secrets),
        )
    return out


def _verb(command: list[str]) -> str:
    return next((arg for arg in command[1:] if not arg.startswith("-") and "=" not in arg), "?")


def _error(command: list[str], code: int, stderr: str, stdout: str) -> GitError:
    error = _classify(command, code, stderr, stdout)
    error.exit_status = code
    return error


def _classify(command: list[str], code: int, stderr: str, stdout: str) -> GitError:
    verb = _verb(command)
    text = (stderr.strip() or stdout.strip()).splitlines()
    detail = text[-1] if text else f"exit status {code}"
    if verb == "push" and ("[rejected]" in stdout or "[rejected]" in stderr or "non-fast-forward" in stderr):
        return NonFastForward(f"git push was rejected: the branch moved on the remote ({detail})")
    if re.search(r"Authentication failed|could not read Username|401|403", stderr):
        return AuthenticationFailed(f"git {verb}: authentication failed ({detail})", retryable=False)
    if re.search(r"not found|404|does not appear to be a git repository", stderr, re.IGNORECASE):
        return RepositoryNotFound(f"git {verb}: repository not found ({detail})")
    return GitError(f"git {verb} failed: {detail}")


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _authorization(url: str, token: str) -> dict[str, str]:
    """The token for one network command, in its environment (process lists show arguments, not environments).

    It goes in an ``Authorization`` header sent with the first request to ``url`` (as actions/checkout does), which
    saves the round trip git otherwise makes to be refused (401) before it asks its credential helper; the helper
    (:data:`CREDENTIAL_HELPER`, reading ``GIT_TOKEN``) still answers should the server ask anyway.
    """
    return {
        "GIT_TOKEN": token,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {_basic(token)}",
    }


def _basic(token: str) -> str:
    """The token as HTTP Basic credentials (redacted from errors too)."""
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()
