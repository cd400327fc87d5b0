"""The terraform engine client against the real terraform: plans, applies, state, failures, deadlines, secrets.

Configs use only the built-in ``terraform_data`` resource and ``local-exec`` provisioner, which work offline.
Deadlines are tested with a fake engine (a shell script) that sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from chkmate import errors
from chkmate.api import conditions
from chkmate.clients import terraform
from chkmate.domain import plans

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None, reason="terraform is not installed (FACTS.md: /usr/local/bin/terraform)"
)

MODULE = """
variable "name" {
  type = string
}

resource "terraform_data" "member" {
  input = var.name
}

output "name" {
  value = terraform_data.member.output
}
"""

MAIN = """
terraform {
  # The operator keeps state in Secrets: this backend is replaced by a local one (and never contacted).
  backend "s3" {
    bucket = "nowhere"
    key    = "state"
    region = "us-east-1"
  }
}

variable "name" {
  type    = string
  default = "one"
}

resource "terraform_data" "kept" {
  input = "same"
}

resource "terraform_data" "named" {
  input = var.name
}

resource "terraform_data" "renewed" {
  triggers_replace = [var.name]
}

module "inner" {
  source = "../../modules/inner"
  name   = var.name
}

output "name" {
  value = module.inner.name
}
"""


def workspace(
    main: str = MAIN,
    *,
    state: bytes | None = None,
    vars: dict[str, str] | None = None,
    sensitive_vars: frozenset[str] = frozenset(),
    env: dict[str, str] | None = None,
) -> terraform.Workspace:
    """The config as ``stacks/net/main.tf`` next to a module in ``modules/inner``, like a repository."""
    files = {"stacks/net/main.tf": textwrap.dedent(main).encode(), "modules/inner/main.tf": MODULE.encode()}
    return terraform.Workspace(
        files=files, path="stacks/net", state=state, vars=vars or {}, sensitive_vars=sensitive_vars, env=env or {}
    )


@pytest.fixture
def engine(tmp_path: Path) -> terraform.Engine:
    return terraform.Engine("terraform", work_root=tmp_path / "work", timeout=30)


def resources(state: bytes) -> dict[str, dict[str, object]]:
    """address → attributes of every resource instance in a state file."""
    found = {}
    for resource in json.loads(state)["resources"]:
        prefix = f"{resource['module']}." if "module" in resource else ""
        for instance in resource["instances"]:
            found[f"{prefix}{resource['type']}.{resource['name']}"] = instance["attributes"]
    return found


# ---- plan, apply, re-plan


@needs_terraform
async def test_plan_apply_and_replan_shows_no_changes(engine: terraform.Engine) -> None:
    first = await engine.plan(workspace())
    assert first.exit_code == 2
    assert first.result.summary == plans.Summary(add=4)
    assert first.result.output_changes == {"name": "create"}
    assert (first.result.engine, first.result.engine_version) == ("terraform", await engine.version())
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in first.result.text
    assert first.plan_file.startswith(b"PK")  # a zip archive
    assert "$ init" in first.log and "$ plan" in first.log

    applied = await engine.apply(workspace(), first.plan_file)
    assert set(resources(applied.state)) == {
        "terraform_data.kept",
        "terraform_data.named",
        "terraform_data.renewed",
        "module.inner.terraform_data.member",
    }
    assert applied.outputs == {"name": "one"}
    assert "Apply complete! Resources: 4 added" in applied.log

    again = await engine.plan(workspace(state=applied.state))
    assert again.exit_code == 0
    assert not again.result.has_changes
    assert {change.action for change in again.result.changes} == {"no-op"}
    assert not list((engine.work_root / "runs").iterdir()), "run directories are removed"


@needs_terraform
async def test_runs_under_one_init_key_reuse_the_last_init(engine: terraform.Engine) -> None:
    """The second plan of an Environment runs without init; when the code needs a new init (here a new module
    call), Terraform says so, the plan runs again after one, and the new init is the one kept."""
    keyed = dataclasses.replace(workspace(), init_key="ns/prod")
    first = await engine.plan(keyed)
    assert "$ init" in first.log

    second = await engine.plan(keyed)
    assert "$ init" not in second.log and "$ plan" in second.log
    assert second.result.summary == first.result.summary == plans.Summary(add=4)

    other = await engine.plan(dataclasses.replace(keyed, init_key="ns/staging"))
    assert "$ init" in other.log, "another key has an init of its own"

    called_twice = MAIN + '\nmodule "again" {\n  source = "../../modules/inner"\n  name   = "two"\n}\n'
    grown = dataclasses.replace(workspace(called_twice), init_key="ns/prod")
    third = await engine.plan(grown)
    assert "Module not installed" in third.log and "$ init" in third.log
    assert third.result.summary == plans.Summary(add=5)

    fourth = await engine.plan(grown)
    assert "$ init" not in fourth.log and fourth.result.summary == plans.Summary(add=5)
    assert not list((engine.work_root / "runs").iterdir()), "run directories are removed"


@needs_terraform
async def test_a_kept_init_is_never_changed_by_a_run(engine: terraform.Engine) -> None:
    """Restored files are hard links: a run that needs init removes them before init writes, so what is kept stays
    as its init left it, and a kept folder that vanished is a plain init."""
    keyed = dataclasses.replace(workspace(), init_key="ns/prod")
    await engine.plan(keyed)
    kept = next((engine.work_root / "init-cache").iterdir()) / "current"
    before = {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()}
    assert Path(".terraform/modules/modules.json") in before
    probe = engine.work_root / "probe"  # another name for the kept file: it sees any write made in place
    os.link(kept / ".terraform/modules/modules.json", probe)

    called_twice = MAIN + '\nmodule "again" {\n  source = "../../modules/inner"\n  name   = "two"\n}\n'
    await engine.plan(dataclasses.replace(workspace(called_twice), init_key="ns/prod"))
    assert before[Path(".terraform/modules/modules.json")] != (kept / ".terraform/modules/modules.json").read_bytes()
    assert b'"again"' in (kept / ".terraform/modules/modules.json").read_bytes(), "the new init is kept whole"
    assert probe.read_bytes() == before[Path(".terraform/modules/modules.json")], "init wrote into the kept copy"

    shutil.rmtree(kept.resolve())  # the version `current` points to vanished (another run kept a newer one)
    assert "$ init" in (await engine.plan(keyed)).log


@needs_terraform
async def test_an_engine_asking_for_init_in_tofu_words_gets_it(tmp_path: Path) -> None:
    """The image runs OpenTofu as the `terraform` engine: its "Run tofu init" must be understood too."""
    wrapper = tmp_path / "terraform-speaking-tofu"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'{shutil.which("terraform")} "$@" > out.$$ 2> err.$$; code=$?\n'
        "sed 's/terraform init/tofu init/g' out.$$; sed 's/terraform init/tofu init/g' err.$$ >&2\n"
        "rm -f out.$$ err.$$; exit $code\n"
    )
    wrapper.chmod(0o755)
    engine = terraform.Engine(str(wrapper), work_root=tmp_path / "work", timeout=30)
    await engine.plan(dataclasses.replace(workspace(), init_key="ns/prod"))
    called_twice = MAIN + '\nmodule "again" {\n  source = "../../modules/inner"\n  name   = "two"\n}\n'
    grown = await engine.plan(dataclasses.replace(workspace(called_twice), init_key="ns/prod"))
    assert "tofu init" in grown.log and grown.result.summary == plans.Summary(add=5)


@needs_terraform
async def test_an_output_only_change_has_changes(engine: terraform.Engine) -> None:
    state = await plan_and_apply(engine, workspace())
    changed = await engine.plan(workspace(MAIN + 'output "extra" {\n  value = 1\n}\n', state=state))
    assert changed.exit_code == 2
    assert changed.result.summary.empty
    assert changed.result.output_changes["extra"] == "create"
    assert changed.result.has_changes


@needs_terraform
async def test_a_changed_input_updates_or_replaces(engine: terraform.Engine) -> None:
    state = await plan_and_apply(engine, workspace())
    run = await engine.plan(workspace(state=state, vars={"name": "two"}))
    actions = {change.address: change.action for change in run.result.changes}
    assert actions == {
        "terraform_data.kept": "no-op",
        "terraform_data.named": "update",
        "terraform_data.renewed": "replace",
        "module.inner.terraform_data.member": "update",
    }
    named = next(c for c in run.result.changes if c.address == "terraform_data.named")
    assert named.before is not None and named.after is not None
    assert (named.before["input"], named.after["input"]) == ("one", "two")
    line = MAIN.splitlines().index('resource "terraform_data" "named" {') + 1
    assert (named.file, named.line) == ("stacks/net/main.tf", line)
    applied = await engine.apply(workspace(state=state, vars={"name": "two"}), run.plan_file)
    assert applied.outputs == {"name": "two"}


@needs_terraform
async def test_destroy_and_drift(engine: terraform.Engine) -> None:
    state = await plan_and_apply(engine, workspace())
    drift = await engine.drift(workspace(state=state))
    assert drift.exit_code == 0
    assert not drift.result.has_changes
    destroy = await engine.plan(workspace(state=state), destroy=True)
    assert destroy.result.summary == plans.Summary(destroy=4)
    applied = await engine.apply(workspace(state=state), destroy.plan_file)
    assert resources(applied.state) == {}


# ---- failures


@needs_terraform
async def test_invalid_hcl_fails_the_plan_with_file_and_line(engine: terraform.Engine) -> None:
    broken = workspace()
    files = {**broken.files, "stacks/net/bad.tf": b'resource "terraform_data" "bad" {\n  input =\n}\n'}
    with pytest.raises(terraform.PlanFailed) as raised:
        await engine.plan(terraform.Workspace(files=files, path="stacks/net"))
    assert "stacks/net/bad.tf:2: Invalid expression" in raised.value.message
    assert raised.value.reason == conditions.Reasons.PLAN_FAILED
    assert not raised.value.retryable
    assert not list((engine.work_root / "runs").iterdir())


@needs_terraform
async def test_a_failed_apply_keeps_the_state_it_left(engine: terraform.Engine) -> None:
    main = MAIN + textwrap.dedent("""
        resource "terraform_data" "failing" {
          depends_on = [terraform_data.kept]
          provisioner "local-exec" {
            command = "echo token=$CLOUD_TOKEN; exit 1"
          }
        }
    """)
    secret = workspace(main, env={"CLOUD_TOKEN": "tok-0123456789"})
    run = await engine.plan(secret)
    with pytest.raises(terraform.ApplyFailed) as raised:
        await engine.apply(secret, run.plan_file)
    failure = raised.value
    assert failure.reason == conditions.Reasons.APPLY_FAILED
    assert "stacks/net/main.tf:" in failure.message and "local-exec provisioner error" in failure.message
    assert "tok-0123456789" not in failure.message and "(redacted)" in failure.message
    assert failure.state is not None
    assert "terraform_data.kept" in resources(failure.state)  # created before the failure: not lost
    tainted = json.loads(failure.state)["resources"]
    assert any(r["name"] == "failing" and r["instances"][0].get("status") == "tainted" for r in tainted)


@needs_terraform
async def test_a_stale_plan_is_refused_and_the_state_returned(engine: terraform.Engine) -> None:
    first = await engine.plan(workspace())
    state = (await engine.apply(workspace(), first.plan_file)).state
    with pytest.raises(terraform.ApplyFailed, match="Saved plan is stale") as raised:
        await engine.apply(workspace(state=state), first.plan_file)
    assert raised.value.state == state


async def test_a_missing_binary_is_engine_not_found(tmp_path: Path) -> None:
    engine = terraform.Engine("no-such-tofu", work_root=tmp_path, timeout=5, kind="tofu")
    with pytest.raises(terraform.EngineNotFound) as raised:
        await engine.plan(workspace())
    assert "no-such-tofu" in raised.value.message and "CHKMATE_TOFU_BINARY" in raised.value.message
    assert raised.value.reason == conditions.Reasons.ENGINE_NOT_FOUND
    assert not raised.value.retryable
    assert isinstance(raised.value, errors.ChkmateError)


@needs_terraform
@pytest.mark.parametrize(
    ("files", "path", "error"),
    [
        ({"../escape.tf": b""}, "", errors.InvalidSpec),
        ({"/etc/x.tf": b""}, "", errors.InvalidSpec),
        ({"README.md": b""}, "stacks/net", terraform.PathNotFound),
    ],
)
async def test_unusable_workspaces_are_refused(
    engine: terraform.Engine, files: dict[str, bytes], path: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await engine.plan(terraform.Workspace(files=files, path=path))


# ---- secrets


@needs_terraform
async def test_secrets_are_redacted_from_texts_logs_and_values(engine: terraform.Engine) -> None:
    main = """
        variable "api_key" {
          type = string
        }
        variable "password" {
          type      = string
          sensitive = true
        }
        resource "terraform_data" "keyed" {
          input = var.api_key
          provisioner "local-exec" {
            command = "echo key=${self.input} token=$CLOUD_TOKEN pw=${nonsensitive(var.password)}"
          }
        }
    """
    secret = workspace(
        main,
        vars={"api_key": "key-0123456789", "password": "pw-0123456789"},
        sensitive_vars=frozenset({"api_key"}),
        env={"CLOUD_TOKEN": "tok-0123456789"},
    )
    run = await engine.plan(secret)
    (keyed,) = run.result.changes
    assert keyed.after is not None and keyed.after["input"] == "(redacted)"
    applied = await engine.apply(secret, run.plan_file)
    assert "key=(redacted) token=(redacted) pw=(redacted)" in applied.log
    for text in (run.result.text, run.log, applied.log, repr(run), repr(applied), repr(secret)):
        assert "0123456789" not in text


# ---- deadlines

FAKE_ENGINE = """#!/bin/sh
# Answers `version`, then hangs with a child in its process group (which ignores interrupts).
if [ "$1" = version ]; then echo '{"terraform_version": "0.0.1"}'; exit 0; fi
if [ "$IGNORE_INTERRUPT" = 1 ]; then trap '' INT; fi
sleep 60 &
echo $! > "$CHILD_PID_FILE"
wait
"""


@pytest.fixture
def fake_engine(tmp_path: Path) -> Path:
    binary = tmp_path / "fake-terraform"
    binary.write_text(FAKE_ENGINE)
    binary.chmod(0o755)
    return binary


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def wait_dead(pid: int) -> None:
    for _ in range(100):
        if not alive(pid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} still runs")


@pytest.mark.parametrize("ignore_interrupt", ["0", "1"], ids=["stops-on-interrupt", "ignores-interrupt"])
async def test_a_deadline_stops_the_whole_process_group(
    fake_engine: Path, tmp_path: Path, ignore_interrupt: str
) -> None:
    engine = terraform.Engine(str(fake_engine), work_root=tmp_path / "work", timeout=0.5, grace=0.2)
    pid_file = tmp_path / "child.pid"
    hanging = workspace(env={"CHILD_PID_FILE": str(pid_file), "IGNORE_INTERRUPT": ignore_interrupt})
    with pytest.raises(terraform.PlanFailed, match=r"terraform init did not finish within 0.5s and was stopped") as e:
        await engine.plan(hanging)
    assert e.value.retryable
    await wait_dead(int(pid_file.read_text()))


async def test_cancelling_a_run_stops_the_engine(fake_engine: Path, tmp_path: Path) -> None:
    engine = terraform.Engine(str(fake_engine), work_root=tmp_path / "work", timeout=30, grace=0.2)
    pid_file = tmp_path / "child.pid"
    task = asyncio.create_task(engine.plan(workspace(env={"CHILD_PID_FILE": str(pid_file)})))
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_dead(int(pid_file.read_text()))
    assert not list((engine.work_root / "runs").iterdir())


async def plan_and_apply(engine: terraform.Engine, space: terraform.Workspace) -> bytes:
    run = await engine.plan(space)
    return (await engine.apply(space, run.plan_file)).state
