"""The system under chaos: its own emulator (persisted, so it can be restarted), one VirtualNode on it, one or two
`acinode run` processes, a Deployment to churn, and observers that record what the cluster did meanwhile.

Everything here waits on conditions with bounded timeouts; the few sleeps pick *when* a fault strikes, they never
synchronise with the system under test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from contract import emulated
from support import arm
from support.operator_process import ACINODE, OperatorProcess
from support.virtualnodes import VIRTUAL_NODES, emulator_hook, virtual_node_body
from support.waiting import wait_until

TAG_CLUSTER = "acinode.cluster-id"
TAG_NODE = "acinode.node"
TAG_POD_UID = "acinode.pod-uid"
APP = "churn"

# The emulator is generous (the faults are what we inject, not ARM's own limits); so is the operator's client-side
# budget, or a few hundred creates would queue behind the production defaults for many minutes.
EMULATOR_FLAGS = (
    "--persist",
    "--provisioning-delay",
    "0.2",
    "--log-level",
    "warning",
    "--no-network",
    "--quota-container-groups",
    "5000",
    "--quota-cores",
    "5000",
    "--creates-per-5m",
    "100000",
    "--creates-per-hour",
    "100000",
    "--deletes-per-5m",
    "100000",
    "--deletes-per-hour",
    "100000",
    "--read-burst",
    "5000",
    "--read-rate",
    "1000",
    "--write-burst",
    "5000",
    "--write-rate",
    "1000",
)
OPERATOR_ENV = {
    "ACINODE_ACI_READS_PER_SECOND": "200",
    "ACINODE_ACI_READ_BURST": "500",
    "ACINODE_ACI_WRITES_PER_SECOND": "200",
    "ACINODE_ACI_WRITE_BURST": "500",
    "ACINODE_ACI_CREATES_PER_SECOND": "200",
    "ACINODE_ACI_CREATE_BURST": "500",
    "ACINODE_ACI_DELETES_PER_SECOND": "200",
    "ACINODE_ACI_DELETE_BURST": "500",
    "ACINODE_ACI_REQUEST_TIMEOUT_SECONDS": "15",
    "ACINODE_PODS_RESYNC_SECONDS": "5",
    "ACINODE_PODS_STEADY_SYNC_SECONDS": "3",
    "ACINODE_PODS_IDLE_SYNC_SECONDS": "3",
    "ACINODE_PODS_BACKOFF_BASE_SECONDS": "1",
    "ACINODE_PODS_BACKOFF_MAX_SECONDS": "5",
    "ACINODE_KUBELET_ENABLED": "false",
    "ACINODE_METRICS_PORT": "0",
}


class PeeredOperator(OperatorProcess):
    """`acinode run --peering NAME --priority N`: one replica of a highly available pair."""

    def __init__(self, kubeconfig: Path, log_path: Path, peering: str, priority: int) -> None:
        super().__init__(kubeconfig, log_path, OPERATOR_ENV)
        self.peering = peering
        self.priority = priority

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(ACINODE),
                    "run",
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--verbose",
                    "--peering",
                    self.peering,
                    "--priority",
                    str(self.priority),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )


@dataclass
class Observations:
    """What the observers saw during one scenario."""

    pod_uids: set[str] = field(default_factory=set)
    marked_for_deletion: set[str] = field(default_factory=set)
    unexpected_deletions: list[str] = field(default_factory=list)
    failed_pods: list[str] = field(default_factory=list)
    not_ready_samples: list[str] = field(default_factory=list)
    watch_restarts: int = 0


class Observer:
    """Watches the namespace's pods (deletions must follow a deletionTimestamp; no pod may fail) and samples the
    Node's Ready condition, in two threads, until stopped."""

    def __init__(self, api: client.ApiClient, namespace: str, node: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.node = node
        self.seen = Observations()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch_pods, daemon=True),
            threading.Thread(target=self._sample_node, daemon=True),
        ]

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _record(self, kind: str, pod: client.V1Pod) -> None:
        uid = pod.metadata.uid
        self.seen.pod_uids.add(uid)
        if pod.metadata.deletion_timestamp is not None:
            self.seen.marked_for_deletion.add(uid)
        # A pod being deleted ends in a terminal phase before it goes, as a kubelet ends it: not a failure.
        failed = pod.status and pod.status.phase == "Failed" and pod.metadata.deletion_timestamp is None
        if failed and uid not in self.seen.failed_pods:
            self.seen.failed_pods.append(uid)
        if kind == "DELETED" and uid not in self.seen.marked_for_deletion:
            self.seen.unexpected_deletions.append(f"{pod.metadata.name} ({uid})")

    def _watch_pods(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = self.core.list_namespaced_pod(self.namespace)
                    for pod in listed.items:
                        self._record("LISTED", pod)
                    version = listed.metadata.resource_version
                stream = watch.Watch()
                for event in stream.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=5,
                    _request_timeout=15,
                ):
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    pod = event["object"]
                    version = pod.metadata.resource_version
                    self._record(event["type"], pod)
                    if self._stop.is_set():
                        break
            except Exception:  # API server restarting, 410 …: resume from a fresh list
                self.seen.watch_restarts += 1
                version = ""
                self._stop.wait(0.5)

    def _sample_node(self) -> None:
        while not self._stop.wait(1.0):
            try:
                node = self.core.read_node(self.node, _request_timeout=5)
            except Exception:
                continue  # the API server may be down on purpose; that says nothing about the node
            ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
            if ready is None or ready.status != "True":
                status = ready.status if ready else "missing"
                self.seen.not_ready_samples.append(f"{time.strftime('%X')} Ready={status}")


