"""The ``acinode`` command line: flags into settings and a dispatch to the subcommand; no logic of its own.

Each subcommand's module is imported only when that subcommand runs, so ``acinode emulator`` never loads the
operator's dependencies and ``acinode --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import acinode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acinode",
        description="Serverless virtual nodes for Kubernetes, backed by Azure Container Instances.",
    )
    parser.add_argument("--version", action="version", version=f"acinode {acinode.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from acinode.emulator import options as emulator_options

    emulator = sub.add_parser(
        "emulator",
        help="run the ARM-compatible Azure Container Instances emulator (local trials and tests)",
        description="Serve an ARM-compatible Azure Container Instances API on loopback, for local trials, demos "
        "and tests without an Azure subscription.",
    )
    emulator_options.add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        from acinode.emulator import app as emulator_app

        return emulator_app.run(args)
    parser.print_help(sys.stderr)
    return 2
