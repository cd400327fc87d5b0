"""The .chkmate.yml models and parser: valid files, and every kind of error with its line and key."""

from typing import Any

import pydantic
import pytest

from chkmate.api import crdgen, environments, repoconfig
from tests.harness import schema

EXAMPLE = """\
version: 1
environments:
  production:
    branch: main
    path: stacks/network
    region: eu-west-1
    credential: aws-prod          # name of a Secret holding credentials
    autoDeploy: false             # apply without manual approval
    planOnPullRequest: true
    engine: terraform             # terraform | tofu | builtin
    vars: {name: prod}
  staging: {branch: staging, path: stacks/network, autoDeploy: true}
notify:
  slack: "#infra"
"""


def parse_error(text: str) -> repoconfig.RepoConfigError:
    with pytest.raises(repoconfig.RepoConfigError) as caught:
        repoconfig.parse(text)
    return caught.value


def test_the_documented_example_parses() -> None:
    config = repoconfig.parse(EXAMPLE)
    production = config.environments["production"]
    assert (production.branch, production.path, production.region) == ("main", "stacks/network", "eu-west-1")
    assert (production.credential, production.auto_deploy, production.plan_on_pull_request) == ("aws-prod", False, True)
    assert (production.engine, production.vars) == ("terraform", {"name": "prod"})
    staging = config.environments["staging"]
    assert (staging.branch, staging.auto_deploy, staging.engine, staging.credential) == (
        "staging",
        True,
        "terraform",
        None,
    )
    assert config.notify.slack == "#infra"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("version: 1\n", {}, id="version-only"),
        pytest.param("\ufeffversion: 1\n", {}, id="utf8-bom"),
        pytest.param(
            "version: 1\nenvironments:\n  a: {branch: main}\n",
            {"a": ("main", ".", "terraform", False, True, False, {})},
            id="defaults",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  a: {branch: main, vars: {count: 3, enabled: yes, ratio: 0.5, debug: no}}\n",
            {
                "a": (
                    "main",
                    ".",
                    "terraform",
                    False,
                    True,
                    False,
                    {"count": "3", "enabled": "true", "ratio": "0.5", "debug": "false"},
                )
            },
            id="numbers-and-booleans-in-vars-become-terraform-text",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  a: {branch: main, path: stacks/net/, engine: tofu, applyOnMerge: true}\n",
            {"a": ("main", "stacks/net", "tofu", False, True, True, {})},
            id="trailing-slash-dropped",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  a: {branch: main, path: x}\n  b: {branch: main, path: y}\n",
            {
                "a": ("main", "x", "terraform", False, True, False, {}),
                "b": ("main", "y", "terraform", False, True, False, {}),
            },
            id="one-branch-two-folders",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  a: &base {branch: main, autoDeploy: true}\n  b: {<<: *base, path: y}\n",
            {
                "a": ("main", ".", "terraform", True, True, False, {}),
                "b": ("main", "y", "terraform", True, True, False, {}),
            },
            id="anchors-and-merge-keys",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  prod-eu-1:\n    branch: release/2026.1\n    planOnPullRequest: false\n",
            {"prod-eu-1": ("release/2026.1", ".", "terraform", False, False, False, {})},
            id="slashes-and-dots-in-branches",
        ),
    ],
)
def test_valid_files(text: str, expected: dict[str, tuple[object, ...]]) -> None:
    config = repoconfig.parse(text)
    assert config.version == 1
    found = {
        name: (e.branch, e.path, e.engine, e.auto_deploy, e.plan_on_pull_request, e.apply_on_merge, e.vars)
        for name, e in config.environments.items()
    }
    assert found == expected


def test_the_error_message_names_the_file_line_and_key() -> None:
    text = EXAMPLE.replace("engine: terraform ", "engine: terraformm")
    assert str(parse_error(text)) == (
        ".chkmate.yml:10: environments.production.engine: Input should be 'terraform', 'tofu' or 'builtin'"
    )


