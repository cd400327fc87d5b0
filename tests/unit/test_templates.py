"""Template revisions, checks and the version list."""

import datetime

import pytest

from chkmate.api import conditions as conds
from chkmate.api import templates
from chkmate.domain import hcl
from chkmate.domain import templates as logic

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
MAIN = 'resource "terraform_data" "x" {\n  input = "a"\n}\n'


def test_revision_is_stable_across_order_and_changes_with_content_and_names() -> None:
    a = logic.revision({"main.tf": MAIN, "variables.tf": ""})
    assert a == logic.revision({"variables.tf": "", "main.tf": MAIN})
    assert a.startswith("sha256:") and len(a) == len("sha256:") + 64
    assert a != logic.revision({"main.tf": MAIN + " ", "variables.tf": ""})
    assert a != logic.revision({"main2.tf": MAIN, "variables.tf": ""})


def test_revision_has_no_ambiguous_concatenation() -> None:
    assert logic.revision({"a": "bc"}) != logic.revision({"ab": "c"})
    assert logic.revision({"a": "b", "c": "d"}) != logic.revision({"a": "b\0c\0d"})


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"main.tf": MAIN}, None),
        ({"README.md": "not { hcl"}, None),
        ({"main.tf": 'resource "a" "b" {\n  x = \n}\n'}, (conds.Reasons.INVALID_HCL, "main.tf:2")),
        ({"ok.tf": MAIN, "z.tf.json": "{nope"}, (conds.Reasons.INVALID_HCL, "z.tf.json:1")),
        ({"main.tf": "\ufeff" + MAIN}, None),
        ({"main.tf": "x" * 100}, (conds.Reasons.TOO_LARGE, "limit is 64 bytes")),
    ],
)
def test_problems(files: dict[str, str], expected: tuple[str, str] | None) -> None:
    found = logic.problems(files, max_bytes=64 if "x" * 100 in files.values() else templates.MAX_TEMPLATE_BYTES)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == expected[0]
        assert expected[1] in found[1]


def test_problems_reports_how_many_more_errors() -> None:
    found = logic.problems({"a.tf": "x = ", "b.tf": "y = "})
    assert found is not None and found[1].startswith("a.tf:") and "(and 1 more)" in found[1]


def test_hcl_parse_gives_the_classic_shape() -> None:
    assert hcl.parse('resource "aws_s3_bucket" "b" { bucket = "x" }') == {
        "resource": [{"aws_s3_bucket": {"b": {"bucket": "x"}}}]
    }


def test_record_version_prepends_once_and_caps() -> None:
    one = logic.record_version((), revision="sha256:1", source="user", now=NOW)
    assert [v.revision for v in one] == ["sha256:1"]
    assert logic.record_version(one, revision="sha256:1", source="user", now=NOW) == one
    many = one
    for i in range(2, 30):
        many = logic.record_version(many, revision=f"sha256:{i}", source="github-sync", commit="c" * 40, now=NOW)
    assert len(many) == templates.MAX_VERSIONS
    assert many[0].revision == "sha256:29" and many[0].source == "github-sync"
