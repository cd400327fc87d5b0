"""Pull request comments and check-run output for plans: sticky markers, diff highlighting, size limits. Pure: no I/O.

One sticky comment per pull request and environment, edited in place on every new head. Its first line is a
hidden marker (:func:`marker`) the operator finds its own comments by (:func:`find_marker`, :func:`find_part`);
filter by the app's own login too, since anyone can paste a marker. The body (:func:`plan_comment`) is a heading
(status, environment, short commit), the summary, cost and security lines, then the plan in a ```` ```diff ````
block folded in ``<details>``. Free text from the engine (plan output, ``details``, errors) is redacted
(:mod:`chkmate.domain.redaction`) before it is laid out; the pieces the caller formats itself (summary, cost and
security lines, footer) are taken as they are.

Size: GitHub refuses comment bodies over :data:`COMMENT_LIMIT` characters. Sizes here are counted in UTF-8
bytes, never fewer than GitHub's characters however it counts them. A plan too long for one comment is split at
line boundaries into up to ``max_parts`` comments ("part 2/3"), each closing its code block and ``<details>`` and
the next reopening them; the first part carries the heading, summary and footer. A plan too long even for that
loses its *start*: the end, with the errors and Terraform's "Plan: N to add..." line, is what a reviewer needs,
and the first part says how many lines were cut. A single line longer than :data:`LINE_LIMIT` is shortened in
place. When a new push needs fewer parts than before, the operator deletes (or empties) the extra parts.

The check run (:func:`check_run_output`) carries the same summary; its text keeps the tail of the plan within
:data:`CHECK_RUN_LIMIT`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, TypedDict

from chkmate.domain import redaction

COMMENT_LIMIT = 65_536  # GitHub: "Body is too long (maximum is 65536 characters)"
CHECK_RUN_LIMIT = 65_535  # GitHub: output.summary and output.text of a check run
CHECK_RUN_TITLE_LIMIT = 100  # ours: the title is one line in the checks list
MAX_PARTS = 3  # more than three comments of plan is noise; the full text stays in the cluster
LINE_LIMIT = 10_000  # a longer line is a blob (a policy, a user_data script) nobody reads in a comment
DETAILS_SHARE = 4  # free ``details`` text takes at most a quarter of a comment
_MIN_ROOM = 64  # bytes for plan text in a part: a shortened line and its " … (N characters cut)" note

Status = Literal["planned", "failed", "applied", "apply-failed", "locked"]
MarkerKind = Literal["plan", "apply"]

_HEADINGS: Mapping[Status, tuple[str, str]] = {
    "planned": ("✅", "planned"),
    "failed": ("❌", "plan failed"),
    "applied": ("🚀", "applied"),
    "apply-failed": ("❌", "apply failed"),
    "locked": ("🔒", "locked"),
}
_UNFOLDED: frozenset[Status] = frozenset({"failed", "apply-failed"})  # errors are shown, not hidden

_ENV_NAME = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}"
_MARKER = re.compile(rf"<!-- chkmate:(?P<kind>plan|apply) env=(?P<env>{_ENV_NAME})(?: part=(?P<part>[1-9][0-9]*))? -->")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Terraform marks changes with a sign after the indentation: `  + resource`, `      ~ tags = {`, `-/+ resource`.
_CHANGE_SIGN = re.compile(r"^( *)(-/\+|\+/-|[-+~])( |$)")


class CheckRunOutput(TypedDict):
    """The ``output`` object of GitHub's check-run API."""

    title: str
    summary: str
    text: str


def marker(env: str, *, kind: MarkerKind = "plan", part: int = 1) -> str:
    """The hidden first line of the operator's comments: ``<!-- chkmate:plan env=<env> -->``.

    ``kind`` "plan" marks the sticky comment (and its later parts, ``part=2``...); "apply" the one-off comment
    on a failed apply after merge. ``env`` is a Kubernetes name, optionally ``namespace/name``.
    """
    if not re.fullmatch(_ENV_NAME, env):
        raise ValueError(f"{env!r} is not an environment name")
    suffix = f" part={part}" if part > 1 else ""
    return f"<!-- chkmate:{kind} env={env}{suffix} -->"


