"""``acinode run`` as a subprocess against a test cluster, with its log kept for assertions and post-mortems."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

ACINODE = Path(sys.executable).with_name("acinode")

# Fast but realistic timings for tests: the lease still renews every 10 s as a kubelet's does.
FAST_SETTINGS = {
    # Hermetic: never ask a registry on the internet for an image's config (tests that do start their own).
    "ACINODE_REGISTRY_READ_IMAGE_CONFIGS": "false",
    "ACINODE_NODE_PROBE_INTERVAL_SECONDS": "1",
    "ACINODE_NODE_BACKEND_CHECK_TTL_SECONDS": "1",
    "ACINODE_NODE_API_TIMEOUT_SECONDS": "5",
}


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = {**os.environ, **FAST_SETTINGS, **(env or {})}
        # One identity per OperatorProcess, kept across its restarts (as a StatefulSet pod keeps its name): a
        # restarted operator resumes the VirtualNode Leases of its previous run at once instead of waiting for
        # them to expire. Safe because this object runs at most one process at a time.
        self.env.setdefault("ACINODE_REPLICA_ID", f"test-{uuid.uuid4().hex[:8]}")
        self.extra_args = list(extra_args)
        """More ``acinode run`` flags, e.g. ``--replica-id``."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(ACINODE), "run", "--kubeconfig", str(self.kubeconfig), "--verbose", *self.extra_args],
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
