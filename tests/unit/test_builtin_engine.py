"""The builtin engine: configurations read from HCL, plans diffed from them, their stored form, and the caches.

Plans of ``terraform_data`` configurations are checked against a real ``terraform plan`` of the same code (apply
the old code, plan the new one): the one I/O here, skipped when terraform is not installed. Everything else is
pure and table-driven.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

from chkmate.api.conditions import Reasons
from chkmate.domain import builtin, plans

Files = Mapping[str, str]
TERRAFORM = shutil.which("terraform")


def resources(files: Files, **kwargs: Any) -> dict[str, Mapping[str, Any]]:
    return {a: r.attributes for a, r in builtin.configuration(files, **kwargs).resources.items()}


def actions(result: plans.PlanResult) -> dict[str, str]:
    return {change.address: change.action for change in result.changes if change.action != "read"}


def replan(old: Files | None, new: Files) -> plans.PlanResult:
    previous = builtin.configuration(old) if old is not None else None
    return builtin.plan(builtin.configuration(new), previous)


# --- reading a configuration ----------------------------------------------------------------------------------

VARIABLES = """
variable "n" {
  type    = number
  default = 2
}
variable "name" { default = "web" }
variable "tags" {
  type    = map(string)
  default = { team = "core" }
}
variable "on" { default = true }
locals {
  prefix = "${var.name}-${var.n}"
  both   = "${local.prefix}/x"
}
"""


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"plain"', "plain"),
        ("42", 42),
        ("1.5", 1.5),
        ("true", True),
        ("null", None),
        ('[1, "a", false]', [1, "a", False]),
        ('{ k = "v", "q" = 1 }', {"k": "v", "q": 1}),
        ("var.n", 2),
        ("var.tags", {"team": "core"}),
        ('var.tags["team"]', "core"),
        ("var.tags.team", "core"),
        ('"${var.name}-${var.n}"', "web-2"),
        ('"literal $${x} and %%{y}"', "literal ${x} and %{y}"),
        ("local.both", "web-2/x"),
        ("var.n * 3 + 1", 7),
        ("var.n / 4", 0.5),
        ("var.on ? 1 : 0", 1),
        ('var.on ? "yes" : terraform_data.x.id', "yes"),  # the branch not taken is not evaluated
        ('length(var.tags) > 5 ? var.tags["none"] : "short"', "short"),
        ("!var.on || var.n >= 2", True),
        ("upper(var.name)", "WEB"),
        ('join("-", [var.name, "a"])', "web-a"),
        ('length(toset(["b", "a", "b"]))', 2),
        ('merge(var.tags, { env = "prod" })', {"team": "core", "env": "prod"}),
        ('lookup(var.tags, "missing", "dflt")', "dflt"),
        ('"x-${upper("y")}"', "x-Y"),
        ("<<-EOT\n    hello ${var.name}\n      indented\n    EOT", "hello web\n  indented\n"),
        ("path.module", "."),
        ("terraform.workspace", "default"),
    ],
)
def test_arguments_are_evaluated_from_literals_variables_and_locals(expression: str, expected: Any) -> None:
    code = VARIABLES + f'resource "terraform_data" "a" {{\n  input = {expression}\n}}\n'
    assert resources({"main.tf": code})["terraform_data.a"]["input"] == expected


@pytest.mark.parametrize(
    "expression",
    [
        "terraform_data.other.output",
        '"id-${terraform_data.other.id}"',
        "[for s in var.tags : s]",
        'formatdate("YYYY", timestamp())',
        '"%{ if var.on }x%{ endif }"',
        "var.tags[*]",
    ],
)
def test_what_only_an_apply_knows_is_unknown_with_its_expression(expression: str) -> None:
    code = VARIABLES + f'resource "terraform_data" "a" {{\n  input = {expression}\n}}\n'
    value = resources({"main.tf": code})["terraform_data.a"]["input"]
    assert isinstance(value, builtin.Unknown)
    assert value.expression in ("${" + expression + "}", expression.strip('"'))


def test_an_unknown_value_records_the_resources_it_reads() -> None:
    code = 'resource "terraform_data" "a" {\n  input = [terraform_data.b[1].output, data.x.y.id, aws_s3.c["k"]]\n}\n'
    value = builtin.configuration({"main.tf": code}).resources["terraform_data.a"].attributes["input"]
    assert [item.refs for item in value] == [
        {builtin.Ref("terraform_data.b", 1, "output")},
        {builtin.Ref("data.x.y", None, "id")},
        {builtin.Ref("aws_s3.c", "k", None)},
    ]


def test_given_variables_win_over_tfvars_over_defaults_and_are_typed_like_dash_var() -> None:
    code = VARIABLES + 'resource "terraform_data" "a" {\n  input = [var.n, var.name, var.tags, var.on]\n}\n'
    files = {"main.tf": code, "terraform.tfvars": 'name = "api"\nn = 5\n', "b.auto.tfvars": "n = 6\n"}
    assert resources(files)["terraform_data.a"]["input"] == [6, "api", {"team": "core"}, True]
    given = {"n": "7", "tags": '{ team = "ops" }', "on": "false"}
    assert resources(files, variables=given)["terraform_data.a"]["input"] == [7, "api", {"team": "ops"}, "false"]


@pytest.mark.parametrize(
    ("meta", "addresses"),
    [
        ("count = 2", ["terraform_data.a[0]", "terraform_data.a[1]"]),
        ("count = var.on ? var.n : 0", ["terraform_data.a[0]", "terraform_data.a[1]"]),
        ("count = 0", []),
        ("for_each = { b = 1, a = 2 }", ['terraform_data.a["a"]', 'terraform_data.a["b"]']),
        ('for_each = toset(["x", "y"])', ['terraform_data.a["x"]', 'terraform_data.a["y"]']),
        ("for_each = var.tags", ['terraform_data.a["team"]']),
        ("", ["terraform_data.a"]),
    ],
)
def test_count_and_for_each_make_instances(meta: str, addresses: list[str]) -> None:
    code = VARIABLES + f'resource "terraform_data" "a" {{\n  {meta}\n}}\n'
    assert list(resources({"main.tf": code})) == addresses


def test_instances_read_each_and_count() -> None:
    code = (
        'resource "terraform_data" "a" {\n  count = 2\n  input = "n-${count.index}"\n}\n'
        'resource "terraform_data" "b" {\n  for_each = { x = "X" }\n  input = "${each.key}=${each.value}"\n}\n'
    )
    found = resources({"main.tf": code})
    assert [found[a]["input"] for a in found] == ["n-0", "n-1", "x=X"]


def test_a_count_that_reads_a_resource_is_one_instance_with_a_warning() -> None:
    code = 'resource "terraform_data" "a" {\n  count = length(terraform_data.b.output)\n}\n'
    config = builtin.configuration({"main.tf": code})
    assert list(config.resources) == ["terraform_data.a"]
    assert config.resources["terraform_data.a"].unknown_count
    assert config.warnings == ("main.tf:1: terraform_data.a: count is not known before apply; planned as one instance",)


def test_resources_know_their_file_and_line() -> None:
    files = {
        "main.tf": '\n\nresource "terraform_data" "a" {}\n\n  resource terraform_data "b" {\n}\n',
        "data.tf": '# comment\ndata "terraform_remote_state" "s" {\n  backend = "local"\n}\n',
        "nested/ignored.tf": 'resource "terraform_data" "not_read" {}\n',
    }
    config = builtin.configuration(files)
    assert {a: (r.file, r.line, r.mode) for a, r in config.resources.items()} == {
        "terraform_data.a": ("main.tf", 3, "managed"),
        "terraform_data.b": ("main.tf", 5, "managed"),
        "data.terraform_remote_state.s": ("data.tf", 2, "data"),
    }


MODULES = {
    "envs/prod/main.tf": """