@dataclass
class ChaosStack:
    """One emulator, one VirtualNode, its operator(s) and a namespace with the churn Deployment."""

    cluster: Any
    api: client.ApiClient
    workdir: Path
    emulator: emulated.Emulator
    namespace: str
    node: str
    cluster_id: str
    operators: list[OperatorProcess] = field(default_factory=list)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def resource_group(self) -> str:
        return f"rg-{self.node}"

    @property
    def operator(self) -> OperatorProcess:
        return self.operators[0]

    # --- the emulator ----------------------------------------------------------------------------------------

    def hook(self, method: str, path: str, body: Any = None) -> Any:
        return emulator_hook(self.emulator, method, path, body)

    def clear_faults(self) -> None:
        self.hook("DELETE", "faults")

    def restart_emulator(self, down_seconds: float = 0.0) -> None:
        """Stop the emulator (SIGTERM) and start it again on the same port with its persisted state."""
        port = self.emulator.url.rsplit(":", 1)[1]
        emulated.stop_emulator(self.emulator.process)
        if down_seconds:
            time.sleep(down_seconds)  # the outage's length is the fault being injected
        self.emulator = emulated.start_emulator(self.emulator.state_dir, *EMULATOR_FLAGS, "--port", port)

    def groups(self) -> list[dict[str, Any]]:
        return arm.list_groups(self.emulator, self.resource_group)

    def stats(self) -> dict[str, Any]:
        return arm.stats(self.emulator)

    # --- the workload ----------------------------------------------------------------------------------------

    def scale(self, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(APP, self.namespace, {"spec": {"replicas": replicas}})

    def pods(self) -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=f"app={APP}").items)

    def live_pods(self) -> list[client.V1Pod]:
        return [
            p
            for p in self.pods()
            if p.metadata.deletion_timestamp is None and p.status.phase not in ("Succeeded", "Failed")
        ]

    def running(self) -> int:
        return sum(1 for p in self.live_pods() if p.status.phase == "Running")

    def wait_pods_exist(self, replicas: int, timeout: float = 120) -> None:
        wait_until(lambda: len(self.live_pods()) == replicas, timeout, f"{replicas} live pods")

    def converged(self, replicas: int) -> bool:
        pods = self.pods()
        if len(pods) != replicas or any(p.status.phase != "Running" for p in pods):
            return False
        groups = [g for g in self.groups() if g.get("tags", {}).get(TAG_CLUSTER) == self.cluster_id]
        return sorted(g["tags"].get(TAG_POD_UID, "") for g in groups) == sorted(p.metadata.uid for p in pods)

    def wait_converged(self, replicas: int, timeout: float = 240) -> None:
        wait_until(
            lambda: self.converged(replicas),
            timeout,
            f"{replicas} Running pods with one group each and no orphan",
            interval=1.0,
        )

    def operators_alive(self) -> bool:
        return all(o.is_running() for o in self.operators)

    def ensure_operators(self) -> None:
        for operator in self.operators:
            if not operator.is_running():
                operator.start()


