"""Benchmark: the builtin engine's re-plan after a one-file change, against its first plan.

A generated root module of 100 files x 20 ``terraform_data`` resources (2,000 resources, each reading a variable,
a local and another resource) is planned once from nothing, cold (only python-hcl2's grammar is warmed up). Then
one file changes and the code is planned again against the stored (serialized, JSON round-tripped) configuration of
the first run, as the operator does. Target (issue #5): the re-plan takes at most 10 % of the first plan's time.

Run: ``.venv/bin/python -m bench.builtin_engine [--files N] [--resources N]``
"""

from __future__ import annotations

import argparse
import json
import time

from chkmate.domain import builtin, hcl

TARGET = 0.10


def repository(files: int, resources: int) -> dict[str, str]:
    code = {
        "variables.tf": 'variable "env" { default = "prod" }\nlocals {\n  owner = "team-${var.env}"\n}\n',
    }
    for f in range(files):
        blocks = [
            f'resource "terraform_data" "r{f}_{r}" {{\n'
            f'  input = {{\n    name  = "r{f}-{r}-${{var.env}}"\n    owner = local.owner\n'
            f"    size  = {r * 10}\n    after = terraform_data.r{f}_{max(r - 1, 0)}.id\n  }}\n"
            f'  triggers_replace = ["{f}", "{r}"]\n}}\n'
            for r in range(resources)
        ]
        code[f"file_{f:03d}.tf"] = "\n".join(blocks)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--resources", type=int, default=20, help="resources per file")
    args = parser.parse_args()
    files = repository(args.files, args.resources)
    hcl.parse('warm_up = "grammar"\n')

    start = time.perf_counter()
    first = builtin.configuration(files)
    first_plan = builtin.plan(first, None)
    first_seconds = time.perf_counter() - start
    stored = json.dumps(builtin.serialize(first))

    changed = dict(files)  # file 7: one resource replaced (triggers_replace), one updated (size)
    changed["file_007.tf"] = files["file_007.tf"].replace('"7", "3"', '"7", "x"').replace("size  = 40", "size  = 41")
    start = time.perf_counter()
    second_plan = builtin.plan(builtin.configuration(changed), builtin.deserialize(json.loads(stored)))
    second_seconds = time.perf_counter() - start

    ratio = second_seconds / first_seconds
    print(f"resources: {len(first.resources)} in {len(files)} files; stored configuration: {len(stored)} bytes")
    print(f"first plan:  {first_seconds * 1000:8.1f} ms  {first_plan.summary.line()}")
    print(f"re-plan:     {second_seconds * 1000:8.1f} ms  {second_plan.summary.line()}")
    print(f"ratio: {ratio:.3f} (target <= {TARGET:.2f}): {'OK' if ratio <= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
