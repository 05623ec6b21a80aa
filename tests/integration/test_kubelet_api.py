"""The virtual nodes' kubelet API through the real API server (``kubectl logs``, ``exec``, node proxy) and directly,
and the operator's metrics, on the real control plane with ``acinode run`` and the ACI emulator.

Container behaviour follows the emulator's command convention (docs/emulator.md): ``sh -c "…"`` scripts print log
lines and exit with their status; no command is a long-running server; exec runs a command string.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

from support.kubelet_fixtures import *  # noqa: F403  (fixtures; overrides operator_process)
from support.kubelet_fixtures import KubeletPorts, kubelet_get, metric_value, metrics_text
from support.waiting import wait_until

TOLERATIONS = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]


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


def phase_of(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    try:
        return str(core.read_namespaced_pod(name, namespace).status.phase)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def run_pod(
    core: client.CoreV1Api, namespace: str, body: dict[str, Any], phase: str = "Running"
) -> dict[str, Any]:
    core.create_namespaced_pod(namespace, body)
    name = body["metadata"]["name"]
    wait_until(lambda: phase_of(core, namespace, name) == phase, 60, f"pod {name} {phase}")
    return body


def kubectl(cluster: Any, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    return subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


# --- logs ---------------------------------------------------------------------------------------------------


def test_kubectl_logs_with_tail_timestamps_and_since(
    cluster: Any, ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    script = "echo line-1; echo line-2; sleep 1; for i in 3 4 5; do echo line-$i; done; sleep infinity"
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "printer", command=["sh", "-c", script]))
    expected = [f"line-{i}" for i in range(1, 6)]
    wait_until(
        lambda: cluster.kubectl("logs", "-n", namespace, "printer").split() == expected, 30, "all five lines"
    )

    assert cluster.kubectl("logs", "-n", namespace, "printer", "--tail=2").split() == ["line-4", "line-5"]

    stamped = cluster.kubectl("logs", "-n", namespace, "printer", "--timestamps").splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == expected
    times = [dt.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")) for line in stamped]
    assert times == sorted(times)

    assert cluster.kubectl("logs", "-n", namespace, "printer", "--since=1h").split() == expected
    # sinceTime travels with whole seconds: line 3 came a second after line 2.
    since_third = times[2].replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        cluster.kubectl("logs", "-n", namespace, "printer", f"--since-time={since_third}").split()
        == expected[2:]
    )


def test_kubectl_logs_follow_streams_lines_as_printed_and_ends_with_the_container(
    cluster: Any, ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    script = "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 1; done"
    body = pod_body(ready_virtual_node, "ticker", restart_policy="Never", command=["sh", "-c", script])
    run_pod(core_v1, namespace, body)
    follower = subprocess.Popen(
        [
            *cluster.kubectl_command,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "logs",
            "-f",
            "-n",
            namespace,
            "ticker",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    arrivals: list[tuple[str, str | None]] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            arrivals.append((line.strip(), phase_of(core_v1, namespace, "ticker")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        follower.wait(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    reader.join(10)
    assert [line for line, _ in arrivals] == [f"tick-{i}" for i in range(1, 7)], follower.stderr.read()  # type: ignore[union-attr]
    assert arrivals[0][1] == "Running", "the first line arrived while the container was still running"
    assert follower.returncode == 0


# --- exec ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transport",
    [
        pytest.param({}, id="websocket-translated-to-spdy-by-the-api-server"),
        pytest.param({"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}, id="spdy-passed-through"),
    ],
)
def test_kubectl_exec_returns_output_and_exit_code(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    transport: dict[str, str],
) -> None:
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "server"))
    result = kubectl(
        cluster, "exec", "-n", namespace, "server", "--", "sh", "-c", "echo hello; exit 3", env=transport
    )
    assert result.stdout == "hello\n"
    assert result.returncode == 3, result.stderr

    result = kubectl(cluster, "exec", "-n", namespace, "server", "--", "echo", "two words", env=transport)
    assert (result.returncode, result.stdout) == (0, "two words\n"), result.stderr


def test_kubectl_exec_over_websockets_straight_to_the_kubelet(
    cluster: Any, ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    """A node declaring ExtendWebSocketsToKubelet gets kubectl's websocket passed through by the API server."""
    node = ready_virtual_node["metadata"]["name"]
    patch = json.dumps({"status": {"declaredFeatures": ["ExtendWebSocketsToKubelet"]}})
    cluster.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", patch)
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "server"))
    result = kubectl(
        cluster, "exec", "-n", namespace, "server", "--", "sh", "-c", "echo via-websocket; exit 4"
    )
    assert (result.returncode, result.stdout) == (4, "via-websocket\n"), result.stderr


def test_kubectl_exec_with_stdin_runs_an_interactive_shell(
    cluster: Any, ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "server"))
    result = kubectl(
        cluster, "exec", "-i", "-n", namespace, "server", "--", "sh", stdin="echo from-stdin\nexit 5\n"
    )
    assert (result.returncode, result.stdout) == (5, "from-stdin\n"), result.stderr