def deployment(node: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "nodeSelector": {"type": "virtual-kubelet", "acinode.dev/virtual-node": node},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ],
                },
            },
        },
    }


def ensure_peering_crd(cluster: Any) -> None:
    crd = (
        Path(__file__).resolve().parents[2]
        / "helm"
        / "acinode"
        / "crds"
        / "clusterkopfpeerings.kopf.dev.yaml"
    )
    cluster.kubectl("apply", "-f", str(crd))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=30s"
    )


def create_peering(api: client.ApiClient, name: str) -> None:
    custom: Any = client.CustomObjectsApi(api)
    body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    with contextlib.suppress(client.ApiException):
        custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)


def peers(api: client.ApiClient, name: str) -> dict[str, Any]:
    custom: Any = client.CustomObjectsApi(api)
    peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    status: dict[str, Any] = peering.get("status") or {}
    return status


def node_ready(core: client.CoreV1Api, node: str) -> bool:
    conditions = core.read_node(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@contextlib.contextmanager
def chaos_stack(
    cluster: Any,
    api: client.ApiClient,
    workdir: Path,
    *,
    replicas: int = 1,
    peering: str | None = None,
    spec: dict[str, Any] | None = None,
) -> Iterator[ChaosStack]:
    """Start the emulator, the operator(s), a VirtualNode and an empty churn Deployment; tear all down after,
    checking on the way out that the node's groups are all gone."""
    core = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    emulator = emulated.start_emulator(workdir / "emulator", *EMULATOR_FLAGS)
    suffix = uuid.uuid4().hex[:6]
    namespace, node = f"chaos-{suffix}", f"vn-chaos-{suffix}"
    secret = "aci-emulator-token"
    operator_ns = "default"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    token = base64.b64encode(emulator.token.encode()).decode()
    with contextlib.suppress(client.ApiException):  # shared with the other cluster tests: same token
        core.create_namespaced_secret(
            operator_ns, client.V1Secret(metadata=client.V1ObjectMeta(name=secret), data={"token": token})
        )
    crd = Path(__file__).resolve().parents[2] / "crds" / "virtualnodes.acinode.dev.yaml"
    cluster.kubectl("apply", "-f", str(crd))
    cluster.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev", "--timeout=30s")
    operators: list[OperatorProcess] = []
    if peering is None:
        operators.append(OperatorProcess(cluster.kubeconfig, workdir / "operator.log", OPERATOR_ENV))
    else:
        ensure_peering_crd(cluster)
        create_peering(api, peering)
        for index in range(replicas):
            operators.append(
                PeeredOperator(cluster.kubeconfig, workdir / f"operator-{index}.log", peering, 10 - index)
            )
    kube_system = core.read_namespace("kube-system")
    stack = ChaosStack(cluster, api, workdir, emulator, namespace, node, kube_system.metadata.uid, operators)
    try:
        for index, operator in enumerate(operators):
            operator.start()
            if peering is not None:  # one at a time: each sees the others' keep-alives, the first one acts
                wait_until(
                    lambda n=index + 1: len(peers(api, peering)) >= n,
                    60,
                    f"{index + 1} peering keep-alive(s)",
                )
        custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(node, emulator, **(spec or {})))
        wait_until(lambda: node_ready(core, node), 90, f"node {node} Ready")
        stack.apps.create_namespaced_deployment(namespace, deployment(node, 0))
        yield stack
    finally:
        if stack.emulator.process.poll() is None:
            stack.clear_faults()
        stack.ensure_operators()
        with contextlib.suppress(client.ApiException):
            stack.scale(0)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not stack.pods(), 180, "the churn pods to go")
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(namespace)
        with contextlib.suppress(client.ApiException):
            custom.delete_cluster_custom_object(*VIRTUAL_NODES, node)
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: (
                    node
                    not in {
                        o["metadata"]["name"]
                        for o in custom.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
                    }
                ),
                90,
                "the VirtualNode finalized",
            )
        for operator in operators:
            operator.stop()
        emulated.stop_emulator(stack.emulator.process)


def compact_etcd(cluster: Any) -> int:
    """Compact etcd up to its current revision through its HTTP gateway; returns the revision."""
    port = cluster.control_plane.ports["etcd"]

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    key = base64.b64encode(b"/registry/").decode()
    revision = int(post("/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    post("/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision
