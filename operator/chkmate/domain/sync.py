"""The sync engine's decisions for a TemplateRepoLink: path mapping, push plans, the three-way decision,
commit trailers, conflict branches and history events. Pure: no I/O, no clock reads, no kopf, no clients.

The controller gathers the facts (template files and revision, the branch head and the files under the path
at the head and at the last synced commit, the head commit's trailers, the conflict pull request's state),
calls :func:`decide`, and carries out the :data:`Decision` it gets back.

Path mapping
    ``spec.path`` names a folder (``.`` is the repository root; a trailing slash is allowed) or, when its last
    part ends in ``.tf``, ``.tfvars``, ``.hcl`` or ``.json`` (and it has no trailing slash), a single file.
    Template paths are relative to the folder. A one-file link needs a template holding exactly one file named
    like the link path's last part (``stacks/net/main.tf`` ↔ ``{"main.tf": ...}``), so both sides map one to
    one and their revisions compare. To link a folder whose name ends in ``.tf``, add a trailing slash.
    Content is copied byte for byte: CRLF, a BOM and trailing spaces survive both ways. Git files that are not
    UTF-8 text cannot be pulled (:func:`from_repo` returns :class:`Blocked`); they still count in the repository
    side's revision (:func:`repo_revision`), so a change to them is seen.

Pushes and pruning
    A push writes the template's files that differ and, with ``prune``, deletes files under the path the
    template does not hold, except repository furniture no template should take away: :data:`PRUNE_KEEPS`
    (``.terraform.lock.hcl``, ``README.md``, ``.gitignore`` and friends, anything under ``.github/``). A
    template that holds such a file still writes it. A push that changes nothing is no push (no empty
    commits). A pull copies every file under the path into the template.

The three-way decision (:func:`decide`)
    Each side is compared with its own value at the last sync (:class:`Synced`): the template revision, and the
    content revision of the path at the last synced commit. Commits that only touch files outside the path move
    nothing. The sides *agree* when a push would change nothing (:attr:`SyncFacts.push` is empty); agreeing
    sides only record the new pair (:class:`Record`). Otherwise:

    ============================  ===================  =====================  ==============================
    what moved since last sync    Push                 Bidirectional          Pull
    ============================  ===================  =====================  ==============================
    only the template             push ¹               push ¹                 Blocked TemplateEdited ²
    only the repository           Conflict ³           pull                   pull
    both                          Conflict             Conflict               Blocked TemplateEdited ²
    first sync, path missing      push ¹               push ¹                 Blocked PathNotFound
    first sync, push only adds    push ¹               push ¹                 pull
    first sync, push overwrites   Conflict ⁴           Conflict               pull
    branch missing                push ¹ (creates it)  push ¹ (creates it)    Blocked BranchNotFound
    ============================  ===================  =====================  ==============================

    ¹ with ``autoSync``, on request (``chkmate.dev/requestedAt``) or on ``resolve=cluster``; otherwise
    :class:`Nothing` with reason ``PushPending``. ² a Pull link mirrors the repository: an edit made in the
    cluster would be lost by the next pull, so the link stops and says so (revert the edit, or annotate
    ``resolve=repo`` to overwrite it). ³ an edit in the repository would be lost by overwriting it. ⁴ the
    conservative choice: a Push link never overwrites or deletes files it has not written before without a
    review; a first push that only adds files (next to a scaffold's README, say) goes ahead. A branch that
    existed at the last sync and is gone is Blocked (BranchNotFound) until ``resolve=cluster``.

    Crash safety: every push commit carries trailers (:func:`trailer`) naming the template revision and the
    link. When the head commit carries this link's trailer for the current template revision and the sides
    agree, the push happened and only its status write was lost: :class:`Record` with ``pushed_earlier``.

Conflicts and how a user resolves them
    On :class:`Conflict` the controller commits the template side on top of the head to the branch
    :func:`conflict_branch` and opens a pull request into the linked branch (:func:`conflict_pull_request`),
    recording ``status.conflict`` (its template revision and PR). Syncing the link stops until one of:

    1. **Merge the pull request** (edit it first to combine both sides if wanted). What the merge leaves under
       the path wins: Pull and Bidirectional links pull it; a Push link records it as its new baseline. If the
       template changed again since the conflict opened, that is a new conflict.
    2. **Annotate** ``chkmate.dev/resolve=cluster``: the template wins and is pushed over the branch as a
       normal commit (never a force-push). Not for Pull links.
    3. **Annotate** ``chkmate.dev/resolve=repo``: the repository wins: Pull and Bidirectional links pull it;
       a Push link records it as its baseline and leaves the template alone.
    4. Make both sides agree by hand: the conflict closes by itself.

    A pull request closed without merging and without an annotation stays Blocked (ConflictClosed). The
    annotation is read only where there is something to resolve; a decision that settled a conflict or used
    the annotation has ``resolved=True``: the controller then clears ``status.conflict``, closes the pull
    request if open, and removes the annotation so that it cannot settle a later conflict unseen.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from chkmate.api import common, conditions, links, templates
from chkmate.domain import templates as template_logic

Reasons = conditions.Reasons
# Reasons only the sync engine gives; candidates for conditions.Reasons.
PUSH_PENDING = "PushPending"
TEMPLATE_EDITED = "TemplateEdited"
CONFLICT_CLOSED = "ConflictClosed"
UNSUPPORTED_FILES = "UnsupportedFiles"
PATH_MISMATCH = "PathMismatch"
INVALID_ANNOTATION = "InvalidAnnotation"
# What a link reports when its two sides differ and stay apart until a person acts. A pending push or pull is the
# link's direction at work; these are not: a conflict, a template edited on a Pull link, content from GitHub the
# template cannot take. An Environment built from such a link deploys code its Template does not hold.
DIVERGED_REASONS = frozenset({Reasons.CONFLICT_OPENED, CONFLICT_CLOSED, TEMPLATE_EDITED, Reasons.INVALID_HCL,
                              UNSUPPORTED_FILES})  # fmt: skip

RESOLVE_ANNOTATION = "chkmate.dev/resolve"
REQUEST_ANNOTATION = "chkmate.dev/requestedAt"
TEMPLATE_REVISION_TRAILER = "Chkmate-Template-Revision"
LINK_TRAILER = "Chkmate-Link"
CONFLICT_BRANCH_PREFIX = "chkmate/conflict/"

FILE_SUFFIXES = (".tf", ".tfvars", ".hcl", ".json")
PRUNE_KEEPS = frozenset(
    {
        ".terraform.lock.hcl",
        ".gitignore",
        ".gitattributes",
        ".gitkeep",
        ".chkmate.yml",
        "README.md",
        "LICENSE",
        "CODEOWNERS",
    }
)
# A commit body lists this many changed paths at most; a 5,000-file template would otherwise write a huge message.
MAX_LISTED_PATHS = 50
# Branch names stay short enough for every git host; the link's part gets what the prefix and hash leave.
MAX_BRANCH_NAME_PART = 80
SHORT_REVISION = 12
EMPTY_REVISION = template_logic.revision({})

TRAILER_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")

PullRequestState = Literal["open", "merged", "closed"]


# ---- values -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Change:
    """What a push does to the repository (paths from its root). Same shape as ``clients.git.Change``."""

    write: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
    delete: frozenset[str] = frozenset()
    overwrite: frozenset[str] = frozenset()  # paths in ``write`` that exist with other content

    @property
    def empty(self) -> bool:
        return not self.write and not self.delete

    @property
    def additive(self) -> bool:
        """Only new files: nothing existing is overwritten or deleted."""
        return not self.overwrite and not self.delete

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(sorted({*self.write, *self.delete}))


@dataclasses.dataclass(frozen=True)
class Synced:
    """The last synced pair: template revision, commit, and the content revision of the path at that commit."""

    template_revision: str
    commit: str
    repo_revision: str | None = None  # None: unknown (the commit cannot be read any more)


@dataclasses.dataclass(frozen=True)
class ConflictState:
    """The open conflict from ``status.conflict`` and its pull request's state (None: not opened yet)."""

    template_revision: str
    pull_request: PullRequestState | None = None
    number: int | None = None


