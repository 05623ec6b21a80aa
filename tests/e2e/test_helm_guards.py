"""The chart's admission guards (templates/nodeguard.yaml), proven on the real control plane: what the Node
authorizer and NodeRestriction keep a kubelet from, the guards keep the operator's ServiceAccount from, as far as
admission can check it; and what acinode legitimately does passes.

Legitimate requests are made by acinode's own code (registration, heartbeat, lease renewal, pod status, force
deletion, token requests) under a TokenRequest token of the chart's ServiceAccount, so a guard that refused what
acinode sends fails here. Refused requests are made as that ServiceAccount too (token or impersonation) and must
fail with the guard's own message: without the guard RBAC would let them through, so each test fails if its
guard is removed. Where RBAC alone refuses something today (creating pods, Leases in other namespaces), the test
first widens RBAC for the ServiceAccount, to prove the guard holds even then."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config

from acinode import errors
from acinode.kube import client as kube_client
from acinode.kube import connection
from acinode.kube import pods as kube_pods
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import heartbeat, lease, registration
from helm import chart
from helm.release import Installed, installed_release
from support.waiting import wait_until

RELEASE = "acinode"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
UID_ANNOTATION = "acinode.dev/virtual-node-uid"
IDENTITY = node_mapping.NodeIdentity(internal_ip="10.0.0.9", kubelet_port=10250, kubelet_version="v1.37.2")
T = TypeVar("T")


@pytest.fixture(scope="module")
def installed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    helm = chart.build(tmp_path_factory.mktemp("helm-home")).with_kubeconfig(cluster.kubeconfig)
    namespace = f"acinode-guards-{uuid.uuid4().hex[:6]}"
    values = {"peering": {"name": f"peering-{namespace}"}}
    with installed_release(helm, cluster, RELEASE, namespace, values) as release:
        # The API server loads new admission policies asynchronously: wait until the node guard refuses (a
        # server-side dry run of a Node without its VirtualNode uid), so no test races the policy's arrival.
        probe = json.dumps(
            node_body(f"guard-probe-{uuid.uuid4().hex[:6]}", {"acinode.dev/virtual-node": "p"})
        )
        wait_until(
            lambda: (
                not as_operator(cluster, release, "create", "--dry-run=server", "-f", "-", input_text=probe)[
                    0
                ]
            ),
            60,
            "the admission guards in force",
        )
        yield release


# --- acting as the operator -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def operator_connection(cluster: Any, installed: Installed) -> connection.KubeConnection:
    """How acinode logs in inside its pod: the cluster's address and CA, and a ServiceAccount token."""
    token = cluster.kubectl(
        "create", "token", installed.service_account, "-n", installed.namespace, "--duration=1h"
    ).strip()
    entry = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
    ca = entry.get("certificate-authority-data")
    return connection.KubeConnection(
        server=entry["server"],
        ca_path=entry.get("certificate-authority"),
        ca_data=base64.b64decode(ca) if ca else None,
        token=token,
    )


@pytest.fixture
def acinode(operator_connection: connection.KubeConnection) -> Callable[..., Any]:
    """Run one of acinode's own coroutines with a KubeClient logged in as the operator's ServiceAccount."""

    def run(action: Callable[[kube_client.KubeClient], Awaitable[T]]) -> T:
        async def main() -> T:
            kube = kube_client.KubeClient(operator_connection)
            try:
                return await action(kube)
            finally:
                await kube.close()

        return asyncio.run(main())

    return run


def refused(acinode: Callable[..., Any], action: Callable[[kube_client.KubeClient], Awaitable[Any]]) -> str:
    """Run ``action`` as the operator; it must be refused with 403. Returns the API server's message."""
    with pytest.raises(errors.PermissionDeniedError) as denied:
        acinode(action)
    return str(denied.value)