ENV = "version: 1\nenvironments:\n  prod:\n"  # the environment's keys go on line 4


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        # The file as a whole.
        pytest.param("", None, "", "the file is empty", id="empty"),
        pytest.param("# nothing yet\n\n", None, "", "the file is empty", id="only-comments"),
        pytest.param("null\n", None, "", "the file is empty", id="null"),
        pytest.param("- version: 1\n", 1, "", "must be a mapping", id="list"),
        pytest.param(
            "# config\nenvironments: {}\n",
            2,
            "version",
            "missing; the file must start with `version: 1`",
            id="missing-version",
        ),
        pytest.param("version: 2\n", 1, "version", "unsupported version 2", id="version-2"),
        pytest.param('version: "1"\n', 1, "version", "unsupported version '1'", id="version-text"),
        pytest.param("version: true\n", 1, "version", "unsupported version True", id="version-bool"),
        pytest.param("version: 1\n---\nversion: 1\n", 2, "", "expected a single document", id="two-documents"),
        # YAML syntax.
        pytest.param(
            ENV + "    branch: 'main\n", 5, "", "invalid YAML: while scanning a quoted scalar", id="unclosed-quote"
        ),
        pytest.param(ENV + "    branch: main\n   path: x\n", 5, "", "invalid YAML", id="bad-indent"),
        pytest.param(ENV + "\tbranch: main\n", 4, "", "invalid YAML", id="tab"),
        pytest.param(
            "version: 1\nnotify:\n  slack: \x01\n", 3, "", "invalid YAML: special characters", id="control-character"
        ),
        pytest.param(
            ENV + "    branch: main\n    branch: dev\n",
            5,
            "environments.prod.branch",
            "repeated key (first at line 4)",
            id="repeated-key",
        ),
        pytest.param(
            ENV + "    branch: main\n    vars:\n      on: x\n",
            6,
            "environments.prod.vars.on",
            "a key must be text",
            id="boolean-key",
        ),
        # Unknown keys.
        pytest.param(
            "version: 1\nenvironment: {}\n",
            2,
            "environment",
            "unknown key; did you mean 'environments'?",
            id="root-typo",
        ),
        pytest.param(
            ENV + "    branch: main\n    autodeploy: true\n",
            5,
            "environments.prod.autodeploy",
            "unknown key; did you mean 'autoDeploy'?",
            id="environment-typo",
        ),
        pytest.param(
            ENV + "    branch: main\n    auto_deploy: true\n",
            5,
            "environments.prod.auto_deploy",
            "unknown key; did you mean 'autoDeploy'?",
            id="snake-case",
        ),
        pytest.param(
            "version: 1\nnotify: {email: a@b.c}\n",
            2,
            "notify.email",
            "unknown key (known keys: slack)",
            id="notify-unknown",
        ),
        # Values.
        pytest.param(ENV + "    path: x\n", 3, "environments.prod.branch", "required key missing", id="missing-branch"),
        pytest.param(
            "version: 1\nenvironments:\n  Prod: {branch: main}\n",
            3,
            "environments.Prod",
            "'Prod' is not a valid environment name",
            id="environment-name",
        ),
        pytest.param(
            ENV + "    branch: feature..x\n",
            4,
            "environments.prod.branch",
            "not a valid branch name: it contains '..'",
            id="branch",
        ),
        pytest.param(
            ENV + "    branch: main\n    path: /abs\n",
            5,
            "environments.prod.path",
            "'/abs' must be a relative POSIX path",
            id="absolute-path",
        ),
        pytest.param(
            ENV + "    branch: main\n    path: ../up\n",
            5,
            "environments.prod.path",
            "must be a normalised path",
            id="path-outside",
        ),
        pytest.param(
            ENV + "    branch: main\n    engine: pulumi\n",
            5,
            "environments.prod.engine",
            "Input should be 'terraform', 'tofu' or 'builtin'",
            id="engine",
        ),
        pytest.param(
            ENV + "    branch: main\n    autoDeploy: 'yes'\n",
            5,
            "environments.prod.autoDeploy",
            "Input should be a valid boolean",
            id="strict-bool",
        ),
        pytest.param(
            ENV + "    branch: main\n    credential: AWS_KEYS\n",
            5,
            "environments.prod.credential",
            "'AWS_KEYS' is not a valid Secret name",
            id="credential",
        ),
        pytest.param(
            ENV + "    branch: main\n    region: ''\n",
            5,
            "environments.prod.region",
            "at least 1 character",
            id="empty-region",
        ),
        pytest.param(
            ENV + "    branch: main\n    vars:\n      a: 1\n      b c: 2\n",
            7,
            "environments.prod.vars.b c",
            "'b c' is not a valid Terraform variable name",
            id="var-name",
        ),
        pytest.param(
            ENV + "    branch: main\n    vars:\n      tags: [a, b]\n",
            6,
            "environments.prod.vars.tags",
            "must be a string, a number or a boolean",
            id="var-list",
        ),
        pytest.param(
            "version: 1\nnotify:\n  slack: infra\n",
            3,
            "notify.slack",
            "not a Slack channel such as '#infra'",
            id="slack-channel",
        ),
        pytest.param(
            "version: 1\nenvironments:\n  a: {branch: main}\n  b: {branch: main, path: ./}\n",
            4,
            "environments.b",
            "branch 'main' and path '.' already belong to environment 'a'",
            id="same-branch-and-path",
        ),
    ],
)
def test_errors(text: str, line: int | None, key: str, message: str) -> None:
    error = parse_error(text)
    assert (error.line, error.key) == (line, key)
    assert message in str(error)
    assert str(error).startswith(".chkmate.yml" if line is None else f".chkmate.yml:{line}: ")


def test_every_problem_is_reported_in_line_order() -> None:
    text = "version: 1\nextra: 1\nenvironments:\n  prod: {branch: main, engine: x, autoDeploy: 3}\n"
    error = parse_error(text)
    assert [(p.line, p.key) for p in error.problems] == [
        (2, "extra"),
        (4, "environments.prod.engine"),
        (4, "environments.prod.autoDeploy"),
    ]
    assert str(error).endswith("(and 2 more)")


def test_errors_chain_the_original() -> None:
    assert isinstance(parse_error("version: 1\nnope: 1\n").__cause__, pydantic.ValidationError)


