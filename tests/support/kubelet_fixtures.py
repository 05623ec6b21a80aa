"""Fixtures for the kubelet API and metrics on the real control plane: the operator with free ports for both,
the RBAC a kubeadm cluster gives the API server's kubelet client, and direct HTTPS calls to the kubelet port.

Import into a test module: ``from support.kubelet_fixtures import *`` (it overrides ``operator_process``).
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import socket
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.operator_process import OperatorProcess
from support.virtualnodes import wait_node_ready
from support.waiting import wait_until

__all__ = [
    "KubeletPorts",
    "apiserver_kubelet_rbac",
    "kubelet_get",
    "kubelet_operator_process",
    "kubelet_ports",
    "metrics_text",
    "ready_virtual_node",
]

APISERVER_KUBELET_USER = "kube-apiserver-kubelet-client"


@dataclasses.dataclass(frozen=True)
class KubeletPorts:
    kubelet: int
    metrics: int
    node_ip: str = "127.0.0.1"
    """The virtual nodes' InternalIP. Everything the tests start stays on loopback; the API server's node proxy
    (``/api/v1/nodes/<n>/proxy/…``) refuses loopback node addresses, so stats are read from the kubelet port
    directly, with the API server's own kubelet client certificate (what the proxy would present)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def kubelet_ports() -> KubeletPorts:
    return KubeletPorts(kubelet=_free_port(), metrics=_free_port())


@pytest.fixture(scope="session")
def apiserver_kubelet_rbac(cluster: Any) -> None:
    """What kubeadm sets up: the API server's kubelet client may use every kubelet API (logs, exec, stats)."""
    existing = cluster.kubectl("get", "clusterrolebinding", "-o", "name")
    if "clusterrolebinding.rbac.authorization.k8s.io/acinode-test:apiserver-kubelet-client" not in existing:
        cluster.kubectl(
            "create",
            "clusterrolebinding",
            "acinode-test:apiserver-kubelet-client",
            "--clusterrole=system:kubelet-api-admin",
            f"--user={APISERVER_KUBELET_USER}",
        )


@pytest.fixture(name="operator_process")
def kubelet_operator_process(
    cluster: Any,
    tmp_path: Path,
    crd_installed: None,
    kubelet_ports: KubeletPorts,
    apiserver_kubelet_rbac: None,
) -> Iterator[OperatorProcess]:
    """``acinode run`` serving the kubelet API and metrics on free loopback ports, with fast log following."""
    env = {
        "ACINODE_NODE_KUBELET_PORT": str(kubelet_ports.kubelet),
        "ACINODE_NODE_INTERNAL_IP": kubelet_ports.node_ip,
        "ACINODE_KUBELET_ADDRESS": "127.0.0.1",
        "ACINODE_KUBELET_LOG_FOLLOW_INTERVAL_SECONDS": "0.5",
        "ACINODE_KUBELET_LOG_FOLLOW_STATE_INTERVAL_SECONDS": "1",
        "ACINODE_METRICS_PORT": str(kubelet_ports.metrics),
        "ACINODE_METRICS_ADDRESS": "127.0.0.1",
        "ACINODE_PODS_STEADY_SYNC_SECONDS": "2",
        # Usage from the emulator's Azure Monitor: one-second intervals, read every second.
        "ACINODE_ACI_METRICS_GRAIN_SECONDS": "1",
        "ACINODE_KUBELET_USAGE_SAMPLE_INTERVAL_SECONDS": "1",
        "ACINODE_KUBELET_USAGE_READS_PER_SECOND": "20",
        "ACINODE_KUBELET_USAGE_READ_BURST": "20",
    }
    process = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log", env=env)
    process.start()
    try:
        wait_until(lambda: _listening(kubelet_ports.kubelet), 30, "the kubelet API to listen")
        wait_until(lambda: _listening(kubelet_ports.metrics), 10, "the metrics endpoint to listen")
        yield process
    finally:
        process.stop()
        print(process.log_text()[-5000:])


@pytest.fixture
def ready_virtual_node(make_virtual_node: Any, core_v1: client.CoreV1Api) -> dict[str, Any]:
    vn: dict[str, Any] = make_virtual_node()
    wait_node_ready(core_v1, vn["metadata"]["name"])
    return vn


def kubelet_get(
    port: int,
    path: str,
    *,
    token: str | None = None,
    cert: tuple[Path, Path] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """GET on the kubelet port directly (not through the API server); its certificate is not verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        connection.request("GET", path, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` whose labels include ``labels``; None if there is none."""
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None or match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None
