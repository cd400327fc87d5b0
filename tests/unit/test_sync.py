"""The sync engine's pure decisions: path mapping, push plans, the three-way decision, trailers, conflicts, history.

Facts are built from real file sets through the module's own helpers (``plan_push``, ``repo_revision``), the way
the controller builds them, so every rule is checked end to end on content rather than on made-up hashes.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping

import pytest

from chkmate.api import conditions as conds
from chkmate.api import links
from chkmate.domain import sync
from chkmate.domain import templates as template_logic

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
LINK = "team/net"
PATH = "stacks/net"
OLD = "a" * 40  # the last synced commit
NEW = "b" * 40  # the head when the branch moved

A = {"main.tf": "a = 1\n"}
B = {"main.tf": "b = 2\n"}
C = {"main.tf": "c = 3\n"}
Files = Mapping[str, str]


def raw(files: Files) -> dict[str, bytes]:
    return {path: content.encode() for path, content in files.items()}


def plan(template: Files, head: Mapping[str, bytes] | None, *, path: str = PATH, prune: bool = True) -> sync.Change:
    change = sync.plan_push(template, head, path, prune=prune)
    assert isinstance(change, sync.Change), change
    return change


def facts(
    template: Files,
    head: Files | Mapping[str, bytes] | None,
    last: tuple[Files, Files | None] | None = None,
    *,
    direction: links.SyncDirection = "Bidirectional",
    auto_sync: bool = True,
    requested: bool = False,
    prune: bool = True,
    head_commit: str | None = NEW,
    last_commit: str = OLD,
    trailers: Mapping[str, str] | None = None,
    conflict: sync.ConflictState | None = None,
    resolve: str | None = None,
) -> sync.SyncFacts:
    """Facts as the controller gathers them. ``head``: files under the path at the head (None: path missing).

    ``last``: (template files, repository files under the path) at the last sync; repository files None mean
    the last synced commit cannot be read any more.
    """
    head_raw = None if head is None else {p: c if isinstance(c, bytes) else c.encode() for p, c in head.items()}
    synced = None
    if last is not None:
        last_template, last_repo = last
        repo_revision = None if last_repo is None else sync.repo_revision(raw(last_repo))
        synced = sync.Synced(template_logic.revision(last_template), last_commit, repo_revision)
    return sync.SyncFacts(
        link_key=LINK, direction=direction, auto_sync=auto_sync, push_requested=requested,
        template_revision=template_logic.revision(template), head_commit=head_commit,
        repo_revision=sync.repo_revision(head_raw), push=plan(template, head_raw, prune=prune), last=synced,
        head_trailers=dict(trailers or {}), conflict=conflict, resolve=resolve,
    )


def describe(decision: sync.Decision) -> tuple[str, str]:
    """(kind, reason) of a decision, for compact tables."""
    return type(decision).__name__, decision.reason


# ---- path mapping -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("link_path", "expected"),
    [
        (".", False), ("stacks/net", False), ("stacks/net/", False), ("stacks/net.tf/", False),
        ("main.tf", True), ("stacks/net/main.tf", True), ("env/prod.tfvars", True), ("live/terragrunt.hcl", True),
        ("x/main.tf.json", True), ("x/README.md", False), ("x/main.tfstate", False),
    ],
)
def test_is_file_path(link_path: str, expected: bool) -> None:
    assert sync.is_file_path(link_path) is expected


@pytest.mark.parametrize(
    ("link_path", "template", "expected"),
    [
        (".", {"main.tf": "x", "modules/a/main.tf": "y"}, {"main.tf": b"x", "modules/a/main.tf": b"y"}),
        ("stacks/net", {"main.tf": "x"}, {"stacks/net/main.tf": b"x"}),
        ("stacks/net/", {"main.tf": "x", "m/v.tf": "y"}, {"stacks/net/main.tf": b"x", "stacks/net/m/v.tf": b"y"}),
        ("stacks/net/main.tf", {"main.tf": "x"}, {"stacks/net/main.tf": b"x"}),
        ("main.tf", {"main.tf": "é\r\n"}, {"main.tf": "é\r\n".encode()}),
        ("stacks/net.tf/", {"main.tf": "x"}, {"stacks/net.tf/main.tf": b"x"}),
    ],
)
def test_to_repo_maps_template_paths_under_the_link_path(
    link_path: str, template: Files, expected: dict[str, bytes]
) -> None:
    assert sync.to_repo(template, link_path) == expected


@pytest.mark.parametrize("template", [{"net.tf": "x"}, {"main.tf": "x", "vars.tf": "y"}])
def test_a_one_file_link_needs_one_template_file_of_the_same_name(template: Files) -> None:
    result = sync.to_repo(template, "stacks/net/main.tf")
    assert isinstance(result, sync.Blocked) and result.reason == sync.PATH_MISMATCH
    assert "exactly one file named main.tf" in result.message


@pytest.mark.parametrize(
    ("files", "link_path", "expected"),
    [
        ({"main.tf": b"a\r\nb\r\n"}, PATH, {"main.tf": "a\r\nb\r\n"}),  # CRLF kept byte for byte
        ({"main.tf": b"\xef\xbb\xbfa\n"}, PATH, {"main.tf": "\ufeffa\n"}),  # a BOM is kept too
        ({"main.tf": "ü\n".encode(), "mod/x/v.tf": b""}, ".", {"main.tf": "ü\n", "mod/x/v.tf": ""}),
        ({"main.tf": b"x"}, "stacks/net/main.tf", {"main.tf": "x"}),
        (None, PATH, {}),
    ],
)
def test_from_repo_decodes_files_exactly(
    files: dict[str, bytes] | None, link_path: str, expected: dict[str, str]
) -> None:
    assert sync.from_repo(files, link_path) == expected


@pytest.mark.parametrize(
    ("files", "link_path", "reason", "text"),
    [
        ({"main.tf": b"ok", "lambda.zip": b"PK\x03\x04\xff\xfe"}, PATH, sync.UNSUPPORTED_FILES,
         "stacks/net/lambda.zip is not UTF-8 text (byte 4)"),
        ({"main.tf": b"\xe9t\xe9\n"}, "stacks/net/main.tf", sync.UNSUPPORTED_FILES, "stacks/net/main.tf is not UTF-8"),
        ({"a\\b.tf": b"x"}, ".", sync.UNSUPPORTED_FILES, "a\\b.tf cannot be a template file"),
        ({"a.tf": b"x", "b.tf": b"y"}, "stacks/net.tf", sync.PATH_MISMATCH, "link it as stacks/net.tf/ instead"),
    ],
)
def test_from_repo_refuses_what_cannot_become_a_template(
    files: dict[str, bytes], link_path: str, reason: str, text: str
) -> None:
    result = sync.from_repo(files, link_path)
    assert isinstance(result, sync.Blocked) and result.reason == reason
    assert text in result.message


def test_repo_revision_is_comparable_with_the_template_revision_and_sees_binary_changes() -> None:
    template = {"main.tf": "a\n", "modules/x/v.tf": "b\r\n"}
    assert sync.repo_revision(raw(template)) == template_logic.revision(template)
    assert sync.repo_revision(None) == sync.repo_revision({}) == sync.EMPTY_REVISION
    one = sync.repo_revision({"main.tf": b"a\n", "blob.bin": b"\xff\x00"})
    assert one != sync.repo_revision({"main.tf": b"a\n", "blob.bin": b"\xff\x01"})
    assert sync.repo_revision(raw({"main.tf": "a\n"})) != sync.repo_revision(raw({"main.tf": "a\r\n"}))


# ---- push plans ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("template", "head", "prune", "write", "delete", "overwrite"),
    [
        pytest.param(A, A, True, set(), set(), set(), id="equal: empty"),
        pytest.param(B, A, True, {"stacks/net/main.tf"}, set(), {"stacks/net/main.tf"}, id="changed file"),
        pytest.param({**A, "m/x.tf": "x"}, A, True, {"stacks/net/m/x.tf"}, set(), set(), id="new nested file"),
        pytest.param(A, None, True, {"stacks/net/main.tf"}, set(), set(), id="path missing"),
        pytest.param(A, {**A, "old.tf": "o", "m/old.tf": "o"}, True, set(), {"stacks/net/old.tf",
                     "stacks/net/m/old.tf"}, set(), id="prune deletes stale files, nested too"),
        pytest.param(A, {**A, "old.tf": "o"}, False, set(), set(), set(), id="no prune: left alone"),
        pytest.param(A, {**A, "README.md": "r", ".terraform.lock.hcl": "l", "m/.gitignore": "g"}, True, set(),
                     set(), set(), id="prune keeps repository furniture"),
        pytest.param({**A, "README.md": "new"}, {**A, "README.md": "r"}, True, {"stacks/net/README.md"}, set(),
                     {"stacks/net/README.md"}, id="a template holding a kept file still writes it"),
        pytest.param({"main.tf": "a\n"}, {"main.tf": "a\r\n"}, True, {"stacks/net/main.tf"}, set(),
                     {"stacks/net/main.tf"}, id="CRLF against LF is a change"),
    ],
)
def test_plan_push(
    template: Files, head: Files | None, prune: bool, write: set[str], delete: set[str], overwrite: set[str]
) -> None:
    change = plan(template, None if head is None else raw(head), prune=prune)
    assert set(change.write) == write
    assert change.delete == delete
    assert change.overwrite == overwrite
    assert change.empty is (not write and not delete)
    assert change.additive is (not overwrite and not delete)


def test_plan_push_writes_exact_bytes_and_only_under_the_path() -> None:
    change = plan({"main.tf": "é\r\n", "sub/v.tf": "v"}, raw({"main.tf": "x"}))
    assert dict(change.write) == {"stacks/net/main.tf": "é\r\n".encode(), "stacks/net/sub/v.tf": b"v"}
    assert all(path.startswith("stacks/net/") for path in change.paths)


def test_plan_push_at_the_root_keeps_github_workflows() -> None:
    head = raw({"main.tf": "a", ".github/workflows/ci.yml": "ci", "docs/x.md": "d"})
    change = plan({"main.tf": "a"}, head, path=".")
    assert change.delete == {"docs/x.md"}


@pytest.mark.parametrize(
    ("template", "head", "expected"),
    [
        ({"main.tf": "b"}, {"main.tf": b"a"}, {"stacks/main.tf"}),
        ({"main.tf": "a"}, {"main.tf": b"a"}, set()),
        ({"main.tf": "a"}, None, {"stacks/main.tf"}),
    ],
)
def test_plan_push_for_a_one_file_link_writes_that_file_and_never_deletes(
    template: Files, head: dict[str, bytes] | None, expected: set[str]
) -> None:
    change = plan(template, head, path="stacks/main.tf", prune=True)
    assert set(change.write) == expected and not change.delete


@pytest.mark.parametrize(
    ("template", "head", "link_path"),
    [
        ({"net.tf": "x"}, None, "stacks/main.tf"),  # template file named otherwise
        ({"main.tf": "x"}, {"a.tf": b"1", "b.tf": b"2"}, "stacks/main.tf"),  # a folder sits at the file path
    ],
)
def test_plan_push_for_a_one_file_link_is_blocked_on_mismatch(
    template: Files, head: dict[str, bytes] | None, link_path: str
) -> None:
    result = sync.plan_push(template, head, link_path, prune=True)
    assert isinstance(result, sync.Blocked) and result.reason == sync.PATH_MISMATCH


# ---- the three-way decision ---------------------------------------------------------------------------------

R = conds.Reasons
RULES = [
    # (id, facts, expected (kind, reason))
    ("in sync", facts(A, A, (A, A), head_commit=OLD), ("Nothing", R.IN_SYNC)),
    ("only commits outside the path moved the branch", facts(A, A, (A, A)), ("Record", R.IN_SYNC)),
    ("template moved, Bidirectional autoSync: push", facts(B, A, (A, A)), ("Push", R.PUSHED)),
    ("template moved, Push autoSync: push", facts(B, A, (A, A), direction="Push"), ("Push", R.PUSHED)),
    ("template moved, autoSync off: wait", facts(B, A, (A, A), direction="Push", auto_sync=False),
     ("Nothing", sync.PUSH_PENDING)),
    ("template moved, autoSync off, requested: push",
     facts(B, A, (A, A), direction="Push", auto_sync=False, requested=True), ("Push", R.PUSHED)),
    ("template moved, Pull: blocked", facts(B, A, (A, A), direction="Pull", auto_sync=False),
     ("Blocked", sync.TEMPLATE_EDITED)),
    ("template moved, Pull, requested: still blocked",
     facts(B, A, (A, A), direction="Pull", auto_sync=False, requested=True), ("Blocked", sync.TEMPLATE_EDITED)),
    ("template moved, Pull, resolve=repo: pull", facts(B, A, (A, A), direction="Pull", resolve="repo"),
     ("Pull", R.PULLED)),
    ("template moved, Pull, resolve=cluster: refused", facts(B, A, (A, A), direction="Pull", resolve="cluster"),
     ("Blocked", sync.INVALID_ANNOTATION)),
    ("template moved back to the repo's content", facts(A, A, (B, B)), ("Record", R.IN_SYNC)),
    ("repo moved, Bidirectional: pull", facts(A, B, (A, A)), ("Pull", R.PULLED)),
    ("repo moved, Pull: pull", facts(A, B, (A, A), direction="Pull", auto_sync=False), ("Pull", R.PULLED)),
    ("repo moved, Push: conflict", facts(A, B, (A, A), direction="Push"), ("Conflict", R.CONFLICT_OPENED)),
    ("repo moved, Push, resolve=cluster: push", facts(A, B, (A, A), direction="Push", resolve="cluster"),
     ("Push", R.PUSHED)),
    ("repo moved, Push, resolve=repo: keep it", facts(A, B, (A, A), direction="Push", resolve="repo"),
     ("Record", R.IN_SYNC)),
    ("both moved, different: conflict", facts(B, C, (A, A)), ("Conflict", R.CONFLICT_OPENED)),
    ("both moved, Push: conflict", facts(B, C, (A, A), direction="Push"), ("Conflict", R.CONFLICT_OPENED)),
    ("both moved to the same content", facts(B, B, (A, A)), ("Record", R.IN_SYNC)),
    ("both moved, Pull: blocked", facts(B, C, (A, A), direction="Pull", auto_sync=False),
     ("Blocked", sync.TEMPLATE_EDITED)),
    ("both moved, resolve=cluster: push", facts(B, C, (A, A), resolve="cluster"), ("Push", R.PUSHED)),
    ("both moved, resolve=repo: pull", facts(B, C, (A, A), resolve="repo"), ("Pull", R.PULLED)),
    ("repo deleted the path, Bidirectional", facts(A, None, (A, A)), ("Blocked", R.PATH_NOT_FOUND)),
    ("repo deleted the path, Push: conflict", facts(A, None, (A, A), direction="Push"),
     ("Conflict", R.CONFLICT_OPENED)),
    ("repo deleted a file, Bidirectional: pull", facts({**A, "v.tf": "v"}, A, ({**A, "v.tf": "v"}, {**A,
     "v.tf": "v"})), ("Pull", R.PULLED)),
    ("template deleted a file, prune: push", facts(A, {**A, "v.tf": "v"}, ({**A, "v.tf": "v"}, {**A, "v.tf": "v"}),
     head_commit=OLD), ("Push", R.PUSHED)),
    ("template deleted a file, no prune: nothing to write",
     facts(A, {**A, "v.tf": "v"}, ({**A, "v.tf": "v"}, {**A, "v.tf": "v"}), head_commit=OLD, prune=False),
     ("Record", R.IN_SYNC)),
    ("repo edited a file the template does not hold (no prune): outside the sync",
     facts(A, {**A, "x.sh": "2"}, (A, {**A, "x.sh": "1"}), prune=False), ("Record", R.IN_SYNC)),
    ("last commit unreadable, repo differs: taken as a repo move", facts(A, B, (A, None)), ("Pull", R.PULLED)),
    ("last commit unreadable, template moved too: conflict", facts(C, B, (A, None)),
     ("Conflict", R.CONFLICT_OPENED)),
    ("last commit unreadable, sides agree", facts(A, A, (A, None)), ("Record", R.IN_SYNC)),
    ("a lingering resolve annotation does nothing in sync", facts(A, A, (A, A), head_commit=OLD, resolve="cluster"),
     ("Nothing", R.IN_SYNC)),
    ("a lingering resolve annotation does not overwrite a repo edit it was not meant for",
     facts(A, B, (A, A), resolve="cluster"), ("Pull", R.PULLED)),
    ("invalid resolve annotation", facts(A, B, (A, A), resolve="mine"), ("Blocked", sync.INVALID_ANNOTATION)),
    # First sync.
    ("first sync, path missing, Push", facts(A, None, direction="Push"), ("Push", R.PUSHED)),
    ("first sync, path missing, autoSync off", facts(A, None, auto_sync=False), ("Nothing", sync.PUSH_PENDING)),
    ("first sync, path missing, Pull", facts(A, None, direction="Pull", auto_sync=False),
     ("Blocked", R.PATH_NOT_FOUND)),
    ("first sync, equal", facts(A, A, direction="Push"), ("Record", R.IN_SYNC)),
    ("first sync, equal but for kept files", facts(A, {**A, "README.md": "r"}, direction="Push"),
     ("Record", R.IN_SYNC)),
    ("first sync, only adds files", facts(A, {"README.md": "r", ".gitignore": "g"}, direction="Push"),
     ("Push", R.PUSHED)),
    ("first sync, adds next to other files, no prune", facts(A, {"other.tf": "o"}, prune=False),
     ("Push", R.PUSHED)),
    ("first sync, prune would delete, Push", facts(A, {"other.tf": "o"}, direction="Push"),
     ("Conflict", R.CONFLICT_OPENED)),
    ("first sync, overwrites, Push", facts(A, B, direction="Push"), ("Conflict", R.CONFLICT_OPENED)),
    ("first sync, overwrites, Bidirectional", facts(A, B), ("Conflict", R.CONFLICT_OPENED)),
    ("first sync, differs, Pull", facts(A, B, direction="Pull", auto_sync=False), ("Pull", R.PULLED)),
    ("first sync, overwrites, resolve=cluster", facts(A, B, direction="Push", resolve="cluster"),
     ("Push", R.PUSHED)),
    # A missing branch.
    ("branch missing, first sync, Push: create it", facts(A, None, head_commit=None, direction="Push"),
     ("Push", R.PUSHED)),
    ("branch missing, first sync, autoSync off", facts(A, None, head_commit=None, auto_sync=False),
     ("Nothing", sync.PUSH_PENDING)),
    ("branch missing, Pull", facts(A, None, head_commit=None, direction="Pull", auto_sync=False),
     ("Blocked", R.BRANCH_NOT_FOUND)),
    ("branch deleted since the last sync", facts(A, None, (A, A), head_commit=None), ("Blocked", R.BRANCH_NOT_FOUND)),
    ("branch deleted, resolve=cluster: push again", facts(A, None, (A, A), head_commit=None, resolve="cluster"),
     ("Push", R.PUSHED)),
    ("branch deleted, resolve=repo: nothing to keep", facts(A, None, (A, A), head_commit=None, resolve="repo"),
     ("Blocked", R.BRANCH_NOT_FOUND)),
]


@pytest.mark.parametrize(("case", "expected"), [(f, e) for _, f, e in RULES], ids=[name for name, _, _ in RULES])
def test_decide(case: sync.SyncFacts, expected: tuple[str, str]) -> None:
    assert describe(sync.decide(case)) == expected


def test_push_carries_the_planned_change_and_resolved_only_when_the_annotation_was_used() -> None:
    plain = sync.decide(facts(B, A, (A, A)))
    assert isinstance(plain, sync.Push) and set(plain.change.write) == {"stacks/net/main.tf"} and not plain.resolved
    forced = sync.decide(facts(A, B, (A, A), direction="Push", resolve="cluster"))
    assert isinstance(forced, sync.Push) and forced.resolved


def test_record_stores_the_new_pair() -> None:
    decision = sync.decide(facts(A, A, (A, A)))
    assert decision == sync.Record(
        sync.Synced(template_logic.revision(A), NEW, sync.repo_revision(raw(A))),
        "Only files outside the path changed on the branch.",
    )


def test_push_pending_message_says_how_to_request() -> None:
    decision = sync.decide(facts(B, A, (A, A), auto_sync=False))
    assert isinstance(decision, sync.Nothing)
    assert "autoSync is off" in decision.message and "chkmate.dev/requestedAt" in decision.message


def test_conflict_names_its_branch_after_the_link_and_template_revision() -> None:
    decision = sync.decide(facts(B, C, (A, A)))
    assert isinstance(decision, sync.Conflict)
    assert decision.branch == sync.conflict_branch("net", template_logic.revision(B))
    assert decision.change == plan(B, raw(C))


# ---- crash between push and status write --------------------------------------------------------------------

def ours(template: Files, link: str = LINK) -> dict[str, str]:
    message = sync.commit_message("net", template_logic.revision(template), plan(template, raw(A)), link)
    return sync.parse_trailers(message)


@pytest.mark.parametrize(
    ("case", "kind", "pushed_earlier"),
    [
        pytest.param(facts(B, B, (A, A), trailers=ours(B)), "Record", True, id="pushed, status lost"),
        pytest.param(facts(B, B, trailers=ours(B)), "Record", True, id="first push, status lost"),
        pytest.param(facts(B, B, (A, A), trailers=ours(B, "team/other")), "Record", False, id="another link's"),
        pytest.param(facts(B, B, (A, A), trailers=ours(A)), "Record", False, id="an older revision's"),
        pytest.param(facts(B, C, (A, A), trailers=ours(B)), "Conflict", False, id="edited after (squash merge)"),
    ],
)
def test_a_push_found_on_the_head_is_recorded_not_repeated(
    case: sync.SyncFacts, kind: str, pushed_earlier: bool
) -> None:
    decision = sync.decide(case)
    assert type(decision).__name__ == kind
    assert getattr(decision, "pushed_earlier", False) is pushed_earlier
    if pushed_earlier:
        assert isinstance(decision, sync.Record) and decision.synced.commit == NEW
        assert decision.synced.template_revision == template_logic.revision(B)


# ---- conflict lifecycle -------------------------------------------------------------------------------------

def opened(template: Files, state: sync.PullRequestState | None, number: int | None = 7) -> sync.ConflictState:
    return sync.ConflictState(template_logic.revision(template), state, number)


@pytest.mark.parametrize(
    ("case", "expected", "resolved"),
    [
        pytest.param(facts(B, C, (A, A), conflict=opened(B, "open")), ("Blocked", R.CONFLICT_OPENED), False,
                     id="open: blocked, conflict kept"),
        pytest.param(facts(B, C, (A, A), conflict=opened(B, None)), ("Conflict", R.CONFLICT_OPENED), False,
                     id="no pull request yet: open it"),
        pytest.param(facts(B, {"main.tf": "merged\n"}, (A, A), conflict=opened(B, "merged")), ("Pull", R.PULLED),
                     True, id="merged with edits: pull"),
        pytest.param(facts(B, B, (A, A), conflict=opened(B, "merged")), ("Record", R.IN_SYNC), True,
                     id="merged as is: record"),
        pytest.param(facts(C, {"main.tf": "merged\n"}, (A, A), conflict=opened(B, "merged")),
                     ("Conflict", R.CONFLICT_OPENED), False, id="merged, template edited since: new conflict"),
        pytest.param(facts(B, {"main.tf": "merged\n"}, (A, A), direction="Push", conflict=opened(B, "merged")),
                     ("Record", R.IN_SYNC), True, id="merged on a Push link: new baseline"),
        pytest.param(facts(B, C, (A, A), conflict=opened(B, "closed")), ("Blocked", sync.CONFLICT_CLOSED), False,
                     id="closed: blocked"),
        pytest.param(facts(B, C, (A, A), conflict=opened(B, "closed"), resolve="cluster"), ("Push", R.PUSHED), True,
                     id="closed + resolve=cluster: push"),
        pytest.param(facts(B, C, (A, A), auto_sync=False, conflict=opened(B, "closed"), resolve="cluster"),
                     ("Push", R.PUSHED), True, id="resolve=cluster pushes without autoSync"),
        pytest.param(facts(B, C, (A, A), conflict=opened(B, "open"), resolve="repo"), ("Pull", R.PULLED), True,
                     id="open + resolve=repo: pull"),
        pytest.param(facts(B, C, (A, A), direction="Push", conflict=opened(B, "closed"), resolve="repo"),
                     ("Record", R.IN_SYNC), True, id="Push link + resolve=repo: keep the repo as baseline"),
        pytest.param(facts(C, C, (A, A), conflict=opened(B, "open")), ("Record", R.IN_SYNC), True,
                     id="sides agree again: over"),
        pytest.param(facts(B, None, (A, A), conflict=opened(B, "merged")), ("Blocked", R.PATH_NOT_FOUND), False,
                     id="merge removed the path"),
    ],
)
def test_conflict_resolution(case: sync.SyncFacts, expected: tuple[str, str], resolved: bool) -> None:
    decision = sync.decide(case)
    assert describe(decision) == expected
    assert getattr(decision, "resolved", False) is resolved


def test_conflict_messages_name_the_pull_request_and_the_way_out() -> None:
    blocked = sync.decide(facts(B, C, (A, A), conflict=opened(B, "open", 42)))
    assert isinstance(blocked, sync.Blocked)
    assert "pull request #42" in blocked.message and "chkmate.dev/resolve=cluster or =repo" in blocked.message
    closed = sync.decide(facts(B, C, (A, A), conflict=opened(B, "closed", None)))
    assert closed.message.startswith("The conflict pull request was closed without merging")


def test_conflict_lifecycle_as_the_controller_walks_it() -> None:
    """Both sides edited → conflict → PR open (blocked) → merged with edits → pull → in sync."""
    first = sync.decide(facts(B, C, (A, A)))
    assert isinstance(first, sync.Conflict)
    conflict = opened(B, "open")
    assert describe(sync.decide(facts(B, C, (A, A), conflict=conflict))) == ("Blocked", R.CONFLICT_OPENED)
    merged = {"main.tf": "b = 2\nc = 3\n"}
    pulled = sync.decide(facts(B, merged, (A, A), conflict=dataclasses.replace(conflict, pull_request="merged")))
    assert isinstance(pulled, sync.Pull) and pulled.resolved
    # The controller pulled: the template now holds the merge, and the pair records it.
    assert describe(sync.decide(facts(merged, merged, (merged, merged), head_commit=OLD))) == ("Nothing", R.IN_SYNC)


# ---- trailers and commit messages ---------------------------------------------------------------------------

def test_trailers_round_trip_through_a_commit_message() -> None:
    change = plan({"main.tf": "x", "m/v.tf": "y"}, raw({"main.tf": "a", "old.tf": "o"}))
    message = sync.commit_message("network", "sha256:" + "f" * 64, change, LINK)
    subject, _, rest = message.partition("\n\n")
    assert subject == "chkmate: sync template network (3 files)"
    assert "\n\nwrite stacks/net/m/v.tf\nwrite stacks/net/main.tf\ndelete stacks/net/old.tf\n\n" in rest
    assert message.endswith(f"\n\n{sync.trailer('sha256:' + 'f' * 64, LINK)}\n")
    assert sync.parse_trailers(message) == {
        sync.TEMPLATE_REVISION_TRAILER: "sha256:" + "f" * 64, sync.LINK_TRAILER: LINK,
    }


def test_commit_message_lists_paths_up_to_a_limit() -> None:
    one = sync.commit_message("n", "sha256:1", sync.Change(write={"a.tf": b""}), LINK)
    assert one.startswith("chkmate: sync template n (1 file)\n")
    many = sync.Change(write={f"f{i:03}.tf": b"" for i in range(sync.MAX_LISTED_PATHS + 5)})
    text = sync.commit_message("n", "sha256:1", many, LINK)
    assert f"({sync.MAX_LISTED_PATHS + 5} files)" in text and "... and 5 more" in text
    assert f"f{sync.MAX_LISTED_PATHS + 4:03}.tf" not in text


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("subject only", {}),
        ("Key: value as a subject", {}),
        ("subject\n\nbody text\n\nSigned-off-by: A <a@x>\nChkmate-Link: ns/n", {"Signed-off-by": "A <a@x>",
                                                                               "Chkmate-Link": "ns/n"}),
        ("subject\r\n\r\nChkmate-Link: ns/n  \r\n", {"Chkmate-Link": "ns/n"}),
        ("subject\n\nChkmate-Link: a/b\nnot a trailer line", {}),
        ("subject\n\nChkmate-Link: a/b\nChkmate-Link: c/d\n\n\n", {"Chkmate-Link": "c/d"}),
        ("Merge pull request #7 from org/chkmate/conflict/net-abc\n\nJust prose.", {}),
    ],
)
def test_parse_trailers(message: str, expected: dict[str, str]) -> None:
    assert sync.parse_trailers(message) == expected


# ---- conflict branches and pull requests --------------------------------------------------------------------

REF_NAME = re.compile(r"^chkmate/conflict/[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("link_name", "expected_part"),
    [
        ("net", "net"),
        ("Prod.Net..v2", "prod-net-v2"),
        ("-.weird~^:?*[\\ name.lock", "weird-name-lock"),
        ("", "link"),
        ("...", "link"),
        ("x" * 300, "x" * sync.MAX_BRANCH_NAME_PART),
    ],
)
def test_conflict_branch_is_a_valid_ref(link_name: str, expected_part: str) -> None:
    branch = sync.conflict_branch(link_name, "sha256:ABCdef0123456789")
    assert branch == f"chkmate/conflict/{expected_part}-abcdef012345"
    assert REF_NAME.match(branch) and ".." not in branch and not branch.endswith(".lock")


def test_conflict_branch_differs_per_template_revision() -> None:
    assert sync.conflict_branch("net", template_logic.revision(A)) != sync.conflict_branch(
        "net", template_logic.revision(B))


@pytest.mark.parametrize(
    ("direction", "merge_text", "repo_text"),
    [
        ("Bidirectional", "becomes the template's content", "the template is overwritten from"),
        ("Push", "becomes the link's new baseline", "nothing is pushed over"),
    ],
)
def test_conflict_pull_request_explains_both_sides_and_how_to_resolve(
    direction: links.SyncDirection, merge_text: str, repo_text: str
) -> None:
    text = sync.conflict_pull_request(
        link=LINK, template_name="network", base_branch="main", link_path=PATH,
        template_revision="sha256:" + "e" * 64, head_commit="c" * 40, direction=direction,
    )
    assert text.title == "chkmate: sync conflict for template network on main"
    assert "Template `network` at revision `eeeeeeeeeeee`" in text.body
    assert "commit `cccccccccccc`" in text.body
    assert "kubectl annotate templaterepolink net -n team chkmate.dev/resolve=cluster --overwrite" in text.body
    assert "kubectl annotate templaterepolink net -n team chkmate.dev/resolve=repo --overwrite" in text.body
    assert merge_text in text.body and repo_text in text.body
    assert "never a force-push" in text.body


# ---- revisions in status ------------------------------------------------------------------------------------

def test_synced_revision_round_trips() -> None:
    revision = sync.synced_revision("main", "d" * 40)
    assert revision == "main@sha1:" + "d" * 40
    assert sync.commit_of(revision) == "d" * 40
    assert sync.commit_of("feature/x@sha1:" + "0" * 40) == "0" * 40


@pytest.mark.parametrize("revision", [None, "", "main", "main@sha1:abc", "main@sha256:" + "d" * 40])
def test_commit_of_rejects_anything_else(revision: str | None) -> None:
    assert sync.commit_of(revision) is None


# ---- history ------------------------------------------------------------------------------------------------

SYNCED = sync.Synced("sha256:1", NEW, "sha256:2")


@pytest.mark.parametrize(
    ("decision", "error", "expected"),
    [
        (sync.Push(sync.Change(), "pushed"), None, ("Push", "Succeeded", "pushed")),
        (sync.Push(sync.Change(), "pushed"), "rejected", ("Push", "Failed", "rejected")),
        (sync.Pull("pulled"), None, ("Pull", "Succeeded", "pulled")),
        (sync.Conflict("chkmate/conflict/x-1", sync.Change(), "both moved"), None,
         ("Conflict", "Succeeded", "both moved")),
        (sync.Record(SYNCED, "found", pushed_earlier=True), None, ("Push", "Succeeded", "found")),
        (sync.Record(SYNCED, "merged", resolved=True), None, ("None", "Succeeded", "merged")),
        (sync.Blocked(R.PATH_NOT_FOUND, "gone"), None, ("None", "Skipped", "PathNotFound: gone")),
        (sync.Record(SYNCED, "outside"), None, None),
        (sync.Nothing("in sync"), None, None),
    ],
)
def test_event(decision: sync.Decision, error: str | None, expected: tuple[str, str, str] | None) -> None:
    found = sync.event(decision, now=NOW, commit="c" * 40, template_revision="sha256:1", error=error)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.direction, found.result, found.message) == expected
        assert (found.at, found.commit, found.template_revision) == ("2026-01-01T12:00:00Z", "c" * 40, "sha256:1")


def test_add_event_prepends_caps_and_drops_repeats() -> None:
    history: tuple[links.SyncEvent, ...] = ()
    for i in range(links.MAX_HISTORY + 3):
        new = sync.event(sync.Pull(f"pull {i}"), now=NOW + datetime.timedelta(minutes=i))
        history = sync.add_event(history, new)
    assert len(history) == links.MAX_HISTORY
    assert history[0].message == f"pull {links.MAX_HISTORY + 2}"
    blocked = sync.Blocked(R.CONFLICT_OPENED, "waiting")
    once = sync.add_event(history, sync.event(blocked, now=NOW))
    twice = sync.add_event(once, sync.event(blocked, now=NOW + datetime.timedelta(hours=1)))
    assert twice == once and once[0].at == "2026-01-01T12:00:00Z"
    assert sync.add_event(once, None) == once


def test_a_pull_link_never_opens_a_conflict_pull_request() -> None:
    """A link switched to Pull while a conflict was open: it stops instead of pushing a branch."""
    merged_then_edited = facts(C, B, (A, A), direction="Pull", auto_sync=False, conflict=opened(B, "merged"))
    assert describe(sync.decide(merged_then_edited)) == ("Blocked", sync.TEMPLATE_EDITED)
    no_pull_request = facts(B, C, (A, A), direction="Pull", auto_sync=False, conflict=opened(B, None))
    assert describe(sync.decide(no_pull_request)) == ("Blocked", sync.TEMPLATE_EDITED)


@pytest.mark.parametrize(
    ("ready", "reason", "expected"),
    [
        ("False", "ConflictOpened", True),
        ("False", sync.CONFLICT_CLOSED, True),
        ("False", sync.TEMPLATE_EDITED, True),
        ("False", "InvalidHCL", True),
        ("False", sync.PUSH_PENDING, False),  # a Push link waiting for its request: the direction at work
        ("False", "BranchNotFound", False),  # nothing to compare with: the Environment's own plan fails
        ("Unknown", "Progressing", False),
        ("True", "Succeeded", False),
    ],
)
def test_which_link_states_are_divergence_beyond_the_direction(ready: str, reason: str, expected: bool) -> None:
    assert sync.diverged(ready, reason) is expected