@dataclasses.dataclass(frozen=True)
class SyncFacts:
    """Everything :func:`decide` looks at, gathered by the controller."""

    link_key: str  # namespace/name, as in the trailer
    direction: links.SyncDirection
    auto_sync: bool
    push_requested: bool  # chkmate.dev/requestedAt differs from status.lastHandledReconcileAt
    template_revision: str
    head_commit: str | None  # None: the branch does not exist
    repo_revision: str  # repo_revision() of the files under the path at the head; EMPTY_REVISION: none
    push: Change  # plan_push() of the template against the files under the path at the head
    last: Synced | None = None  # None: never synced
    head_trailers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    conflict: ConflictState | None = None
    resolve: str | None = None  # the chkmate.dev/resolve annotation

    @property
    def path_exists(self) -> bool:
        return self.repo_revision != EMPTY_REVISION

    @property
    def can_push(self) -> bool:
        return self.direction != "Pull"

    @property
    def can_pull(self) -> bool:
        return self.direction != "Push"


# ---- decisions ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Nothing:
    """Nothing to write anywhere."""

    message: str
    reason: str = Reasons.IN_SYNC


@dataclasses.dataclass(frozen=True)
class Record:
    """No git or template write: store ``synced`` as the new last synced pair."""

    synced: Synced
    message: str
    pushed_earlier: bool = False  # the head carries our trailer: a push whose status write was lost
    resolved: bool = False
    reason: str = Reasons.IN_SYNC


