"""Regenerate the captured ``terraform show -json`` files next to this script with the real terraform.

Run from anywhere: ``.venv/bin/python tests/data/terraform/capture.py``. It applies ``plans/v1``, plans and
applies ``plans/v2``, then plans ``plans/v3`` and a refresh-only plan, in a temporary directory, and writes:

* ``create.json``: the first plan (creates, unknown values, a deferred data source read, outputs);
* ``changes.json``: v1 → v2 (no-op, update, both kinds of replace, delete, create, sensitive, module);
* ``outputs_only.json``: v2 → v3, where only an output changes;
* ``refresh_only.json``: a refresh-only plan of v3 (the output change only; no resource drift is possible
  with ``terraform_data``);
* ``state.json``: the state after applying v2 (for outputs).

The values are test values; ``hunter2-*`` are the "secrets" the tests expect to be masked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
# What v1's data source reads.
OTHER_STATE = {
    "version": 4,
    "terraform_version": "1.11.4",
    "serial": 1,
    "lineage": "other",
    "outputs": {"region": {"value": "eu-west-1", "type": "string"}},
    "resources": [],
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rc = work / "terraform.rc"
        rc.touch()
        env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        shutil.copytree(HERE / "plans" / "modules", work / "modules")
        root = work / "root"
        root.mkdir()
        (root / "other.tfstate").write_text(json.dumps(OTHER_STATE))

        def terraform(*args: str, codes: tuple[int, ...] = (0,)) -> str:
            done = subprocess.run(["terraform", *args], cwd=root, env=env, capture_output=True, text=True)
            if done.returncode not in codes:
                raise SystemExit(f"terraform {args[0]} failed:\n{done.stderr}")
            return done.stdout

        def use(version: str) -> None:
            shutil.copy(HERE / "plans" / version / "main.tf", root / "main.tf")

        def capture(name: str, *flags: str) -> None:
            terraform("plan", "-out=plan.bin", "-detailed-exitcode", "-input=false", "-no-color", *flags, codes=(0, 2))
            shown = json.loads(terraform("show", "-json", "plan.bin"))
            (HERE / f"{name}.json").write_text(json.dumps(shown, indent=1, sort_keys=True) + "\n")

        use("v1")
        terraform("init", "-input=false", "-no-color")
        capture("create")
        terraform("apply", "-input=false", "-no-color", "plan.bin")
        use("v2")
        capture("changes")
        terraform("apply", "-input=false", "-no-color", "plan.bin")
        state = json.loads((root / "terraform.tfstate").read_text())
        (HERE / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        use("v3")
        capture("outputs_only")
        capture("refresh_only", "-refresh-only")


if __name__ == "__main__":
    main()
