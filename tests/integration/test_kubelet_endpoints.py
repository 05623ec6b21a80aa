"""The kubelet endpoints of issue 19 on the real control plane, with ``acinode run`` and the ACI emulator:
``/runningpods/``, ``kubectl attach`` (ACI's output-only attach), ``kubectl port-forward`` (refused: ACI has no
port-forward API), exec following the client's terminal size, and the serving certificate through a
``kubernetes.io/kubelet-serving`` CSR, approved and not.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import socket
import ssl
import struct
import subprocess
import termios
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from support.kubelet_fixtures import *  # noqa: F403  (fixtures; overrides operator_process)
from support.kubelet_fixtures import KubeletPorts, kubelet_get
from support.operator_process import OperatorProcess
from support.waiting import wait_until

TOLERATIONS = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
TRANSPORTS = [
    pytest.param({}, id="websocket-translated-to-spdy-by-the-api-server"),
    pytest.param(
        {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"},
        id="spdy-passed-through",
    ),
]
CSR_LINE = re.compile(r"until CertificateSigningRequest (acinode-kubelet-serving-[a-z0-9]+) ")


def pod_body(
    node: dict[str, Any], name: str, restart_policy: str = "Always", **container: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "nodeName": node["metadata"]["name"],
            "tolerations": TOLERATIONS,
            "containers": [
                {
                    "name": "main",
                    "image": "nginx",  # serves until stopped (busybox without a command exits at once)
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                    **container,
                }
            ],
        },
    }


def run_pod(core: client.CoreV1Api, namespace: str, body: dict[str, Any]) -> None:
    core.create_namespaced_pod(namespace, body)
    name = body["metadata"]["name"]
    wait_until(
        lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running", 60, f"pod {name} Running"
    )


def kubectl(cluster: Any, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def apiserver_kubelet_client(cluster: Any) -> tuple[Path, Path]:
    assert cluster.control_plane is not None, "needs the project's own control plane (its PKI)"
    pki = cluster.control_plane.pki_dir
    return pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"


def emulator_sessions(emulator: Any) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/sessions", headers={"Authorization": f"Bearer {emulator.token}"}
    )
    context = ssl.create_default_context(cafile=emulator.ca_file)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        sessions: list[dict[str, Any]] = json.loads(response.read())["sessions"]
    return sessions


# --- /runningpods/ ------------------------------------------------------------------------------------------


def test_runningpods_lists_the_nodes_running_pods_in_the_kubelets_format(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    kubelet_ports: KubeletPorts,
) -> None:
    node = ready_virtual_node["metadata"]["name"]
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "runner", image="nginx:1.27"))
    uid = core_v1.read_namespaced_pod("runner", namespace).metadata.uid
    path = "/runningpods/"

    def listed() -> dict[str, Any] | None:
        # The API server's node proxy refuses loopback node addresses (below): read the kubelet port as the proxy
        # would, with the API server's kubelet client certificate and the proxied path.
        status, payload = kubelet_get(
            kubelet_ports.kubelet,
            path,
            cert=apiserver_kubelet_client(cluster),
            headers={"X-Forwarded-Uri": f"/api/v1/nodes/{node}/proxy{path}"},
        )
        assert status == 200, (status, payload[:300])
        body: dict[str, Any] = json.loads(payload)
        return body if any(p["metadata"]["name"] == "runner" for p in body["items"]) else None

    body = wait_until(listed, 30, "the pod in /runningpods/")
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    (item,) = [p for p in body["items"] if p["metadata"]["name"] == "runner"]
    assert item["metadata"] == {
        "name": "runner",
        "namespace": namespace,
        "uid": uid,
        "creationTimestamp": None,
    }
    assert item["spec"] == {"containers": [{"name": "main", "image": "nginx:1.27", "resources": {}}]}

    proxied = kubectl(cluster, "get", "--raw", f"/api/v1/nodes/{node}/proxy/runningpods/")
    assert proxied.returncode != 0 and "not allowed" in proxied.stderr, (
        "the API server proxies only to non-loopback node addresses; with a routable InternalIP this returns "
        f"the same list: {proxied.stderr}"
    )


# --- attach -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kubectl_attach_streams_the_containers_output_until_it_ends(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    transport: dict[str, str],
) -> None:
    script = "echo attached-1; sleep 3; echo attached-2; sleep 1; echo attached-3"
    body = pod_body(ready_virtual_node, "talker", restart_policy="Never", command=["sh", "-c", script])
    run_pod(core_v1, namespace, body)
    result = kubectl(cluster, "attach", "-n", namespace, "talker", "-c", "main", env=transport)
    assert result.returncode == 0, result.stderr
    assert "attached-1\nattached-2\nattached-3\n" in result.stdout


def test_kubectl_attach_with_stdin_is_refused_naming_why(
    cluster: Any, ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "quiet"))
    result = kubectl(cluster, "attach", "-i", "-n", namespace, "quiet", "-c", "main")
    assert result.returncode != 0
    assert "ACI's attach streams the container's output only" in result.stderr, result.stderr


# --- port-forward -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kubectl_port_forward_is_refused_naming_why(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    transport: dict[str, str],
) -> None:
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "served", ports=[{"containerPort": 80}]))
    result = kubectl(
        cluster,
        "port-forward",
        "-n",
        namespace,
        "pod/served",
        "--address=127.0.0.1",
        ":80",
        env=transport,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Azure Container Instances has no port-forward API" in result.stderr, result.stderr


# --- exec terminal size -------------------------------------------------------------------------------------


def exec_in_a_terminal(
    cluster: Any, args: list[str], rows: int, cols: int, env: dict[str, str]
) -> tuple[int, str]:
    """Run ``kubectl exec -it …`` with a pseudo-terminal of ``rows``×``cols`` as stdin and stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    process = subprocess.Popen(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), "exec", "-it", *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([master], [], [], 1.0)
            if readable:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        else:
            process.kill()
        code = process.wait(timeout=10)
    finally:
        os.close(master)
    return code, output.decode(errors="replace")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_with_a_terminal_runs_at_the_clients_size(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    emulator: Any,
    transport: dict[str, str],
) -> None:
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "tty"))
    code, output = exec_in_a_terminal(
        cluster, ["-n", namespace, "tty", "--", "stty", "size"], 33, 101, transport
    )
    assert code == 0, output
    assert "33 101" in output
    mine = [
        s
        for s in emulator_sessions(emulator)
        if s["command"] == "stty size" and namespace in s["containerGroup"]
    ]
    assert [s["terminalSize"] for s in mine] == [{"rows": 33, "cols": 101}], emulator_sessions(emulator)[-3:]