@dataclasses.dataclass(frozen=True)
class Push:
    """Commit ``change`` on top of the head (or as the branch's first commit) and push it, never forced."""

    change: Change
    message: str
    resolved: bool = False
    reason: str = Reasons.PUSHED


@dataclasses.dataclass(frozen=True)
class Pull:
    """Replace the template's files with :func:`from_repo` of the files under the path at the head."""

    message: str
    resolved: bool = False
    reason: str = Reasons.PULLED


@dataclasses.dataclass(frozen=True)
class Conflict:
    """Commit ``change`` on top of the head to ``branch``, push it and open a pull request; record the conflict."""

    branch: str
    change: Change
    message: str
    reason: str = Reasons.CONFLICT_OPENED


@dataclasses.dataclass(frozen=True)
class Blocked:
    """Syncing cannot go on until a person acts; an open conflict stays open."""

    reason: str
    message: str


Decision = Nothing | Record | Push | Pull | Conflict | Blocked


# ---- path mapping -------------------------------------------------------------------------------------------


def is_file_path(link_path: str) -> bool:
    """Whether ``spec.path`` names one file (see the module docstring) rather than a folder."""
    return not link_path.endswith("/") and posixpath.basename(link_path).endswith(FILE_SUFFIXES)


def to_repo(template_files: Mapping[str, str], link_path: str) -> dict[str, bytes] | Blocked:
    """The template's files keyed by their path in the repository, as UTF-8 bytes."""
    if is_file_path(link_path):
        name = posixpath.basename(link_path)
        if set(template_files) != {name}:
            return Blocked(
                PATH_MISMATCH,
                f"The link's path {link_path} names one file, so the template must hold "
                f"exactly one file named {name}; it holds {', '.join(sorted(template_files))}.",
            )
        return {link_path: template_files[name].encode()}
    return {_in_folder(link_path, path): content.encode() for path, content in template_files.items()}


def from_repo(files_under_path: Mapping[str, bytes] | None, link_path: str) -> dict[str, str] | Blocked:
    """Template files from the files under the path, keyed relative to it (as ``Mirrors.read_tree`` gives)."""
    files = dict(files_under_path or {})
    mismatch = _file_link_mismatch(files, link_path)
    if mismatch is not None:
        return mismatch
    result: dict[str, str] = {}
    for path, data in sorted(files.items()):
        where = _repo_path(link_path, path)
        try:
            templates.check_relative_path(path)
            result[path] = data.decode("utf-8")
        except UnicodeDecodeError as e:
            return Blocked(
                UNSUPPORTED_FILES,
                f"{where} is not UTF-8 text (byte {e.start}); templates hold text "
                "files only. Remove it from the path or link a narrower path.",
            )
        except ValueError as e:
            return Blocked(UNSUPPORTED_FILES, f"{where} cannot be a template file: {e}.")
    return result


