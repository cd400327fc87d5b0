"""``chkmate workflow``: a GitHub Actions workflow that plans pull requests and applies the deploy branch, and
status badges in the README.

:func:`workflow` writes the workflow text from ``.chkmate.yml``: one plan job per environment planned on pull
requests (``chkmate plan --markdown``, posted as the sticky comment with ``gh api``), and one apply job per
environment of the deploy branch whose engine can apply (terraform/tofu, with the environment's ``vars`` as
``TF_VAR_*``). :func:`badges` renders shields.io static badges (security score, monthly cost) from builtin-engine
plans, and :func:`with_badges` puts them in a README between markers, replacing earlier ones. These three are
pure; :func:`run` reads and writes the files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chkmate import cli_render, cli_sources, errors, local
from chkmate.api import repoconfig
from chkmate.domain import comments, costs

WORKFLOW_PATH = ".github/workflows/chkmate.yml"
HEADER = "# Written by `chkmate workflow`"
BADGES_START = "<!-- chkmate:badges -->"
BADGES_END = "<!-- /chkmate:badges -->"
DEFAULT_PACKAGE = "chkmate-operator"
PYTHON_VERSION = "3.11"
SETUP: Mapping[str, str] = {
    "terraform": "      - uses: hashicorp/setup-terraform@v3\n        with:\n          terraform_wrapper: false\n",
    "tofu": "      - uses: opentofu/setup-opentofu@v1\n        with:\n          tofu_wrapper: false\n",
}
# Score thresholds of the badge colours, best first (shields.io colour names).
SCORE_COLORS: tuple[tuple[int, str], ...] = ((90, "brightgreen"), (70, "yellow"), (50, "orange"), (0, "red"))


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "workflow",
        help="Write a GitHub Actions workflow (plan on pull requests, apply on push) and README badges.",
        description=f"Write {WORKFLOW_PATH} into PATH from its .chkmate.yml: pull requests get a plan per "
        "environment as a sticky comment; a push to the deploy branch applies its terraform/tofu environments. "
        "Then add security-score and cost badges to README.md, from builtin-engine plans.",
    )
    parser.add_argument("path", metavar="PATH", help="The repository's folder (where .chkmate.yml is).")
    parser.add_argument("--deploy-branch", default="main", metavar="BRANCH", help="Branch applied on push (main).")
    parser.add_argument(
        "--package",
        default=DEFAULT_PACKAGE,
        metavar="SPEC",
        help=f"What the workflow pip-installs to get chkmate (default: {DEFAULT_PACKAGE}).",
    )
    parser.add_argument("--no-badges", action="store_true", help="Leave README.md alone.")
    parser.add_argument("--force", action="store_true", help="Overwrite a workflow file chkmate did not write.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = cli_sources.read_source(args.path)
    config = local.load_config(source)
    if config is None:
        raise local.LocalError(f"{args.path} has no {repoconfig.FILENAME}: write one first (chkmate scaffold)")
    try:
        repoconfig.check_branch_name(args.deploy_branch)
    except ValueError as e:
        raise local.LocalError(f"--deploy-branch: {e}") from e
    target = Path(args.path, WORKFLOW_PATH)
    if target.exists() and not args.force and not target.read_text(errors="replace").startswith(HEADER):
        raise local.LocalError(f"{target} exists and was not written by chkmate; --force overwrites it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(workflow(config, deploy_branch=args.deploy_branch, package=args.package))
    print(f"wrote {target}")
    if not args.no_badges:
        readme = Path(args.path, "README.md")
        old = readme.read_text() if readme.exists() else f"# {Path(args.path).resolve().name}\n"
        readme.write_text(with_badges(old, badges(_audits(source, config, args.deploy_branch))))
        print(f"updated {readme} (badges between {BADGES_START} and {BADGES_END})")
    return 0


# ---- the workflow ---------------------------------------------------------------------------------------------


def workflow(config: repoconfig.RepoConfig, *, deploy_branch: str, package: str = DEFAULT_PACKAGE) -> str:
    """The workflow file for ``config`` (see the module docstring)."""
    planned = {name: env for name, env in sorted(config.environments.items()) if env.plan_on_pull_request}
    applied = {
        name: env
        for name, env in sorted(config.environments.items())
        if env.branch == deploy_branch and env.engine != "builtin"
    }
    if not planned and not applied:
        raise local.LocalError(f"no environment plans pull requests or applies {deploy_branch}: nothing to write")
    triggers = []
    if planned:
        triggers.append(f"  pull_request:\n    branches: {_flow(sorted({env.branch for env in planned.values()}))}\n")
    if applied:
        triggers.append(f"  push:\n    branches: {_flow([deploy_branch])}\n")
    builtin_only = sorted(
        name for name, env in config.environments.items() if env.branch == deploy_branch and env.engine == "builtin"
    )
    jobs = [_plan_job(name, env) for name, env in planned.items()]
    jobs += [_apply_job(name, env, deploy_branch) for name, env in applied.items()]
    return (
        _preamble(deploy_branch, builtin_only)
        + "name: chkmate\n\non:\n"
        + "".join(triggers)
        + "\npermissions:\n  contents: read\n\n"
        + f'env:\n  CHKMATE_PACKAGE: {json.dumps(package)}\n  TF_IN_AUTOMATION: "1"\n\n'
        + "jobs:\n"
        + "\n".join(jobs)
    )


def _preamble(deploy_branch: str, builtin_only: Sequence[str]) -> str:
    lines = [
        f"{HEADER} from .chkmate.yml; run it again after changing the environments there.",
        "# Pull requests: each environment of the target branch is planned and the result posted as one comment",
        "# per environment, edited on every push. Pushes to " + deploy_branch + " apply its terraform/tofu "
        "environments.",
        "# Credentials: add what the runs need as GitHub secrets and map them under each job's env.",
        "# Approvals: protection rules (required reviewers) on a GitHub environment hold its apply job.",
        "# State: applies use the backend of the Terraform code; without a remote backend the state is lost.",
    ]
    if builtin_only:
        lines.append(f"# Planned only (the builtin engine cannot apply): {', '.join(builtin_only)}.")
    return "\n".join(lines) + "\n"


def _plan_job(name: str, env: repoconfig.EnvConfig) -> str:
    state, state_flag = "", ""
    if env.engine != "builtin":  # plan against the state of the code's backend, as the apply job will
        state = (
            "          state=()\n"
            f"          {env.engine} -chdir={shlex.quote(env.path)} init -input=false -no-color > /dev/null\n"
            f'          {env.engine} -chdir={shlex.quote(env.path)} state pull > "$RUNNER_TEMP/state.json"\n'
            '          if [ -s "$RUNNER_TEMP/state.json" ]; then state=(--state "$RUNNER_TEMP/state.json"); fi\n'
        )
        state_flag = ' "${state[@]}"'
    marker = comments.marker(name)
    return f"""\
  plan-{name}:
    name: plan {name}
    if: github.event_name == 'pull_request' && github.base_ref == {_literal(env.branch)}
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
{_credentials(env)}    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{PYTHON_VERSION}"
      - name: Install chkmate
        run: pip install "$CHKMATE_PACKAGE"
{SETUP.get(env.engine, "")}      - name: Plan
        run: |
{state}          set +e
          chkmate plan . --env {name}{state_flag} --markdown > "$RUNNER_TEMP/plan.md"
          status=$?
          set -e
          test "$status" -ne 1
      - name: Comment on the pull request
        env:
          GH_TOKEN: ${{{{ github.token }}}}
          PR: ${{{{ github.event.pull_request.number }}}}
          MARKER: "{marker}"
          BODY: ${{{{ runner.temp }}}}/plan.md
        run: |
          id=$(gh api "repos/$GITHUB_REPOSITORY/issues/$PR/comments" --paginate \\
            --jq '.[] | select(.user.login == "github-actions[bot]" and (.body | startswith(env.MARKER))) | .id' \\
            | head -n 1)
          if [ -n "$id" ]; then
            gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "body=@$BODY" > /dev/null
          else
            gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$PR/comments" -F "body=@$BODY" > /dev/null
          fi
