"""The ``chkmate`` command line: plans, drift checks and audits without a cluster, and repository tooling.

Subcommands (``chkmate COMMAND --help``; docs/cli.md is the reference): ``plan``, ``drift`` and ``validate``
(:mod:`chkmate.cli_plan`), ``workflow`` (:mod:`chkmate.cli_workflow`), ``import`` (:mod:`chkmate.cli_import`),
``history`` (:mod:`chkmate.cli_history`), ``run-job`` (:mod:`chkmate.cli_run_job`, what runner Jobs run),
``scaffold`` and ``crds`` (here). A failure prints one line on stderr,
``chkmate COMMAND: error: ...``, and exits 1; no traceback. I/O: files, subprocesses and the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from chkmate import API_VERSION, cli_history, cli_import, cli_plan, cli_run_job, cli_workflow, errors
from chkmate.domain import scaffolds

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit status 1 (2 means "changes" for plan and drift)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="chkmate",
        description="Plan, check and sync Terraform the way the chkmate operator does, without a cluster.",
        epilog="Run `chkmate COMMAND --help` for a command's options; docs/cli.md is the full reference.",
    )
    parser.add_argument("--version", action="version", version=f"chkmate (API {API_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_plan.register(sub)
    cli_workflow.register(sub)
    _register_scaffold(sub)
    cli_import.register(sub)
    cli_history.register(sub)
    cli_run_job.register(sub)
    _register_crds(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except errors.ChkmateError as e:
        return _fail(args.command, e.message)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, and let nothing flush again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as e:  # a file we were asked to read or write
        return _fail(args.command, f"{e.filename}: {e.strerror}" if e.filename else str(e))
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted", EXIT_INTERRUPTED)
    return code


def _fail(command: str, message: str, code: int = EXIT_ERROR) -> int:
    print(f"chkmate {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


# ---- scaffold -------------------------------------------------------------------------------------------------


def _register_scaffold(sub: argparse._SubParsersAction[Parser]) -> None:
    scaffold = sub.add_parser(
        "scaffold",
        help="Write the files chkmate puts in a new repository.",
        description="Write the scaffold the operator commits to a repository it creates: for terraform, a "
        ".chkmate.yml, main.tf, variables.tf and outputs.tf that plan offline, a README and a .gitignore. "
        "Existing files are never overwritten without --force.",
    )
    scaffold.add_argument("dir", metavar="DIR", help="Folder to write into (created when missing).")
    scaffold.add_argument(
        "--purpose", choices=("terraform", "webapp"), required=True, help="What the repository holds."
    )
    scaffold.add_argument("--name", help="Repository name used in the files (default: the folder's name).")
    scaffold.add_argument("--description", default="", help="One line for the README.")
    scaffold.add_argument("--branch", default="main", help="Default branch, deployed to production (default: main).")
    scaffold.add_argument("--force", action="store_true", help="Overwrite files that exist.")
    scaffold.set_defaults(run=_scaffold)


def _scaffold(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        raise errors.ChkmateError(f"{args.dir}: not a folder")
    name = args.name or folder.resolve().name
    try:
        files = scaffolds.scaffold_files(
            args.purpose, repo_name=name, description=args.description, default_branch=args.branch
        )
    except ValueError as e:
        hint = "" if args.name else " (pass --name)"
        raise errors.ChkmateError(f"{e}{hint}") from e
    existing = sorted(path for path in files if (folder / path).exists())
    if existing and not args.force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise errors.ChkmateError(
            f"{os.path.join(args.dir, existing[0])} already exists{more}; nothing written (--force overwrites)"
        )
    for path, content in sorted(files.items()):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        print(f"wrote {os.path.join(args.dir, path)}")
    return 0


# ---- crds -----------------------------------------------------------------------------------------------------


def _register_crds(sub: argparse._SubParsersAction[Parser]) -> None:
    crds = sub.add_parser(
        "crds",
        help="Generate the CustomResourceDefinitions from the API models.",
        description="Write the CRDs generated from the API models into crds/ and the Helm chart, or check them.",
    )
    crds.add_argument("--check", action="store_true", help="Only check that the generated files are current.")
    crds.add_argument("--out", action="append", metavar="DIR", help="Output folder (repeatable).")
    crds.set_defaults(run=_crds)


def _crds(args: argparse.Namespace) -> int:
    from chkmate.api import crdgen

    forwarded = ["--check"] if args.check else []
    for out in args.out or ():
        forwarded += ["--out", out]
    return crdgen.main(forwarded)


if __name__ == "__main__":
    sys.exit(main())