@pytest.fixture(scope="module")
def impersonating(cluster: Any, installed: Installed) -> Iterator[client.ApiClient]:
    """The admin's client impersonating the operator's ServiceAccount, for requests acinode's code never makes."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    api.set_default_header("Impersonate-User", installed.user)
    yield api
    api.close()


def api_refusal(call: Callable[[], Any]) -> str:
    with pytest.raises(client.ApiException) as denied:
        call()
    assert denied.value.status == 403, denied.value.body
    return str(json.loads(denied.value.body)["message"])


def as_operator(
    cluster: Any, installed: Installed, *args: str, input_text: str | None = None
) -> tuple[bool, str]:
    """kubectl as the operator's ServiceAccount: (succeeded, stdout + stderr)."""
    result = subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), *args, f"--as={installed.user}"],
        check=False,
        capture_output=True,
        text=True,
        input=input_text,
        timeout=60,
    )
    return result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def widened_rbac(cluster: Any, installed: Installed) -> Iterator[None]:
    """Grant the operator's ServiceAccount what the chart deliberately does not (pod writes, Leases anywhere), as a
    careless RBAC change would: the guards must still refuse."""
    name = f"widen-{uuid.uuid4().hex[:6]}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "update", "patch"]},
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["create", "patch", "delete"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": installed.service_account, "namespace": installed.namespace}
        ],
    }
    cluster.kubectl(
        "create",
        "-f",
        "-",
        input_text=json.dumps({"kind": "List", "apiVersion": "v1", "items": [role, binding]}),
    )
    wait_until(
        lambda: as_operator(cluster, installed, "auth", "can-i", "create", "pods", "-n", "default")[0],
        30,
        "the widened grants to apply",
    )
    yield
    cluster.kubectl("delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found")


# --- Nodes ----------------------------------------------------------------------------------------------------


def vn_body(name: str, **spec: Any) -> dict[str, Any]:
    """A VirtualNode (the Azure part only names a region: no operator serves it here)."""
    return {
        "apiVersion": "acinode.dev/v1alpha1",
        "kind": "VirtualNode",
        "metadata": {"name": name},
        "spec": {
            "azure": {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "region": "westeurope"},
            **spec,
        },
    }


def vn_config(name: str, **spec: Any) -> virtualnode.VirtualNodeConfig:
    """A VirtualNode's configuration as acinode parses it."""
    return virtualnode.virtual_node_config_from_resource(vn_body(name, **spec))


def declare(cluster: Any, name: str, **spec: Any) -> tuple[virtualnode.VirtualNodeConfig, str]:
    """Create the VirtualNode (acinode registers a Node only for one that exists): its config and uid."""
    created = json.loads(
        cluster.kubectl("create", "-f", "-", "-o", "json", input_text=json.dumps(vn_body(name, **spec)))
    )
    return virtualnode.virtual_node_config_from_resource(created), str(created["metadata"]["uid"])


def acinode_node(name: str, extra_labels: dict[str, str]) -> dict[str, Any]:
    """The Node acinode registers for a VirtualNode, with ``extra_labels`` on top (whatever acinode's own validation
    of spec.labels would say: the guard is what is tested)."""
    body = node_mapping.node_from_virtual_node(vn_config(name), IDENTITY, f"uid-{name}")
    body["metadata"]["labels"].update(extra_labels)
    return body


def node_body(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata}


@pytest.fixture
def node_name(cluster: Any) -> Iterator[str]:
    """A fresh node name; its Node and Lease are deleted (by the admin) after the test."""
    name = f"vn-{uuid.uuid4().hex[:6]}"
    yield name
    cluster.kubectl("delete", "lease", name, "-n", "kube-node-lease", "--ignore-not-found")
    cluster.kubectl("delete", "node", name, "--ignore-not-found")
    cluster.kubectl("delete", "virtualnodes.acinode.dev", name, "--ignore-not-found")


@pytest.fixture
def virtual_node(cluster: Any, acinode: Callable[..., Any], node_name: str) -> dict[str, Any]:
    """A VirtualNode's Node, registered by acinode's own code as the operator (labels, taint, uid annotation)."""
    return register(acinode, *declare(cluster, node_name))


