"""A chart release on the test control plane, and its operator replicas run locally exactly as the chart runs them.

No kubelet runs the StatefulSet's pods here, so ``ChartReplica`` plays pod N: it takes the operator container's
args and env from the *installed* StatefulSet, resolves what the kubelet would (``$(POD_INDEX)``, the downward
API) and runs ``acinode run`` with a TokenRequest token of the chart's ServiceAccount, the way an in-cluster pod
logs in. Only the health endpoint moves to a free loopback port, so that replicas can share this machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from helm import chart

ACINODE = Path(sys.executable).with_name("acinode")
# Fast but realistic timings, as tests/support/operator_process.py uses them.
FAST_SETTINGS = {
    "ACINODE_NODE_PROBE_INTERVAL_SECONDS": "1",
    "ACINODE_NODE_BACKEND_CHECK_TTL_SECONDS": "1",
    "ACINODE_NODE_API_TIMEOUT_SECONDS": "5",
}


@dataclasses.dataclass(frozen=True)
class Installed:
    """What tests need to know of an installed release."""

    release: str
    namespace: str
    service_account: str
    peering: str
    statefulset: dict[str, Any]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def pod_name_prefix(self) -> str:
        return str(self.statefulset["metadata"]["name"])


@contextmanager
def installed_release(
    helm: chart.Helm, cluster: Any, release: str, namespace: str, values: Mapping[str, Any]
) -> Iterator[Installed]:
    """Install, wait for the CRDs, yield; uninstall and delete the namespace afterwards."""
    helm.install(release, namespace, values)
    try:
        for crd in ("virtualnodes.acinode.dev", "clusterkopfpeerings.kopf.dev"):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")
        manifest = helm.manifest(release, namespace)
        yield Installed(
            release=release,
            namespace=namespace,
            service_account=manifest.one("ServiceAccount")["metadata"]["name"],
            peering=manifest.one("ClusterKopfPeering")["metadata"]["name"],
            statefulset=manifest.one("StatefulSet"),
        )
    finally:
        helm.uninstall(release, namespace)
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def service_account_kubeconfig(cluster: Any, installed: Installed, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token of the chart's ServiceAccount (what a pod gets mounted)."""
    token = cluster.kubectl(
        "create", "token", installed.service_account, "-n", installed.namespace, "--duration=1h"
    ).strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "acinode", "user": {"token": token}}],
        "contexts": [{"name": "acinode", "context": {"cluster": cluster_entry["name"], "user": "acinode"}}],
        "current-context": "acinode",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's $(VAR) expansion of container args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


class ChartReplica:
    """Pod ``index`` of the chart's StatefulSet, run as a local process under the ServiceAccount's token."""

    def __init__(self, installed: Installed, index: int, kubeconfig: Path, log_path: Path) -> None:
        self.installed = installed
        self.index = index
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pod_name(self) -> str:
        return f"{self.installed.pod_name_prefix}-{self.index}"

    def _container(self) -> dict[str, Any]:
        containers = self.installed.statefulset["spec"]["template"]["spec"]["containers"]
        operator: dict[str, Any] = next(c for c in containers if c["name"] == "operator")
        return operator

    def environment(self) -> dict[str, str]:
        """The operator container's env with the downward API resolved as the kubelet would for this pod."""
        downward = {
            "status.podIP": "127.0.0.1",
            "metadata.namespace": self.installed.namespace,
            "metadata.name": self.pod_name,
            "metadata.labels['apps.kubernetes.io/pod-index']": str(self.index),
        }
        env: dict[str, str] = {}
        for var in self._container().get("env", []):
            if "value" in var:
                env[var["name"]] = _expand(var["value"], env)
            else:
                env[var["name"]] = downward[var["valueFrom"]["fieldRef"]["fieldPath"]]
        return env

    def command(self) -> list[str]:
        env = self.environment()
        args = [_expand(arg, env) for arg in self._container()["args"]]
        args = [
            f"--liveness=http://127.0.0.1:{self.health_port}/healthz" if a.startswith("--liveness=") else a
            for a in args
        ]
        return [str(ACINODE), *args, "--kubeconfig", str(self.kubeconfig), "--verbose"]

    def start(self) -> None:
        env = {**os.environ, **FAST_SETTINGS, **self.environment()}
        env.pop("KUBECONFIG", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