# --- stats --------------------------------------------------------------------------------------------------


def test_stats_summary_as_the_api_server_reads_it(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    kubelet_ports: KubeletPorts,
) -> None:
    # The API server's node proxy refuses loopback node addresses, and everything here stays on loopback: read
    # the kubelet port directly, authenticated as the API server is (its kubelet client certificate).
    assert cluster.control_plane is not None, "needs the project's own control plane (its PKI)"
    pki = cluster.control_plane.pki_dir
    apiserver_cert = (pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")

    def proxied(path: str) -> str:
        status, payload = kubelet_get(
            kubelet_ports.kubelet,
            path,
            cert=apiserver_cert,
            headers={"X-Forwarded-Uri": f"/api/v1/nodes/{node}/proxy{path}"},
        )
        assert status == 200, (status, payload[:300])
        return payload.decode()

    node = ready_virtual_node["metadata"]["name"]
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "sized"))

    def summary() -> dict[str, Any] | None:
        body: dict[str, Any] = json.loads(proxied("/stats/summary"))
        return body if any(p["podRef"]["name"] == "sized" for p in body["pods"]) else None

    body = wait_until(summary, 30, "the pod in the summary")
    assert body["node"]["nodeName"] == node
    dt.datetime.fromisoformat(body["node"]["startTime"].replace("Z", "+00:00"))
    pod = next(p for p in body["pods"] if p["podRef"]["name"] == "sized")
    assert pod["podRef"]["namespace"] == namespace
    assert pod["podRef"]["uid"] == core_v1.read_namespaced_pod("sized", namespace).metadata.uid

    def sampled() -> dict[str, Any] | None:
        body: dict[str, Any] = json.loads(proxied("/stats/summary"))
        pod = next(p for p in body["pods"] if p["podRef"]["name"] == "sized")
        return body if "cpu" in pod["containers"][0] else None

    body = wait_until(sampled, 30, "Azure Monitor's usage in the summary")
    pod = next(p for p in body["pods"] if p["podRef"]["name"] == "sized")
    (container,) = pod["containers"]
    assert container["name"] == "main"
    # An idle server in the emulator: 2 millicores and 24 MiB, not its 250m/256Mi requests.
    assert container["cpu"]["usageNanoCores"] == 2_000_000
    assert container["memory"]["workingSetBytes"] == 24 * 2**20
    assert body["node"]["cpu"]["usageCoreNanoSeconds"] > 0

    resource = proxied("/metrics/resource")
    assert (
        metric_value(resource, "container_cpu_usage_seconds_total", pod="sized", namespace=namespace)
        is not None
    )
    assert proxied("/healthz") == "ok"


def scraped(text: str, namespace: str, pod: str) -> dict[str, float] | None:
    """One container's point as metrics-server decodes ``/metrics/resource`` (cumulative CPU seconds, working
    set, millisecond timestamp, start time); None when incomplete (metrics-server drops such a pod)."""
    point: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or f'namespace="{namespace}",pod="{pod}"' not in line:
            continue
        name = line.split("{", 1)[0]
        value, stamp = line.rsplit(" ", 2)[1:]
        if name == "container_cpu_usage_seconds_total":
            point.update(cpu=float(value), time=int(stamp) / 1000)
        elif name == "container_memory_working_set_bytes":
            point.update(memory=float(value), time=int(stamp) / 1000)
        elif name == "container_start_time_seconds":
            point["start"] = float(value)
    return point if point.get("cpu", 0) > 0 and point.get("memory", 0) > 0 and "start" in point else None