def repo_revision(files_under_path: Mapping[str, bytes] | None) -> str:
    """The repository side's content revision, comparable with the template's ``templates.revision``.

    Files that are not UTF-8 count by their hash, so a change to them is seen although they cannot be pulled.
    No files (or no path) give :data:`EMPTY_REVISION`.
    """
    return template_logic.revision({path: _as_text(data) for path, data in (files_under_path or {}).items()})


def plan_push(
    template_files: Mapping[str, str], files_under_path: Mapping[str, bytes] | None, link_path: str, *, prune: bool
) -> Change | Blocked:
    """What pushing the template changes under the path; an empty :class:`Change` when nothing differs."""
    existing_relative = dict(files_under_path or {})
    mismatch = _file_link_mismatch(existing_relative, link_path)
    if mismatch is not None:
        return mismatch
    wanted = to_repo(template_files, link_path)
    if isinstance(wanted, Blocked):
        return wanted
    existing = {_repo_path(link_path, path): data for path, data in existing_relative.items()}
    write = {path: data for path, data in wanted.items() if existing.get(path) != data}
    stale = {path for path in existing if path not in wanted and not _kept(path)} if prune else set()
    return Change(write=write, delete=frozenset(stale), overwrite=frozenset(p for p in write if p in existing))


def _in_folder(link_path: str, path: str) -> str:
    folder = link_path.rstrip("/")
    return path if folder in {"", "."} else f"{folder}/{path}"


def _repo_path(link_path: str, path: str) -> str:
    return link_path if is_file_path(link_path) else _in_folder(link_path, path)


def _file_link_mismatch(files_under_path: Mapping[str, bytes], link_path: str) -> Blocked | None:
    name = posixpath.basename(link_path)
    if is_file_path(link_path) and files_under_path and set(files_under_path) != {name}:
        return Blocked(
            PATH_MISMATCH,
            f"The link's path {link_path} names one file, but the repository holds a "
            f"folder there; link it as {link_path}/ instead.",
        )
    return None


def _kept(repo_path: str) -> bool:
    return posixpath.basename(repo_path) in PRUNE_KEEPS or repo_path.startswith(".github/")


def _as_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"\0chkmate-binary sha256:{hashlib.sha256(data).hexdigest()}"


# ---- the decision -------------------------------------------------------------------------------------------


def decide(facts: SyncFacts) -> Decision:
    """What to do next; see the table in the module docstring.

    The ``chkmate.dev/resolve`` annotation only settles what would otherwise stop (a Conflict or Blocked).
    """
    if facts.resolve not in {None, "cluster", "repo"}:
        return Blocked(INVALID_ANNOTATION, f"{RESOLVE_ANNOTATION} is {facts.resolve!r}; use cluster or repo.")
    natural = _decide(facts)
    if facts.resolve is None or not isinstance(natural, Conflict | Blocked):
        return natural
    return _resolution(facts, facts.resolve)


def _decide(facts: SyncFacts) -> Decision:
    head = facts.head_commit
    if head is None:
        return _branch_missing(facts)
    if facts.conflict is not None:
        return _open_conflict(facts, head, facts.conflict)
    if facts.last is None:
        return _first_sync(facts, head)
    return _three_way(facts, head, facts.last)


def _branch_missing(facts: SyncFacts) -> Decision:
    if not facts.can_push:
        return Blocked(Reasons.BRANCH_NOT_FOUND, "The branch does not exist; a Pull link needs it.")
    if facts.last is None and facts.conflict is None:
        return _push_or_wait(facts, "The branch does not exist yet; the push creates it.")
    return Blocked(
        Reasons.BRANCH_NOT_FOUND,
        "The branch was deleted since the last sync. Re-create it, or "
        f"annotate {RESOLVE_ANNOTATION}=cluster to push the template to a new branch.",
    )