"""


def _apply_job(name: str, env: repoconfig.EnvConfig, deploy_branch: str) -> str:
    variables = "".join(f"          TF_VAR_{key}: {json.dumps(value)}\n" for key, value in sorted(env.vars.items()))
    env_block = f"        env:\n{variables}" if variables else ""
    return f"""\
  apply-{name}:
    name: apply {name}
    if: github.event_name == 'push' && github.ref == {_literal("refs/heads/" + deploy_branch)}
    runs-on: ubuntu-latest
    environment: {name}
    concurrency:
      group: chkmate-apply-{name}
      cancel-in-progress: false
{_credentials(env)}    steps:
      - uses: actions/checkout@v4
{SETUP[env.engine]}      - name: Apply
        working-directory: {json.dumps(env.path)}
{env_block}        run: |
          {env.engine} init -input=false -no-color
          {env.engine} apply -input=false -no-color -auto-approve
"""


def _credentials(env: repoconfig.EnvConfig) -> str:
    if env.credential is None:
        return ""
    secret = re.sub(r"[^A-Z0-9]+", "_", env.credential.upper())
    return (
        f"    # Credentials (the operator reads Secret {env.credential}): map GitHub secrets here, e.g.\n"
        f"    # env:\n    #   AWS_ACCESS_KEY_ID: ${{{{ secrets.{secret}_AWS_ACCESS_KEY_ID }}}}\n"
    )


def _literal(text: str) -> str:
    """A string literal of a GitHub Actions expression: single quotes, a quote inside doubled."""
    return "'" + text.replace("'", "''") + "'"


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


# ---- badges ---------------------------------------------------------------------------------------------------


def badges(audits: Mapping[str, local.LocalPlan | str]) -> str:
    """Markdown badges per environment: security score and monthly cost, or a grey "unknown" with the reason."""
    images = []
    for name, audit in audits.items():
        if isinstance(audit, str):
            images.append(_badge(f"{name} security", "unknown", "lightgrey", audit))
            images.append(_badge(f"{name} cost", "unknown", "lightgrey", audit))
            continue
        assert audit.security is not None and audit.cost is not None  # plans carry both
        score = audit.security.score
        color = next(color for floor, color in SCORE_COLORS if score >= floor)
        images.append(_badge(f"{name} security", f"{score}/100", color, cli_render.security_line(audit.security)))
        money = costs.format_money(audit.cost.monthly)
        images.append(_badge(f"{name} cost", f"{money}/month", "blue", cli_render.cost_line(audit.cost)))
    return " ".join(images)


def _badge(label: str, message: str, color: str, title: str) -> str:
    url = f"https://img.shields.io/badge/{_segment(label)}-{_segment(message)}-{color}"
    quoted = title.replace('"', "'")
    return f'![{label}: {message}]({url} "{quoted}")'


def _segment(text: str) -> str:
    """A shields.io static badge path segment: '-' and '_' doubled, the rest percent-encoded."""
    return urllib.parse.quote(text.replace("-", "--").replace("_", "__"), safe="")


def with_badges(readme: str, block: str) -> str:
    """``readme`` with the badges between the markers: replaced when present, else after the first heading."""
    section = f"{BADGES_START}\n{block}\n{BADGES_END}"
    pattern = re.compile(re.escape(BADGES_START) + r".*?" + re.escape(BADGES_END), re.DOTALL)
    if pattern.search(readme):
        return pattern.sub(lambda _: section, readme, count=1)
    lines = readme.splitlines(keepends=True)
    heading = next((index for index, line in enumerate(lines) if line.startswith("# ")), None)
    if heading is None:
        return f"{section}\n\n{readme}"
    head, rest = "".join(lines[: heading + 1]).rstrip("\n"), "".join(lines[heading + 1 :]).lstrip("\n")
    return f"{head}\n\n{section}\n" + (f"\n{rest}" if rest.strip() else "")


def _audits(
    source: cli_sources.Source, config: repoconfig.RepoConfig, deploy_branch: str
) -> dict[str, local.LocalPlan | str]:
    """Builtin-engine plans of the deploy branch's environments (a failure becomes its one-line reason)."""
    found: dict[str, local.LocalPlan | str] = {}
    quiet = local.Progress(False)
    for name, env in sorted(config.environments.items()):
        if env.branch != deploy_branch:
            continue
        run = local.Run(engine=local.EngineChoice("builtin"), vars=dict(env.vars))
        try:
            found[name] = asyncio.run(local.plan(source, local.Target(name, env, "badge"), run, quiet))
        except errors.ChkmateError as e:
            found[name] = e.message
    return found