def register(
    acinode: Callable[..., Any], config: virtualnode.VirtualNodeConfig, owner: str
) -> dict[str, Any]:
    """acinode's registration (create, or patch the drift of, its Node), as the operator. Retried on a conflict,
    as the operator retries: the node lifecycle controller also writes a new Node (its taints)."""
    claim = wait_until(
        lambda: acinode(lambda kube: registration.claim_node(kube, config, IDENTITY, owner)),
        20,
        "registration",
    )
    assert claim.refusal is None, claim.refusal
    node: dict[str, Any] = claim.node
    return node


def test_operator_runs_a_node_as_acinode_does(
    cluster: Any, acinode: Callable[..., Any], node_name: str, core_v1: client.CoreV1Api
) -> None:
    """Register, heartbeat, relabel, renew the Lease, and remove: each request acinode makes is admitted, with
    every label acinode sets (kubernetes.io/role=agent, the kubelet labels, topology, node.kubernetes.io/…)."""
    config_v1, owner = declare(
        cluster, node_name, labels={"team": "burst"}, taints=[{"key": "dedicated", "effect": "NoSchedule"}]
    )
    node = register(acinode, config_v1, owner)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["node.kubernetes.io/exclude-from-external-load-balancers"] == "true"
    assert labels["topology.kubernetes.io/region"] == "westeurope"
    assert node["metadata"]["annotations"][UID_ANNOTATION] == owner
    now = datetime.datetime.now(datetime.UTC)
    acinode(
        lambda kube: heartbeat.patch_status_once(
            kube,
            config_v1,
            IDENTITY,
            node_mapping.Readiness(True, "KubeletReady", "ready"),
            now=now,
            previous_conditions=[],
            node_uid=node["metadata"]["uid"],
        )
    )
    # The VirtualNode's spec changes: acinode patches labels (adding a zone, dropping one) and taints.
    config_v2 = vn_config(
        node_name, labels={"topology.kubernetes.io/zone": "westeurope-1", "kubelet.kubernetes.io/pool": "aci"}
    )
    node = register(acinode, config_v2, owner)
    assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "westeurope-1"
    assert "team" not in node["metadata"]["labels"]
    # The Lease: created on the first renewal, patched on the next ones.
    for _ in range(2):
        acinode(lambda kube: lease.renew_once(kube, node_name, node["metadata"]["uid"], now, 40))
    renewed: Any = client.CoordinationV1Api(core_v1.api_client).read_namespaced_lease(
        node_name, "kube-node-lease"
    )
    assert renewed.metadata.owner_references[0].uid == node["metadata"]["uid"]
    acinode(lambda kube: registration.remove_node(kube, node_name, node["metadata"]["uid"]))
    assert node_name not in {n.metadata.name for n in core_v1.list_node().items}


def test_operator_cannot_create_a_node_without_its_virtual_node_uid(
    acinode: Callable[..., Any], node_name: str
) -> None:
    body = node_body(node_name, {"acinode.dev/virtual-node": node_name})
    message = refused(acinode, lambda kube: kube.create("/api/v1/nodes", body))
    assert (
        f"acinode may create a Node only with its VirtualNode's uid in the annotation {UID_ANNOTATION}, "
        f"not {node_name}" in message
    )


def test_operator_cannot_rewrite_or_remove_a_nodes_virtual_node_uid(
    acinode: Callable[..., Any], virtual_node: dict[str, Any]
) -> None:
    """Adoption by rewriting the annotation (another VirtualNode taking the Node over) is refused; so is removing it."""
    name = virtual_node["metadata"]["name"]
    path = f"/api/v1/nodes/{name}"
    owner = virtual_node["metadata"]["annotations"][UID_ANNOTATION]
    expected = (
        f"acinode may not change or remove the annotation {UID_ANNOTATION} of Node {name} "
        f"(it names the VirtualNode that owns the Node: {owner})"
    )
    message = refused(
        acinode, lambda kube: kube.patch(path, {"metadata": {"annotations": {UID_ANNOTATION: "uid-other"}}})
    )
    assert expected in message
    message = refused(
        acinode, lambda kube: kube.patch(path, {"metadata": {"annotations": {UID_ANNOTATION: None}}})
    )
    assert expected in message
    # Through nodes/status as well (a status patch carries metadata too).
    message = refused(
        acinode,
        lambda kube: kube.patch(
            f"{path}/status", {"metadata": {"annotations": {UID_ANNOTATION: "uid-other"}}}
        ),
    )
    assert expected in message