# --- serving certificate ------------------------------------------------------------------------------------


def served_certificate(port: int, ca_file: Path | None) -> x509.Certificate:
    context = ssl.create_default_context()
    if ca_file is None:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def requested_csr(operator_process: OperatorProcess) -> str:
    def found() -> str | None:
        match = CSR_LINE.search(operator_process.log_text())
        return match.group(1) if match else None

    name: str = wait_until(found, 30, "the operator to request its serving certificate")
    return name


def test_unapproved_the_self_signed_certificate_is_served_with_one_log_line(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    kubelet_ports: KubeletPorts,
    operator_process: OperatorProcess,
) -> None:
    name = requested_csr(operator_process)
    try:
        csr = json.loads(cluster.kubectl("get", "csr", name, "-o", "json"))
        assert csr["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
        assert sorted(csr["spec"]["usages"]) == ["digital signature", "server auth"]
        assert not csr.get("status", {}).get("conditions"), "nobody approves kubelet-serving CSRs by default"
        served = served_certificate(kubelet_ports.kubelet, None)
        assert served.issuer == served.subject and served.subject.rfc4514_string().startswith(
            "CN=acinode-kubelet@"
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            served_certificate(kubelet_ports.kubelet, cluster.control_plane.pki_dir / "ca.crt")
        lines = [
            line for line in operator_process.log_text().splitlines() if "CertificateSigningRequest" in line
        ]
        assert len(lines) == 1, lines
        assert f"kubectl certificate approve {name}" in lines[0]
    finally:
        cluster.kubectl("delete", "csr", name, "--ignore-not-found")


def test_approved_the_cluster_signed_certificate_is_served_and_verifies_with_the_cluster_ca(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    kubelet_ports: KubeletPorts,
    operator_process: OperatorProcess,
) -> None:
    name = requested_csr(operator_process)
    ca_file = cluster.control_plane.pki_dir / "ca.crt"
    try:
        cluster.kubectl("certificate", "approve", name)

        def verified() -> x509.Certificate | None:
            try:
                return served_certificate(kubelet_ports.kubelet, ca_file)
            except ssl.SSLCertVerificationError:
                return None

        served = wait_until(verified, 30, "the operator to serve the issued certificate")
        node = ready_virtual_node["metadata"]["name"]
        assert served.subject.rfc4514_string() == f"CN=system:node:{node},O=system:nodes"
        assert f"serving the certificate issued for CSR {name}" in operator_process.log_text()
        # The API server's calls keep working with the new certificate.
        run_pod(core_v1, namespace, pod_body(ready_virtual_node, "after"))
        result = kubectl(cluster, "exec", "-n", namespace, "after", "--", "echo", "still")
        assert (result.returncode, result.stdout) == (0, "still\n"), result.stderr
    finally:
        cluster.kubectl("delete", "csr", name, "--ignore-not-found")