def _first_sync(facts: SyncFacts, head: str) -> Decision:
    if facts.push.empty:
        return _record(facts, head, "First sync: the repository already holds the template.")
    if not facts.path_exists:
        if not facts.can_push:
            return Blocked(Reasons.PATH_NOT_FOUND, "The path does not exist on the branch; a Pull link needs it.")
        return _push_or_wait(facts, "First sync: the path is new in the repository.")
    if facts.direction == "Pull":
        return _pull(facts, "First sync: the repository's files replace the template's.")
    if facts.push.additive:
        return _push_or_wait(facts, "First sync: the template only adds files next to the repository's.")
    return _conflict(
        facts,
        "First sync: the repository already holds other content under the path, which a "
        "push would overwrite or delete.",
    )


def _three_way(facts: SyncFacts, head: str, last: Synced) -> Decision:
    template_moved = facts.template_revision != last.template_revision
    repo_moved = _repo_moved(facts, head, last)
    if not template_moved and not repo_moved:
        if head != last.commit:
            return _record(facts, head, "Only files outside the path changed on the branch.")
        return Nothing("Nothing changed since the last sync.")
    if facts.push.empty:
        return _record(facts, head, "Both sides hold the same content.")
    if template_moved and not facts.can_push:
        return _template_edited()
    if template_moved and repo_moved:
        return _conflict(facts, "Both the template and the repository changed since the last sync.")
    if template_moved:
        return _push_or_wait(facts, "The template changed.")
    if not facts.can_pull:
        return _conflict(
            facts, "The repository was edited under the path, and the link is Push: overwriting it would lose the edit."
        )
    return _pull(facts, "The repository changed under the path.")


def _open_conflict(facts: SyncFacts, head: str, conflict: ConflictState) -> Decision:
    if facts.push.empty:
        return _record(facts, head, "Both sides hold the same content; the conflict is over.", resolved=True)
    pr = f"pull request #{conflict.number}" if conflict.number is not None else "the conflict pull request"
    pick = f"annotate {RESOLVE_ANNOTATION}=cluster or =repo to pick a side."
    match conflict.pull_request:
        case None:
            return _conflict(facts, "The conflict has no pull request yet.")
        case "open":
            return Blocked(Reasons.CONFLICT_OPENED, f"Waiting for {pr}: merge it, or {pick}")
        case "closed":
            return Blocked(CONFLICT_CLOSED, f"{pr.capitalize()} was closed without merging; {pick}")
        case "merged":
            return _merged(facts, head, conflict, pr.capitalize())


def _merged(facts: SyncFacts, head: str, conflict: ConflictState, pr: str) -> Decision:
    """A merged conflict pull request: what the merge left under the path wins, unless the template moved on."""
    if facts.template_revision != conflict.template_revision:
        return _conflict(facts, f"{pr} was merged, but the template changed again since.")
    if facts.can_pull:
        return _pull(facts, f"{pr} was merged; pulling the result.", resolved=True)
    return _record(facts, head, f"{pr} was merged; its result is the new baseline.", resolved=True)


def _resolution(facts: SyncFacts, resolve: str) -> Decision:
    """What ``chkmate.dev/resolve`` asks for, in place of a Conflict or Blocked decision."""
    if resolve == "cluster":
        if not facts.can_push:
            return Blocked(
                INVALID_ANNOTATION,
                f"{RESOLVE_ANNOTATION}=cluster pushes, and a Pull link cannot push; "
                "use =repo or change spec.syncDirection.",
            )
        return Push(facts.push, "The template wins (resolve=cluster).", resolved=True)
    if facts.head_commit is None:
        return Blocked(
            Reasons.BRANCH_NOT_FOUND,
            f"{RESOLVE_ANNOTATION}=repo keeps the branch, but it does not exist; re-create it or use =cluster.",
        )
    if facts.can_pull:
        return _pull(facts, "The repository wins (resolve=repo).", resolved=True)
    return _record(
        facts,
        facts.head_commit,
        "The repository's content is kept as the baseline (resolve=repo); the next template change is pushed over it.",
        resolved=True,
    )


def _repo_moved(facts: SyncFacts, head: str, last: Synced) -> bool:
    if head == last.commit:
        return False
    if last.repo_revision is not None:
        return facts.repo_revision != last.repo_revision
    # The last synced commit cannot be read (history rewritten): assume the repository moved unless the sides
    # agree. With a template change too, that makes a conflict rather than a push over unknown content.
    return not facts.push.empty


