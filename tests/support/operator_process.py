"""``acinode run`` as a subprocess against a test cluster, with its log kept for assertions and post-mortems."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ACINODE = Path(sys.executable).with_name("acinode")

# Fast but realistic timings for tests: the lease still renews every 10 s as a kubelet's does.
FAST_SETTINGS = {
    "ACINODE_NODE_PROBE_INTERVAL_SECONDS": "1",
    "ACINODE_NODE_BACKEND_CHECK_TTL_SECONDS": "1",
    "ACINODE_NODE_API_TIMEOUT_SECONDS": "5",
}


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = {**os.environ, **FAST_SETTINGS, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(ACINODE), "run", "--kubeconfig", str(self.kubeconfig), "--verbose"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