def test_operator_cannot_adopt_a_labelled_node_without_uid(
    cluster: Any, acinode: Callable[..., Any], node_name: str
) -> None:
    """A Node that carries acinode's label but no VirtualNode uid (labelled by someone else) is not acinode's: it may
    neither claim it by adding a uid, nor change nor delete it."""
    cluster.kubectl(
        "create", "-f", "-", input_text=json.dumps(node_body(node_name, {"acinode.dev/virtual-node": "x"}))
    )
    path = f"/api/v1/nodes/{node_name}"
    message = refused(
        acinode, lambda kube: kube.patch(path, {"metadata": {"annotations": {UID_ANNOTATION: "mine"}}})
    )
    assert (
        f"acinode may change only Nodes that carry their VirtualNode's uid in the annotation {UID_ANNOTATION}, "
        f"and may not add it (adopt a Node): refused on {node_name}" in message
    )
    message = refused(acinode, lambda kube: kube.delete(path))
    assert (
        f"acinode may delete only Nodes that carry their VirtualNode's uid in the annotation {UID_ANNOTATION}, "
        f"not {node_name}" in message
    )


# Keys a kubelet may not set on its own Node (NodeRestriction), with a value acinode might be asked to set.
FORBIDDEN_LABELS = [
    ("node-restriction.kubernetes.io/tenant", "a"),
    ("node-role.kubernetes.io/control-plane", ""),
    ("node-role.kubernetes.io/agent", ""),
    ("kubernetes.io/role", "master"),
    ("kubernetes.io/custom", "x"),
    ("example.kubernetes.io/zone", "x"),
    ("k8s.io/custom", "x"),
    ("sub.k8s.io/custom", "x"),
    ("topology.kubernetes.io/rack", "r1"),
]
# Keys a kubelet may set on itself (the same list NodeRestriction allows), and acinode's kubernetes.io/role=agent.
ALLOWED_LABELS = {
    "kubernetes.io/hostname": "h",
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/instance-type": "aci",
    "node.kubernetes.io/instance-type": "aci",
    "topology.kubernetes.io/region": "westeurope",
    "topology.kubernetes.io/zone": "westeurope-1",
    "failure-domain.beta.kubernetes.io/region": "westeurope",
    "failure-domain.beta.kubernetes.io/zone": "westeurope-1",
    "kubelet.kubernetes.io/anything": "x",
    "node.kubernetes.io/anything": "x",
    "pool.node.kubernetes.io/anything": "x",
    "kubernetes.io/role": "agent",
    "team": "burst",
    "example.com/owner": "shop",
}


@pytest.mark.parametrize(("key", "value"), FORBIDDEN_LABELS, ids=[k for k, _ in FORBIDDEN_LABELS])
def test_operator_cannot_set_labels_noderestriction_forbids_a_kubelet(
    acinode: Callable[..., Any], virtual_node: dict[str, Any], node_name: str, key: str, value: str
) -> None:
    expected = "(NodeRestriction forbids a kubelet to set them on its own Node): " + key
    name = virtual_node["metadata"]["name"]
    message = refused(
        acinode, lambda kube: kube.patch(f"/api/v1/nodes/{name}", {"metadata": {"labels": {key: value}}})
    )
    assert f"acinode may not set, change or remove these labels of Node {name} {expected}" in message
    # On registration: the Node acinode would create, with the label added (as a VirtualNode's spec.labels ask).
    other = f"{node_name}-b"
    body = acinode_node(other, {key: value})
    message = refused(acinode, lambda kube: kube.create("/api/v1/nodes", body))
    assert f"acinode may not set, change or remove these labels of Node {other} {expected}" in message


