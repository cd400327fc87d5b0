"""The ``chkmate`` CLI's pure parts: choosing environments and engines, rendering plans, the workflow, badges,
import's root discovery and manifests. Goldens live in tests/data/cli; ``CHKMATE_UPDATE_GOLDEN=1`` rewrites them.

Plans here use the builtin engine on files read from examples/infra-repo (no subprocess); the commands
themselves, with git and the real terraform, are tested in tests/operator/test_cli.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from chkmate import API_VERSION, cli, cli_import, cli_render, cli_sources, cli_workflow, local
from chkmate.api import kinds, repoconfig
from chkmate.domain import builtin, comments, plans

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "infra-repo"
GOLDEN = ROOT / "tests" / "data" / "cli"
VERSION_PLACEHOLDER = "<builtin-version>"


def example_source() -> cli_sources.Source:
    files = {p.relative_to(EXAMPLE).as_posix(): p.read_bytes() for p in sorted(EXAMPLE.rglob("*")) if p.is_file()}
    return cli_sources.Source("examples/infra-repo", files)


def example_config() -> repoconfig.RepoConfig:
    return repoconfig.parse((EXAMPLE / ".chkmate.yml").read_text())


def builtin_plan(env: str, state: bytes | None = None, **variables: str) -> local.LocalPlan:
    config = example_config()
    target = local.Target(env, config.environments[env], "chosen with --env")
    run = local.Run(local.EngineChoice("builtin"), {**config.environments[env].vars, **variables}, state=state)
    return asyncio.run(local.plan(example_source(), target, run, local.Progress(False)))


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CHKMATE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text(), f"{name} changed; rerun with CHKMATE_UPDATE_GOLDEN=1 if that is intended"


# ---- environments, variables, engines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "branch", "expected", "reason"),
    [
        ("staging", None, "staging", "chosen with --env"),
        ("staging", "main", "staging", "chosen with --env"),
        (None, "staging", "staging", "deploys branch staging"),
    ],
)
def test_an_environment_is_picked_by_name_then_by_branch(
    name: str | None, branch: str | None, expected: str, reason: str
) -> None:
    target = local.pick_environment(example_config(), name=name, branch=branch)
    assert (target.name, target.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("name", "branch", "message"),
    [
        ("nope", None, "no environment 'nope' in .chkmate.yml (known: production, sandbox, staging)"),
        (None, "main", "2 environments deploy branch main; pick one with --env (production, sandbox)"),
        (None, "feature", "no environment chosen; pick one with --env (production, sandbox, staging)"),
        (None, None, "no environment chosen; pick one with --env (production, sandbox, staging)"),
    ],
)
def test_an_ambiguous_or_unknown_environment_is_refused(name: str | None, branch: str | None, message: str) -> None:
    with pytest.raises(local.LocalError) as raised:
        local.pick_environment(example_config(), name=name, branch=branch)
    assert raised.value.message == message


def test_the_only_environment_is_picked_whatever_the_branch() -> None:
    config = repoconfig.parse("version: 1\nenvironments:\n  prod: {branch: main}\n")
    assert local.pick_environment(config, name=None, branch="feature").name == "prod"


def test_a_folder_without_chkmate_yml_is_one_default_environment() -> None:
    target = local.pick_environment(None, name=None, branch="dev")
    assert (target.name, target.env.path, target.env.branch, target.env.engine) == ("default", ".", "dev", "terraform")
    with pytest.raises(local.LocalError, match=r"no \.chkmate\.yml here"):
        local.pick_environment(None, name="production", branch=None)


def test_vars_are_name_value_pairs_and_later_ones_win() -> None:
    assert local.parse_vars(["a=1", "b=x=y", "a=2", "c="]) == {"a": "2", "b": "x=y", "c": ""}
    for bad in ("novalue", "=v", "1bad=v", "sp ace=v"):
        with pytest.raises(local.LocalError, match="expected NAME=VALUE"):
            local.parse_vars([bad])


@pytest.fixture
def fake_terraform(tmp_path: Path) -> str:
    binary = tmp_path / "terraform"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return str(binary)


def test_engine_is_the_configured_binary_when_present(fake_terraform: str) -> None:
    environ = {"CHKMATE_TERRAFORM_BINARY": fake_terraform}
    assert local.choose_engine(None, "terraform", environ) == local.EngineChoice("terraform", fake_terraform)
    assert local.choose_engine("builtin", "terraform", environ) == local.EngineChoice("builtin")
    assert local.choose_engine(None, "builtin", environ) == local.EngineChoice("builtin")


def test_a_missing_binary_falls_back_to_builtin_unless_asked_for_by_name(tmp_path: Path) -> None:
    environ = {"CHKMATE_TOFU_BINARY": str(tmp_path / "missing-tofu")}
    fallback = local.choose_engine(None, "tofu", environ)
    assert fallback.kind == "builtin"
    assert "tofu is not installed" in fallback.note and "CHKMATE_TOFU_BINARY" in fallback.note
    with pytest.raises(local.LocalError, match=r"the tofu binary .* was not found"):
        local.choose_engine("tofu", "terraform", environ)


def test_work_dir_is_the_setting_or_the_user_cache() -> None:
    assert local.work_dir({"CHKMATE_WORK_DIR": "/w"}) == Path("/w")
    assert local.work_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/chkmate")


# ---- rendering ------------------------------------------------------------------------------------------------


def test_production_plan_of_the_example_has_cost_and_findings() -> None:
    found = builtin_plan("production")
    assert found.exit_code == 2
    assert found.result.summary.line() == "38 to add, 0 to change, 0 to destroy."
    assert found.cost is not None and found.security is not None
    assert cli_render.cost_line(found.cost) == "$593.53 per month (+$593.53); 3 usage-based"
    assert cli_render.security_line(found.security) == "54/100 (1 critical, 2 high, 1 low)"


def test_text_summary_lists_changes_cost_and_findings() -> None:
    text = cli_render.text(builtin_plan("production"))
    assert "  +  aws_db_instance.main" in text and "stacks/web/database.tf:20" in text
    assert "Plan: 38 to add, 0 to change, 0 to destroy." in text
    assert "Cost (eu-west-1 prices, USD): $593.53 per month" in text
    assert "aws_db_instance.main                 $271.73  Multi-AZ" in text
    assert "critical  CHK-SG-001  aws_security_group.bastion  stacks/web/compute.tf:58" in text
    assert "\x1b[" not in text
    assert "\x1b[32m+\x1b[0m" in cli_render.text(builtin_plan("production"), color=True)


def test_a_plan_against_its_own_saved_configuration_has_no_changes() -> None:
    first = builtin_plan("production")
    again = builtin_plan("production", state=first.artifact)
    assert again.exit_code == 0 and not again.result.has_changes
    assert "Plan: No changes." in cli_render.text(again)
    bigger = builtin_plan("production", state=first.artifact, instance_count="4")
    assert bigger.result.summary.add == 2  # the instance and its target group attachment
    assert bigger.cost is not None and str(bigger.cost.delta) == "80.43"


def test_json_document_has_the_documented_keys_and_is_json() -> None:
    document = json.loads(json.dumps(cli_render.document(builtin_plan("production"))))
    assert list(document) == [
        "schemaVersion",
        "kind",
        "environment",
        "source",
        "engine",
        "hasChanges",
        "exitCode",
        "summary",
        "resources",
        "outputs",
        "cost",
        "security",
        "warnings",
        "digest",
    ]
    assert document["schemaVersion"] == cli_render.SCHEMA_VERSION == 1
    assert document["summary"] == {"add": 38, "change": 0, "destroy": 0}
    assert document["cost"]["monthly"] == "593.53" and document["cost"]["region"] == "eu-west-1"
    assert document["security"]["score"] == 54
    assert {"ruleId": "CHK-SG-001", "line": 58}.items() <= document["security"]["findings"][0].items()
    resource = next(r for r in document["resources"] if r["address"] == "aws_db_instance.main")
    assert resource == {
        "address": "aws_db_instance.main",
        "type": "aws_db_instance",
        "name": "main",
        "module": "",
        "action": "create",
        "file": "stacks/web/database.tf",
        "line": 20,
    }


def test_markdown_is_the_sticky_comment_golden() -> None:
    body = cli_render.markdown(builtin_plan("production"))
    assert comments.find_marker(body) == "production"
    golden("production.md", body.replace(builtin.ENGINE_VERSION, VERSION_PLACEHOLDER))


def test_markdown_of_staging_golden() -> None:
    body = cli_render.markdown(builtin_plan("staging"))
    golden("staging.md", body.replace(builtin.ENGINE_VERSION, VERSION_PLACEHOLDER))


def test_markdown_redacts_sensitive_variables() -> None:
    config = repoconfig.parse("version: 1\nenvironments:\n  prod: {branch: main}\n")
    files = {"main.tf": b'variable "db_password" {}\nresource "terraform_data" "x" {\n  input = var.db_password\n}\n'}
    target = local.Target("prod", config.environments["prod"], "the only environment")
    run = local.Run(local.EngineChoice("builtin"), {"db_password": "hunter2-very-secret"})
    found = asyncio.run(local.plan(cli_sources.Source(".", files), target, run, local.Progress(False)))
    assert "hunter2-very-secret" not in cli_render.markdown(found)


@pytest.mark.parametrize(
    ("drifted", "outputs", "line"),
    [
        (0, {}, "No drift: the infrastructure matches the state."),
        (1, {}, "Drift: 1 resource changed outside Terraform."),
        (
            2,
            {"a": "update", "b": "no-op"},
            "Drift: 2 resources changed outside Terraform, 1 output differs from the state.",
        ),
    ],
)
def test_drift_line(drifted: int, outputs: dict[str, plans.Action], line: str) -> None:
    changes = tuple(plans.ResourceChange(f"t.r{i}", "t", f"r{i}", "update") for i in range(drifted))
    assert cli_render.drift_line(plans.PlanResult(changes, outputs)) == line


# ---- workflow and badges --------------------------------------------------------------------------------------


def test_workflow_golden() -> None:
    text = cli_workflow.workflow(example_config(), deploy_branch="main")
    golden("workflow.yml", text)


def test_workflow_plans_pull_requests_and_applies_only_what_can_apply() -> None:
    document = yaml.safe_load(cli_workflow.workflow(example_config(), deploy_branch="main"))
    triggers = document[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers == {"pull_request": {"branches": ["main", "staging"]}, "push": {"branches": ["main"]}}
    assert set(document["jobs"]) == {"plan-production", "plan-staging", "plan-sandbox", "apply-sandbox"}
    apply = document["jobs"]["apply-sandbox"]
    assert apply["environment"] == "sandbox"
    assert apply["steps"][-1]["env"] == {"TF_VAR_owner": "platform-team"}
    plan_steps = {step.get("name"): step for step in document["jobs"]["plan-staging"]["steps"]}
    assert "chkmate plan . --env staging --markdown" in plan_steps["Plan"]["run"]
    assert plan_steps["Comment on the pull request"]["env"]["MARKER"] == comments.marker("staging")
    assert document["jobs"]["plan-staging"]["if"].endswith("github.base_ref == 'staging'")


def test_workflow_without_anything_to_do_is_refused() -> None:
    config = repoconfig.parse(
        "version: 1\nenvironments:\n  p: {branch: main, engine: builtin, planOnPullRequest: false}\n"
    )
    with pytest.raises(local.LocalError, match="nothing to write"):
        cli_workflow.workflow(config, deploy_branch="main")


def test_badges_carry_score_and_cost_or_say_unknown() -> None:
    block = cli_workflow.badges({"production": builtin_plan("production"), "broken": "no value for variable x"})
    assert "https://img.shields.io/badge/production%20security-54%2F100-orange" in block
    assert "https://img.shields.io/badge/production%20cost-%24593.53%2Fmonth-blue" in block
    assert "https://img.shields.io/badge/broken%20security-unknown-lightgrey" in block
    assert '"no value for variable x"' in block


@pytest.mark.parametrize(
    ("label", "segment"), [("a-b c_d", "a--b%20c__d"), ("$1.00/month", "%241.00%2Fmonth"), ("54/100", "54%2F100")]
)
def test_badge_segments_escape_shields_io_specials(label: str, segment: str) -> None:
    assert cli_workflow._segment(label) == segment


@pytest.mark.parametrize(
    ("readme", "expected"),
    [
        ("# Title\n\nText.\n", "# Title\n\nSECTION\n\nText.\n"),
        ("# Title\n", "# Title\n\nSECTION\n"),
        ("Intro.\n", "SECTION\n\nIntro.\n"),
        ("# T\n\nA\n\nSECTION-OLD\n\nB\n", "# T\n\nA\n\nSECTION\n\nB\n"),
    ],
)
def test_badges_go_after_the_title_or_replace_earlier_ones(readme: str, expected: str) -> None:
    old = f"{cli_workflow.BADGES_START}\nold\n{cli_workflow.BADGES_END}"
    new = f"{cli_workflow.BADGES_START}\nnew\n{cli_workflow.BADGES_END}"
    result = cli_workflow.with_badges(readme.replace("SECTION-OLD", old), "new")
    assert result == expected.replace("SECTION", new)
    assert cli_workflow.with_badges(result, "new") == result


# ---- import ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "roots"),
    [
        ({"main.tf": ""}, ["."]),
        ({"a/main.tf": "", "b/x.tf": "", "README.md": ""}, ["a", "b"]),
        (
            {"stacks/web/main.tf": 'module "n" {\n  source = "../../modules/net"\n}\n', "modules/net/main.tf": ""},
            ["stacks/web"],
        ),
        ({"main.tf": 'module "m" {\n  source = "./mod"\n}\n', "mod/main.tf": ""}, ["."]),
        ({"main.tf": 'module "r" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n', "mod/main.tf": ""}, [".", "mod"]),
        ({"broken/main.tf": "resource {", "ok/main.tf": ""}, ["broken", "ok"]),
    ],
)
def test_roots_are_folders_with_tf_files_not_called_as_local_modules(paths: dict[str, str], roots: list[str]) -> None:
    assert cli_import.find_roots({path: text.encode() for path, text in paths.items()}) == roots


@pytest.mark.parametrize(
    ("text", "name"),
    [("stacks/web", "stacks-web"), ("My_Repo.v2", "my-repo-v2"), ("---", "repository"), ("a" * 70, "a" * 63)],
)
def test_k8s_names(text: str, name: str) -> None:
    assert cli_import.k8s_name(text) == name


def test_import_manifests_parse_through_the_api_models() -> None:
    source = example_source()
    config = example_config()
    calls = cli_import.module_calls(source.files)
    roots = [
        cli_import.Root(
            path,
            {n: e for n, e in config.environments.items() if e.path == path},
            "not audited here",
            cli_import._outside(path, calls),
        )
        for path in cli_import.find_roots(source.files)
    ]
    documents = cli_import.manifests(
        roots,
        source=source,
        namespace="infra",
        repository="infra-repo",
        branch="main",
        connection="acme",
        github=("acme", "infra-repo"),
    )
    parsed = list(yaml.safe_load_all(cli_import.dump(documents, header="header")))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in parsed:
        assert document["apiVersion"] == API_VERSION and document["metadata"]["namespace"] == "infra"
        kinds.BY_KIND[document["kind"]].spec_model.model_validate(document["spec"])
        by_kind.setdefault(document["kind"], []).append(document)
    assert {kind: len(found) for kind, found in by_kind.items()} == {
        "GitHubRepository": 1,
        "Template": 2,
        "TemplateRepoLink": 2,
        "Environment": 3,
    }
    web = next(t for t in by_kind["Template"] if t["metadata"]["name"] == "infra-repo-stacks-web")
    assert web["spec"]["files"]["main.tf"] == (EXAMPLE / "stacks/web/main.tf").read_text()
    link = next(t for t in by_kind["TemplateRepoLink"] if t["metadata"]["name"] == "infra-repo-stacks-web")
    assert link["spec"] == {
        "templateRef": {"name": "infra-repo-stacks-web"},
        "repositoryRef": {"name": "infra-repo"},
        "branch": "main",
        "path": "stacks/web",
        "syncDirection": "Bidirectional",
        "autoSync": False,
    }
    staging = next(e for e in by_kind["Environment"] if e["metadata"]["name"] == "infra-repo-staging")
    assert staging["spec"]["approval"] == {"mode": "auto"} and staging["spec"]["branch"] == "staging"
    assert staging["spec"]["credentialsSecretRef"] == {"name": "aws-staging"}
    assert roots[1].outside == ("modules/network",)


# ---- the command line -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan"], "chkmate plan: error: the following arguments are required: PATH (see chkmate plan --help)"),
        (["plan", ".", "--json", "--markdown"], "chkmate plan: error: argument --markdown: not allowed with argument"),
        (["nope"], "chkmate: error: argument COMMAND: invalid choice: 'nope'"),
        (["drift", ".", "--engine", "builtin"], "chkmate drift: error: argument --engine: invalid choice: 'builtin'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


COMMANDS = ("plan", "drift", "validate", "workflow", "scaffold", "import", "history", "run-job", "crds")


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exited:
            cli.main([command, "--help"])
        assert exited.value.code == 0
        assert f"usage: chkmate {command}" in capsys.readouterr().out


def test_the_command_list_is_the_parsers_and_each_command_is_in_the_reference() -> None:
    parser = cli.build_parser()
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    assert tuple(sub.choices) == COMMANDS
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in COMMANDS:
        assert f"\n### chkmate {command}\n" in reference, command
        assert f"\nchkmate {command} " in reference, f"{command} is not in the SYNOPSIS"


# ---- sources --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "url"),
    [
        ("https://github.com/acme/infra.git", True),
        ("file:///srv/git/infra", True),
        ("git@github.com:acme/infra.git", True),
        ("examples/infra-repo", False),
        ("./https:/odd", False),
        (".", False),
    ],
)
def test_git_urls_are_told_from_folders(location: str, url: bool) -> None:
    assert cli_sources.is_url(location) is url


@pytest.mark.parametrize(
    ("source", "revision", "described"),
    [
        (cli_sources.Source("x", {}), "worktree", "x (a folder, not a git repository)"),
        (cli_sources.Source("x", {}, "main", "a" * 40), f"main@sha1:{'a' * 40}", "x (working tree of main at aaaaaaa)"),
        (
            cli_sources.Source("x", {}, None, "b" * 40),
            f"HEAD@sha1:{'b' * 40}",
            "x (working tree of a detached HEAD at bbbbbbb)",
        ),
        (
            cli_sources.Source("x", {}, "dev", "c" * 40, worktree=False),
            f"dev@sha1:{'c' * 40}",
            "x (branch dev at ccccccc)",
        ),
    ],
)
def test_sources_say_what_was_read(source: cli_sources.Source, revision: str, described: str) -> None:
    assert (source.revision, source.describe()) == (revision, described)


def test_source_paths_and_texts() -> None:
    source = cli_sources.Source(
        "repo", {"a/main.tf": b"\xef\xbb\xbfx", "a/b/c.tfvars": b"y", "a/r.md": b"z", "ab.tf": b""}
    )
    assert source.texts("a") == {"a/main.tf": "x", "a/b/c.tfvars": "y"}
    assert source.shown("a/main.tf") == "repo/a/main.tf"
    assert cli_sources.Source(".", {}).shown("a/main.tf") == "a/main.tf"
    with pytest.raises(cli_sources.SourceError, match=r"^a/bad\.tf: not UTF-8 text \(byte 0\)$"):
        cli_sources.Source("repo", {"a/bad.tf": b"\xff"}).texts("a")
