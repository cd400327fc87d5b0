"""Reading ``terraform show -json``: actions, counts, masks, unknowns, outputs, drift, redaction, locations.

The JSON files were captured from terraform 1.11 by ``tests/data/terraform/capture.py`` (the configs are in
``tests/data/terraform/plans``); ``hunter2-*`` are the values the configs mark sensitive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chkmate.domain import plans, tfjson

DATA = Path(__file__).parents[1] / "data" / "terraform"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


def by_address(result: plans.PlanResult) -> dict[str, plans.ResourceChange]:
    return {change.address: change for change in result.changes}


# ---- actions


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["no-op"], "no-op"),
        (["create"], "create"),
        (["read"], "read"),
        (["update"], "update"),
        (["delete"], "delete"),
        (["delete", "create"], "replace"),
        (["create", "delete"], "replace"),
        (["forget"], "delete"),
    ],
)
def test_action_lists_map_to_one_action(actions: list[str], expected: str) -> None:
    assert tfjson.action(actions) == expected


def test_an_unknown_action_list_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown terraform action"):
        tfjson.action(["explode"])


# ---- a first plan: everything created


def test_first_plan_creates_everything_and_reads_the_deferred_data_source() -> None:
    result = tfjson.parse_plan(load("create.json"))
    actions = {address: change.action for address, change in by_address(result).items()}
    assert actions == {
        "data.terraform_remote_state.later": "read",
        "terraform_data.removed": "create",
        "terraform_data.replaced": "create",
        "terraform_data.replaced_first": "create",
        "terraform_data.same": "create",
        "terraform_data.secret": "create",
        "terraform_data.updated": "create",
        "module.pair.terraform_data.member[0]": "create",
        "module.pair.terraform_data.member[1]": "create",
    }
    assert result.summary == plans.Summary(add=8)
    assert result.output_changes == {"name": "create", "password": "create"}
    assert result.has_changes


def test_created_values_show_unknowns_and_no_before() -> None:
    change = by_address(tfjson.parse_plan(load("create.json")))["terraform_data.updated"]
    assert change.before is None
    assert change.after == {
        "id": tfjson.KNOWN_AFTER_APPLY,
        "input": "one",
        "output": tfjson.KNOWN_AFTER_APPLY,
        "triggers_replace": None,
    }
    assert (change.type, change.name, change.module) == ("terraform_data", "updated", "")


def test_module_resources_carry_their_module() -> None:
    change = by_address(tfjson.parse_plan(load("create.json")))["module.pair.terraform_data.member[1]"]
    assert (change.module, change.type, change.name) == ("module.pair", "terraform_data", "member")
    assert change.after is not None
    assert change.after["input"] == "one-1"


# ---- a second plan: every kind of change


def test_every_kind_of_change() -> None:
    result = tfjson.parse_plan(load("changes.json"))
    actions = {address: change.action for address, change in by_address(result).items()}
    assert actions == {
        "terraform_data.added": "create",
        "terraform_data.removed": "delete",
        "terraform_data.replaced": "replace",  # ["delete", "create"]
        "terraform_data.replaced_first": "replace",  # ["create", "delete"]: create_before_destroy
        "terraform_data.same": "no-op",
        "terraform_data.secret": "update",
        "terraform_data.updated": "update",
        "module.pair.terraform_data.member[0]": "update",
        "module.pair.terraform_data.member[1]": "update",
    }
    # Replacements count in add and destroy, as Terraform prints them.
    assert result.summary == plans.Summary(add=3, change=4, destroy=3)
    assert result.output_changes == {"greeting": "create", "name": "update", "password": "update"}


def test_updates_and_deletes_keep_before_and_after() -> None:
    changes = by_address(tfjson.parse_plan(load("changes.json")))
    updated = changes["terraform_data.updated"]
    assert updated.before is not None and updated.after is not None
    assert (updated.before["input"], updated.after["input"]) == ("one", "two")
    assert (updated.before["output"], updated.after["output"]) == ("one", tfjson.KNOWN_AFTER_APPLY)
    removed = changes["terraform_data.removed"]
    assert removed.before is not None and removed.before["input"] == "bye"
    assert removed.after is None
    assert not changes["terraform_data.same"].changes_something


def test_sensitive_values_are_masked_and_leaked_copies_redacted() -> None:
    secret = by_address(tfjson.parse_plan(load("changes.json")))["terraform_data.secret"]
    assert secret.before is not None and secret.after is not None
    assert secret.before["input"] == {"password": plans.SENSITIVE, "user": "admin"}
    assert secret.after["input"] == {"password": plans.SENSITIVE, "user": "admin"}
    # terraform_data copies input to output without the sensitive mark: the known secret is redacted there.
    assert secret.before["output"] == {"password": tfjson.REDACTED, "user": "admin"}


@pytest.mark.parametrize("name", ["create.json", "changes.json", "outputs_only.json", "refresh_only.json"])
def test_no_sensitive_value_survives_parsing(name: str) -> None:
    result = tfjson.parse_plan(load(name), refresh_only=name == "refresh_only.json")
    assert "hunter2" not in repr(result)


def test_extra_secrets_are_redacted_from_values() -> None:
    result = tfjson.parse_plan(load("changes.json"), secrets=["admin"])
    secret = by_address(result)["terraform_data.secret"]
    assert secret.after is not None
    assert secret.after["input"] == {"password": plans.SENSITIVE, "user": tfjson.REDACTED}


# ---- outputs only, no changes, drift


def test_an_output_only_change_has_changes_without_resource_changes() -> None:
    result = tfjson.parse_plan(load("outputs_only.json"))
    assert {change.action for change in result.changes} == {"no-op"}
    assert result.summary.empty
    assert result.output_changes["greeting"] == "update"
    assert result.has_changes


def test_no_changes() -> None:
    shown = load("outputs_only.json")
    shown["output_changes"]["greeting"]["actions"] = ["no-op"]
    assert not tfjson.parse_plan(shown).has_changes


def test_a_refresh_only_plan_reads_the_drift() -> None:
    # Captured: terraform_data cannot drift, so the refresh-only plan only saves a changed output.
    result = tfjson.parse_plan(load("refresh_only.json"), refresh_only=True)
    assert result.changes == ()
    assert result.output_changes["greeting"] == "update"
    # resource_drift has the resource_changes format (hand-made: no built-in resource can drift).
    drifted = {
        "address": "aws_s3_bucket.logs",
        "mode": "managed",
        "type": "aws_s3_bucket",
        "name": "logs",
        "change": {
            "actions": ["update"],
            "before": {"acl": "private", "token": "tok"},
            "after": {"acl": "public-read", "token": "tok"},
            "before_sensitive": {"token": True},
            "after_sensitive": {"token": True},
        },
    }
    shown = {**load("refresh_only.json"), "resource_drift": [drifted]}
    (change,) = tfjson.parse_plan(shown, refresh_only=True).changes
    assert change.action == "update"
    assert change.after == {"acl": "public-read", "token": plans.SENSITIVE}
    assert tfjson.parse_plan(shown).changes == ()  # a normal plan reports resource_changes only


# ---- masks and unknowns in depth


def test_nested_masks_and_unknowns() -> None:
    shown = {
        "resource_changes": [
            {
                "address": "x.y",
                "mode": "managed",
                "type": "x",
                "name": "y",
                "deposed": "abc123",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": {"rules": [{"port": 80}, {"port": 443}], "tags": {"a": "1"}},
                    "after_unknown": {"rules": [{}, {"id": True}], "arn": True, "tags": {}, "extra": {"k": False}},
                    "after_sensitive": {"rules": [False, {"port": True}], "tags": True},
                },
            }
        ]
    }
    (change,) = tfjson.parse_plan(shown).changes
    assert change.address == "x.y (deposed object abc123)"
    assert change.after == {
        "rules": [{"port": 80}, {"port": plans.SENSITIVE, "id": tfjson.KNOWN_AFTER_APPLY}],
        "tags": plans.SENSITIVE,
        "arn": tfjson.KNOWN_AFTER_APPLY,
    }


# ---- secrets


def test_sensitive_values_lists_the_plans_secrets() -> None:
    found = tfjson.sensitive_values(load("changes.json"))
    assert {"hunter2-v1", "hunter2-v2"} <= found
    assert "admin" not in found
    assert "two" not in found  # a variable that is not sensitive


@pytest.mark.parametrize(
    ("value", "secrets", "expected"),
    [
        ("token=abc", ["abc"], "token=(redacted)"),
        ("abcdef abc", ["abc", "abcdef"], "(redacted) (redacted)"),  # longest first
        ({"a": ["x-abc", 3]}, ["abc"], {"a": ["x-(redacted)", 3]}),
        ("nothing", ["", "zzz"], "nothing"),
        ("nothing", [], "nothing"),
    ],
)
def test_redact(value: Any, secrets: list[str], expected: Any) -> None:
    assert tfjson.redact(value, secrets) == expected


# ---- state outputs


def test_state_outputs_mask_sensitive_ones() -> None:
    assert tfjson.parse_state_outputs(load("state.json")) == {
        "greeting": "hello",
        "name": "two",
        "password": plans.SENSITIVE,
    }
    assert tfjson.parse_state_outputs({"version": 4}) == {}


# ---- where resources are declared


def test_declarations_and_locate() -> None:
    files = {
        "stacks/net/main.tf": (DATA / "plans" / "v2" / "main.tf").read_text(),
        "stacks/net/other.tf.json": '{"resource": {}}',
    }
    declared = tfjson.declarations(files)
    assert declared["terraform_data.updated"] == ("stacks/net/main.tf", 17)
    located = by_address(tfjson.locate(tfjson.parse_plan(load("changes.json")), declared))
    assert (located["terraform_data.updated"].file, located["terraform_data.updated"].line) == (
        "stacks/net/main.tf",
        17,
    )
    # Module resources are declared in the module, which is not scanned.
    assert located["module.pair.terraform_data.member[0]"].file is None
    # A resource gone from the configuration has no declaration.
    assert located["terraform_data.removed"].line is None