def test_operator_cannot_remove_or_change_a_forbidden_label_someone_else_set(
    cluster: Any, acinode: Callable[..., Any], virtual_node: dict[str, Any]
) -> None:
    """Removing a label can steer workloads as much as setting one (a NotIn or DoesNotExist affinity)."""
    name = virtual_node["metadata"]["name"]
    cluster.kubectl(
        "label",
        "node",
        name,
        "node-restriction.kubernetes.io/isolated=true",
        "kubernetes.io/role=agent",
        "--overwrite",
    )
    path = f"/api/v1/nodes/{name}"
    message = refused(
        acinode,
        lambda kube: kube.patch(
            path, {"metadata": {"labels": {"node-restriction.kubernetes.io/isolated": None}}}
        ),
    )
    assert (
        f"labels of Node {name} (NodeRestriction forbids a kubelet to set them on its own Node): node-restriction.kubernetes.io/isolated"
        in message
    )
    message = refused(
        acinode, lambda kube: kube.patch(path, {"metadata": {"labels": {"kubernetes.io/role": "master"}}})
    )
    assert "its own Node): kubernetes.io/role" in message


def test_operator_may_set_the_labels_a_kubelet_may_set(acinode: Callable[..., Any], node_name: str) -> None:
    body = acinode_node(node_name, ALLOWED_LABELS)
    node = acinode(lambda kube: kube.create("/api/v1/nodes", body))
    for key, value in ALLOWED_LABELS.items():
        assert node["metadata"]["labels"][key] == value, key


def test_operator_cannot_change_a_nodes_owner_references(
    acinode: Callable[..., Any], virtual_node: dict[str, Any]
) -> None:
    name = virtual_node["metadata"]["name"]
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": str(uuid.uuid4())}
    message = refused(
        acinode, lambda kube: kube.patch(f"/api/v1/nodes/{name}", {"metadata": {"ownerReferences": [owner]}})
    )
    assert f"acinode may not change the ownerReferences of Node {name}" in message


# --- Leases ---------------------------------------------------------------------------------------------------

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def lease_body(name: str, owners: list[dict[str, str]], namespace: str = "kube-node-lease") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": owners},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40},
    }


def node_owner(name: str, uid: str, kind: str = "Node") -> dict[str, str]:
    return {"apiVersion": "v1", "kind": kind, "name": name, "uid": uid}


def test_operator_writes_only_leases_owned_by_the_node_of_their_name(
    cluster: Any, acinode: Callable[..., Any], virtual_node: dict[str, Any]
) -> None:
    name = virtual_node["metadata"]["name"]
    uid = virtual_node["metadata"]["uid"]
    wrong = {
        "no owner": [],
        "another node": [node_owner("real-node", uid)],
        "not a Node": [node_owner(name, uid, kind="ConfigMap")],
        "two owners": [node_owner(name, uid), node_owner(name, str(uuid.uuid4()))],
    }
    for what, owners in wrong.items():
        message = refused(acinode, lambda kube, owners=owners: kube.create(LEASES, lease_body(name, owners)))
        assert (
            f"acinode may create only node Leases owned by the Node of the same name (one ownerReference: v1 Node "
            f"{name} with its uid), not kube-node-lease/{name}" in message
        ), what
    # Its own Lease: created and renewed by acinode's code.
    now = datetime.datetime.now(datetime.UTC)
    acinode(lambda kube: lease.renew_once(kube, name, uid, now, 40))
    acinode(lambda kube: lease.renew_once(kube, name, uid, now, 40))
    # It may not re-point the Lease to another owner (another Node of that name: a new uid).
    path = f"{LEASES}/{name}"
    message = refused(
        acinode,
        lambda kube: kube.patch(
            path, {"metadata": {"ownerReferences": [node_owner(name, str(uuid.uuid4()))]}}
        ),
    )
    assert (
        f"acinode may not change the ownerReferences of kube-node-lease/{name} (a node Lease is not re-pointed to "
        "another owner)" in message
    )
    # A Lease in kube-node-lease that is not a node Lease (no owner): neither renewed nor deleted.
    foreign = f"{name}-foreign"
    cluster.kubectl("create", "-f", "-", input_text=json.dumps(lease_body(foreign, [])))
    try:
        message = refused(
            acinode, lambda kube: kube.patch(f"{LEASES}/{foreign}", {"spec": {"leaseDurationSeconds": 1}})
        )
        assert "acinode may update only node Leases owned by the Node of the same name" in message
        message = refused(acinode, lambda kube: kube.delete(f"{LEASES}/{foreign}"))
        assert "acinode may delete only node Leases owned by the Node of the same name" in message
    finally:
        cluster.kubectl("delete", "lease", foreign, "-n", "kube-node-lease", "--ignore-not-found")
    # Its own Lease: deleted with its Node.
    acinode(lambda kube: registration.remove_node(kube, name, uid))


