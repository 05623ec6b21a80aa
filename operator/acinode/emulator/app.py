"""``acinode emulator``: run the server until SIGTERM/SIGINT, publishing ``endpoint.json`` for clients.

``endpoint.json`` (written atomically once listening, removed on a clean stop):
``{"url", "ca_file", "token", "pid", "subscription_id"}``. Logs are JSON lines on stderr; tokens and secure
values never appear in them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from acinode.emulator import config, server

ENDPOINT_FILE = "endpoint.json"
_STANDARD_RECORD_KEYS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("acinode.emulator")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    logging.getLogger("aiohttp").setLevel(logging.ERROR)


def write_endpoint(state_dir: Path, endpoint: dict[str, Any]) -> Path:
    path = state_dir / ENDPOINT_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the token
    with os.fdopen(fd, "w") as fh:
        json.dump(endpoint, fh)
    os.replace(tmp, path)
    return path


async def serve(cfg: config.EmulatorConfig) -> int:
    emulator = server.EmulatorServer(cfg)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    endpoint = write_endpoint(cfg.state_dir, emulator.endpoint())
    try:
        await stop.wait()
    finally:
        endpoint.unlink(missing_ok=True)
        await emulator.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config.config_from_args(args)
    except ValueError as exc:
        print(f"acinode emulator: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    try:
        return asyncio.run(serve(cfg))
    except OSError as exc:
        logging.getLogger(__name__).error("cannot serve", extra={"error": str(exc)})
        return 1