def find_marker(body: str, *, kind: MarkerKind = "plan") -> str | None:
    """The environment whose marker of ``kind`` opens ``body``, or None (a marker quoted further down is ignored)."""
    found = _MARKER.match(body.lstrip())
    return found["env"] if found and found["kind"] == kind else None


def find_part(body: str) -> int | None:
    """Which part of a split comment ``body`` is (1 for the first or only one), or None for another comment."""
    found = _MARKER.match(body.lstrip())
    return int(found["part"] or 1) if found else None


def check_run_name(env: str) -> str:
    return f"chkmate/{env}"


def short_revision(revision: str) -> str:
    """``main@sha1:0123456789ab...`` (or a bare sha) → ``0123456``."""
    sha = revision.rpartition("sha1:")[2]
    return sha[:7] if re.fullmatch(r"[0-9a-f]{7,64}", sha) else sha.replace("`", "")


def to_diff(plan_text: str) -> str:
    """Terraform's plan text with each change sign moved to the first column, so GitHub's ``diff`` highlighting
    colours it: ``+`` green, ``-`` and ``-/+`` red, ``~`` (as ``!``) orange. The Atlantis trick; widths are kept."""
    return "\n".join(_diff_line(line) for line in plan_text.split("\n"))


def _diff_line(line: str) -> str:
    found = _CHANGE_SIGN.match(line)
    if not found:
        return line
    indent, sign, space = found.groups()
    return ("!" if sign == "~" else sign) + indent + space + line[found.end() :]