@pytest.mark.usefixtures("widened_rbac")
def test_operator_writes_leases_only_in_kube_node_lease_and_its_own_namespace(
    acinode: Callable[..., Any], installed: Installed, namespace: str
) -> None:
    """Even when RBAC grants Leases everywhere: leader-election Leases of other components are not acinode's."""
    body = lease_body("kube-scheduler", [], namespace=namespace)
    message = refused(
        acinode, lambda kube: kube.create(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", body)
    )
    assert (
        "acinode may write Leases only in kube-node-lease (its Nodes' heartbeats) and in its own namespace "
        f"{installed.namespace}, not {namespace}/kube-scheduler" in message
    )
    # Its own namespace is RBAC's to decide (acinode's own Leases, should it hold any there).
    own = lease_body("acinode-test", [], namespace=installed.namespace)
    acinode(
        lambda kube: kube.create(f"/apis/coordination.k8s.io/v1/namespaces/{installed.namespace}/leases", own)
    )


# --- Pods -----------------------------------------------------------------------------------------------------


def create_pod(
    core_v1: client.CoreV1Api, namespace: str, name: str, *, node: str | None, finalizer: bool = False
) -> dict[str, Any]:
    """A pod created by the admin: bound to ``node`` (as the scheduler would), or left unscheduled."""
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    else:
        spec["schedulerName"] = "nobody"  # stays Pending, unbound
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if finalizer:
        metadata["finalizers"] = ["example.com/hold"]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    created: dict[str, Any] = core_v1.api_client.sanitize_for_serialization(
        core_v1.create_namespaced_pod(namespace, body)
    )
    return created


def begin_deletion(core_v1: client.CoreV1Api, namespace: str, name: str) -> None:
    """A user's `kubectl delete pod`: the API server sets deletionTimestamp and waits for the kubelet."""
    core_v1.delete_namespaced_pod(name, namespace, grace_period_seconds=300)
    wait_until(
        lambda: core_v1.read_namespaced_pod(name, namespace).metadata.deletion_timestamp,
        10,
        "the deletion to begin",
    )


def release(core_v1: client.CoreV1Api, namespace: str, name: str) -> None:
    try:
        core_v1.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
        core_v1.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except client.ApiException as err:
        if err.status != 404:
            raise


def running_status() -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "phase": "Running",
        "podIP": "10.1.2.3",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }


def test_operator_may_patch_the_status_of_a_bound_pod_and_nothing_else(
    acinode: Callable[..., Any], core_v1: client.CoreV1Api, namespace: str, virtual_node: dict[str, Any]
) -> None:
    bound = create_pod(core_v1, namespace, "bound", node=virtual_node["metadata"]["name"])
    uid = bound["metadata"]["uid"]
    updated = acinode(lambda kube: kube_pods.patch_status(kube, namespace, "bound", uid, running_status()))
    assert updated["status"]["phase"] == "Running" and updated["status"]["podIP"] == "10.1.2.3"
    # Nothing but the status through pods/status: not labels, not annotations (NodeRestriction: not labels).
    status = f"/api/v1/namespaces/{namespace}/pods/bound/status"
    for change in ({"labels": {"app": "other"}}, {"annotations": {"x": "y"}}, {"labels": {"app": None}}):
        message = refused(acinode, lambda kube, change=change: kube.patch(status, {"metadata": change}))
        assert (
            f"acinode may change nothing but the status of pod {namespace}/bound through pods/status"
            in message
        ), change
    # Not the status of a pod no node runs.
    unbound = create_pod(core_v1, namespace, "unbound", node=None)
    message = refused(
        acinode,
        lambda kube: kube_pods.patch_status(
            kube, namespace, "unbound", unbound["metadata"]["uid"], running_status()
        ),
    )
    assert (
        f"acinode may update the status only of pods bound to a node, not of {namespace}/unbound" in message
    )