module "net" {
  source = "../../modules/net"
  cidr   = "10.0.0.0/16"
}
module "apps" {
  source   = "../../modules/app"
  for_each = { api = 1, web = 2 }
  size     = each.value
  network  = module.net.id
}
module "remote" {
  source = "hashicorp/consul/aws"
}
output "net" { value = module.net.cidr }
""",
    "modules/net/main.tf": """
variable "cidr" {}
resource "terraform_data" "vpc" { input = var.cidr }
module "sub" {
  source = "./sub"
  count  = 2
}
output "id" { value = terraform_data.vpc.id }
output "cidr" { value = var.cidr }
""",
    "modules/net/sub/main.tf": 'resource "terraform_data" "s" {\n  input = path.module\n}\n',
    "modules/app/main.tf": """
variable "size" { type = number }
variable "network" {}
resource "terraform_data" "app" { input = [var.size, var.network] }
""",
}


def test_local_modules_are_read_with_their_address_prefix() -> None:
    config = builtin.configuration(MODULES, path="envs/prod/")
    assert {a: r.file for a, r in config.resources.items()} == {
        "module.net.terraform_data.vpc": "modules/net/main.tf",
        "module.net.module.sub[0].terraform_data.s": "modules/net/sub/main.tf",
        "module.net.module.sub[1].terraform_data.s": "modules/net/sub/main.tf",
        'module.apps["api"].terraform_data.app': "modules/app/main.tf",
        'module.apps["web"].terraform_data.app': "modules/app/main.tf",
    }
    app = config.resources['module.apps["web"].terraform_data.app']
    assert app.module == 'module.apps["web"]'
    size, network = app.attributes["input"]
    assert size == 2
    assert network.refs == {builtin.Ref("module.net.terraform_data.vpc", None, "id")}
    assert config.resources["module.net.module.sub[0].terraform_data.s"].attributes["input"] == "../../modules/net/sub"
    assert config.outputs["net"].value == "10.0.0.0/16"
    assert config.warnings == (
        "envs/prod/main.tf:12: module.remote: source 'hashicorp/consul/aws' is not a local path; "
        "its resources are not planned",
    )


@pytest.mark.parametrize(
    ("files", "message", "reason"),
    [
        ({"main.tf": 'resource "x" "y" {\n  a = \n}\n'}, "main.tf:2", Reasons.INVALID_HCL),
        ({"main.tf": 'variable "v" {}\n'}, "no value for required variable 'v'", Reasons.PLAN_FAILED),
        ({"main.tf": 'resource "x" "y" { a = var.nope }\n'}, "undeclared var.nope", Reasons.PLAN_FAILED),
        ({"main.tf": "locals {\n  a = local.b\n  b = local.a\n}\n"}, "depends on itself", Reasons.PLAN_FAILED),
        ({"main.tf": 'module "m" { source = "./missing" }\n'}, "no .tf files in 'missing'", Reasons.PLAN_FAILED),
        ({"main.tf": 'module "m" {\n  source = "./m"\n  x = 1\n}\n', "m/a.tf": ""}, "no variable 'x'", None),
        ({"a.tf": 'resource "x" "y" {}\n', "b.tf": 'resource "x" "y" {}\n'}, "duplicate resource x.y", None),
        ({"README.md": "# nothing"}, "no .tf files", None),
    ],
)
def test_code_that_cannot_be_planned_raises_with_a_reason(files: Files, message: str, reason: str | None) -> None:
    with pytest.raises(builtin.ConfigurationError) as caught:
        builtin.configuration(files)
    assert message in str(caught.value)
    assert caught.value.reason == (reason or Reasons.PLAN_FAILED)


# --- plans ----------------------------------------------------------------------------------------------------

BASE = """
resource "terraform_data" "a" {
  input = "one"
}
resource "terraform_data" "b" {
  input = terraform_data.a.id
}
resource "terraform_data" "c" {
  input = terraform_data.a.output
}
resource "terraform_data" "e" {
  triggers_replace = terraform_data.a.output
}
output "o1" { value = terraform_data.a.output }
output "o2" { value = terraform_data.a.id }
output "gone" { value = "x" }
"""


def test_a_first_plan_creates_everything_and_reads_data_sources() -> None:
    code = BASE + 'data "terraform_remote_state" "s" {\n  backend = "local"\n}\n'
    result = replan(None, {"main.tf": code})
    assert actions(result) == dict.fromkeys(
        ["terraform_data.a", "terraform_data.b", "terraform_data.c", "terraform_data.e"], "create"
    )
    assert result.summary == plans.Summary(add=4)
    assert result.output_changes == {"gone": "create", "o1": "create", "o2": "create"}
    assert [c.action for c in result.changes if c.address.startswith("data.")] == ["read"]
    assert (result.engine, result.engine_version) == ("builtin", builtin.ENGINE_VERSION)
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in result.text


def test_a_change_spreads_along_references_as_in_terraform() -> None:
    new = BASE.replace('"one"', '"two"').replace('output "gone" { value = "x" }', "")
    result = replan({"main.tf": BASE}, {"main.tf": new})
    assert actions(result) == {
        "terraform_data.a": "update",
        "terraform_data.b": "no-op",  # the id of terraform_data stays through an update
        "terraform_data.c": "update",  # its output follows its input
        "terraform_data.e": "replace",
    }
    assert result.output_changes == {"gone": "delete", "o1": "update", "o2": "no-op"}
    assert result.summary == plans.Summary(add=1, change=2, destroy=1)
    change = next(c for c in result.changes if c.address == "terraform_data.a")
    assert (change.before, change.after, change.file, change.line) == ({"input": "one"}, {"input": "two"}, "main.tf", 2)
    assert '~ input = "one" -> "two"' in result.text
    assert "~ triggers_replace = (known after apply)  # forces replacement" in result.text


def test_the_same_code_plans_no_changes() -> None:
    result = replan({"main.tf": BASE}, {"main.tf": BASE})
    assert set(actions(result).values()) == {"no-op"}
    assert not result.has_changes
    assert result.text.startswith("No changes.")


def test_lifecycle_ignore_changes_and_replace_triggered_by() -> None:
    old = """