def plan_comment(
    env: str,
    revision: str,
    summary_line: str,
    cost_line: str,
    security_line: str,
    plan_text: str,
    *,
    status: Status,
    secrets: Iterable[str],
    details: str = "",
    footer: str = "",
    limit: int = COMMENT_LIMIT,
    max_parts: int = MAX_PARTS,
) -> list[str]:
    """The sticky comment's bodies: one, or up to ``max_parts`` when the plan is long (see the module docstring).

    ``summary_line``/``cost_line``/``security_line`` are shown as given (an empty one is left out); ``details``
    (markdown: findings, a lock holder, an error summary) goes below them; ``footer`` (e.g. how to apply) ends
    the first part. ``secrets`` are redacted from ``plan_text`` and ``details``.
    """
    secrets = tuple(secrets)
    icon, label = _HEADINGS[status]
    heading = f"### {icon} `{env}` {label} at `{short_revision(revision)}`"
    bullets = _bullets(summary_line, cost_line, security_line)
    details = _clip_head(redaction.redact(details, secrets), limit // DETAILS_SHARE)
    first = _join([marker(env) + "\n" + heading, bullets, details])
    lines = _plan_lines(plan_text, secrets)
    if not lines:
        return [_join([first, footer]) + "\n"]
    layout = _Layout(
        env=env,
        first=first,
        footer=footer,
        heading=heading,
        fence=_fence(lines),
        details="<details open>" if status in _UNFOLDED else "<details>",
        limit=limit,
    )
    return layout.bodies(lines, max_parts)


def _bullets(summary_line: str, cost_line: str, security_line: str) -> str:
    labelled = (("Plan", summary_line), ("Cost", cost_line), ("Security", security_line))
    return "\n".join(f"- **{name}:** {value}" for name, value in labelled if value)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How each part of a sticky comment looks around the plan lines it carries."""

    env: str
    first: str  # marker, heading, summary bullets and details of part 1
    footer: str
    heading: str
    fence: str
    details: str  # the opening tag, folded or open
    limit: int

    def bodies(self, lines: Sequence[str], max_parts: int) -> list[str]:
        room = _check_room(min(self.capacity(part, max_parts, cut=0) for part in range(1, max_parts + 1)), self.limit)
        lines = [_clip_line(line, min(LINE_LIMIT, room) - 1) for line in lines]
        for parts in range(1, max_parts + 1):
            chunks = _fill_forward(lines, [self.capacity(part, parts, cut=0) for part in range(1, parts + 1)])
            if chunks is not None:
                return [self.render(chunk, part, parts, cut=0) for part, chunk in enumerate(chunks, 1)]
        # Capacities with the longest cut note there can be: the real one is no longer.
        capacities = [self.capacity(part, max_parts, cut=len(lines)) for part in range(1, max_parts + 1)]
        _check_room(min(capacities), self.limit)
        chunks, cut = _fill_backward(lines, capacities)
        return [self.render(chunk, part, max_parts, cut=cut) for part, chunk in enumerate(chunks, 1)]

    def capacity(self, part: int, parts: int, *, cut: int) -> int:
        """Bytes left for plan lines (each counting its newline) in this part."""
        return self.limit - _size(self.render([], part, parts, cut=cut))

    def render(self, lines: Sequence[str], part: int, parts: int, *, cut: int) -> str:
        label = "Show plan" if parts == 1 else f"Show plan (part {part}/{parts})"
        block = f"{self.details}<summary>{label}</summary>\n\n{_code_block(lines, self.fence, 'diff')}\n\n</details>"
        if part == 1:
            return _join([self.first, _cut_note(cut, "plan"), block, self.footer]) + "\n"
        return _join([marker(self.env, part=part) + f"\n{self.heading}, part {part}/{parts}", block]) + "\n"


def check_run_output(
    env: str,
    summary_line: str,
    cost_line: str,
    security_line: str,
    plan_text: str,
    *,
    secrets: Iterable[str],
    limit: int = CHECK_RUN_LIMIT,
) -> CheckRunOutput:
    """The check run's output: a short title, the summary lines, and the plan's tail within ``limit`` each."""
    title = summary_line or check_run_name(env)
    if len(title) > CHECK_RUN_TITLE_LIMIT:
        title = title[: CHECK_RUN_TITLE_LIMIT - 1] + "…"
    lines = _plan_lines(plan_text, tuple(secrets))
    fence = _fence(lines)

    def render(kept: Sequence[str], cut: int) -> str:
        return _join([_cut_note(cut, "plan"), _code_block(kept, fence, "diff")])

    summary = _clip_head(_bullets(summary_line, cost_line, security_line), limit)
    return CheckRunOutput(title=title, summary=summary, text=_fit_tail(lines, limit, render) if lines else "")


def apply_failed_comment(
    env: str, revision: str, error_text: str, secrets: Iterable[str], *, limit: int = COMMENT_LIMIT
) -> str:
    """A new (not sticky) comment on the merged pull request: the apply failed, with the error output's tail."""
    heading = f"### {_HEADINGS['apply-failed'][0]} `{env}` apply failed at `{short_revision(revision)}`"
    head = _join([marker(env, kind="apply") + "\n" + heading, "The apply after the merge failed."])
    lines = _clean(error_text, tuple(secrets))
    if not lines:
        return head + "\n"
    fence = _fence(lines)

    def render(kept: Sequence[str], cut: int) -> str:
        return _join([head, _cut_note(cut, "output"), _code_block(kept, fence, "")]) + "\n"

    return _fit_tail(lines, limit, render)


def locked_comment(env: str, holder: int | str) -> str:
    """The sticky comment's body while another pull request (``holder``: its number, or a description) holds the
    environment's lock."""
    holder_text = f"#{holder}" if isinstance(holder, int) else holder
    heading = f"### {_HEADINGS['locked'][0]} `{env}` locked"
    message = f"{holder_text} holds the lock on `{env}`: this pull request cannot plan or apply it until it is free."
    return _join([marker(env) + "\n" + heading, message]) + "\n"


def _clean(text: str, secrets: Sequence[str]) -> list[str]:
    """Engine output as lines: newlines normalised, colours stripped, secrets redacted, no blank ends."""
    cleaned = redaction.redact(_ANSI.sub("", text.replace("\r\n", "\n")), secrets).strip("\n")
    return cleaned.split("\n") if cleaned.strip() else []


def _plan_lines(plan_text: str, secrets: Sequence[str]) -> list[str]:
    return [_diff_line(line) for line in _clean(plan_text, secrets)]


def _fence(lines: Sequence[str]) -> str:
    """A backtick fence longer than any backtick run in the text, so no line of it can close the block."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _code_block(lines: Sequence[str], fence: str, info: str) -> str:
    return f"{fence}{info}\n" + "".join(f"{line}\n" for line in lines) + fence


def _cut_note(cut: int, what: str) -> str:
    if not cut:
        return ""
    return (
        f"⚠️ **{cut:,} lines cut** from the start of the {what} to fit GitHub's size limit; "
        "its end, with the errors and the summary, is kept."
    )


def _fit_tail(lines: Sequence[str], limit: int, render: Callable[[Sequence[str], int], str]) -> str:
    """``render(kept, cut)`` with as many of the last lines as fit in ``limit``."""
    capacity = _check_room(limit - _size(render([], len(lines))), limit)
    clipped = [_clip_line(line, min(LINE_LIMIT, capacity) - 1) for line in lines]
    (kept,), cut = _fill_backward(clipped, [capacity])
    return render(kept, cut)


def _fill_forward(lines: Sequence[str], capacities: Sequence[int]) -> list[Sequence[str]] | None:
    """Lines dealt in order into parts of these capacities, or None when they do not all fit."""
    chunks: list[Sequence[str]] = []
    start = 0
    for capacity in capacities:
        end = _take_forward(lines, start, capacity)
        chunks.append(lines[start:end])
        start = end
    return chunks if start == len(lines) else None


def _fill_backward(lines: Sequence[str], capacities: Sequence[int]) -> tuple[list[Sequence[str]], int]:
    """The longest tail of lines dealt into parts of these capacities, and how many lines before it are left out."""
    chunks: list[Sequence[str]] = []
    end = len(lines)
    for capacity in reversed(capacities):
        start = _take_backward(lines, end, capacity)
        chunks.append(lines[start:end])
        end = start
    chunks.reverse()
    return chunks, end


def _take_forward(lines: Sequence[str], start: int, capacity: int) -> int:
    """The end of the run of lines from ``start`` that fits ``capacity`` bytes, newlines included."""
    end, used = start, 0
    while end < len(lines) and used + _size(lines[end]) + 1 <= capacity:
        used += _size(lines[end]) + 1
        end += 1
    return end


def _take_backward(lines: Sequence[str], end: int, capacity: int) -> int:
    """The start of the run of lines ending before ``end`` that fits ``capacity`` bytes, newlines included."""
    start, used = end, 0
    while start > 0 and used + _size(lines[start - 1]) + 1 <= capacity:
        used += _size(lines[start - 1]) + 1
        start -= 1
    return start


def _check_room(capacity: int, limit: int) -> int:
    """``capacity``, when it holds at least a shortened line; a smaller one means ``limit`` is unusable."""
    if capacity < _MIN_ROOM:
        raise ValueError(f"a size limit of {limit} bytes leaves {capacity} bytes for the text, too few")
    return capacity


def _clip_line(line: str, max_bytes: int) -> str:
    if _size(line) <= max_bytes:
        return line
    room = max_bytes - _size(f" … ({len(line):,} characters cut)")
    kept = line.encode()[:room].decode(errors="ignore")
    return f"{kept} … ({len(line) - len(kept):,} characters cut)"


def _clip_head(text: str, max_bytes: int) -> str:
    """``text`` cut at a line boundary to fit ``max_bytes``, keeping its start and saying how much went."""
    if _size(text) <= max_bytes:
        return text
    lines = text.split("\n")
    end = _take_forward(lines, 0, max_bytes - _size(f"… ({len(lines):,} more lines cut)"))
    return "\n".join([*lines[:end], f"… ({len(lines) - end:,} more lines cut)"])


def _join(sections: Iterable[str], separator: str = "\n\n") -> str:
    return separator.join(section for section in sections if section)


def _size(text: str) -> int:
    return len(text.encode())