def _push_or_wait(facts: SyncFacts, why: str) -> Decision:
    if facts.auto_sync or facts.push_requested:
        return Push(facts.push, f"{why} Pushing it.")
    return Nothing(f"{why} autoSync is off: push on request (annotate {REQUEST_ANNOTATION}).", PUSH_PENDING)


def _pull(facts: SyncFacts, why: str, *, resolved: bool = False) -> Decision:
    if not facts.path_exists:
        return Blocked(Reasons.PATH_NOT_FOUND, "The path does not exist on the branch; there is nothing to pull.")
    return Pull(why, resolved=resolved)


def _template_edited() -> Blocked:
    return Blocked(
        TEMPLATE_EDITED,
        "The template was edited in the cluster, but the link is Pull: the next pull "
        "would lose the edit. Revert it, change spec.syncDirection, or annotate "
        f"{RESOLVE_ANNOTATION}=repo to overwrite it from the repository.",
    )


def _conflict(facts: SyncFacts, why: str) -> Conflict | Blocked:
    """A conflict pull request; a Pull link never pushes one, so it stops instead."""
    if not facts.can_push:
        return _template_edited()
    branch = conflict_branch(facts.link_key.rsplit("/", 1)[-1], facts.template_revision)
    return Conflict(branch, facts.push, f"{why} The template's side goes to {branch} for review.")


def _record(facts: SyncFacts, head: str, why: str, *, resolved: bool = False) -> Record:
    synced = Synced(facts.template_revision, head, facts.repo_revision)
    ours = (
        facts.head_trailers.get(TEMPLATE_REVISION_TRAILER) == facts.template_revision
        and facts.head_trailers.get(LINK_TRAILER) == facts.link_key
    )
    if ours:
        why = "The head commit already carries this template revision: it was pushed; recording it."
    return Record(synced, why, pushed_earlier=ours, resolved=resolved)


# ---- commits, branches, pull requests -----------------------------------------------------------------------


def link_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def trailer(template_revision: str, link: str) -> str:
    """The git trailers a push commit ends with."""
    return f"{TEMPLATE_REVISION_TRAILER}: {template_revision}\n{LINK_TRAILER}: {link}"


def parse_trailers(message: str) -> dict[str, str]:
    """The trailers of a commit message: its last paragraph, when every line there is ``Key: value``.

    A message of one paragraph (a subject only) has none; a repeated key keeps its last value.
    """
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.replace("\r\n", "\n").strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        match = TRAILER_LINE.match(line)
        if match is None:
            return {}
        found[match.group(1)] = match.group(2).strip()
    return found


def commit_message(template_name: str, revision: str, change: Change, link: str) -> str:
    """``chkmate: sync template <name> (<n> files)``, the changed paths, then the trailers."""
    paths = change.paths
    count = f"{len(paths)} file" + ("" if len(paths) == 1 else "s")
    lines = [f"{'delete' if path in change.delete else 'write'} {path}" for path in paths[:MAX_LISTED_PATHS]]
    if len(paths) > MAX_LISTED_PATHS:
        lines.append(f"... and {len(paths) - MAX_LISTED_PATHS} more")
    body = "\n".join(lines)
    return (
        f"chkmate: sync template {template_name} ({count})\n\n"
        f"Template {template_name} at {revision}, pushed by chkmate for {link}.\n\n{body}\n\n"
        f"{trailer(revision, link)}\n"
    )


def conflict_branch(link_name: str, template_revision: str) -> str:
    """``chkmate/conflict/<link>-<short revision>``: a valid git ref name whatever the input."""
    name = re.sub(r"[^a-z0-9]+", "-", link_name.lower()).strip("-")[:MAX_BRANCH_NAME_PART].strip("-") or "link"
    return f"{CONFLICT_BRANCH_PREFIX}{name}-{short_revision(template_revision)}"


def short_revision(revision: str) -> str:
    """The first hex digits of ``sha256:<hex>`` (or of a commit sha)."""
    return re.sub(r"[^0-9a-f]", "", revision.rsplit(":", 1)[-1].lower())[:SHORT_REVISION] or "0"


@dataclasses.dataclass(frozen=True)
class PullRequestText:
    title: str
    body: str


