"""The API models: defaults, camelCase on the wire, and cross-field validation with clear messages."""

from typing import Any

import pydantic
import pytest

from chkmate import errors
from chkmate.api import common, connections, environments, kinds, links, plans, repositories, templates
from chkmate.controllers import reconciling

APP_AUTH = {"appId": 1, "installationId": 2, "privateKeySecretRef": {"name": "gh", "key": "key.pem"}}
TOKEN_AUTH = {"tokenSecretRef": {"name": "gh", "key": "token"}}
LINK = {"templateRef": {"name": "t"}, "repositoryRef": {"name": "r"}}


def spec_error(model: type[pydantic.BaseModel], raw: dict[str, Any]) -> str:
    with pytest.raises(errors.InvalidSpec) as e:
        reconciling.parse_spec(model, raw)  # type: ignore[type-var]
    return e.value.message


def test_models_are_frozen_and_speak_camel_case() -> None:
    spec = links.TemplateRepoLinkSpec.model_validate({**LINK, "syncDirection": "Pull"})
    assert spec.sync_direction == "Pull"
    assert spec.to_wire()["syncDirection"] == "Pull"
    with pytest.raises(pydantic.ValidationError):
        spec.branch = "other"  # type: ignore[misc]
    # populate_by_name: Python names work too.
    assert links.TemplateRepoLinkSpec(template_ref={"name": "t"}, repository_ref={"name": "r"}).path == "."  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "raw", "field", "words"),
    [
        (connections.GitHubConnectionSpec, {}, "spec", "exactly one of privateKeySecretRef"),
        (connections.GitHubConnectionSpec, {**APP_AUTH, **TOKEN_AUTH}, "spec", "exactly one"),
        (connections.GitHubConnectionSpec, {"privateKeySecretRef": APP_AUTH["privateKeySecretRef"]}, "spec",
         "needs appId and installationId"),
        (connections.GitHubConnectionSpec, {**TOKEN_AUTH, "appId": 3}, "spec", "App auth only"),
        (connections.GitHubConnectionSpec, {**TOKEN_AUTH, "apiUrl": "ftp://x"}, "spec.apiUrl", "pattern"),
        (connections.GitHubConnectionSpec, {**TOKEN_AUTH, "allowedRepositories": ["nope"]},
         "spec.allowedRepositories.0", "pattern"),
        (connections.GitHubConnectionSpec, {**TOKEN_AUTH, "tokenSecretref": {}}, "spec.tokenSecretref",
         "Extra inputs"),
        (repositories.GitHubRepositorySpec, {"connectionRef": {"name": "c"}, "owner": "o", "name": "bad name"},
         "spec.name", "pattern"),
        (repositories.GitHubRepositorySpec,
         {"connectionRef": {"name": "c"}, "owner": "o", "name": "r", "scaffold": {"purpose": "terraform"}},
         "spec", "create: true"),
        (repositories.GitHubRepositorySpec, {"connectionRef": {"name": "c"}, "owner": "o", "name": "x.git"},
         "spec", "not a valid repository name"),
        (templates.TemplateSpec, {"files": {}}, "spec.files", "at least 1"),
        (templates.TemplateSpec, {"files": {"../x.tf": ""}}, "spec", "inside the template"),
        (templates.TemplateSpec, {"files": {"/abs.tf": ""}}, "spec", "relative"),
        (templates.TemplateSpec, {"files": {".git/config": ""}}, "spec", ".git"),
        (links.TemplateRepoLinkSpec, {**LINK, "syncDirection": "Sideways"}, "spec.syncDirection",
         "'Push', 'Pull' or 'Bidirectional'"),
        (links.TemplateRepoLinkSpec, {**LINK, "syncDirection": "Pull", "autoSync": True}, "spec",
         "a Pull link cannot push"),
        (links.TemplateRepoLinkSpec, {**LINK, "interval": "soon"}, "spec.interval", "pattern"),
        (links.TemplateRepoLinkSpec, {**LINK, "path": "a/../.."}, "spec", "path"),
        (links.TemplateRepoLinkSpec, {"templateRef": {"name": "t"}}, "spec.repositoryRef", "required"),
        (environments.EnvironmentSpec, {}, "spec", "exactly one of repositoryRef or linkRef"),
        (environments.EnvironmentSpec, {"linkRef": {"name": "l"}, "approval": {"requiredApprovals": 2}},
         "spec.approval", "pullRequestReviews"),
        (environments.EnvironmentSpec, {"linkRef": {"name": "l"}, "runner": {"podTemplate": {}}},
         "spec.runner", "mode Job"),
        (environments.EnvironmentSpec, {"linkRef": {"name": "l"}, "vars": {"1bad": "x"}}, "spec",
         "Terraform variable name"),
        (environments.EnvironmentSpec, {"linkRef": {"name": "l"}, "engine": "pulumi"}, "spec.engine",
         "'terraform', 'tofu' or 'builtin'"),
        (plans.PlanSpec, {"environmentRef": {"name": "e"}, "revision": "main@abc"}, "spec.revision", "pattern"),
        (plans.PlanSpec, {"environmentRef": {"name": "E"}}, "spec.environmentRef.name", "pattern"),
    ],
)
def test_invalid_specs_name_the_field(model: type[pydantic.BaseModel], raw: dict[str, Any], field: str,
                                      words: str) -> None:
    message = spec_error(model, raw)
    assert message.startswith(f"{field}: "), message
    assert words in message, message


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        (connections.GitHubConnectionSpec, APP_AUTH),
        (connections.GitHubConnectionSpec, {**TOKEN_AUTH, "apiUrl": "https://ghe.example.com/api/v3"}),
        (repositories.GitHubRepositorySpec, {"connectionRef": {"name": "c"}, "owner": "o", "name": "r.io_x-1"}),
        (templates.TemplateSpec, {"files": {"modules/net/main.tf": "", "main.tf": ""}}),
        (links.TemplateRepoLinkSpec, {**LINK, "path": "stacks/net/", "interval": "1h30m"}),
        (environments.EnvironmentSpec,
         {"repositoryRef": {"name": "r"}, "approval": {"mode": "pullRequestReviews", "requiredApprovals": 2}}),
        (plans.PlanSpec, {"environmentRef": {"name": "e"}, "revision": "main@sha1:" + "a" * 40}),
    ],
)
def test_valid_specs(model: type[pydantic.BaseModel], raw: dict[str, Any]) -> None:
    reconciling.parse_spec(model, raw)  # type: ignore[type-var]


def test_message_counts_further_problems() -> None:
    message = spec_error(links.TemplateRepoLinkSpec, {})
    assert message.endswith("(and 1 more problems)")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1m", 60), ("1h30m", 5400), ("250ms", 0.25)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert common.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "m", "1d", "-1s", "1m "])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        common.parse_duration(text)


def test_every_kind_has_ready_and_age_columns_and_the_category() -> None:
    for info in kinds.KINDS:
        assert any(column.name == "Ready" for column in info.printer_columns), info.kind
        assert info.categories == ("chkmate",)
    assert len({info.plural for info in kinds.KINDS}) == 6


def test_status_models_ignore_unknown_keys_and_default_empty() -> None:
    status = links.TemplateRepoLinkStatus.model_validate({"future": 1, "conditions": []})
    assert status.conditions == () and status.history == ()
