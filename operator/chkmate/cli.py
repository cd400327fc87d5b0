"""The ``chkmate`` command line. I/O: files and the terminal.

Subcommands grow with the engines; each prints one clear line and exits non-zero on error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chkmate import API_VERSION


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chkmate", description="Plan, check and sync Terraform the way the chkmate operator does."
    )
    parser.add_argument("--version", action="version", version=f"chkmate (API {API_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    crds = sub.add_parser("crds", help="Generate the CustomResourceDefinitions from the API models.")
    crds.add_argument("--check", action="store_true", help="Only check that the generated files are current.")
    crds.add_argument("--out", action="append", metavar="DIR", help="Output folder (repeatable).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crds":
        from chkmate.api import crdgen

        forwarded = ["--check"] if args.check else []
        for out in args.out or ():
            forwarded += ["--out", out]
        return crdgen.main(forwarded)
    return 2


if __name__ == "__main__":
    sys.exit(main())