def test_operator_completes_deletions_and_starts_none(
    acinode: Callable[..., Any], core_v1: client.CoreV1Api, namespace: str, virtual_node: dict[str, Any]
) -> None:
    node = virtual_node["metadata"]["name"]
    expected = (
        "acinode may delete only pods bound to a node whose deletion has already begun (deletionTimestamp set), "
        f"as a kubelet completes a deletion others started: refused {namespace}/"
    )
    # A running pod nobody deleted: acinode may not delete it.
    running = create_pod(core_v1, namespace, "running", node=node)
    message = refused(
        acinode, lambda kube: kube_pods.force_delete(kube, namespace, "running", running["metadata"]["uid"])
    )
    assert expected + "running" in message
    # A pod being deleted that no node runs (held by a finalizer): not acinode's either.
    unbound = create_pod(core_v1, namespace, "unbound", node=None, finalizer=True)
    try:
        begin_deletion(core_v1, namespace, "unbound")
        message = refused(
            acinode,
            lambda kube: kube_pods.force_delete(kube, namespace, "unbound", unbound["metadata"]["uid"]),
        )
        assert expected + "unbound" in message
    finally:
        release(core_v1, namespace, "unbound")
    # A bound pod whose deletion a user began: acinode completes it (grace 0, uid precondition), as a kubelet does.
    deleting = create_pod(core_v1, namespace, "deleting", node=node)
    begin_deletion(core_v1, namespace, "deleting")
    assert acinode(
        lambda kube: kube_pods.force_delete(kube, namespace, "deleting", deleting["metadata"]["uid"])
    )
    assert "deleting" not in {p.metadata.name for p in core_v1.list_namespaced_pod(namespace).items}


@pytest.mark.usefixtures("widened_rbac")
def test_operator_never_creates_changes_or_evicts_pods_even_if_rbac_allowed_it(
    impersonating: client.ApiClient, core_v1: client.CoreV1Api, namespace: str, virtual_node: dict[str, Any]
) -> None:
    operator: Any = client.CoreV1Api(impersonating)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "made", "namespace": namespace},
        "spec": {
            "nodeName": virtual_node["metadata"]["name"],
            "containers": [{"name": "app", "image": "nginx"}],
        },
    }
    message = api_refusal(lambda: operator.create_namespaced_pod(namespace, pod, dry_run="All"))
    assert "acinode never creates, changes or evicts pods" in message
    assert f"refused CREATE of pods {namespace}/" in message
    create_pod(core_v1, namespace, "web", node=virtual_node["metadata"]["name"])
    message = api_refusal(
        lambda: operator.patch_namespaced_pod(
            "web", namespace, {"metadata": {"labels": {"app": "x"}}}, dry_run="All"
        )
    )
    assert f"refused UPDATE of pods {namespace}/web" in message
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "web", "namespace": namespace},
    }
    message = api_refusal(
        lambda: operator.create_namespaced_pod_eviction("web", namespace, eviction, dry_run="All")
    )
    assert f"refused CREATE of pods/eviction {namespace}/web" in message


# --- service-account tokens -----------------------------------------------------------------------------------


@pytest.fixture
def bound_pod(
    cluster: Any, core_v1: client.CoreV1Api, namespace: str, virtual_node: dict[str, Any]
) -> dict[str, Any]:
    wait_until(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, "-o", "name"),
        30,
        "the namespace's default ServiceAccount",
    )
    return create_pod(core_v1, namespace, "web", node=virtual_node["metadata"]["name"])


