"""A real git server over smart HTTP with GitHub-like token auth, for tests.

``GitServer`` keeps bare repositories under ``{root}/{owner}/{name}.git`` and serves them with git's own
``git http-backend`` CGI from a threaded HTTP server on 127.0.0.1 (a free port), so clients clone, fetch
and push exactly as they would against GitHub: ``http://127.0.0.1:PORT/{owner}/{name}.git`` (the ``.git``
suffix is optional), HTTP Basic auth where the password is the token. The server runs in a background
thread, so it serves sync tests and async tests alike, including tests whose event loop runs on virtual time.

Auth follows GitHub: no credentials → 401 with ``WWW-Authenticate: Basic realm="GitHub"`` (so git asks its
credential helper); an unknown repository → 404; credentials the ``authorize`` callback refuses → 401
(git then fails with "Authentication failed"). Served requests are counted per repository and per
``Service`` and accepted pushes are recorded (``GitServer.traffic``), so tests and benchmarks can tell
ls-remotes from fetches.

The repository helpers (``create_repo``, ``commit_files``, ``read_file``...) build commits with plumbing
(``git fast-import``: no worktree) under a fixed author, committer and date, so commit ids are deterministic.

This module does I/O: it runs ``git`` subprocesses, writes under ``root`` and a private temporary folder,
and listens on a local TCP port. Every git process runs with a clean environment (no user or system config).

Example::

    server = GitServer.with_tokens(tmp_path / "git", {"tok1"})
    server.create_repo("acme", "infra", files={"modules/net/main.tf": 'resource "terraform_data" "x" {}'})
    with server:
        helper = "credential.helper=!f() { echo username=x-access-token; echo password=$GIT_TOKEN; }; f"
        subprocess.run(["git", "-c", helper, "clone", server.url("acme", "infra"), str(tmp_path / "wt")],
                       env={**clean_env, "GIT_TOKEN": "tok1", "GIT_TERMINAL_PROMPT": "0"}, check=True)
        assert server.traffic.count("acme/infra", Service.UPLOAD_PACK) == 1
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import enum
import io
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import typing
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import parse_qs, urlsplit

Authorize = Callable[[str, str, str], bool]
"""Decides whether ``(username, password, "owner/name")`` may use the repository."""

_IDENTITY = "Git Server Harness <harness@example.invalid> 1700000000 +0000"
_IO_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024
# Enough leading bytes of a (possibly gzipped) upload-pack request to read its first pkt-line.
_PEEK_BYTES = 1024
_REPO_URL_PATH = re.compile(r"^/(?P<owner>[A-Za-z0-9._-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?(?P<rest>/.*)$")
_POST_RECEIVE_HOOK = '#!/bin/sh\nif [ -n "$GITSERVER_PUSH_LOG" ]; then cat > "$GITSERVER_PUSH_LOG"; fi\n'


class Service(enum.StrEnum):
    """What a served request did.

    Every ls-remote, fetch or clone opens with one ADVERTISE_UPLOAD (then one LS_REFS under protocol v2, git's
    default); only a fetch or clone that transfers objects goes on to UPLOAD_PACK (one or more requests, a
    v0 POST or a v2 ``command=fetch``). A push is one ADVERTISE_RECEIVE, then one RECEIVE_PACK unless every
    ref is up to date. OTHER covers dumb-protocol requests.
    """

    ADVERTISE_UPLOAD = "info/refs?service=git-upload-pack"
    LS_REFS = "git-upload-pack command=ls-refs"
    UPLOAD_PACK = "git-upload-pack"
    ADVERTISE_RECEIVE = "info/refs?service=git-receive-pack"
    RECEIVE_PACK = "git-receive-pack"
    OTHER = "other"


@dataclass(frozen=True)
class RefUpdate:
    ref: str
    old: str
    new: str


@dataclass(frozen=True)
class Push:
    """Ref updates that one accepted push applied to a repository ("owner/name")."""

    repo: str
    updates: tuple[RefUpdate, ...]


class Traffic:
    """Thread-safe record of served (authorized) requests, accepted pushes, and requests refused with a 401."""

    def __init__(self) -> None:
        self.refused = 0  # 401 answers: no credentials (git asks its credential helper after one) or wrong ones
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, Service]] = collections.Counter()
        self._pushes: list[Push] = []
        self._before_push: Callable[[str], None] | None = None

    def before_next_push(self, action: Callable[[str], None]) -> None:
        """Run ``action(repo)`` once, when the next push arrives and before git receives it: a test's way to
        make the branch move under a client (its push is then rejected as non-fast-forward)."""
        with self._lock:
            self._before_push = action

    def take_before_push(self) -> Callable[[str], None] | None:
        with self._lock:
            action, self._before_push = self._before_push, None
        return action

    def record_request(self, repo: str, service: Service) -> None:
        with self._lock:
            self._counts[repo, service] += 1

    def record_refused(self) -> None:
        with self._lock:
            self.refused += 1

    def record_push(self, push: Push) -> None:
        with self._lock:
            self._pushes.append(push)

    def count(self, repo: str | None = None, service: Service | None = None) -> int:
        """Requests served for ``repo`` ("owner/name") and ``service``; None matches any."""
        with self._lock:
            return sum(
                n
                for (r, s), n in self._counts.items()
                if (repo is None or r == repo) and (service is None or s == service)
            )

    def counts(self) -> dict[tuple[str, Service], int]:
        with self._lock:
            return dict(self._counts)

    @property
    def pushes(self) -> list[Push]:
        with self._lock:
            return list(self._pushes)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._pushes.clear()


class GitServer:
    """Bare repositories under ``root`` served over smart HTTP while the server runs (``with server:``)."""

    def __init__(self, root: Path | str, authorize: Authorize) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.authorize = authorize
        self.traffic = Traffic()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def with_tokens(cls, root: Path | str, tokens: Collection[str]) -> GitServer:
        """Accept any username with a password in ``tokens`` (read live: tests may add or revoke tokens)."""
        return cls(root, lambda _username, password, _repo: password in tokens)

    # Lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("GitServer is already running")
        self._scratch = tempfile.TemporaryDirectory(prefix="gitserver-")
        site = _Site.prepare(self.root, self.authorize, self.traffic, Path(self._scratch.name))
        self._httpd = _HttpServer(site)
        # A short poll interval keeps stop() fast: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="gitserver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections and wait for every request thread; idempotent."""
        if self._httpd is None or self._thread is None or self._scratch is None:
            return
        self._httpd.shutdown()
        self._httpd.drop_connections()
        self._httpd.server_close()
        self._thread.join()
        self._scratch.cleanup()
        self._httpd = self._thread = self._scratch = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("GitServer is not running")
        return self._httpd.server_address[1]

    def url(self, owner: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{owner}/{name}.git"

    # Repositories

    def repo_path(self, owner: str, name: str) -> Path:
        _check_repo_name(owner, name)
        return _repo_dir(self.root, owner, name)

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, str | bytes] | None = None,
        message: str = "Initial commit",
    ) -> Path:
        """Create a bare repository; with ``files`` (even empty), also a root commit on ``default_branch``."""
        path = self.repo_path(owner, name)
        if path.exists():
            raise FileExistsError(path)
        _git(None, "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))
        if files is not None:
            self.commit_files(owner, name, default_branch, files, message)
        return path

    def commit_files(
        self,
        owner: str,
        name: str,
        branch: str,
        files: Mapping[str, str | bytes],
        message: str,
        delete: Iterable[str] = (),
        parent: str | None = None,
    ) -> str:
        """Commit ``files`` (written) and ``delete`` (removed; missing paths are ignored) onto ``branch``.

        The parent is ``parent`` if given (the branch is then moved there even if that drops commits),
        else the branch head, else none (a root commit creates the branch). Returns the new commit id.
        """
        git_dir = self._existing_repo(owner, name)
        base = parent if parent is not None else self.head(owner, name, branch)
        stream = _commit_stream(f"refs/heads/{branch}", base, files, delete, message)
        force = ["--force"] if parent is not None else []
        return _git(git_dir, "fast-import", "--quiet", *force, input=stream).stdout.decode().strip()

    def head(self, owner: str, name: str, branch: str) -> str | None:
        git_dir = self._existing_repo(owner, name)
        result = _git(git_dir, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None

    def read_file(self, owner: str, name: str, ref: str, path: str) -> bytes | None:
        """The file's content at ``ref``, or None if the ref, the path or a file there does not exist."""
        git_dir = self._existing_repo(owner, name)
        result = _git(git_dir, "cat-file", "blob", f"{ref}:{path}", check=False)
        return result.stdout if result.returncode == 0 else None

    def list_files(self, owner: str, name: str, ref: str) -> dict[str, bytes]:
        """Every file at ``ref`` (nested paths with ``/``) and its content; LookupError if no such ref."""
        git_dir = self._existing_repo(owner, name)
        listing = _git(git_dir, "ls-tree", "-r", "-z", "--full-tree", ref, check=False)
        if listing.returncode != 0:
            raise LookupError(f"no ref {ref!r} in {owner}/{name}")
        blobs = dict(_parse_ls_tree(listing.stdout))
        contents = _read_blobs(git_dir, list(blobs.values()))
        return {path: contents[sha] for path, sha in blobs.items()}

    def delete_repo(self, owner: str, name: str) -> None:
        shutil.rmtree(self._existing_repo(owner, name))

    def _existing_repo(self, owner: str, name: str) -> Path:
        path = self.repo_path(owner, name)
        if not path.is_dir():
            raise FileNotFoundError(f"no repository {owner}/{name} under {self.root}")
        return path


# Git subprocesses


def _clean_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


def _git(
    git_dir: Path | None, *args: str, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    prefix = ["git", f"--git-dir={git_dir}"] if git_dir is not None else ["git"]
    result = subprocess.run([*prefix, *args], input=input, capture_output=True, env=_clean_env(), check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result


def _repo_dir(root: Path, owner: str, name: str) -> Path:
    return root / owner / f"{name}.git"


def _check_repo_name(owner: str, name: str) -> None:
    for part in (owner, name):
        if part in {".", ".."} or not re.fullmatch(r"[A-Za-z0-9._-]+", part):
            raise ValueError(f"invalid repository owner or name: {part!r}")


def _check_file_path(path: str) -> None:
    parts = path.split("/")
    if path.startswith('"') or "\n" in path or any(part in {"", ".", ".."} for part in parts):
        raise ValueError(f"invalid file path: {path!r}")


def _commit_stream(
    ref: str, parent: str | None, files: Mapping[str, str | bytes], delete: Iterable[str], message: str
) -> bytes:
    """A ``git fast-import`` stream for one commit on ``ref`` that then prints the commit's id."""
    out = [f"commit {ref}\nmark :1\nauthor {_IDENTITY}\ncommitter {_IDENTITY}\n".encode(), _data(message)]
    if parent is not None:
        out.append(f"from {parent}\n".encode())
    for path in delete:
        _check_file_path(path)
        out.append(f"D {path}\n".encode())
    for path, content in files.items():
        _check_file_path(path)
        out += [f"M 100644 inline {path}\n".encode(), _data(content)]
    out.append(b"\nget-mark :1\n")
    return b"".join(out)


def _data(content: str | bytes) -> bytes:
    raw = content.encode() if isinstance(content, str) else content
    return b"data %d\n%s\n" % (len(raw), raw)


def _parse_ls_tree(output: bytes) -> Iterator[tuple[str, str]]:
    """(path, blob id) for each blob in ``git ls-tree -z`` output; submodules are skipped."""
    for entry in filter(None, output.split(b"\0")):
        meta, _, path = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split()
        if kind == "blob":
            yield path.decode(), sha


def _read_blobs(git_dir: Path, shas: list[str]) -> dict[str, bytes]:
    output = _git(git_dir, "cat-file", "--batch", input="".join(f"{sha}\n" for sha in shas).encode()).stdout
    contents: dict[str, bytes] = {}
    position = 0
    for sha in shas:
        header_end = output.index(b"\n", position)
        size = int(output[position:header_end].split()[2])
        contents[sha] = output[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
    return contents


# HTTP serving


@dataclass(frozen=True)
class _Target:
    owner: str
    name: str
    rest: str

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, url_path: str) -> _Target | None:
        match = _REPO_URL_PATH.match(url_path)
        if match is None or {match["owner"], match["name"]} & {".", ".."}:
            return None
        return cls(match["owner"], match["name"], match["rest"])


@dataclass(frozen=True)
class _Credentials:
    username: str
    password: str

    @classmethod
    def from_header(cls, header: str | None) -> _Credentials | None:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, colon, password = decoded.partition(":")
        return cls(username, password) if colon else None


@dataclass(frozen=True)
class _Site:
    """What request handlers share: repositories, the auth callback, the traffic record, a scratch folder."""

    root: Path
    authorize: Authorize
    traffic: Traffic
    scratch: Path
    hooks: Path

    @classmethod
    def prepare(cls, root: Path, authorize: Authorize, traffic: Traffic, scratch: Path) -> _Site:
        """Install the post-receive hook (it writes accepted ref updates to $GITSERVER_PUSH_LOG)."""
        hooks = scratch / "hooks"
        hooks.mkdir()
        (hooks / "post-receive").write_text(_POST_RECEIVE_HOOK)
        (hooks / "post-receive").chmod(0o755)
        return cls(root, authorize, traffic, scratch, hooks)

    def has_repo(self, target: _Target) -> bool:
        return _repo_dir(self.root, target.owner, target.name).is_dir()

    def backend_env(self) -> dict[str, str]:
        """Clean git environment for http-backend, with GitHub-like server config and our push hook."""
        config = {
            "http.receivepack": "true",
            "uploadpack.allowReachableSHA1InWant": "true",
            "uploadpack.allowFilter": "true",
            "core.hooksPath": str(self.hooks),
        }
        env = {**_clean_env(), "GIT_CONFIG_COUNT": str(len(config))}
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def new_push_log(self) -> Path:
        return self.scratch / f"push-{uuid.uuid4().hex}.log"

    def collect_push(self, repo: str, push_log: Path) -> None:
        """Record the ref updates the post-receive hook wrote (none if the push was rejected)."""
        if not push_log.exists():
            return
        lines = push_log.read_text().splitlines()
        push_log.unlink()
        updates = tuple(RefUpdate(ref, old, new) for old, new, ref in (line.split() for line in lines))
        if updates:
            self.traffic.record_push(Push(repo, updates))


class _HttpServer(ThreadingHTTPServer):
    """Threaded HTTP server that joins its request threads on close and can drop open connections."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, site: _Site) -> None:
        super().__init__(("127.0.0.1", 0), _GitRequestHandler)
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Wake request threads waiting on idle keep-alive connections so that closing can join them."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _GitRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Responses go out in several small writes (headers, chunks, the last chunk): with Nagle's algorithm on, each
    # waits for the client's delayed ACK, 40 ms a request on Linux, a stall GitHub's servers do not have.
    disable_nagle_algorithm = True
    timeout = 30  # seconds a connection may stall mid-request
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log."""

    def do_GET(self) -> None:
        self._serve_git()

    def do_POST(self) -> None:
        self._serve_git()

    def _serve_git(self) -> None:
        site = self.server.site
        url = urlsplit(self.path)
        target = _Target.parse(url.path)
        credentials = _Credentials.from_header(self.headers.get("Authorization"))
        if target is None:
            self._send_text(404, "Not Found")
        elif credentials is None:
            self._send_unauthorized()
        elif not site.has_repo(target):
            self._send_text(404, "Repository not found")
        elif not site.authorize(credentials.username, credentials.password, target.repo):
            self._send_unauthorized()
        else:
            body = self._request_body() if self.command == "POST" else iter(())
            service, body = self._classify(target, url.query, body)
            site.traffic.record_request(target.repo, service)
            action = site.traffic.take_before_push() if service is Service.RECEIVE_PACK else None
            if action is not None:
                action(target.repo)
            self._run_backend(target, url.query, credentials.username, service, body)

    def _send_unauthorized(self) -> None:
        self.server.site.traffic.record_refused()
        self._send_text(401, "Invalid username or token", {"WWW-Authenticate": 'Basic realm="GitHub"'})

    def _send_text(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        body = f"{message}\n".encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # The request body (if any) is left unread, so this connection cannot carry another request.
        self.close_connection = self.close_connection or self.command == "POST"

    def _request_body(self) -> Iterator[bytes]:
        if self._is_chunked():
            return _read_chunked(self.rfile)
        return _read_exact(self.rfile, int(self.headers.get("Content-Length") or 0))

    def _is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _classify(self, target: _Target, query: str, body: Iterator[bytes]) -> tuple[Service, Iterator[bytes]]:
        if target.rest == "/info/refs":
            advertised = parse_qs(query).get("service", [""])[0]
            services = {
                "git-upload-pack": Service.ADVERTISE_UPLOAD,
                "git-receive-pack": Service.ADVERTISE_RECEIVE,
            }
            return services.get(advertised, Service.OTHER), body
        if target.rest == "/git-receive-pack":
            return Service.RECEIVE_PACK, body
        if target.rest != "/git-upload-pack":
            return Service.OTHER, body
        head, body = _peek(body, _PEEK_BYTES)
        gzipped = self.headers.get("Content-Encoding", "").lower() in {"gzip", "x-gzip"}
        first_line = _gunzip_prefix(head) if gzipped else head
        # Protocol v2 requests open with a "command=..." pkt-line (4 hex digits of length first).
        is_ls_refs = first_line[4:].startswith(b"command=ls-refs")
        return (Service.LS_REFS if is_ls_refs else Service.UPLOAD_PACK), body

    def _run_backend(self, target: _Target, query: str, username: str, service: Service, body: Iterator[bytes]) -> None:
        site = self.server.site
        push_log = site.new_push_log() if service is Service.RECEIVE_PACK else None
        env = self._cgi_env(target, query, username, push_log)
        stdin = subprocess.PIPE if self.command == "POST" else subprocess.DEVNULL
        command = ["git", "http-backend"]
        with subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, env=env) as backend:
            output = typing.cast(io.BufferedReader, backend.stdout)
            feeder = _BodyFeeder(body, backend.stdin) if backend.stdin is not None else None
            try:
                chunked = self._relay_response(output)
            except BaseException:
                backend.kill()
                raise
            finally:
                if feeder is not None:
                    feeder.join()
                    self.close_connection = self.close_connection or not feeder.drained
        # Record the push before the response ends, so a client that sees its push done sees it recorded.
        if push_log is not None:
            site.collect_push(target.repo, push_log)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _cgi_env(self, target: _Target, query: str, username: str, push_log: Path | None) -> dict[str, str]:
        site = self.server.site
        env = {
            **site.backend_env(),
            "GIT_PROJECT_ROOT": str(site.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": f"/{target.owner}/{target.name}.git{target.rest}",
            "QUERY_STRING": query,
            "REMOTE_USER": username,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        # Without CONTENT_LENGTH (chunked bodies), http-backend reads the body until EOF.
        optional = {
            "CONTENT_LENGTH": None if self._is_chunked() else self.headers.get("Content-Length"),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding"),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol"),
            "GITSERVER_PUSH_LOG": str(push_log) if push_log is not None else None,
        }
        return env | {key: value for key, value in optional.items() if value is not None}

    def _relay_response(self, output: io.BufferedReader) -> bool:
        """Send the CGI response; return True if it is chunked (the caller then sends the last chunk)."""
        parsed = _read_cgi_headers(output)
        if parsed is None:
            self._send_text(502, "git http-backend ended without a response")
            return False
        status, headers = parsed
        self.send_response(*status)
        for key, value in headers:
            self.send_header(key, value)
        chunked = not any(key.lower() == "content-length" for key, _ in headers)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := output.read1(_IO_CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        return chunked


class _BodyFeeder(threading.Thread):
    """Copies a request body into the backend's stdin on its own thread, so neither side can deadlock."""

    def __init__(self, chunks: Iterator[bytes], sink: IO[bytes]) -> None:
        super().__init__(name="gitserver-request-body", daemon=True)
        self._chunks = chunks
        self._sink = sink
        self.drained = False
        self.start()

    def run(self) -> None:
        try:
            for chunk in self._chunks:
                self._sink.write(chunk)
            self.drained = True
        except (OSError, ValueError):
            pass  # the backend exited early, the client went away or sent a malformed chunk
        finally:
            with contextlib.suppress(OSError):
                self._sink.close()


def _read_exact(stream: io.BufferedIOBase, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, _IO_CHUNK))
        if not chunk:
            raise ConnectionError("client closed the connection mid-body")
        remaining -= len(chunk)
        yield chunk


def _read_chunked(stream: io.BufferedIOBase) -> Iterator[bytes]:
    while size := int(stream.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"0", 16):
        yield from _read_exact(stream, size)
        stream.readline(_MAX_LINE)  # the CRLF closing the chunk
    while stream.readline(_MAX_LINE) not in {b"\r\n", b"\n", b""}:
        pass  # trailer fields


def _peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """At least ``size`` leading bytes (fewer if the stream is shorter) and the whole stream again."""
    taken: list[bytes] = []
    for chunk in chunks:
        taken.append(chunk)
        if sum(map(len, taken)) >= size:
            break
    return b"".join(taken), itertools.chain(taken, chunks)


def _gunzip_prefix(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, _PEEK_BYTES)
    except zlib.error:
        return b""


def _read_cgi_headers(output: io.BufferedReader) -> tuple[tuple[int, str], list[tuple[str, str]]] | None:
    """The status and headers a CGI script printed, or None if it ended before finishing them."""
    status = (200, "OK")
    headers: list[tuple[str, str]] = []
    while (raw := output.readline(_MAX_LINE)) not in {b"\r\n", b"\n"}:
        if not raw.endswith(b"\n"):
            return None
        key, _, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        if key.lower() == "status":
            code, _, reason = value.strip().partition(" ")
            status = (int(code), reason)
        else:
            headers.append((key, value.strip()))
    return status, headers
