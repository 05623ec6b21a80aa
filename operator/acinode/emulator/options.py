"""The emulator's command-line flags (kept apart from ``app`` so that building the parser stays cheap)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: pick a free one)")