def token_for(
    acinode: Callable[..., Any],
    pod: dict[str, Any],
    *,
    audience: str = "",
    seconds: int = 3607,
    uid: str | None = None,
) -> str:
    metadata = pod["metadata"]
    token: str = acinode(
        lambda kube: kube_pods.request_token(
            kube,
            metadata["namespace"],
            "default",
            audience=audience,
            expiration_seconds=seconds,
            pod_name=metadata["name"],
            pod_uid=metadata["uid"] if uid is None else uid,
        )
    )
    return token


def test_operator_may_request_the_tokens_pods_ask_for(
    acinode: Callable[..., Any], bound_pod: dict[str, Any]
) -> None:
    """The default projected token (3607 s, the API server's audience), a custom audience, and acinode's 48 h."""
    for audience, seconds in (("", 3607), ("vault", 600), ("https://example.com", 48 * 3600)):
        assert token_for(acinode, bound_pod, audience=audience, seconds=seconds).count(".") == 2


def test_operator_cannot_request_tokens_a_kubelet_could_not_or_that_reach_azure(
    cluster: Any, installed: Installed, acinode: Callable[..., Any], bound_pod: dict[str, Any], namespace: str
) -> None:
    account = f"{namespace}/default"
    message = refused(acinode, lambda kube: _token(kube, bound_pod, uid=""))
    assert (
        "acinode may request tokens only bound to a Pod by its uid (boundObjectRef.uid), not by name alone: "
        + account
        in message
    )
    message = refused(acinode, lambda kube: _token(kube, bound_pod, audience="api://AzureADTokenExchange"))
    assert (
        "acinode may not request tokens for the audience api://AzureADTokenExchange "
        f"(nodeGuard.tokens.deniedAudiences): refused for {account}" in message
    )
    message = refused(acinode, lambda kube: _token(kube, bound_pod, seconds=48 * 3600 + 1))
    assert (
        "acinode may request tokens that expire within 172800 s (nodeGuard.tokens.maxExpirationSeconds), "
        f"not 172801 s: refused for {account}" in message
    )
    # Two audiences at once (a kubelet asks for one): kubectl, as acinode's code never does.
    ok, out = as_operator(
        cluster,
        installed,
        "create",
        "token",
        "default",
        "-n",
        namespace,
        "--audience=a",
        "--audience=b",
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
        f"--bound-object-uid={bound_pod['metadata']['uid']}",
    )
    assert (
        not ok
        and f"acinode may request a token for at most one audience (as a kubelet), not 2: {account}" in out
    )


async def _token(
    kube: kube_client.KubeClient,
    pod: dict[str, Any],
    *,
    uid: str | None = None,
    audience: str = "",
    seconds: int = 3607,
) -> Any:
    metadata = pod["metadata"]
    spec: dict[str, Any] = {
        "expirationSeconds": seconds,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "uid": metadata["uid"] if uid is None else uid,
        },
    }
    if audience:
        spec["audiences"] = [audience]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return await kube.create(
        f"/api/v1/namespaces/{metadata['namespace']}/serviceaccounts/default/token", body
    )


# --- the policies themselves ----------------------------------------------------------------------------------


def test_the_api_server_type_checks_every_guard_without_warnings(cluster: Any, installed: Installed) -> None:
    """Every expression refers to real fields of the objects it reads (the API server reports what it cannot
    check), and each guard is bound to deny."""
    names = [f"{RELEASE}-{guard}-guard" for guard in ("node", "lease", "pod", "token")]

    def checked() -> list[dict[str, Any]] | None:
        policies = [
            json.loads(cluster.kubectl("get", "validatingadmissionpolicy", name, "-o", "json"))
            for name in names
        ]
        done = all(
            p.get("status", {}).get("observedGeneration") == p["metadata"]["generation"] for p in policies
        )
        return policies if done else None

    for policy in wait_until(checked, 30, "the API server to type-check the guards"):
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert policy["status"].get("typeChecking", {}).get("expressionWarnings") is None, policy["status"]
        binding = json.loads(
            cluster.kubectl(
                "get", "validatingadmissionpolicybinding", policy["metadata"]["name"], "-o", "json"
            )
        )
        assert binding["spec"]["validationActions"] == ["Deny"]
