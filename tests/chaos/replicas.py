"""Several working replicas and many VirtualNodes: the stack of the ownership scenarios (tests/chaos/test_ha.py).

One emulator, ``replicas`` `acinode run --replica-id rN` processes (each may reach the API server through its own
``TcpProxy``, which the test can cut), ``virtual_nodes`` VirtualNodes (one resource group each) and one pod bound
to each node. Observations are read from the API server (who holds which ownership Lease, Node readiness) and the
emulator (groups, request counts).
"""

from __future__ import annotations

import base64
import contextlib
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos.stack import EMULATOR_FLAGS, OPERATOR_ENV, TAG_CLUSTER, TAG_POD_UID
from contract import emulated
from support import arm
from support.operator_process import OperatorProcess
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body
from support.waiting import wait_until

OPERATOR_NAMESPACE = "default"
TOKEN_SECRET = "aci-emulator-token"
VN_LEASE = "acinode-vn-"


class TcpProxy:
    """A loopback TCP forwarder the test controls: ``cut()`` closes the listener and every connection through it
    (a replica cut off from the API server), ``restore()`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            listener.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    downstream.close()
                    upstream.close()
                    return
                self._connections += [downstream, upstream]
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


def proxied_kubeconfig(kubeconfig: Path, proxy: TcpProxy, path: Path) -> Path:
    text = kubeconfig.read_text()
    path.write_text(re.sub(r"(https://127\.0\.0\.1):\d+", rf"\g<1>:{proxy.port}", text, count=1))
    return path


def api_port(kubeconfig: Path) -> int:
    found = re.search(r"https://127\.0\.0\.1:(\d+)", kubeconfig.read_text())
    assert found, "a loopback API server"
    return int(found[1])


@dataclass
class Replicas:
    api: client.ApiClient
    emulator: emulated.Emulator
    cluster_id: str
    nodes: list[str]
    operators: dict[str, OperatorProcess]
    proxies: dict[str, TcpProxy] = field(default_factory=dict)
    namespace: str = ""

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def holders(self) -> dict[str, str]:
        """VirtualNode → holder of its ownership Lease ("" when free or absent)."""
        coordination: Any = client.CoordinationV1Api(self.api)
        leases = coordination.list_namespaced_lease(
            OPERATOR_NAMESPACE, label_selector="acinode.dev/lease-kind=virtualnode"
        ).items
        by_name = {lease.metadata.name: lease.spec.holder_identity or "" for lease in leases}
        return {node: by_name.get(VN_LEASE + node, "") for node in self.nodes}

    def held_by(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {name: [] for name in self.operators}
        for node, holder in self.holders().items():
            result.setdefault(holder, []).append(node)
        return result

    def ready(self) -> dict[str, bool]:
        ready = {}
        for node in self.core.list_node(label_selector="acinode.dev/virtual-node").items:
            conditions = node.status.conditions or []
            ready[node.metadata.name] = any(c.type == "Ready" and c.status == "True" for c in conditions)
        return {n: ready.get(n, False) for n in self.nodes}

    def pods(self) -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(self.namespace).items)

    def groups(self, node: str) -> list[dict[str, Any]]:
        return [
            g
            for g in arm.list_groups(self.emulator, f"rg-{node}")
            if g.get("tags", {}).get(TAG_CLUSTER) == self.cluster_id
        ]

    def bind_pod(self, node: str, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "ha"}},
            "spec": {
                "nodeName": node,
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
        }
        self.core.create_namespaced_pod(self.namespace, body)

    def orphans_and_missing(self) -> list[str]:
        """Every pod without exactly one group, every group without its pod."""
        problems = []
        pods = {p.metadata.uid: p for p in self.pods() if p.metadata.deletion_timestamp is None}
        seen: dict[str, int] = {}
        for node in self.nodes:
            for group in self.groups(node):
                uid = group["tags"].get(TAG_POD_UID, "")
                seen[uid] = seen.get(uid, 0) + 1
                if uid not in pods:
                    problems.append(f"orphan group {group['name']} on {node}")
        problems += [
            f"pod {p.metadata.name} has {seen.get(u, 0)} groups" for u, p in pods.items() if seen.get(u) != 1
        ]
        return problems

    def all_running(self, expected: int) -> bool:
        pods = self.pods()
        return (
            len(pods) == expected
            and all(p.status.phase == "Running" for p in pods)
            and not self.orphans_and_missing()
        )

    def creates(self) -> int:
        requests = arm.stats(self.emulator)["requests"]
        return int(sum(requests.get("ContainerGroups_CreateOrUpdate", {}).values()))

    def deletes(self) -> int:
        requests = arm.stats(self.emulator)["requests"]
        return int(sum(requests.get("ContainerGroups_Delete", {}).values()))


class ReadinessSampler:
    """Samples every node's Ready condition once a second, in a thread, until stopped."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas
        self.not_ready: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadinessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                ready = self.replicas.ready()
            except Exception:
                continue
            self.not_ready += [f"{time.strftime('%X')} {n}" for n, ok in ready.items() if not ok]


