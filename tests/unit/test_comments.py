"""Pull request comments and check-run output: markers, diff highlighting, layout, redaction and size limits."""

import re

import pytest

from chkmate.domain import comments, redaction

REVISION = "main@sha1:" + "0123456789abcdef" * 2 + "01234567"
PLAN = """\
Terraform will perform the following actions:

  # terraform_data.web will be created
  + resource "terraform_data" "web" {
      + input  = "hunter2-secret"
      ~ tags   = {
          - "a" = "b" -> null
        }
    }

-/+ resource "terraform_data" "db" {
    }

Plan: 2 to add, 1 to change, 1 to destroy."""
FENCE = re.compile(r"^(`{3,})(diff)?$")


def plan_lines(body: str) -> list[str]:
    """The lines inside the body's one code block."""
    lines = body.split("\n")
    fences = [i for i, line in enumerate(lines) if FENCE.match(line)]
    return lines[fences[0] + 1 : fences[-1]]


def assert_well_formed(body: str, limit: int = comments.COMMENT_LIMIT) -> None:
    assert len(body.encode()) <= limit
    fences = [FENCE.match(line) for line in body.split("\n") if FENCE.match(line)]
    assert [f[2] for f in fences if f] == ["diff", None]  # one block, opened and closed
    opening, closing = fences
    assert opening and closing and opening[1] == closing[1]
    assert body.count("<details") == body.count("</details>") == 1


def big_plan(lines: int) -> tuple[str, list[str]]:
    """A plan of ``lines`` attribute lines (~100 bytes each) and its summary, with its expected diff lines."""
    body = [f'      + attribute_{i:06d} = "{i:06d} ' + "x" * 70 + '"' for i in range(lines)]
    body.append("Plan: 1 to add, 0 to change, 0 to destroy.")
    return "\n".join(body), [comments.to_diff(line) for line in body]


@pytest.mark.parametrize("env", ["prod", "team-a/prod.eu_1", "a"])
@pytest.mark.parametrize("part", [1, 2, 12])
def test_marker_round_trip(env: str, part: int) -> None:
    body = comments.marker(env, part=part) + "\n### anything\n"
    assert comments.find_marker(body) == env
    assert comments.find_part(body) == part
    assert comments.find_marker(body, kind="apply") is None
    assert comments.find_marker(comments.marker(env, kind="apply")) is None
    assert comments.find_marker(comments.marker(env, kind="apply"), kind="apply") == env


def test_marker_shape_and_what_is_not_a_marker() -> None:
    assert comments.marker("prod") == "<!-- chkmate:plan env=prod -->"
    assert comments.marker("prod", part=2) == "<!-- chkmate:plan env=prod part=2 -->"
    assert comments.find_marker("LGTM") is None and comments.find_part("LGTM") is None
    assert comments.find_marker("> quoted\n<!-- chkmate:plan env=prod -->") is None  # only the opening line counts
    for bad in ["", "prod -->", "pr od", "-prod", "prod`"]:
        with pytest.raises(ValueError):
            comments.marker(bad)


def test_short_revision_and_check_run_name() -> None:
    assert comments.short_revision(REVISION) == "0123456"
    assert comments.short_revision("abcdef0123456789") == "abcdef0"
    assert comments.short_revision("v1.2") == "v1.2"
    assert comments.check_run_name("prod") == "chkmate/prod"


def test_plan_text_becomes_diff_highlighted() -> None:
    assert comments.to_diff(PLAN).split("\n")[2:11] == [
        "  # terraform_data.web will be created",
        '+   resource "terraform_data" "web" {',
        '+       input  = "hunter2-secret"',
        "!       tags   = {",
        '-           "a" = "b" -> null',
        "        }",
        "    }",
        "",
        '-/+ resource "terraform_data" "db" {',
    ]
    assert comments.to_diff("  +/- resource x\n      -\n  ~~not a sign") == "+/-   resource x\n-      \n  ~~not a sign"


def test_plan_comment_golden() -> None:
    bodies = comments.plan_comment(
        "prod",
        REVISION,
        "2 to add, 1 to change, 1 to destroy.",
        "+$12.00/month (total $40.00)",
        "92/100 (1 medium)",
        PLAN,
        status="planned",
        secrets=["hunter2-secret"],
        footer="Comment `/chkmate apply` to apply.",
    )
    assert bodies == [
        """\
<!-- chkmate:plan env=prod -->
### ✅ `prod` planned at `0123456`

- **Plan:** 2 to add, 1 to change, 1 to destroy.
- **Cost:** +$12.00/month (total $40.00)
- **Security:** 92/100 (1 medium)

<details><summary>Show plan</summary>

```diff
Terraform will perform the following actions:

  # terraform_data.web will be created
+   resource "terraform_data" "web" {
+       input  = "(redacted)"
!       tags   = {
-           "a" = "b" -> null
        }
    }

-/+ resource "terraform_data" "db" {
    }

Plan: 2 to add, 1 to change, 1 to destroy.
```

</details>

Comment `/chkmate apply` to apply.
"""
    ]


