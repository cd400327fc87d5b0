"""``chkmate plan``, ``chkmate drift`` and ``chkmate validate``: local plans and checks of a repository.

Plans run through :mod:`chkmate.local`; output forms come from :mod:`chkmate.cli_render`. Exit codes follow
``terraform plan -detailed-exitcode``: 0 no changes, 2 changes (or drift), 1 an error. I/O: the terminal, files,
and the subprocesses :mod:`chkmate.local` starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import posixpath
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from chkmate import cli_render, cli_sources, local
from chkmate.api import repoconfig
from chkmate.domain import builtin, hcl

EXIT_CHANGES_HELP = "Exit status: 0 no changes, 2 changes, 1 an error (like terraform plan -detailed-exitcode)."
# A builtin-engine error that starts with a file position: ``stacks/web/main.tf:12: ...``.
_LOCATED = re.compile(r"^[^\s:]+\.(tf|tfvars)(:\d+)?: ")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    plan = sub.add_parser(
        "plan",
        help="Plan an environment of a repository, with cost and security, without a cluster.",
        description="Read .chkmate.yml in PATH, pick the environment (--env; else the one deploying the branch; "
        "else the only one), plan it with terraform or tofu when installed (the builtin engine otherwise), and "
        "print the changes, the monthly cost estimate and the security findings.",
        epilog=EXIT_CHANGES_HELP,
    )
    _source_arguments(plan)
    plan.add_argument(
        "--state",
        metavar="FILE",
        help="State to plan against: a terraform state, or a configuration plan --out saved "
        "with the builtin engine. Without it the plan starts from nothing.",
    )
    plan.add_argument(
        "--out",
        metavar="FILE",
        help="Save what an apply needs: terraform's plan file, or the builtin engine's "
        "planned configuration (which --state reads back).",
    )
    _output_arguments(plan)
    plan.set_defaults(run=run_plan)

    drift = sub.add_parser(
        "drift",
        help="Check an environment for drift: a refresh-only plan against a state.",
        description="Run a refresh-only plan of the environment against a state and show what changed outside "
        "Terraform. The state is --state FILE, else the terraform.tfstate a local apply left in the "
        "environment's folder. Needs terraform or tofu: the builtin engine cannot see real infrastructure.",
        epilog="Exit status: 0 no drift, 2 drift, 1 an error.",
    )
    _source_arguments(drift, engines=("terraform", "tofu"))
    drift.add_argument("--state", metavar="FILE", help="The state to check (e.g. from terraform state pull).")
    _output_arguments(drift)
    drift.set_defaults(run=run_drift)

    validate = sub.add_parser(
        "validate",
        help="Check .chkmate.yml and every Terraform file; print file:line: message for each problem.",
        description="Parse .chkmate.yml and every .tf, .tfvars and .tf.json file of PATH, check that each "
        "environment's folder holds Terraform, and evaluate each environment with the builtin engine (missing "
        "variables, references to nothing). Prints file:line: message per problem.",
        epilog="Exit status: 0 valid, 1 problems found.",
    )
    validate.add_argument("path", metavar="PATH", help="The repository's folder (where .chkmate.yml is).")
    validate.set_defaults(run=run_validate)


def _source_arguments(
    parser: argparse.ArgumentParser, engines: Sequence[str] = ("terraform", "tofu", "builtin")
) -> None:
    parser.add_argument("path", metavar="PATH", help="The repository: a folder (its working tree) or a git URL.")
    parser.add_argument("--env", metavar="NAME", help="Environment of .chkmate.yml to plan.")
    parser.add_argument("--branch", metavar="BRANCH", help="Read the files of this branch (git) instead of the folder.")
    parser.add_argument("--engine", choices=engines, help="Engine to use instead of the environment's.")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Set a variable (repeatable; wins over .chkmate.yml).",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    forms = parser.add_mutually_exclusive_group()
    forms.add_argument("--json", action="store_true", help="Print a JSON document (schema in docs/cli.md).")
    forms.add_argument("--markdown", action="store_true", help="Print the pull request comment body.")
    parser.add_argument("--progress", action="store_true", help="Print progress on stderr even when it is no terminal.")


def run_plan(args: argparse.Namespace) -> int:
    source, target, run = _prepare(args)
    state = local.read_state(args.state) if args.state else None
    found = asyncio.run(local.plan(source, target, dataclasses.replace(run, state=state), _progress(args)))
    if args.out:
        Path(args.out).write_bytes(found.artifact)
    return _emit(found, args)


def run_drift(args: argparse.Namespace) -> int:
    if not (args.state or args.env):
        raise local.LocalError("drift needs --state FILE or --env NAME (whose folder holds terraform.tfstate)")
    source, target, run = _prepare(args)
    local.check_drift_engine(run.engine)
    state_file = args.state or local.local_state_path(source, target)
    if state_file is None:
        where = posixpath.join(target.env.path, "terraform.tfstate")
        raise local.LocalError(f"no state for environment {target.name}: {where} does not exist; pass --state FILE")
    found = asyncio.run(
        local.drift(source, target, dataclasses.replace(run, state=local.read_state(str(state_file))), _progress(args))
    )
    return _emit(found, args)


def _prepare(args: argparse.Namespace) -> tuple[cli_sources.Source, local.Target, local.Run]:
    variables = local.parse_vars(args.var)  # before any I/O: a typo fails fast
    source = cli_sources.read_source(args.path, branch=args.branch)
    target = local.pick_environment(local.load_config(source), name=args.env, branch=source.branch)
    engine = local.choose_engine(args.engine, target.env.engine, os.environ)
    if engine.note:
        print(f"chkmate: {engine.note}", file=sys.stderr)
    run = local.Run(engine=engine, vars={**target.env.vars, **variables}, work_dir=local.work_dir(os.environ))
    return source, target, run


def _progress(args: argparse.Namespace) -> local.Progress:
    return local.Progress(args.progress or sys.stderr.isatty())


def _emit(found: local.LocalPlan, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(cli_render.document(found), indent=2))
    elif args.markdown:
        print(cli_render.markdown(found), end="")
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(cli_render.text(found, color=color), end="")
    return found.exit_code


# ---- validate -------------------------------------------------------------------------------------------------


def run_validate(args: argparse.Namespace) -> int:
    source = cli_sources.read_source(args.path)
    problems, config = _config_problems(source)
    texts = {path: data for path, data in source.files.items() if hcl.is_terraform_file(path)}
    parse_errors = [str(error) for error in hcl.check_files(_decoded(source, texts, problems))]
    problems += [source.shown(error) for error in parse_errors]
    if config is not None and not parse_errors:
        problems += _environment_problems(source, config)
    for problem in problems:
        print(problem)
    if problems:
        print(f"chkmate validate: {cli_render.count(len(problems), 'problem')}", file=sys.stderr)
        return 1
    environments = cli_render.count(len(config.environments), "environment") if config else "no .chkmate.yml"
    print(f"{source.location}: valid ({environments}, {cli_render.count(len(texts), 'Terraform file')})")
    return 0


def _config_problems(source: cli_sources.Source) -> tuple[list[str], repoconfig.RepoConfig | None]:
    data = source.files.get(repoconfig.FILENAME)
    if data is None:
        return [], None
    try:
        return [], repoconfig.parse(data.decode("utf-8-sig", errors="replace"))
    except repoconfig.RepoConfigError as e:
        return [source.shown(str(problem)) for problem in e.problems], None


def _decoded(source: cli_sources.Source, files: dict[str, bytes], problems: list[str]) -> dict[str, str]:
    texts = {}
    for path, data in sorted(files.items()):
        try:
            texts[path] = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            problems.append(f"{source.shown(path)}: not UTF-8 text (byte {e.start})")
    return texts


def _environment_problems(source: cli_sources.Source, config: repoconfig.RepoConfig) -> list[str]:
    """Per environment: its folder holds Terraform, and the builtin engine can evaluate it."""
    config_text = source.files[repoconfig.FILENAME].decode("utf-8-sig", errors="replace")
    texts = {
        path: data.decode("utf-8-sig", errors="replace")
        for path, data in source.files.items()
        if path.endswith((".tf", ".tfvars"))
    }
    problems = []
    for name, env in sorted(config.environments.items()):
        prefix = "" if env.path == "." else env.path + "/"
        if not any(
            path.startswith(prefix) and "/" not in path[len(prefix) :] for path in texts if path.endswith(".tf")
        ):
            line = _key_line(config_text, ("environments", name, "path"))
            where = f"{repoconfig.FILENAME}:{line}" if line else repoconfig.FILENAME
            problems.append(f"{source.shown(where)}: environments.{name}.path: no .tf files in {env.path}")
            continue
        try:
            builtin.configuration(texts, path=env.path, variables=dict(env.vars))
        except builtin.ConfigurationError as e:
            message = e.message if _LOCATED.match(e.message) else f"{repoconfig.FILENAME}: {e.message}"
            problems.append(f"{source.shown(message)} (environment {name})")
    return problems


def _key_line(text: str, keys: Sequence[str]) -> int | None:
    """The line of a nested key of a YAML document (the text already parsed once, so it is valid YAML)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return line
        match = next(((k, v) for k, v in node.value if k.value == key), None)
        if match is None:
            return line
        line, node = match[0].start_mark.line + 1, match[1]
    return line
