"""The API reference generator, the committed reference, the quickstart manifests and the user docs' facts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from chkmate import API_VERSION, settings
from chkmate.api import base, docgen, kinds, links
from chkmate.api import conditions as conds
from chkmate.controllers import connections, environments, plans, reconciling, repositories, runners, templates
from chkmate.controllers import links as link_controller
from chkmate.domain import sync

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
QUICKSTART = ROOT / "examples" / "quickstart"
MY_PAGES = ("index", "install", "quickstart", "sync", "approvals", "security-model", "upgrading")
# Pages the guides link to that other work writes (issue 8's docs list); a link to one is expected to fail
# (xfail) until it exists, and any other broken link fails.
WRITTEN_ELSEWHERE = frozenset({"drift.md", "pull-requests.md"})

# --- the committed reference ----------------------------------------------------------------------------------


def test_committed_reference_is_current() -> None:
    assert docgen.check_reference(kinds.KINDS, docgen.DEFAULT_OUT) == [], (
        "docs/reference.md is stale: run `python -m chkmate.api.docgen`"
    )


def test_a_changed_model_makes_the_reference_stale(tmp_path: Path) -> None:
    out = tmp_path / "reference.md"
    assert docgen.write_reference(kinds.KINDS, out) is True
    assert docgen.write_reference(kinds.KINDS, out) is False  # unchanged: not rewritten
    assert docgen.check_reference(kinds.KINDS, out) == []

    changed_spec = pydantic.create_model(
        "TemplateRepoLinkSpec",
        __base__=links.TemplateRepoLinkSpec,
        commitMessagePrefix=(str, pydantic.Field(default="", description="A field added without regenerating.")),
    )
    changed = tuple(
        dataclasses.replace(info, spec_model=changed_spec) if info is kinds.TEMPLATE_REPO_LINK else info
        for info in kinds.KINDS
    )
    assert docgen.check_reference(changed, out) == [f"{out}: stale"]
    assert "`spec.commitMessagePrefix`" in docgen.render_reference(changed)
    assert docgen.check_reference(kinds.KINDS, tmp_path / "missing.md") == [f"{tmp_path / 'missing.md'}: missing"]


def test_main_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "docs" / "reference.md"
    assert docgen.main(["--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docgen.main(["--out", str(out)]) == 0
    assert docgen.main(["--check", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith(docgen.HEADER)


def test_rendering_is_deterministic() -> None:
    assert docgen.render_reference(kinds.KINDS) == docgen.render_reference(kinds.KINDS)


# --- field tables -------------------------------------------------------------------------------------------


class Inner(base.Model):
    """An inner value."""

    size: int = pydantic.Field(default=3, ge=1, le=9, description="How big.")


class Toy(base.Model):
    """A toy spec."""

    name: str = pydantic.Field(pattern=r"^(a|b)$", description="The name")
    mode: str | None = pydantic.Field(default=None, max_length=5, description="A mode.")
    choice: links.SyncDirection = pydantic.Field(default="Push", description="Which way.")
    inner: Inner = pydantic.Field(default_factory=Inner, description="Nested.")
    items: tuple[Inner, ...] = pydantic.Field(default=(), description="Listed.")
    labels: dict[str, str] = pydantic.Field(default_factory=dict, description="A map.")
    extra: dict[str, Any] | None = pydantic.Field(default=None, description="Free-form.")
    globs: tuple[str, ...] = pydantic.Field(default=(), description="Globs.")


class ToyStatus(base.Status):
    conditions: tuple[conds.Condition, ...] = pydantic.Field(default=(), description="Conditions.")


def test_field_rows_expand_nested_models_with_dotted_paths() -> None:
    rows = {row.path: row for row in docgen.field_docs("Toy", "spec", Toy)}
    assert list(rows) == [
        "spec.name",
        "spec.mode",
        "spec.choice",
        "spec.inner",
        "spec.inner.size",
        "spec.items",
        "spec.items[].size",
        "spec.labels",
        "spec.extra",
        "spec.globs",
    ]
    assert rows["spec.name"] == docgen.FieldDoc("spec.name", "string", "required", "The name. Pattern `^(a|b)$`.")
    assert rows["spec.mode"].default == docgen.NONE
    assert rows["spec.mode"].description == "A mode. Length at most 5."
    assert rows["spec.choice"].type == "enum: `Push`, `Pull`, `Bidirectional`"
    assert rows["spec.choice"].default == '`"Push"`'
    assert (rows["spec.inner"].type, rows["spec.inner"].default) == ("object", '`{"size": 3}`')
    assert rows["spec.inner.size"].description == "How big. Minimum 1. Maximum 9."
    assert (rows["spec.items"].type, rows["spec.items"].default) == ("[]object", "`[]`")
    assert (rows["spec.labels"].type, rows["spec.labels"].default) == ("map[string]string", "`{}`")
    assert rows["spec.extra"].type == "object (any keys)"
    assert rows["spec.globs"].type == "[]string"


def test_conditions_are_not_expanded_in_each_kind_but_linked() -> None:
    (row,) = docgen.field_docs("Toy", "status", ToyStatus)
    assert row.path == "status.conditions"
    assert "[Conditions](#conditions)" in row.description


def test_pipes_in_patterns_are_escaped_in_tables() -> None:
    rendered = docgen.render_reference(kinds.KINDS)
    assert r"(ms\|s\|m\|h)" in rendered
    for line in rendered.splitlines():
        if line.startswith("| `spec.") or line.startswith("| `status."):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5, line  # four cells, no stray separators


def test_field_notes_name_real_fields() -> None:
    for (kind, path), _note in docgen.FIELD_NOTES.items():
        info = kinds.BY_KIND[kind]
        section, model = ("spec", info.spec_model) if path.startswith("spec.") else ("status", info.status_model)
        assert path in {row.path for row in docgen.field_docs(kind, section, model)}, (kind, path)


# --- conditions and rules -----------------------------------------------------------------------------------


def _constants(holder: object) -> set[str]:
    return {value for name, value in vars(holder).items() if name.isupper() and isinstance(value, str)}


def test_every_condition_type_and_reason_is_documented() -> None:
    docs = [*docgen.COMMON_CONDITIONS, *(doc for docs in docgen.KIND_CONDITIONS.values() for doc in docs)]
    assert {doc.type for doc in docs} == _constants(conds.Types)
    assert {reason for doc in docs for reason in doc.reasons} >= _constants(conds.Reasons)


def test_documented_reasons_exist() -> None:
    sync_reasons = _constants(sync)
    known = _constants(conds.Reasons) | sync_reasons
    assert set(docgen.SYNC_ONLY_REASONS) <= sync_reasons
    for kind, docs in docgen.KIND_CONDITIONS.items():
        for doc in docs:
            assert set(doc.reasons) <= known, (kind, doc.type, set(doc.reasons) - known)


def test_runner_job_failures_are_documented_on_the_plan() -> None:
    documented = {doc.type: set(doc.reasons) for doc in docgen.KIND_CONDITIONS["Plan"]}
    for error in (runners.RunFailed, runners.RunTimedOut):
        assert error.reason in documented[conds.Types.PLANNED] & documented[conds.Types.APPLIED], error
    assert docgen.FIELD_NOTES.get(("Environment", "spec.runner.mode")) is None  # the Job runner is built


@pytest.mark.parametrize(
    "reconciler",
    [
        connections.RECONCILER,
        repositories.RECONCILER,
        templates.RECONCILER,
        link_controller.RECONCILER,
        environments.RECONCILER,
        plans.RECONCILER,
    ],
    ids=lambda reconciler: reconciler.info.kind,
)
def test_conditions_ready_depends_on_are_documented(reconciler: reconciling.Reconciler[Any, Any]) -> None:
    documented = {doc.type for doc in docgen.KIND_CONDITIONS[reconciler.info.kind]}
    assert set(reconciler.depends_on) <= documented
    assert conds.Types.READY in documented


INVALID_SPECS: dict[str, list[dict[str, Any]]] = {
    "GitHubConnection": [
        {},
        {"privateKeySecretRef": {"name": "s", "key": "k"}, "appId": 1},
        {"tokenSecretRef": {"name": "s", "key": "k"}, "appId": 1},
    ],
    "GitHubRepository": [
        {"connectionRef": {"name": "c"}, "owner": "o", "name": "r", "scaffold": {}},
        {"connectionRef": {"name": "c"}, "owner": "o", "name": "r.git"},
    ],
    "Template": [{"files": {"../main.tf": ""}}],
    "TemplateRepoLink": [
        {"templateRef": {"name": "t"}, "repositoryRef": {"name": "r"}, "syncDirection": "Pull", "autoSync": True},
        {"templateRef": {"name": "t"}, "repositoryRef": {"name": "r"}, "path": "a/../b"},
    ],
    "Environment": [
        {},
        {"repositoryRef": {"name": "r"}, "path": "/abs"},
        {"repositoryRef": {"name": "r"}, "vars": {"1bad": "x"}},
        {"repositoryRef": {"name": "r"}, "approval": {"mode": "manual", "requiredApprovals": 2}},
        {"repositoryRef": {"name": "r"}, "runner": {"podTemplate": {}}},
    ],
    "Plan": [],
}


@pytest.mark.parametrize("kind", list(kinds.BY_KIND))
def test_each_documented_rule_across_fields_is_enforced(kind: str) -> None:
    assert len(INVALID_SPECS[kind]) == len(docgen.RULES[kind])
    for spec in INVALID_SPECS[kind]:
        with pytest.raises(pydantic.ValidationError):
            kinds.BY_KIND[kind].spec_model.model_validate(spec)


# --- the quickstart manifests -------------------------------------------------------------------------------


def quickstart_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(QUICKSTART.glob("*.yaml")):
        for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if document:
                found.append((f"{path.name}#{index}", document))
    return found


def ours() -> list[tuple[str, dict[str, Any]]]:
    return [(where, document) for where, document in quickstart_documents() if document["apiVersion"] == API_VERSION]


@pytest.mark.parametrize(("where", "document"), ours(), ids=[where for where, _ in ours()])
def test_quickstart_manifest_parses(where: str, document: dict[str, Any]) -> None:
    info = kinds.BY_KIND[document["kind"]]
    reconciling.parse_spec(info.spec_model, document["spec"])
    assert document["metadata"]["name"] and document["metadata"]["namespace"] == "default"


def test_quickstart_is_a_complete_set_whose_references_resolve() -> None:
    documents = [document for _, document in quickstart_documents()]
    assert [document["kind"] for document in documents] == [
        "Secret",
        "GitHubConnection",
        "GitHubRepository",
        "Template",
        "TemplateRepoLink",
        "Environment",
    ]
    names = {(document["kind"], document["metadata"]["name"]): document for document in documents}
    specs = {document["kind"]: document["spec"] for document in documents if "spec" in document}
    token = specs["GitHubConnection"]["tokenSecretRef"]
    assert token["key"] in names[("Secret", token["name"])]["stringData"]
    assert ("GitHubConnection", specs["GitHubRepository"]["connectionRef"]["name"]) in names
    assert ("Template", specs["TemplateRepoLink"]["templateRef"]["name"]) in names
    assert ("GitHubRepository", specs["TemplateRepoLink"]["repositoryRef"]["name"]) in names
    assert ("TemplateRepoLink", specs["Environment"]["linkRef"]["name"]) in names
    repository = specs["GitHubRepository"]
    assert specs["GitHubConnection"]["allowedRepositories"] == [f"{repository['owner']}/{repository['name']}"]
    assert repository["create"] is True and repository["scaffold"] == {"purpose": "terraform"}


def test_quickstart_secret_is_a_placeholder() -> None:
    (secret,) = [document for _, document in quickstart_documents() if document["kind"] == "Secret"]
    assert all(value.startswith("REPLACE-WITH-") for value in secret["stringData"].values())


# --- the user docs ------------------------------------------------------------------------------------------


def test_every_setting_is_documented_in_install() -> None:
    text = (DOCS / "install.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(settings.Settings):
        assert f"`{settings.PREFIX}{field.name.upper()}`" in text, field.name


@pytest.mark.parametrize("page", MY_PAGES)
def test_relative_links_of_the_guides_resolve(page: str) -> None:
    path = DOCS / f"{page}.md"
    links = re.findall(r"\]\(([^)#\s]+)(?:#([^)]*))?\)", path.read_text(encoding="utf-8"))
    missing = {target for target, _ in links if "://" not in target and not (path.parent / target).exists()}
    assert missing <= WRITTEN_ELSEWHERE, f"{page}.md links to {sorted(missing)}, which do not exist"
    for target, anchor in links:
        if anchor and target.endswith(".md") and target not in missing:
            assert anchor in _anchors(path.parent / target), f"{page}.md links to {target}#{anchor}: no such heading"
    if missing:
        pytest.xfail(f"{page}.md links to {sorted(missing)}, not written yet")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    titles = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in titles}
