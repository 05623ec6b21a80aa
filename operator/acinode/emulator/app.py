"""Placeholder: the emulator's HTTP server (the ACI emulator issue builds it)."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    print("acinode emulator: not built yet", file=sys.stderr)
    return 1