HA_ENV = {
    **OPERATOR_ENV,
    # The test control plane's node-monitor grace period is 20 s (production: 40-50 s), so the node Lease and the
    # ownership Leases are scaled down with it: a node Lease renewed every 4 s (a kubelet: 10 s against 40 s), and
    # VirtualNode Leases of 12 s (default 15 s). Worst case without the Node turning NotReady: 4 s since the last
    # node-Lease renewal + 3 s since the last ownership renewal + 12 s + 1-2 s to list and start the runtime < 20 s.
    "ACINODE_LEASE_RENEW_INTERVAL_SECONDS": "4",
    "ACINODE_OWNERSHIP_LEASE_DURATION_SECONDS": "12",
    "ACINODE_OWNERSHIP_RENEW_INTERVAL_SECONDS": "3",
    "ACINODE_OWNERSHIP_FENCE_MARGIN_SECONDS": "3",
}


@contextlib.contextmanager
def replica_stack(
    cluster: Any,
    api: client.ApiClient,
    workdir: Path,
    *,
    replicas: int,
    virtual_nodes: int,
    proxied: tuple[str, ...] = (),
) -> Iterator[Replicas]:
    """Emulator, ``replicas`` operators (r0, r1 …; those named in ``proxied`` reach the API server through a
    TcpProxy), ``virtual_nodes`` VirtualNodes, all Ready; a namespace for the pods. Torn down after."""
    core = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    emulator = emulated.start_emulator(workdir / "emulator", *EMULATOR_FLAGS)
    suffix = uuid.uuid4().hex[:5]
    namespace = f"ha-{suffix}"
    nodes = [f"vn-ha-{suffix}-{i}" for i in range(virtual_nodes)]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    token = base64.b64encode(emulator.token.encode()).decode()
    with contextlib.suppress(client.ApiException):
        core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            client.V1Secret(metadata=client.V1ObjectMeta(name=TOKEN_SECRET), data={"token": token}),
        )
    crd = Path(__file__).resolve().parents[2] / "crds" / "virtualnodes.acinode.dev.yaml"
    cluster.kubectl("apply", "-f", str(crd))
    cluster.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev", "--timeout=30s")
    operators: dict[str, OperatorProcess] = {}
    proxies: dict[str, TcpProxy] = {}
    for index in range(replicas):
        name = f"r{index}-{suffix}"
        kubeconfig = cluster.kubeconfig
        if f"r{index}" in proxied:
            proxies[name] = TcpProxy(api_port(cluster.kubeconfig))
            kubeconfig = proxied_kubeconfig(cluster.kubeconfig, proxies[name], workdir / f"{name}.kubeconfig")
        operators[name] = OperatorProcess(
            kubeconfig, workdir / f"{name}.log", HA_ENV, extra_args=["--replica-id", name]
        )
    kube_system = core.read_namespace("kube-system")
    stack = Replicas(api, emulator, kube_system.metadata.uid, nodes, operators, proxies, namespace)
    coordination: Any = client.CoordinationV1Api(api)
    try:
        for operator in operators.values():
            operator.start()
        for name in operators:
            wait_until(
                lambda n=name: any(
                    lease.metadata.name == f"acinode-replica-{n}"
                    for lease in coordination.list_namespaced_lease(OPERATOR_NAMESPACE).items
                ),
                60,
                f"replica {name}'s presence",
            )
        time.sleep(3)  # every replica has listed the others' presence: the fair share is known
        for node in nodes:
            custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(node, emulator))
        wait_until(lambda: all(stack.ready().values()), 180, f"{virtual_nodes} nodes Ready", interval=1.0)
        yield stack
    finally:
        for proxy in proxies.values():
            with contextlib.suppress(OSError):
                proxy.cut()
                proxy.restore()
        for operator in operators.values():
            if not operator.is_running():
                operator.start()
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(namespace)
        for node in nodes:
            with contextlib.suppress(client.ApiException):
                custom.delete_cluster_custom_object(*VIRTUAL_NODES, node)
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: (
                    not set(nodes)
                    & {
                        o["metadata"]["name"]
                        for o in custom.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
                    }
                ),
                180,
                "the VirtualNodes finalized",
            )
        for operator in operators.values():
            operator.stop()
        for proxy in proxies.values():
            proxy.cut()
        emulated.stop_emulator(stack.emulator.process)