def test_failed_plan_shows_its_errors_unfolded_with_details_redacted() -> None:
    (body,) = comments.plan_comment(
        "prod",
        "abcdef0123",
        "",
        "",
        "",
        "\x1b[31mError:\x1b[0m invalid token ghp_" + "x" * 36 + "\r\nsecond line",
        status="failed",
        secrets=["swordfish"],
        details="The password swordfish was refused.",
    )
    assert body == (
        "<!-- chkmate:plan env=prod -->\n### ❌ `prod` plan failed at `abcdef0`\n\n"
        "The password (redacted) was refused.\n\n<details open><summary>Show plan</summary>\n\n"
        "```diff\nError: invalid token (redacted)\nsecond line\n```\n\n</details>\n"
    )


@pytest.mark.parametrize(
    ("status", "heading"),
    [
        ("applied", "### 🚀 `prod` applied at `0123456`"),
        ("apply-failed", "### ❌ `prod` apply failed at `0123456`"),
        ("locked", "### 🔒 `prod` locked at `0123456`"),
    ],
)
def test_statuses_without_plan_text_have_no_fold(status: comments.Status, heading: str) -> None:
    (body,) = comments.plan_comment("prod", REVISION, "No changes.", "", "", "\n\n", status=status, secrets=())
    assert body == f"<!-- chkmate:plan env=prod -->\n{heading}\n\n- **Plan:** No changes.\n"


def test_fence_outgrows_backticks_in_the_plan_text() -> None:
    text = "  + readme = <<EOT\n```hcl\nx = 1\n````\nEOT"
    (body,) = comments.plan_comment("prod", REVISION, "", "", "", text, status="planned", secrets=())
    assert "`````diff\n" in body and "\n`````\n" in body
    assert plan_lines(body) == ["+   readme = <<EOT", "```hcl", "x = 1", "````", "EOT"]


def test_a_200_kb_plan_is_split_in_three_parts_keeping_its_tail_and_counting_the_cut() -> None:
    text, expected = big_plan(2_000)
    assert len(text) > 200_000
    bodies = comments.plan_comment(
        "prod", REVISION, "1 to add", "", "", text, status="planned", secrets=(), footer="footer line"
    )
    assert len(bodies) == comments.MAX_PARTS
    for number, body in enumerate(bodies, 1):
        assert_well_formed(body)
        assert comments.find_marker(body) == "prod" and comments.find_part(body) == number
        assert f"Show plan (part {number}/3)" in body
    kept = [line for body in bodies for line in plan_lines(body)]
    cut = int(re.search(r"\*\*([0-9,]+) lines cut\*\*", bodies[0])[1].replace(",", ""))  # type: ignore[index]
    assert cut > 0 and cut + len(kept) == len(expected)
    assert kept == expected[cut:]  # the tail, in order, nothing lost in between
    assert bodies[-1].endswith("Plan: 1 to add, 0 to change, 0 to destroy.\n```\n\n</details>\n")
    assert bodies[0].index("- **Plan:** 1 to add") < bodies[0].index("lines cut") < bodies[0].index("footer line")
    assert "footer line" not in bodies[1] + bodies[2]


def test_a_plan_too_long_for_one_comment_but_not_for_three_is_split_whole() -> None:
    text, expected = big_plan(900)
    bodies = comments.plan_comment("prod", REVISION, "s", "", "", text, status="planned", secrets=())
    assert len(bodies) == 2
    for body in bodies:
        assert_well_formed(body)
        assert "lines cut" not in body
    assert [line for body in bodies for line in plan_lines(body)] == expected


def test_small_limit_split_golden() -> None:
    text = "\n".join(f"  + line {i}" for i in range(1, 13))
    bodies = comments.plan_comment("dev", "abcdef0", "12 to add", "", "", text, status="planned", secrets=(), limit=250)
    assert bodies == [
        "<!-- chkmate:plan env=dev -->\n### ✅ `dev` planned at `abcdef0`\n\n- **Plan:** 12 to add\n\n"
        "<details><summary>Show plan (part 1/2)</summary>\n\n```diff\n"
        "+   line 1\n+   line 2\n+   line 3\n+   line 4\n+   line 5\n+   line 6\n+   line 7\n```\n\n</details>\n",
        "<!-- chkmate:plan env=dev part=2 -->\n### ✅ `dev` planned at `abcdef0`, part 2/2\n\n"
        "<details><summary>Show plan (part 2/2)</summary>\n\n```diff\n"
        "+   line 8\n+   line 9\n+   line 10\n+   line 11\n+   line 12\n```\n\n</details>\n",
    ]
    for body in bodies:
        assert_well_formed(body, limit=250)