def conflict_pull_request(
    *,
    link: str,
    template_name: str,
    base_branch: str,
    link_path: str,
    template_revision: str,
    head_commit: str,
    direction: links.SyncDirection,
) -> PullRequestText:
    """Title and body of the conflict pull request: both sides and how to pick one."""
    namespace, _, name = link.rpartition("/")
    annotate = f"kubectl annotate templaterepolink {name} -n {namespace} {RESOLVE_ANNOTATION}"
    merged = (
        "becomes the template's content"
        if direction != "Push"
        else "becomes the link's new baseline; the template is left as it is"
    )
    repo_wins = (
        "the template is overwritten from"
        if direction != "Push"
        else "the template is left alone and nothing is pushed over"
    )
    body = f"""chkmate could not sync Template `{template_name}` with `{link_path}` on `{base_branch}` \
(link `{link}`): the repository holds changes the template does not have, and chkmate never overwrites an \
edit. It pushed the cluster's side to this branch instead.

- **This branch (cluster side):** Template `{template_name}` at revision `{short_revision(template_revision)}`.
- **`{base_branch}` (repository side):** commit `{head_commit[:SHORT_REVISION]}`.

The diff shows what the cluster's version would change in the repository. Syncing this link is paused until \
you pick a side:

1. **Merge this pull request**, after editing it to combine both sides if you like. What the merge leaves \
under `{link_path}` {merged}.
2. **Keep the cluster's version:** `{annotate}=cluster --overwrite`. chkmate pushes the template over \
`{base_branch}` as a normal commit (never a force-push).
3. **Keep the repository's version:** `{annotate}=repo --overwrite`: {repo_wins} `{base_branch}`.

chkmate closes this pull request and removes the annotation once the conflict is resolved.
"""
    return PullRequestText(f"chkmate: sync conflict for template {template_name} on {base_branch}", body)


def synced_revision(branch: str, commit: str) -> str:
    """``status.lastSyncedRevision``: ``<branch>@sha1:<commit>``."""
    return f"{branch}@sha1:{commit}"


def commit_of(revision: str | None) -> str | None:
    """The commit of a ``<branch>@sha1:<commit>`` revision; None for None or anything else."""
    if revision is None or not re.fullmatch(common.REVISION_PATTERN, revision):
        return None
    return revision.rsplit(":", 1)[-1]


# ---- history ------------------------------------------------------------------------------------------------


def event(
    decision: Decision,
    *,
    now: datetime.datetime,
    commit: str | None = None,
    template_revision: str | None = None,
    error: str | None = None,
) -> links.SyncEvent | None:
    """The history entry for a decision carried out (``error``: how it failed); None when not worth one."""
    direction: Literal["Push", "Pull", "Conflict", "None"]
    match decision:
        case Push():
            direction = "Push"
        case Pull():
            direction = "Pull"
        case Conflict():
            direction = "Conflict"
        case Record(pushed_earlier=True):
            direction = "Push"
        case Record(resolved=True) | Blocked():
            direction = "None"
        case _:
            return None
    result: Literal["Succeeded", "Failed", "Skipped"] = (
        "Failed" if error is not None else "Skipped" if isinstance(decision, Blocked) else "Succeeded"
    )
    message = error if error is not None else decision.message
    if isinstance(decision, Blocked) and error is None:
        message = f"{decision.reason}: {decision.message}"
    return links.SyncEvent(
        direction=direction,
        result=result,
        commit=commit,
        template_revision=template_revision,
        message=message,
        at=conditions.timestamp(now),
    )


def add_event(
    history: Sequence[links.SyncEvent], new: links.SyncEvent | None, *, keep: int = links.MAX_HISTORY
) -> tuple[links.SyncEvent, ...]:
    """``new`` prepended, newest first, at most ``keep``; a repeat of the newest entry (but for time) is dropped."""
    if new is None or (history and history[0].model_copy(update={"at": new.at}) == new):
        return tuple(history[:keep])
    return (new, *history)[:keep]


def diverged(link_ready: str, link_reason: str) -> bool:
    """Whether a link (its Ready status and reason) holds a Template that differs from the repository beyond
    what its direction explains."""
    return link_ready == "False" and link_reason in DIVERGED_REASONS
