"""The Horizontal Pod Autoscaler on a virtual node, judged by code acinode did not write: the real metrics-server
(built from its Go module by ``tests/metricsserver``) scrapes the virtual node's ``/metrics/resource`` and serves
``metrics.k8s.io`` through the API server's aggregation layer; kube-controller-manager's HPA controller reads it
and scales a Deployment whose pods run in the ACI emulator.

A kubelet that reported each pod's requests as its usage (acinode did, once) would hold every pod at 100 % of its
request: this HPA would scale up and never back down. Here usage follows the containers: up while they burn
400m of a 250m request, and down to one replica once they idle at 25m.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from metricsserver import msbin
from support.kubelet_fixtures import *  # noqa: F403  (fixtures; overrides operator_process)
from support.kubelet_fixtures import KubeletPorts
from support.waiting import wait_until

TOLERATIONS = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
APISERVICE = "v1beta1.metrics.k8s.io"
REQUEST_CPU_MILLI = 250


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubectl(cluster: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def _metrics_api_available(api: client.ApiClient) -> bool:
    registration = client.ApiregistrationV1Api(api).read_api_service(APISERVICE)
    conditions = registration.status.conditions or [] if registration.status else []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


def _serving_csr_of(cluster: Any, node: str) -> str | None:
    """The pending kubelet-serving CSR the operator made for ``node`` (its subject names the node)."""
    for csr in json.loads(cluster.kubectl("get", "csr", "-o", "json"))["items"]:
        if csr["spec"]["signerName"] != "kubernetes.io/kubelet-serving" or csr.get("status", {}).get(
            "conditions"
        ):
            continue
        request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
        if request.subject.rfc4514_string() == f"CN=system:node:{node},O=system:nodes":
            return str(csr["metadata"]["name"])
    return None


def _serves_a_certificate_the_cluster_ca_signed(port: int, ca_file: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False  # metrics-server checks the IP SAN; the chain is what is awaited here
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


@pytest.fixture
def metrics_server(
    cluster: Any,
    api_client: client.ApiClient,
    tmp_path: Path,
    kubelet_ports: KubeletPorts,
    ready_virtual_node: dict[str, Any],
) -> Iterator[None]:
    """metrics-server on loopback, registered as ``metrics.k8s.io`` behind an ExternalName Service (the API server
    resolves an APIService's ExternalName to host:port; there is no kube-proxy here). It verifies the virtual
    node's serving certificate with the cluster CA, so the operator's kubelet-serving CSR is approved first, as an
    admin does (docs/kubelet-api.md)."""
    assert cluster.control_plane is not None, "needs the project's own control plane (its PKI)"
    pki = cluster.control_plane.pki_dir
    node = ready_virtual_node["metadata"]["name"]
    csr = wait_until(lambda: _serving_csr_of(cluster, node), 30, "the operator's kubelet-serving CSR")
    cluster.kubectl("certificate", "approve", csr)
    wait_until(
        lambda: _serves_a_certificate_the_cluster_ca_signed(kubelet_ports.kubelet, pki / "ca.crt"),
        30,
        "the issued serving certificate served",
    )
    binary = msbin.build()
    port = _free_port()
    log = (tmp_path / "metrics-server.log").open("w")
    process = subprocess.Popen(
        [
            str(binary),
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={tmp_path / 'metrics-server-certs'}",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            # The kubelet serving certificate acinode got through a CSR is signed by the cluster CA.
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            # As the API server does (kubeadm gives metrics-server a client of its own; the grant is the same).
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--metric-resolution=10s",
            "--kubelet-request-timeout=5s",  # must be below the resolution
            "--v=2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    registration = f"""
apiVersion: v1
kind: Service
metadata: {{name: acinode-test-metrics-server, namespace: kube-system}}
spec: {{type: ExternalName, externalName: localhost}}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {APISERVICE}}}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {{name: acinode-test-metrics-server, namespace: kube-system, port: {port}}}
"""
    try:
        applied = _kubectl(cluster, "apply", "-f", "-", stdin=registration)
        assert applied.returncode == 0, applied.stderr
        wait_until(lambda: _metrics_api_available(api_client), 90, "metrics.k8s.io Available")
        yield
    finally:
        _kubectl(cluster, "delete", "apiservice", APISERVICE, "--ignore-not-found")
        _kubectl(
            cluster,
            "delete",
            "service",
            "-n",
            "kube-system",
            "acinode-test-metrics-server",
            "--ignore-not-found",
        )
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        process.kill()
        log.close()
        cluster.kubectl("delete", "csr", csr, "--ignore-not-found")
        print((tmp_path / "metrics-server.log").read_text()[-4000:])


def _deployment(node: dict[str, Any], cpu: str) -> dict[str, Any]:
    labels = {"app": "burner"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "burner"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node["metadata"]["name"]},
                    "tolerations": TOLERATIONS,
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "command": ["sh", "-c", "sleep 36000"],
                            # The emulator's usage convention (docs/emulator.md): what the container burns.
                            "env": [
                                {"name": "ACI_EMULATOR_CPU", "value": cpu},
                                {"name": "ACI_EMULATOR_MEMORY", "value": "64Mi"},
                            ],
                            "resources": {"requests": {"cpu": f"{REQUEST_CPU_MILLI}m", "memory": "256Mi"}},
                        }
                    ],
                },
            },
        },
    }


def _hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burner"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
            # Scale down as soon as the controller sees idle pods (the default waits five minutes).
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }


def _hpa_state(api: client.ApiClient, namespace: str) -> tuple[int | None, int | None]:
    """(current average CPU utilization in %, desired replicas) as the HPA controller last wrote them."""
    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("burner", namespace)
    utilization = None
    for metric in (hpa.status.current_metrics or []) if hpa.status else []:
        if metric.resource is not None and metric.resource.name == "cpu":
            utilization = metric.resource.current.average_utilization
    return utilization, hpa.status.desired_replicas if hpa.status else None


def _running_pods(core: client.CoreV1Api, namespace: str) -> list[str]:
    pods = core.list_namespaced_pod(namespace, label_selector="app=burner").items
    return [
        p.metadata.name for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]


def test_the_hpa_scales_a_deployment_on_the_virtual_node_by_its_measured_cpu(
    cluster: Any,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    namespace: str,
    ready_virtual_node: dict[str, Any],
    metrics_server: None,
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, _deployment(ready_virtual_node, "400m"))
    wait_until(lambda: len(_running_pods(core_v1, namespace)) == 1, 90, "one burner pod Running")
    client.AutoscalingV2Api(api_client).create_namespaced_horizontal_pod_autoscaler(namespace, _hpa())

    # 400m of a 250m request is 160 %: twice the 50 % target and more, so the HPA asks for its maximum.
    wait_until(lambda: _hpa_state(api_client, namespace)[1] == 3, 180, "the HPA to ask for 3 replicas")
    utilization, _ = _hpa_state(api_client, namespace)
    assert utilization is not None and 140 <= utilization <= 180, utilization
    wait_until(lambda: len(_running_pods(core_v1, namespace)) == 3, 120, "three burner pods Running")

    # The containers idle: 25m of 250m is 10 %; the HPA follows the measurement down to its minimum.
    for pod in _running_pods(core_v1, namespace):
        result = _kubectl(cluster, "exec", "-n", namespace, pod, "--", "usage", "cpu=25m")
        assert result.returncode == 0, result.stderr
    wait_until(lambda: _hpa_state(api_client, namespace)[1] == 1, 180, "the HPA to scale back to 1")
    utilization, _ = _hpa_state(api_client, namespace)
    assert utilization is not None and utilization <= 20, utilization
    wait_until(lambda: len(_running_pods(core_v1, namespace)) == 1, 120, "one burner pod left")
