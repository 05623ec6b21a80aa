"""VirtualNode → Node registration, heartbeats and leases, on the real control plane with the ACI emulator."""

from __future__ import annotations

import datetime
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from contract import emulated
from support.operator_process import OperatorProcess
from support.virtualnodes import VIRTUAL_NODES, emulator_hook
from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = REPO_ROOT / "examples" / "seed" / "virtual-node.yaml"
MakeVirtualNode = Callable[..., dict[str, Any]]


def ready_condition(core: client.CoreV1Api, name: str) -> client.V1NodeCondition | None:
    node = core.read_node(name)
    return next((c for c in node.status.conditions or [] if c.type == "Ready"), None)


def wait_ready(core: client.CoreV1Api, name: str, status: str = "True", timeout: float = 30) -> Any:
    def matches() -> Any:
        condition = ready_condition(core, name)
        return condition if condition is not None and condition.status == status else None

    return wait_until(matches, timeout, f"node {name} Ready={status}")


def lease_renew_time(coordination: client.CoordinationV1Api, name: str) -> datetime.datetime:
    renew: datetime.datetime = coordination.read_namespaced_lease(name, "kube-node-lease").spec.renew_time
    return renew


def test_virtual_node_registers_a_ready_node_like_a_kubelet(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, api_client: client.ApiClient
) -> None:
    vn = make_virtual_node(labels={"team": "burst"}, capacity={"cpu": "100", "memory": "200Gi", "pods": 50})
    name = vn["metadata"]["name"]

    wait_ready(core_v1, name)
    node = core_v1.read_node(name)
    labels = node.metadata.labels
    assert labels["type"] == "virtual-kubelet"
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["kubernetes.io/os"] == labels["beta.kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["kubernetes.io/hostname"] == name
    assert labels["node.kubernetes.io/exclude-from-external-load-balancers"] == "true"
    assert labels["team"] == "burst"
    assert {(t.key, t.value, t.effect) for t in node.spec.taints} >= {
        ("virtual-kubelet.io/provider", "azure", "NoSchedule")
    }
    assert node.status.capacity == {"cpu": "100", "memory": "200Gi", "pods": "50"}
    assert node.status.allocatable == node.status.capacity
    assert {(a.type, a.address) for a in node.status.addresses} >= {("InternalIP", "127.0.0.1")}
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert node.status.node_info.kubelet_version.startswith("v1.")
    types = {c.type for c in node.status.conditions}
    assert types >= {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}

    coordination = client.CoordinationV1Api(api_client)
    lease = wait_until(
        lambda: coordination.read_namespaced_lease(name, "kube-node-lease"), 10, "the node's Lease"
    )
    assert lease.spec.lease_duration_seconds == 40
    assert lease.metadata.owner_references[0].uid == node.metadata.uid
    first = lease.spec.renew_time
    second = wait_until(
        lambda: (t := lease_renew_time(coordination, name)) > first and t, 20, "the lease to be renewed"
    )
    third = wait_until(
        lambda: (t := lease_renew_time(coordination, name)) > second and t,
        20,
        "the lease to be renewed again",
    )
    interval = (third - second).total_seconds()
    assert 8.5 <= interval <= 11.5, f"lease renewed every {interval:.1f}s, expected ~10s"

    custom = client.CustomObjectsApi(api_client)
    status = custom.get_cluster_custom_object(*VIRTUAL_NODES, name)["status"]
    assert status["nodeName"] == name
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Registered": "True", "BackendReachable": "True"}


def test_seed_deployment_pod_is_bound_to_the_virtual_node(
    make_virtual_node: MakeVirtualNode,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    namespace: str,
) -> None:
    name = make_virtual_node()["metadata"]["name"]
    wait_ready(core_v1, name)
    client.AppsV1Api(api_client).create_namespaced_deployment(namespace, yaml.safe_load(SEED.read_text()))

    def bound() -> list[client.V1Pod]:
        pods = core_v1.list_namespaced_pod(namespace, label_selector="app=aci-helloworld").items
        return [p for p in pods if p.spec.node_name == name]

    assert len(wait_until(bound, 60, "the scheduler to bind the seed pod to the virtual node")) == 1


def test_node_goes_unknown_without_the_operator_and_comes_back_unchanged(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, operator_process: OperatorProcess
) -> None:
    name = make_virtual_node()["metadata"]["name"]
    wait_ready(core_v1, name)
    uid = core_v1.read_node(name).metadata.uid

    operator_process.stop(signal.SIGKILL)
    # The test control plane's node-monitor-grace-period is 20 s; the lease was renewed up to 10 s earlier.
    wait_ready(core_v1, name, status="Unknown", timeout=60)
    wait_until(
        lambda: (
            "node.kubernetes.io/unreachable" in {t.key for t in core_v1.read_node(name).spec.taints or []}
        ),
        30,
        "the node lifecycle controller's unreachable taint",
    )

    operator_process.start()
    wait_ready(core_v1, name, timeout=30)
    assert core_v1.read_node(name).metadata.uid == uid, "the node was recreated instead of resumed"


def test_an_unreachable_backend_is_reported_and_tainted_while_the_node_stays_ready(
    make_virtual_node: MakeVirtualNode,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
) -> None:
    """An ARM outage is not the node dying: Ready stays True (no eviction), BackendReachable says what is wrong on
    the Node and the VirtualNode, and acinode's NoSchedule taint keeps new pods away until ARM is back."""
    name = make_virtual_node()["metadata"]["name"]
    wait_ready(core_v1, name)
    emulator_hook(
        emulator,
        "POST",
        "faults",
        {"operation": "Location_ListUsage", "status": 503, "code": "ServiceUnavailable"},
    )
    taint = ("acinode.dev/backend-unavailable", "NoSchedule")

    def backend_down() -> bool:
        node = core_v1.read_node(name)
        condition = next((c for c in node.status.conditions or [] if c.type == "BackendReachable"), None)
        taints = {(t.key, t.effect) for t in node.spec.taints or []}
        return condition is not None and condition.status == "False" and taint in taints

    try:
        wait_until(backend_down, 90, "BackendReachable=False and the taint on the Node")
        assert ready_condition(core_v1, name).status == "True"
        custom = client.CustomObjectsApi(api_client)
        status = custom.get_cluster_custom_object(*VIRTUAL_NODES, name)["status"]
        backend = next(c for c in status["conditions"] if c["type"] == "BackendReachable")
        assert backend["status"] == "False" and backend["reason"] == "BackendUnreachable"
    finally:
        emulator_hook(emulator, "DELETE", "faults")

    def backend_back() -> bool:
        node = core_v1.read_node(name)
        return taint not in {(t.key, t.effect) for t in node.spec.taints or []}

    wait_until(backend_back, 60, "the taint removed once ARM answers")
    assert ready_condition(core_v1, name).status == "True"


def test_spec_changes_reach_the_node_and_a_deleted_node_is_recreated(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, api_client: client.ApiClient
) -> None:
    name = make_virtual_node(labels={"tier": "one"})["metadata"]["name"]
    wait_ready(core_v1, name)
    custom = client.CustomObjectsApi(api_client)
    custom.patch_cluster_custom_object(
        *VIRTUAL_NODES, name, {"spec": {"labels": {"tier": "two"}, "capacity": {"pods": 7}}}
    )

    def updated() -> bool:
        node = core_v1.read_node(name)
        return node.metadata.labels.get("tier") == "two" and node.status.capacity.get("pods") == "7"

    wait_until(updated, 30, "the spec change to reach the Node")

    old_uid = core_v1.read_node(name).metadata.uid
    core_v1.delete_node(name)

    def recreated() -> bool:
        node = core_v1.read_node(name)
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        return node.metadata.uid != old_uid and ready is not None and ready.status == "True"

    wait_until(recreated, 20, "the deleted Node to be registered again")


def test_deleting_the_virtual_node_removes_node_lease_and_finalizer(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, api_client: client.ApiClient
) -> None:
    name = make_virtual_node()["metadata"]["name"]
    wait_ready(core_v1, name)
    custom = client.CustomObjectsApi(api_client)
    finalizers = custom.get_cluster_custom_object(*VIRTUAL_NODES, name)["metadata"].get("finalizers", [])
    assert "acinode.dev/finalizer" in finalizers
    custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)
    coordination = client.CoordinationV1Api(api_client)

    def gone(read: Callable[[], Any]) -> bool:
        try:
            read()
        except client.ApiException as err:
            return err.status == 404
        return False

    wait_until(
        lambda: gone(lambda: custom.get_cluster_custom_object(*VIRTUAL_NODES, name)), 30, "VirtualNode gone"
    )
    assert gone(lambda: core_v1.read_node(name))
    assert gone(lambda: coordination.read_namespaced_lease(name, "kube-node-lease"))


def test_kopf_state_stays_off_nodes(make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api) -> None:
    name = make_virtual_node()["metadata"]["name"]
    wait_ready(core_v1, name)
    node = core_v1.read_node(name)
    assert not node.metadata.finalizers
    assert not [k for k in node.metadata.annotations or {} if "kopf" in k]


def _unique() -> str:
    return f"bad-{uuid.uuid4().hex[:6]}"