resource "terraform_data" "src" { input = 1 }
resource "terraform_data" "ignored" {
  input = "a"
  lifecycle { ignore_changes = [input] }
}
resource "terraform_data" "follower" {
  input = "same"
  lifecycle { replace_triggered_by = [terraform_data.src.input] }
}
"""
    new = old.replace("input = 1", "input = 2").replace('"a"', '"b"')
    assert actions(replan({"main.tf": old}, {"main.tf": new})) == {
        "terraform_data.src": "update",
        "terraform_data.ignored": "no-op",
        "terraform_data.follower": "replace",
    }


def test_moved_blocks_and_an_added_count_keep_resources() -> None:
    old = 'resource "terraform_data" "a" { input = 1 }\nresource "terraform_data" "b" { input = 2 }\n'
    new = (
        'resource "terraform_data" "renamed" { input = 1 }\nmoved {\n  from = terraform_data.a\n'
        '  to = terraform_data.renamed\n}\nresource "terraform_data" "b" {\n  count = 2\n  input = 2\n}\n'
    )
    assert actions(replan({"main.tf": old}, {"main.tf": new})) == {
        "terraform_data.renamed": "no-op",
        "terraform_data.b[0]": "no-op",
        "terraform_data.b[1]": "create",
    }


def test_sensitive_values_are_compared_by_digest_and_never_shown() -> None:
    code = 'variable "pw" {\n  sensitive = true\n}\nresource "terraform_data" "db" { input = "p:${var.pw}" }\n'
    first = builtin.configuration({"main.tf": code}, variables={"pw": "hunter2"})
    same = builtin.plan(builtin.configuration({"main.tf": code}, variables={"pw": "hunter2"}), first)
    other = builtin.plan(builtin.configuration({"main.tf": code}, variables={"pw": "swordfish"}), first)
    assert actions(same) == {"terraform_data.db": "no-op"}
    assert actions(other) == {"terraform_data.db": "update"}
    assert other.changes[0].after == {"input": plans.SENSITIVE}
    stored = json.dumps(builtin.serialize(first))
    assert "hunter2" not in stored
    assert "hunter2" not in other.text


def test_a_plan_from_nothing_to_nothing_and_a_destroy() -> None:
    config = builtin.configuration({"main.tf": BASE})
    destroy = builtin.plan(builtin.Configuration(), config)
    assert destroy.summary == plans.Summary(destroy=4)
    assert set(destroy.output_changes.values()) == {"delete"}
    assert not builtin.plan(builtin.Configuration(), None).has_changes


# --- the stored form ------------------------------------------------------------------------------------------


def test_a_stored_configuration_plans_like_the_original() -> None:
    old = builtin.configuration(MODULES, path="envs/prod")
    stored = json.loads(json.dumps(builtin.serialize(old)))
    assert builtin.deserialize(stored) == old
    changed = {**MODULES, "modules/app/main.tf": MODULES["modules/app/main.tf"].replace("var.size,", "var.size, 1,")}
    new = builtin.configuration(changed, path="envs/prod")
    assert builtin.plan(new, builtin.deserialize(stored)) == builtin.plan(new, old)


@pytest.mark.parametrize("data", [{}, {"format": 99}, {"format": 1, "resources": [{"address": "x"}]}, []])
def test_an_unreadable_stored_configuration_raises(data: Any) -> None:
    with pytest.raises(builtin.ConfigurationError):
        builtin.deserialize(data)


# --- caches ---------------------------------------------------------------------------------------------------


def test_a_one_file_change_parses_and_evaluates_that_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_loads = hcl2.loads

    def counting_loads(text: str, **kwargs: Any) -> Any:
        parsed.append(text)
        return real_loads(text, **kwargs)

    monkeypatch.setattr(hcl2, "loads", counting_loads)
    marker = uuid.uuid4().hex  # these texts were never parsed in this process
    files = {
        f"r{i}.tf": f'# {marker}\nresource "terraform_data" "r{i}" {{\n  input = "${{var.v}}-{i}"\n}}\n'
        for i in range(5)
    }
    files["vars.tf"] = f'# {marker}\nvariable "v" {{ default = "x" }}\n'
    first = builtin.configuration(files)
    assert len(parsed) == 6
    evaluated = builtin.cache_info()["evaluate"]

    changed = {**files, "r2.tf": files["r2.tf"].replace("-2", "-changed")}
    second = builtin.configuration(changed)
    assert parsed[6:] == [changed["r2.tf"]]
    after = builtin.cache_info()["evaluate"]
    assert (after.misses - evaluated.misses, after.hits - evaluated.hits) == (1, 5)
    assert actions(builtin.plan(second, first))["terraform_data.r2"] == "update"

    builtin.configuration({**changed, "vars.tf": changed["vars.tf"].replace('"x"', '"y"')})
    assert builtin.cache_info()["evaluate"].misses - after.misses == 6  # every file reads var.v


# --- parity with terraform ------------------------------------------------------------------------------------

MODULE_CODE = """
variable "size" { type = number }
resource "terraform_data" "inner" {
  count = var.size
  input = "inner-${count.index}"
}
output "first" { value = terraform_data.inner[0].output }
"""
STATE = json.dumps(
    {
        "version": 4,
        "terraform_version": "1.11.0",
        "serial": 1,
        "lineage": "l",
        "resources": [],
        "outputs": {"v": {"value": "hi", "type": "string"}},
    }
)
REMOTE_STATE = """
resource "terraform_data" "path" { input = "STATE.tfstate" }
data "terraform_remote_state" "deferred" {
  backend = "local"
  config  = { path = terraform_data.path.output }
}
data "terraform_remote_state" "now" {
  backend = "local"
  config  = { path = "old.tfstate" }
}
resource "terraform_data" "reader" { input = data.terraform_remote_state.deferred.outputs.v }
resource "terraform_data" "steady" { input = data.terraform_remote_state.now.outputs.v }
"""
SCENARIOS: dict[str, tuple[Files | None, Files]] = {
    "first plan": (
        None,
        {"main.tf": BASE + 'resource "terraform_data" "n" {\n  count = 3\n}\n', "variables.tf": VARIABLES},
    ),
    "updates spread along references": ({"main.tf": BASE}, {"main.tf": BASE.replace('"one"', '"two"')}),
    "instances come and go": (
        {
            "main.tf": 'resource "terraform_data" "a" {\n  count = 3\n  input = count.index\n}\n'
            'resource "terraform_data" "b" {\n  for_each = toset(["x", "y"])\n  input = each.key\n}\n'
            'resource "terraform_data" "gone" {}\n'
        },
        {
            "main.tf": 'resource "terraform_data" "a" {\n  count = 2\n  input = count.index\n}\n'
            'resource "terraform_data" "b" {\n  for_each = toset(["y", "z"])\n  input = each.key\n}\n'
            'resource "terraform_data" "new" {}\n'
        },
    ),
    "variables, tfvars and locals": (
        {
            "main.tf": VARIABLES + 'resource "terraform_data" "a" { input = local.both }\n'
            'resource "terraform_data" "b" { triggers_replace = var.tags }\noutput "p" { value = local.prefix }\n',
            "terraform.tfvars": "n = 3\n",
        },
        {
            "main.tf": VARIABLES + 'resource "terraform_data" "a" { input = local.both }\n'
            'resource "terraform_data" "b" { triggers_replace = var.tags }\noutput "p" { value = local.prefix }\n',
            "terraform.tfvars": 'n = 4\ntags = { team = "ops" }\n',
        },
    ),
    "local modules": (
        {
            "main.tf": 'module "m" {\n  source = "./mod"\n  size = 2\n}\n'
            'resource "terraform_data" "user" { input = module.m.first }\noutput "f" { value = module.m.first }\n',
            "mod/main.tf": MODULE_CODE,
        },
        {
            "main.tf": 'module "m" {\n  source = "./mod"\n  size = 3\n}\n'
            'resource "terraform_data" "user" { input = module.m.first }\noutput "f" { value = module.m.first }\n',
            "mod/main.tf": MODULE_CODE.replace('"inner-', '"v2-'),
        },
    ),
    "lifecycle and moves": (
        {
            "main.tf": 'resource "terraform_data" "src" { input = 1 }\n'
            'resource "terraform_data" "f" {\n  input = "same"\n'
            "  lifecycle { replace_triggered_by = [terraform_data.src] }\n}\n"
            'resource "terraform_data" "old" { input = 5 }\nresource "terraform_data" "c" { input = 6 }\n'
        },
        {
            "main.tf": 'resource "terraform_data" "src" { input = 2 }\n'
            'resource "terraform_data" "f" {\n  input = "same"\n'
            "  lifecycle { replace_triggered_by = [terraform_data.src] }\n}\n"
            'resource "terraform_data" "new" { input = 5 }\nmoved {\n  from = terraform_data.old\n'
            '  to = terraform_data.new\n}\nresource "terraform_data" "c" {\n  count = 1\n  input = 6\n}\n'
        },
    ),
    "data sources read during apply": (
        {"main.tf": REMOTE_STATE.replace("STATE", "old"), "old.tfstate": STATE},
        {"main.tf": REMOTE_STATE.replace("STATE", "new"), "old.tfstate": STATE, "new.tfstate": STATE},
    ),
}


def terraform_plan(workdir: Path, old: Files | None, new: Files) -> tuple[dict[str, str], dict[str, str]]:
    """Actions by address and by output of ``terraform plan`` of ``new`` after an apply of ``old``."""
    assert TERRAFORM is not None
    (workdir / "terraformrc").write_text("")
    env = {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_CLI_CONFIG_FILE": str(workdir / "terraformrc"),
    }

    def run(directory: Path, *args: str) -> str:
        done = subprocess.run(
            [TERRAFORM, *args], cwd=directory, env=env, capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def write(directory: Path, files: Files) -> Path:
        for path, text in files.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(text)
        run(directory, "init", "-input=false", "-no-color")
        return directory

    after = write(workdir / "new", new)
    if old is not None:
        before = write(workdir / "old", old)
        run(before, "apply", "-auto-approve", "-input=false", "-no-color")
        shutil.copy(before / "terraform.tfstate", after / "terraform.tfstate")
    run(after, "plan", "-input=false", "-no-color", "-out=plan.bin")
    shown = json.loads(run(after, "show", "-json", "-no-color", "plan.bin"))
    resources = {r["address"]: _action(r["change"]["actions"]) for r in shown.get("resource_changes", ())}
    outputs = {name: _action(o["actions"]) for name, o in shown.get("output_changes", {}).items()}
    return {a: action for a, action in resources.items() if action != "read"}, outputs


def _action(terraform_actions: list[str]) -> str:
    return "replace" if sorted(terraform_actions) == ["create", "delete"] else terraform_actions[0]


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_plans_match_terraform(tmp_path: Path, scenario: str) -> None:
    old, new = SCENARIOS[scenario]
    expected_resources, expected_outputs = terraform_plan(tmp_path, old, new)
    result = replan(old, new)
    assert actions(result) == expected_resources
    assert dict(result.output_changes) == expected_outputs