def test_a_metrics_server_scrape_shows_usage_change_when_the_container_does(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    kubelet_ports: KubeletPorts,
) -> None:
    assert cluster.control_plane is not None, "needs the project's own control plane (its PKI)"
    pki = cluster.control_plane.pki_dir
    apiserver_cert = (pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")
    env = [{"name": "ACI_EMULATOR_CPU", "value": "100m"}, {"name": "ACI_EMULATOR_MEMORY", "value": "32Mi"}]
    body = pod_body(ready_virtual_node, "worker", command=["sh", "-c", "sleep 3600"], env=env)
    run_pod(core_v1, namespace, body)

    def scrape() -> dict[str, float] | None:
        # As metrics-server does: straight to the node's kubelet port, as the API server's kubelet client.
        status, payload = kubelet_get(kubelet_ports.kubelet, "/metrics/resource", cert=apiserver_cert)
        assert status == 200, (status, payload[:300])
        return scraped(payload.decode(), namespace, "worker")

    def rate_once(memory: float) -> float | None:
        """metrics-server's CPU rate between two points of distinct timestamps, once memory reads ``memory``."""
        first = wait_until(lambda: (p := scrape()) and p["memory"] == memory and p, 60, f"{memory} bytes")
        second = wait_until(
            lambda: (p := scrape()) and p["time"] > first["time"] + 1 and p, 30, "a newer point"
        )
        return (second["cpu"] - first["cpu"]) / (second["time"] - first["time"])

    assert rate_once(32 * 2**20) == pytest.approx(0.1, abs=0.02)
    result = kubectl(cluster, "exec", "-n", namespace, "worker", "--", "usage", "cpu=600m", "memory=96Mi")
    assert result.returncode == 0, result.stderr
    assert rate_once(96 * 2**20) == pytest.approx(0.6, abs=0.05)
    summary = json.loads(
        kubelet_get(
            kubelet_ports.kubelet,
            "/stats/summary",
            cert=apiserver_cert,
            headers={
                "X-Forwarded-Uri": f"/api/v1/nodes/{ready_virtual_node['metadata']['name']}/proxy/stats/summary"
            },
        )[1]
    )
    worker = next(p for p in summary["pods"] if p["podRef"]["name"] == "worker")
    assert worker["cpu"]["usageNanoCores"] == 600_000_000
    assert worker["memory"]["workingSetBytes"] == 96 * 2**20


# --- metrics ------------------------------------------------------------------------------------------------


def test_metrics_move_as_pods_run(
    ready_virtual_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str, kubelet_ports: KubeletPorts
) -> None:
    node = ready_virtual_node["metadata"]["name"]
    before = metrics_text(kubelet_ports.metrics)
    assert metric_value(before, "acinode_pods", node=node, phase="Running") == 0
    arm_before = (
        metric_value(
            before, "acinode_arm_requests_total", node=node, operation="create_or_update", result="201"
        )
        or 0
    )

    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "counted"))

    def moved() -> str | None:
        text = metrics_text(kubelet_ports.metrics)
        return text if metric_value(text, "acinode_pods", node=node, phase="Running") == 1 else None

    text = wait_until(moved, 30, "the Running pod in the metrics")
    created = metric_value(
        text, "acinode_arm_requests_total", node=node, operation="create_or_update", result="201"
    )
    assert created is not None and created >= arm_before + 1
    assert (
        metric_value(text, "acinode_container_groups", node=node, provisioning_state="Succeeded") or 0
    ) >= 1
    assert (metric_value(text, "acinode_reconcile_duration_seconds_count", node=node) or 0) >= 1
    assert (metric_value(text, "acinode_status_sync_duration_seconds_count", node=node) or 0) >= 1
    age = metric_value(text, "acinode_node_heartbeat_age_seconds", node=node)
    assert age is not None and 0 <= age < 30
    assert metric_value(text, "acinode_node_ready", node=node) == 1
    assert metric_value(text, "acinode_orphan_container_groups", node=node) == 0


# --- refusals -----------------------------------------------------------------------------------------------


def _certificate(
    directory: Path, name: str, signer: tuple[x509.Certificate, Any] | None
) -> tuple[Path, Path]:
    """A client certificate for ``name``, signed by ``signer`` (or self-signed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer, signing_key = (signer[0].subject, signer[1]) if signer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_requests_without_credentials_without_rights_or_with_an_untrusted_certificate_are_refused(
    cluster: Any,
    ready_virtual_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    namespace: str,
    kubelet_ports: KubeletPorts,
    tmp_path: Path,
) -> None:
    if cluster.control_plane is None:
        pytest.skip("needs the project's control plane (its CA key)")
    node = ready_virtual_node["metadata"]["name"]
    run_pod(core_v1, namespace, pod_body(ready_virtual_node, "guarded"))
    port = kubelet_ports.kubelet
    logs_path = f"/containerLogs/{namespace}/guarded/main"
    proxy = {"X-Forwarded-Uri": f"/api/v1/nodes/{node}/proxy/stats/summary"}

    # No credentials at all.
    assert kubelet_get(port, logs_path)[0] == 401
    assert kubelet_get(port, "/stats/summary", headers=proxy)[0] == 401

    # A valid token of a ServiceAccount without any RBAC rights.
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = cluster.kubectl("create", "token", "nobody", "-n", namespace).strip()
    assert kubelet_get(port, logs_path, token=token)[0] == 403
    assert kubelet_get(port, "/stats/summary", token=token, headers=proxy)[0] == 403
    assert kubelet_get(port, logs_path, token="not-a-token")[0] == 401

    # A certificate from the cluster's CA for a user without rights: authenticated, not authorized.
    pki = cluster.control_plane.pki_dir
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    trusted = _certificate(tmp_path, "someone", (ca_cert, ca_key))
    assert kubelet_get(port, logs_path, cert=trusted)[0] == 403

    # A certificate the cluster's CA did not sign, even with the API server's user name: the handshake fails.
    untrusted = _certificate(tmp_path, "kube-apiserver-kubelet-client", None)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        kubelet_get(port, logs_path, cert=untrusted)

    # The API server's own kubelet client certificate is trusted and allowed.
    admin = (pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")
    assert kubelet_get(port, logs_path, cert=admin)[0] == 200