def test_models_built_in_python_check_branch_and_path_pairs_too() -> None:
    env = repoconfig.EnvConfig(branch="main")
    with pytest.raises(pydantic.ValidationError, match=r"environments\.b: branch 'main' and path '\.'"):
        repoconfig.RepoConfig(version=1, environments={"a": env, "b": env})


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("main", None),
        ("feature/login-v2", None),
        ("release/2026.1", None),
        ("", "it is empty"),
        ("a" * 256, "longer than 255"),
        ("my branch", "a space"),
        ("a:b", "a space, a control character or one of"),
        ("a~1", "one of ~"),
        ("-x", "starts with '-'"),
        ("/x", "starts with '-' or '/'"),
        ("x/", "ends with '/'"),
        ("x.", "ends with '/' or '.'"),
        ("a..b", "contains '..'"),
        ("a//b", "'//'"),
        ("a@{1}", "'@{'"),
        ("@", "reserved"),
        ("HEAD", "reserved"),
        ("a/.hidden", "starts with '.'"),
        ("x.lock", "ends with '.lock'"),
    ],
)
def test_check_branch_name(name: str, reason: str | None) -> None:
    if reason is None:
        assert repoconfig.check_branch_name(name) == name
    else:
        with pytest.raises(ValueError, match="not a valid branch name") as caught:
            repoconfig.check_branch_name(name)
        assert reason in str(caught.value)


def test_environment_for_branch() -> None:
    config = repoconfig.parse(
        "version: 1\nenvironments:\n"
        "  web: {branch: main, path: web}\n  net: {branch: main, path: net}\n  dev: {branch: dev}\n"
    )
    assert [name for name, _ in repoconfig.environment_for_branch(config, "main")] == ["net", "web"]
    assert repoconfig.environment_for_branch(config, "dev") == [("dev", config.environments["dev"])]
    assert repoconfig.environment_for_branch(config, "other") == []


def env_spec(**fields: Any) -> environments.EnvironmentSpec:
    return environments.EnvironmentSpec.model_validate({"repositoryRef": {"name": "live"}, **fields})


DEFAULTS = repoconfig.EnvConfig(branch="main", auto_deploy=True, apply_on_merge=True, plan_on_pull_request=False)


def test_unset_environment_fields_come_from_the_file() -> None:
    spec = repoconfig.with_defaults(env_spec(), DEFAULTS, pull_request=False)
    assert (spec.approval.mode, spec.apply_on_merge, spec.plan_on_pull_request) == ("auto", True, False)


def test_what_the_environment_sets_wins() -> None:
    given = env_spec(approval={"mode": "manual"}, applyOnMerge=False, planOnPullRequest=True)
    spec = repoconfig.with_defaults(given, DEFAULTS, pull_request=False)
    assert (spec.approval.mode, spec.apply_on_merge, spec.plan_on_pull_request) == ("manual", False, True)


def test_a_pull_requests_own_file_approves_nothing() -> None:
    spec = repoconfig.with_defaults(env_spec(), DEFAULTS, pull_request=True)
    assert (spec.approval.mode, spec.apply_on_merge) == ("manual", False)


def test_without_an_entry_the_unset_fields_take_their_defaults() -> None:
    for pull_request in (False, True):
        spec = repoconfig.with_defaults(env_spec(), None, pull_request=pull_request)
        assert (spec.approval.mode, spec.apply_on_merge, spec.plan_on_pull_request) == ("manual", False, True)
    given = env_spec(applyOnMerge=True, planOnPullRequest=False)
    assert repoconfig.with_defaults(given, None, pull_request=False) == given


def test_the_file_applies_to_an_environment_as_the_api_server_stores_it() -> None:
    """The API server fills in the CRD's defaults: a field the Environment leaves out must still be unset."""
    crd = crdgen.openapi_schema(environments.EnvironmentSpec)
    stored = schema.apply_defaults(crd, {"repositoryRef": {"name": "a"}})
    spec = environments.EnvironmentSpec.model_validate(stored)
    assert (spec.apply_on_merge, spec.plan_on_pull_request) == (None, None)
    spec = repoconfig.with_defaults(spec, DEFAULTS, pull_request=False)
    assert (spec.approval.mode, spec.apply_on_merge, spec.plan_on_pull_request) == ("auto", True, False)


def test_null_is_unset() -> None:
    spec = repoconfig.with_defaults(env_spec(applyOnMerge=None, planOnPullRequest=None), DEFAULTS, pull_request=False)
    assert (spec.apply_on_merge, spec.plan_on_pull_request) == (True, False)


def test_a_pull_requests_own_file_never_turns_on_apply_on_merge() -> None:
    spec = repoconfig.with_defaults(env_spec(applyOnMerge=None), DEFAULTS, pull_request=True)
    assert (spec.approval.mode, spec.apply_on_merge, spec.plan_on_pull_request) == ("manual", False, False)
    spec = repoconfig.with_defaults(env_spec(applyOnMerge=True), DEFAULTS, pull_request=True)
    assert spec.apply_on_merge is True  # the Environment's own word still holds
