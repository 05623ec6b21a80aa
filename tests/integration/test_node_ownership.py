"""A virtual node is no wider a door than a kubelet: acinode touches only its own Node, Lease, pods and groups.

On the real control plane with ``acinode run`` and the ACI emulator: a VirtualNode whose nodeName is an existing
node's (a real node's, another VirtualNode's) is refused with a condition and an Event, and nothing of the other
node is written; labels NodeRestriction forbids a kubelet are refused by the API server (and by the operator for
objects stored before that rule). Absence is shown against a barrier: a legitimate pod on another virtual node of
the same operator runs first, so a reconciler started by mistake would have acted by then.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from contract import emulated
from support import arm
from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD = REPO_ROOT / "crds" / "virtualnodes.acinode.dev.yaml"
VIRTUAL_NODES = ("acinode.dev", "v1alpha1", "virtualnodes")
LEASES = "kube-node-lease"
UID_ANNOTATION = "acinode.dev/virtual-node-uid"
MakeVirtualNode = Callable[..., dict[str, Any]]
RENEW = datetime.datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=datetime.UTC)
"""A renewTime no one but the test writes (microseconds: the client sends MicroTime as isoformat)."""


# --- helpers ----------------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def read_or_none(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def acinode_managers(obj: Any) -> set[str]:
    """Field managers of ``obj`` that are acinode's (its client's User-Agent is ``acinode``)."""
    return {m.manager for m in obj.metadata.managed_fields or [] if "acinode" in (m.manager or "")}


def vn_condition(custom: client.CustomObjectsApi, name: str, kind: str = "Ready") -> dict[str, Any] | None:
    vn = custom.get_cluster_custom_object(*VIRTUAL_NODES, name)
    return next((c for c in (vn.get("status") or {}).get("conditions", []) if c["type"] == kind), None)


def wait_vn_reason(
    custom: client.CustomObjectsApi, name: str, reason: str, timeout: float = 30
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        condition = vn_condition(custom, name)
        return condition if condition is not None and condition["reason"] == reason else None

    result: dict[str, Any] = wait_until(matches, timeout, f"VirtualNode {name} Ready reason {reason}")
    return result


def vn_events(core: client.CoreV1Api, name: str, reason: str) -> list[client.CoreV1Event]:
    selector = f"involvedObject.name={name},involvedObject.kind=VirtualNode,reason={reason}"
    return list(core.list_namespaced_event("default", field_selector=selector).items)


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    node = read_or_none(lambda: core.read_node(name))
    conditions = node.status.conditions or [] if node is not None else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pod_body(name: str, node_name: str, tolerate_all: bool = False) -> dict[str, Any]:
    tolerations = (
        [{"operator": "Exists"}]  # the unregistered foreign node gets the lifecycle controller's taints
        if tolerate_all
        else [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": "ownership"}},
        "spec": {
            "nodeName": node_name,
            "tolerations": tolerations,
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": "nginx"}],
        },
    }


def running(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    pod = read_or_none(lambda: core.read_namespaced_pod(name, namespace))
    return pod if pod is not None and pod.status.phase == "Running" else None


def groups_of_node(emulator: emulated.Emulator, resource_group: str, node_name: str) -> list[dict[str, Any]]:
    return [
        g
        for g in arm.list_groups(emulator, resource_group)
        if (g.get("tags") or {}).get("acinode.node") == node_name
    ]


def force_delete_pod(core: client.CoreV1Api, namespace: str, name: str) -> None:
    with contextlib.suppress(client.ApiException):
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


@pytest.fixture
def foreign_node(core_v1: client.CoreV1Api, api_client: client.ApiClient) -> Iterator[dict[str, Any]]:
    """A Node acinode did not create (as a kubelet registers it), with the Lease a kubelet keeps for it."""
    name = unique("real")
    node = core_v1.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "team": "db"}},
            "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        }
    )
    core_v1.patch_node_status(
        name,
        {
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "nodeInfo": {
                    "kubeletVersion": "v1.37.2",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            }
        },
    )
    coordination = client.CoordinationV1Api(api_client)
    coordination.create_namespaced_lease(
        LEASES,
        {
            "metadata": {
                "name": name,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node.metadata.uid}
                ],
            },
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": RENEW},
        },
    )
    yield {"name": name, "uid": node.metadata.uid}
    with contextlib.suppress(client.ApiException):
        core_v1.delete_node(name, body=client.V1DeleteOptions(preconditions={"uid": node.metadata.uid}))


def assert_untouched_node(
    core: client.CoreV1Api, coordination: client.CoordinationV1Api, name: str, uid: str
) -> None:
    node = core.read_node(name)
    assert node.metadata.uid == uid
    assert acinode_managers(node) == set(), "acinode wrote to a Node that is not its own"
    assert UID_ANNOTATION not in (node.metadata.annotations or {})
    assert node.metadata.labels.get("team") == "db"
    assert "type" not in node.metadata.labels and "acinode.dev/virtual-node" not in node.metadata.labels
    assert "virtual-kubelet.io/provider" not in {t.key for t in node.spec.taints or []}
    assert node.status.node_info.kubelet_version == "v1.37.2"
    assert node.status.capacity == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    lease = coordination.read_namespaced_lease(name, LEASES)
    assert acinode_managers(lease) == set(), "acinode wrote to a Lease that is not its Node's"
    assert lease.spec.holder_identity == name
    assert lease.spec.renew_time == RENEW


def barrier(make_virtual_node: MakeVirtualNode, core: client.CoreV1Api, namespace: str) -> None:
    """A legitimate virtual node of the same operator runs a pod: the operator has been serving pods meanwhile."""
    legit = make_virtual_node(unique("legit"))["metadata"]["name"]
    wait_until(lambda: node_ready(core, legit), 30, f"the legitimate node {legit} to be Ready")
    core.create_namespaced_pod(namespace, pod_body("barrier", legit))
    wait_until(lambda: running(core, namespace, "barrier"), 60, "the legitimate pod to run")


# --- (a) the name of an existing, non-acinode node --------------------------------------------------------------


def test_a_virtual_node_named_after_a_real_node_is_refused_and_touches_nothing_of_it(
    make_virtual_node: MakeVirtualNode,
    foreign_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    coordination = client.CoordinationV1Api(api_client)
    name = foreign_node["name"]
    core_v1.create_namespaced_pod(namespace, pod_body("bound", name, tolerate_all=True))
    try:
        vn = make_virtual_node(unique("squatter"), nodeName=name)["metadata"]["name"]

        ready = wait_vn_reason(custom, vn, "NodeNameConflict")
        assert ready["status"] == "False"
        assert (
            f"Node {name} (uid {foreign_node['uid']}) already exists and is not acinode's" in ready["message"]
        )
        assert "kubelet v1.37.2" in ready["message"]
        registered = vn_condition(custom, vn, "Registered")
        assert registered is not None and (registered["status"], registered["reason"]) == (
            "False",
            "NodeNameConflict",
        )
        events = wait_until(
            lambda: vn_events(core_v1, vn, "NodeNameConflict"), 10, "a NodeNameConflict Event"
        )
        assert events[0].type == "Warning" and events[0].message == ready["message"]

        barrier(make_virtual_node, core_v1, namespace)

        assert_untouched_node(core_v1, coordination, name, foreign_node["uid"])
        pod = core_v1.read_namespaced_pod("bound", namespace)
        assert pod.metadata.deletion_timestamp is None
        assert acinode_managers(pod) == set(), "acinode patched a pod of a node that is not its own"
        assert pod.status.phase == "Pending" and not pod.status.container_statuses
        assert not [
            e
            for e in core_v1.list_namespaced_event(
                namespace, field_selector="involvedObject.name=bound"
            ).items
            if e.source and e.source.component == "acinode"
        ]
        assert groups_of_node(emulator, f"rg-{vn}", name) == []
        assert arm.list_groups(emulator, f"rg-{vn}") == []
        assert len(vn_events(core_v1, vn, "NodeNameConflict")) == 1  # reported once, not on every retry
    finally:
        force_delete_pod(core_v1, namespace, "bound")


# --- (d) the foreign node goes: the waiting VirtualNode proceeds ------------------------------------------------


def test_when_the_foreign_node_is_deleted_the_waiting_virtual_node_takes_the_name(
    make_virtual_node: MakeVirtualNode,
    foreign_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    coordination = client.CoordinationV1Api(api_client)
    name = foreign_node["name"]
    core_v1.create_namespaced_pod(namespace, pod_body("bound", name, tolerate_all=True))
    try:
        vn_body = make_virtual_node(unique("waiter"), nodeName=name)
        vn, vn_uid = vn_body["metadata"]["name"], vn_body["metadata"]["uid"]
        wait_vn_reason(custom, vn, "NodeNameConflict")

        core_v1.delete_node(name)

        wait_until(lambda: node_ready(core_v1, name), 60, "the VirtualNode to register the freed name")
        node = core_v1.read_node(name)
        assert node.metadata.uid != foreign_node["uid"]
        assert node.metadata.annotations[UID_ANNOTATION] == vn_uid
        wait_vn_reason(custom, vn, "KubeletReady")
        assert vn_condition(custom, vn, "Registered")["status"] == "True"  # type: ignore[index]

        def our_lease() -> Any:
            lease = read_or_none(lambda: coordination.read_namespaced_lease(name, LEASES))
            owners = {o.uid for o in (lease.metadata.owner_references or [])} if lease else set()
            return lease if node.metadata.uid in owners else None

        # The kubelet's Lease goes with its Node (garbage collector); then acinode creates its own.
        wait_until(our_lease, 60, "a Lease owned by the new Node")
        # The pod bound to the name is now this VirtualNode's to run.
        wait_until(
            lambda: running(core_v1, namespace, "bound"), 60, "the bound pod to run on the virtual node"
        )
        assert len(groups_of_node(emulator, f"rg-{vn}", name)) == 1
    finally:
        force_delete_pod(core_v1, namespace, "bound")


# --- (b) two VirtualNodes with one nodeName ---------------------------------------------------------------------


def test_a_duplicate_node_name_is_refused_and_deleting_it_leaves_the_first_intact(
    make_virtual_node: MakeVirtualNode,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    coordination = client.CoordinationV1Api(api_client)
    shared = unique("shared")
    first = make_virtual_node(unique("first"), nodeName=shared)
    first_name, first_uid = first["metadata"]["name"], first["metadata"]["uid"]
    wait_until(lambda: node_ready(core_v1, shared), 30, "the first VirtualNode's Node to be Ready")
    core_v1.create_namespaced_pod(namespace, pod_body("web", shared))
    pod_uid = wait_until(
        lambda: running(core_v1, namespace, "web"), 60, "the first node's pod to run"
    ).metadata.uid
    resource_group = first["spec"]["azure"]["resourceGroup"]
    (group,) = groups_of_node(emulator, resource_group, shared)
    node_uid = core_v1.read_node(shared).metadata.uid

    # The second one points at the same resource group: an unguarded release would delete the first one's groups.
    second = make_virtual_node(unique("second"), nodeName=shared, azure=copy.deepcopy(first["spec"]["azure"]))
    second_name = second["metadata"]["name"]
    ready = wait_vn_reason(custom, second_name, "NodeNameConflict")
    assert f"Node {shared} belongs to VirtualNode {first_name} (uid {first_uid})" in ready["message"]
    wait_until(lambda: vn_events(core_v1, second_name, "NodeNameConflict"), 10, "a NodeNameConflict Event")

    def first_intact() -> None:
        node = core_v1.read_node(shared)
        assert node.metadata.uid == node_uid
        assert node.metadata.annotations[UID_ANNOTATION] == first_uid
        assert node.metadata.labels["acinode.dev/virtual-node"] == first_name
        assert vn_condition(custom, first_name)["status"] == "True"  # type: ignore[index]
        pod = running(core_v1, namespace, "web")
        assert pod is not None and pod.metadata.uid == pod_uid
        (still,) = groups_of_node(emulator, resource_group, shared)
        assert still["name"] == group["name"] and still["tags"]["acinode.pod-uid"] == pod_uid

    first_intact()
    custom.delete_cluster_custom_object(*VIRTUAL_NODES, second_name)
    wait_until(
        lambda: read_or_none(lambda: custom.get_cluster_custom_object(*VIRTUAL_NODES, second_name)) is None,
        30,
        "the refused VirtualNode to be released",
    )
    first_intact()
    lease = coordination.read_namespaced_lease(shared, LEASES)
    assert [o.uid for o in lease.metadata.owner_references] == [node_uid]
    renewed = lease.spec.renew_time
    wait_until(
        lambda: coordination.read_namespaced_lease(shared, LEASES).spec.renew_time > renewed,
        25,
        "the first node's Lease to be renewed after the second VirtualNode is gone",
    )
    first_intact()


# --- a foreign Lease under our Node's name ----------------------------------------------------------------------


def test_a_foreign_lease_under_the_nodes_name_is_left_alone_and_reported(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    coordination = client.CoordinationV1Api(api_client)
    name = unique("leased")
    coordination.create_namespaced_lease(
        LEASES, {"metadata": {"name": name}, "spec": {"holderIdentity": "intruder", "renewTime": RENEW}}
    )
    try:
        make_virtual_node(name)
        ready = wait_vn_reason(custom, name, "LeaseConflict")
        assert f"Lease kube-node-lease/{name} is not owned by Node {name}" in ready["message"]
        assert "it has no owner, held by intruder" in ready["message"]
        wait_until(lambda: vn_events(core_v1, name, "LeaseConflict"), 10, "a LeaseConflict Event")
        lease = coordination.read_namespaced_lease(name, LEASES)
        assert acinode_managers(lease) == set()
        assert (lease.spec.holder_identity, lease.spec.renew_time) == ("intruder", RENEW)
        assert not lease.metadata.owner_references
        assert core_v1.read_node(name).metadata.annotations[UID_ANNOTATION]  # the Node itself is ours
    finally:
        with contextlib.suppress(client.ApiException):
            coordination.delete_namespaced_lease(name, LEASES)


# --- (c) labels a kubelet may not set on itself -----------------------------------------------------------------

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def bare_virtual_node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "acinode.dev/v1alpha1",
        "kind": "VirtualNode",
        "metadata": {"name": name},
        "spec": {
            "azure": {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "region": "westeurope"},
            "labels": labels,
        },
    }


NODE_RESTRICTION = "NodeRestriction forbids a kubelet to set on its own Node"
DERIVED = "may not set the labels acinode sets itself"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param("node-restriction.kubernetes.io/pool", NODE_RESTRICTION, id="node-restriction-prefix"),
        pytest.param("node-role.kubernetes.io/control-plane", NODE_RESTRICTION, id="node-role"),
        pytest.param("kubernetes.io/role", NODE_RESTRICTION, id="kubernetes-io-role"),
        pytest.param("example.k8s.io/anything", NODE_RESTRICTION, id="k8s-io-subdomain"),
        pytest.param("type", DERIVED, id="derived-type"),
        pytest.param("acinode.dev/virtual-node", DERIVED, id="derived-managed-by"),
        pytest.param("topology.kubernetes.io/region", DERIVED, id="derived-region"),
        pytest.param("kubernetes.io/hostname", DERIVED, id="derived-hostname"),
    ],
)
def test_the_api_server_refuses_labels_a_kubelet_may_not_set(
    api_client: client.ApiClient, crd_installed: None, key: str, message: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as caught:
        custom.create_cluster_custom_object(*VIRTUAL_NODES, bare_virtual_node(unique("labels"), {key: "x"}))
    assert caught.value.status == 422
    assert message in json.loads(caught.value.body)["message"]


@pytest.mark.parametrize(
    "key",
    ["topology.kubernetes.io/zone", "node.kubernetes.io/pool", "kubelet.kubernetes.io/x", "example.com/tier"],
)
def test_the_api_server_accepts_labels_a_kubelet_may_set(
    api_client: client.ApiClient, crd_installed: None, key: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    body = bare_virtual_node(unique("labels"), {key: "x"})
    created = custom.create_cluster_custom_object(*VIRTUAL_NODES, body, dry_run="All")
    assert created["spec"]["labels"] == {key: "x"}


def label_rules(crd: dict[str, Any]) -> list[Any]:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules: list[Any] = spec["properties"]["labels"]["x-kubernetes-validations"]
    return rules


@contextlib.contextmanager
def crd_without_label_rules(api_client: client.ApiClient) -> Iterator[None]:
    """The CRD as it was before the label rules (to store an object that predates them), restored after."""
    extensions = client.ApiextensionsV1Api(api_client)
    current = yaml.safe_load(CRD.read_text())
    name = current["metadata"]["name"]
    relaxed = copy.deepcopy(current)
    del label_rules(relaxed)[2:]  # key and value syntax only

    def stored() -> dict[str, Any]:
        result: dict[str, Any] = api_client.sanitize_for_serialization(
            extensions.read_custom_resource_definition(name)
        )
        return result

    def replace(body: dict[str, Any]) -> None:
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = stored()["metadata"]["resourceVersion"]
        extensions.replace_custom_resource_definition(name, body)

    try:
        replace(relaxed)
        wait_until(lambda: len(label_rules(stored())) == 2, 10, "the relaxed CRD")
        yield
    finally:
        replace(current)
        wait_until(lambda: label_rules(stored()) == label_rules(current), 10, "the CRD restored")


def test_a_virtual_node_stored_before_the_label_rule_is_refused_by_the_operator(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    name = unique("stored")
    labels = {"node-restriction.kubernetes.io/pool": "gold", "team": "a"}
    with crd_without_label_rules(api_client):
        make_virtual_node(name, labels=labels)
    ready = wait_vn_reason(custom, name, "ForbiddenLabels")
    assert "node-restriction.kubernetes.io/pool: NodeRestriction forbids a kubelet" in ready["message"]
    wait_until(lambda: vn_events(core_v1, name, "ForbiddenLabels"), 10, "a ForbiddenLabels Event")
    assert read_or_none(lambda: core_v1.read_node(name)) is None, (
        "a Node was registered with forbidden labels"
    )