def test_a_limit_too_small_for_any_plan_text_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        comments.plan_comment("dev", "abcdef0", "", "", "", "  + x", status="planned", secrets=(), limit=150)


def test_small_limit_with_one_part_keeps_the_tail() -> None:
    text = "\n".join(f"line {i}" for i in range(1, 40)) + "\nPlan: 1 to add."
    (body,) = comments.plan_comment(
        "dev", "abcdef0", "", "", "", text, status="planned", secrets=(), limit=400, max_parts=1
    )
    assert_well_formed(body, limit=400)
    cut = int(re.search(r"\*\*([0-9,]+) lines cut\*\*", body)[1])  # type: ignore[index]
    assert plan_lines(body) == [*(f"line {i}" for i in range(cut + 1, 40)), "Plan: 1 to add."]


def test_an_enormous_line_is_shortened_in_place() -> None:
    text = '  + policy = "' + "p" * 100_000 + '"\nPlan: 1 to add.'
    (body,) = comments.plan_comment("prod", REVISION, "", "", "", text, status="planned", secrets=())
    assert_well_formed(body)
    first, last = plan_lines(body)
    assert len(first) < comments.LINE_LIMIT and re.search(r" … \([0-9,]+ characters cut\)$", first)
    assert last == "Plan: 1 to add."


def test_check_run_output_golden_and_limits() -> None:
    output = comments.check_run_output("prod", "1 to add", "+$3.00/month", "", "  + a\n  ~ b", secrets=())
    assert output == {
        "title": "1 to add",
        "summary": "- **Plan:** 1 to add\n- **Cost:** +$3.00/month",
        "text": "```diff\n+   a\n!   b\n```",
    }
    assert comments.check_run_output("prod", "", "", "", "", secrets=())["title"] == "chkmate/prod"

    text, _ = big_plan(2_000)
    output = comments.check_run_output(
        "prod", "x" * 500, "", "92/100", text + "\ntoken hunter2-secret", secrets=["hunter2-secret"]
    )
    assert len(output["title"]) == comments.CHECK_RUN_TITLE_LIMIT
    assert len(output["text"].encode()) <= comments.CHECK_RUN_LIMIT
    assert output["text"].endswith("Plan: 1 to add, 0 to change, 0 to destroy.\ntoken (redacted)\n```")
    assert re.match(r"⚠️ \*\*[0-9,]+ lines cut\*\*", output["text"])


def test_apply_failed_comment_keeps_the_end_of_the_error_redacted() -> None:
    body = comments.apply_failed_comment("prod", REVISION, "Error: creating x\n  - with pass=swordfish", ["swordfish"])
    assert body == (
        "<!-- chkmate:apply env=prod -->\n### ❌ `prod` apply failed at `0123456`\n\n"
        "The apply after the merge failed.\n\n```\nError: creating x\n  - with pass=(redacted)\n```\n"
    )
    assert comments.find_marker(body) is None and comments.find_marker(body, kind="apply") == "prod"

    long_error = "\n".join(f"log line {i}" for i in range(20_000)) + "\nError: the real cause"
    body = comments.apply_failed_comment("prod", REVISION, long_error, [])
    assert len(body.encode()) <= comments.COMMENT_LIMIT
    assert (
        body.endswith("log line 19999\nError: the real cause\n```\n")
        and "lines cut** from the start of the output" in body
    )


def test_locked_comment_is_the_sticky_comment_naming_the_holder() -> None:
    assert comments.locked_comment("prod", 12) == (
        "<!-- chkmate:plan env=prod -->\n### 🔒 `prod` locked\n\n"
        "#12 holds the lock on `prod`: this pull request cannot plan or apply it until it is free.\n"
    )
    assert "octo/infra#7 holds" in comments.locked_comment("prod", "octo/infra#7")
    assert comments.find_marker(comments.locked_comment("prod", 12)) == "prod"


def test_every_piece_of_engine_text_passes_through_redaction() -> None:
    secret = "correct-horse-battery"
    (body,) = comments.plan_comment(
        "prod", REVISION, "", "", "", f"+ v = {secret}", status="planned", secrets=[secret], details=f"d {secret}"
    )
    output = comments.check_run_output("prod", "", "", "", f"v = {secret}", secrets=[secret])
    failed = comments.apply_failed_comment("prod", REVISION, secret, [secret])
    for text in (body, output["text"], failed):
        assert secret not in text and redaction.REDACTED in text
