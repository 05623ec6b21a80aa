"""The chart's RBAC, proven on the real control plane: the operator's ServiceAccount may do what acinode needs and
is refused the rest (RBAC, asked with `kubectl auth can-i --as`), the admission guards refuse what RBAC cannot
(real nodes, free-standing tokens), and the operator itself runs the seed story under a TokenRequest token of that
ServiceAccount, with no permission error."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from acinode.mapping import election, names
from contract import emulated
from helm import chart
from helm.release import ChartReplica, Installed, installed_release, service_account_kubeconfig
from support import arm
from support.virtualnodes import TOKEN_SECRET, VIRTUAL_NODES, virtual_node_body
from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = REPO_ROOT / "examples" / "seed" / "virtual-node.yaml"
RELEASE = "acinode"


@pytest.fixture(scope="module")
def installed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The chart with default values (its own peering name), installed for this module's tests."""
    helm = chart.build(tmp_path_factory.mktemp("helm-home")).with_kubeconfig(cluster.kubeconfig)
    namespace = f"acinode-rbac-{uuid.uuid4().hex[:6]}"
    values = {"peering": {"name": f"peering-{namespace}"}}
    with installed_release(helm, cluster, RELEASE, namespace, values) as release:
        yield release


def can_i(cluster: Any, installed: Installed, *args: str) -> str:
    out: str = cluster.kubectl("auth", "can-i", *args, f"--as={installed.user}", check=False)
    return out.strip()


# --- what RBAC allows and refuses -----------------------------------------------------------------------------

# (verb, resource, scope): scope is a namespace, "*" for all namespaces, or "" for cluster-scoped resources.
ALLOWED = [
    ("watch", "virtualnodes.acinode.dev", ""),
    ("patch", "virtualnodes.acinode.dev/vn-a", ""),
    ("patch", "virtualnodes.acinode.dev/vn-a --subresource=status", ""),
    ("create", "nodes", ""),
    ("list", "nodes", ""),
    ("watch", "nodes", ""),
    ("patch", "nodes/vn-a", ""),
    ("delete", "nodes/vn-a", ""),
    ("patch", "nodes/vn-a --subresource=status", ""),
    ("create", "leases.coordination.k8s.io", "kube-node-lease"),
    ("patch", "leases.coordination.k8s.io/vn-a", "kube-node-lease"),
    ("delete", "leases.coordination.k8s.io/vn-a", "kube-node-lease"),
    ("list", "pods", "*"),
    ("watch", "pods", "*"),
    ("delete", "pods/web-1", "shop"),
    ("patch", "pods/web-1 --subresource=status", "shop"),
    ("create", "events", "shop"),
    ("patch", "events", "shop"),
    ("create", "events.events.k8s.io", "shop"),
    ("get", "secrets/web-credentials", "shop"),
    ("get", "configmaps/web-config", "shop"),
    ("list", "services", "shop"),
    ("get", "services/kubernetes", "default"),
    ("create", "serviceaccounts/web --subresource=token", "shop"),
    ("create", "tokenreviews.authentication.k8s.io", ""),
    ("create", "subjectaccessreviews.authorization.k8s.io", ""),
    ("get", "namespaces/kube-system", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("watch", "clusterkopfpeerings.kopf.dev", ""),
]

REFUSED = [
    # Secrets: fetched one by one by name, never enumerated, never written.
    ("list", "secrets", "*"),
    ("list", "secrets", "shop"),
    ("watch", "secrets", "shop"),
    ("create", "secrets", "shop"),
    ("update", "secrets/web-credentials", "shop"),
    ("list", "configmaps", "shop"),
    # Workloads: acinode runs what the scheduler bound, it never makes or changes pods or controllers.
    ("create", "pods", "shop"),
    ("patch", "pods/web-1", "shop"),
    ("update", "pods/web-1", "shop"),
    ("create", "pods/web-1 --subresource=exec", "shop"),
    ("create", "deployments.apps", "shop"),
    ("delete", "deployments.apps/web", "shop"),
    ("delete", "statefulsets.apps/acinode", "acinode-system"),
    ("deletecollection", "pods", "shop"),
    # VirtualNodes belong to users.
    ("create", "virtualnodes.acinode.dev", ""),
    ("delete", "virtualnodes.acinode.dev/vn-a", ""),
    ("update", "virtualnodes.acinode.dev/vn-a", ""),
    # Nodes: no update (patch only), no mass deletion.
    ("update", "nodes/vn-a", ""),
    ("deletecollection", "nodes", ""),
    # Leases: only kube-node-lease, only by name.
    ("list", "leases.coordination.k8s.io", "kube-node-lease"),
    ("get", "leases.coordination.k8s.io/kube-controller-manager", "kube-system"),
    ("patch", "leases.coordination.k8s.io/kube-scheduler", "kube-system"),
    ("create", "leases.coordination.k8s.io", "default"),
    # Namespaces: only kube-system, read-only.
    ("get", "namespaces/default", ""),
    ("list", "namespaces", ""),
    ("delete", "namespaces/shop", ""),
    # Events are written, never read or deleted.
    ("list", "events", "shop"),
    ("delete", "events", "shop"),
    # Nothing that grants more power.
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("bind", "clusterroles.rbac.authorization.k8s.io", ""),
    ("impersonate", "users", ""),
    ("impersonate", "serviceaccounts", "kube-system"),
    ("create", "serviceaccounts", "shop"),
    # CSRs: the kubelet-serving signer only (the serving certificate), never approval.
    ("update", "certificatesigningrequests.certificates.k8s.io/approval", ""),
    ("approve", "signers.certificates.k8s.io/kubernetes.io/kube-apiserver-client", ""),
    ("patch", "validatingadmissionpolicies.admissionregistration.k8s.io", ""),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io/virtualnodes.acinode.dev", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    # Peering: keep-alives only in the release's own peering object.
    ("patch", "clusterkopfpeerings.kopf.dev/someone-else", ""),
    ("delete", "clusterkopfpeerings.kopf.dev/acinode", ""),
]


def scope_args(scope: str) -> list[str]:
    if scope == "*":
        return ["--all-namespaces"]
    return ["-n", scope] if scope else []


@pytest.mark.parametrize(("verb", "resource", "scope"), ALLOWED, ids=[" ".join(a).strip() for a in ALLOWED])
def test_service_account_may_do_what_acinode_needs(
    cluster: Any, installed: Installed, verb: str, resource: str, scope: str
) -> None:
    assert can_i(cluster, installed, verb, *resource.split(), *scope_args(scope)) == "yes"


def test_service_account_may_patch_its_own_peering(cluster: Any, installed: Installed) -> None:
    assert can_i(cluster, installed, "patch", f"clusterkopfpeerings.kopf.dev/{installed.peering}") == "yes"


@pytest.mark.parametrize(("verb", "resource", "scope"), REFUSED, ids=[" ".join(a).strip() for a in REFUSED])
def test_service_account_is_refused_what_acinode_does_not_need(
    cluster: Any, installed: Installed, verb: str, resource: str, scope: str
) -> None:
    assert can_i(cluster, installed, verb, *resource.split(), *scope_args(scope)) == "no"


def test_service_account_rules_have_no_wildcard(cluster: Any, installed: Installed) -> None:
    out = cluster.kubectl("auth", "can-i", "--list", f"--as={installed.user}", "-n", installed.namespace)
    for line in out.splitlines()[1:]:
        resource = line.split()[0]
        # Only the API server's own discovery and self-review grants (system:basic-user, system:discovery).
        assert "*" not in resource or resource.startswith(("selfsubject", "[/")), line


# --- what the admission guards refuse -------------------------------------------------------------------------


@pytest.fixture
def operator_core_v1(cluster: Any, installed: Installed) -> Iterator[client.CoreV1Api]:
    """The admin's client impersonating the operator's ServiceAccount, for requests kubectl cannot make bare."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    api.set_default_header("Impersonate-User", installed.user)
    yield client.CoreV1Api(api)
    api.close()


def node_body(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> str:
    metadata = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": metadata})


@pytest.fixture
def real_node(cluster: Any) -> Iterator[str]:
    """A Node without acinode's label (as a kubelet would register it), created by the admin."""
    name = f"real-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "-f", "-", input_text=node_body(name, {"kubernetes.io/hostname": name}))
    yield name
    cluster.kubectl("delete", "node", name, "--ignore-not-found")


def as_operator(
    cluster: Any, installed: Installed, *args: str, input_text: str | None = None
) -> tuple[bool, str]:
    """Run kubectl as the operator's ServiceAccount: (succeeded, stdout + stderr)."""
    result = subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), *args, f"--as={installed.user}"],
        check=False,
        capture_output=True,
        text=True,
        input=input_text,
        timeout=60,
    )
    return result.returncode == 0, result.stdout + result.stderr


def test_operator_cannot_delete_or_change_a_node_that_is_not_virtual(
    cluster: Any, installed: Installed, real_node: str, operator_core_v1: client.CoreV1Api
) -> None:
    ok, out = as_operator(cluster, installed, "delete", "node", real_node, "--dry-run=server")
    assert (
        not ok
        and f"acinode may delete only its own virtual Nodes (labelled acinode.dev/virtual-node), not {real_node}"
        in out
    )
    ok, out = as_operator(cluster, installed, "label", "node", real_node, "owned=yes", "--dry-run=server")
    assert not ok and "acinode may change only its own virtual Nodes" in out
    ok, out = as_operator(
        cluster, installed, "label", "node", real_node, "acinode.dev/virtual-node=adopted", "--dry-run=server"
    )
    assert not ok and "acinode may change only its own virtual Nodes" in out, (
        "adopting a real node is refused"
    )
    # A status heartbeat is a bare PATCH (kubectl patch --subresource would GET first, which the operator never does).
    with pytest.raises(client.ApiException) as refused:
        operator_core_v1.patch_node_status(
            real_node, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, dry_run="All"
        )
    assert refused.value.status == 403
    assert "acinode may change only its own virtual Nodes" in str(refused.value.body)
    ok, out = as_operator(
        cluster, installed, "create", "-f", "-", "--dry-run=server", input_text=node_body("rogue")
    )
    assert not ok and "acinode may create only Nodes labelled acinode.dev/virtual-node, not rogue" in out
    # The guard binds the operator only: the admin still may.
    cluster.kubectl("delete", "node", real_node, "--dry-run=server")


def test_operator_may_create_change_and_delete_its_virtual_nodes(cluster: Any, installed: Installed) -> None:
    name = f"vn-{uuid.uuid4().hex[:6]}"
    body = node_body(
        name,
        {"acinode.dev/virtual-node": name, "type": "virtual-kubelet"},
        {"acinode.dev/virtual-node-uid": str(uuid.uuid4())},
    )
    ok, out = as_operator(cluster, installed, "create", "-f", "-", input_text=body)
    assert ok, out
    try:
        ok, out = as_operator(cluster, installed, "label", "node", name, "team=burst")
        assert ok, out
        ok, out = as_operator(cluster, installed, "label", "node", name, "acinode.dev/virtual-node-")
        assert not ok and "acinode may change only its own virtual Nodes" in out, "it cannot disown a node"
        ok, out = as_operator(cluster, installed, "delete", "node", name)
        assert ok, out
    finally:
        cluster.kubectl("delete", "node", name, "--ignore-not-found")


def test_operator_may_request_only_pod_bound_tokens(
    cluster: Any, installed: Installed, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "serviceAccountName": "default"},
    }
    created = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input_text=json.dumps(pod)))
    wait_until(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, "-o", "name"),
        30,
        "the namespace's default ServiceAccount",
    )
    ok, out = as_operator(cluster, installed, "create", "token", "default", "-n", namespace)
    assert (
        not ok
        and f"acinode may request only tokens bound to a Pod, not a free token for {namespace}/default" in out
    )
    ok, out = as_operator(
        cluster,
        installed,
        "create",
        "token",
        "default",
        "-n",
        namespace,
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
        f"--bound-object-uid={created['metadata']['uid']}",
    )
    assert ok and out.count(".") == 2, out  # a JWT
    # A token bound to a Pod of another ServiceAccount is refused by the API server itself.
    ok, out = as_operator(
        cluster,
        installed,
        "create",
        "token",
        installed.service_account,
        "-n",
        namespace,
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
        f"--bound-object-uid={created['metadata']['uid']}",
    )
    assert not ok


# --- the operator under the chart's ServiceAccount token ------------------------------------------------------


@pytest.fixture
def chart_replica(
    cluster: Any, installed: Installed, tmp_path: Path, core_v1: client.CoreV1Api, emulator: emulated.Emulator
) -> Iterator[ChartReplica]:
    """Pod 0 of the chart's StatefulSet, run locally with the chart's args and env under the ServiceAccount's
    token; the emulator's token in a Secret of the release namespace (the operator's default for secretRef)."""
    token = base64.b64encode(emulator.token.encode()).decode()
    core_v1.create_namespaced_secret(
        installed.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=TOKEN_SECRET), data={"token": token}),
    )
    kubeconfig = service_account_kubeconfig(cluster, installed, tmp_path / "sa.kubeconfig")
    replica = ChartReplica(installed, 0, kubeconfig, tmp_path / "operator.log")
    replica.start()
    try:
        yield replica
    finally:
        replica.stop()
        print(replica.log_text()[-5000:])


def test_operator_runs_the_seed_story_under_the_chart_service_account(
    cluster: Any,
    installed: Installed,
    chart_replica: ChartReplica,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    # The Kubernetes client's models are Optional everywhere: read them as Any in this test.
    custom: Any = client.CustomObjectsApi(api_client)
    coordination: Any = client.CoordinationV1Api(api_client)
    core: Any = core_v1

    # Every replica works: it announces itself with a presence Lease in the release namespace, held by its pod name.
    def presence() -> Any:
        lease = coordination.read_namespaced_lease(
            election.replica_lease_name(chart_replica.pod_name), installed.namespace
        )
        return lease.spec.holder_identity

    assert wait_until(presence, 60, "the replica's presence Lease") == chart_replica.pod_name
    # The probes' target: Kopf's health endpoint, where the chart's --liveness flag puts it.
    health = f"http://127.0.0.1:{chart_replica.health_port}/healthz"
    with urllib.request.urlopen(health, timeout=10) as response:
        assert response.status == 200

    vn_name = f"vn-{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(vn_name, emulator))
    try:
        # Node registration, status heartbeats, the Lease, and VirtualNode status.
        wait_until(
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in core.read_node(vn_name).status.conditions or []
            ),
            60,
            "the virtual node to be Ready",
        )
        lease = wait_until(
            lambda: coordination.read_namespaced_lease(vn_name, "kube-node-lease"), 30, "the node's Lease"
        )
        first_renewal = lease.spec.renew_time
        wait_until(
            lambda: (
                coordination.read_namespaced_lease(vn_name, "kube-node-lease").spec.renew_time > first_renewal
            ),
            30,
            "the Lease to be renewed",
        )
        wait_until(
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (custom.get_cluster_custom_object(*VIRTUAL_NODES, vn_name).get("status") or {}).get(
                    "conditions", []
                )
            ),
            30,
            "the VirtualNode's Ready condition",
        )

        # The seed story: the sample Deployment runs on the virtual node as a container group.
        cluster.kubectl("apply", "-n", namespace, "-f", str(SEED))

        def seed_pod() -> Any:
            pods = core.list_namespaced_pod(namespace, label_selector="app=aci-helloworld").items
            return pods[0] if pods else None

        running = wait_until(
            lambda: (p := seed_pod()) and p.status.phase == "Running" and p.status.pod_ip and p,
            90,
            "the seed pod to be Running with an IP",
        )
        assert running.spec.node_name == vn_name
        resource_group = f"rg-{vn_name}"
        group = arm.get_group(
            emulator, resource_group, names.container_group_name(namespace, running.metadata.name)
        )
        assert running.status.pod_ip == group["properties"]["ipAddress"]["ip"]
        with urllib.request.urlopen(f"http://{running.status.pod_ip}/", timeout=10) as response:
            assert "Welcome to Azure Container Instances" in response.read().decode()
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={running.metadata.name}"
        )
        assert events.items, "the operator posted the pod's events"

        deleted_at = time.monotonic()
        cluster.kubectl("delete", "-n", namespace, "-f", str(SEED), "--wait=false")
        wait_until(lambda: seed_pod() is None, 10, "the pod to leave the API")
        wait_until(
            lambda: not arm.list_groups(emulator, resource_group), 10, "the container group to be gone"
        )
        assert time.monotonic() - deleted_at <= 10
    finally:
        custom.delete_cluster_custom_object(*VIRTUAL_NODES, vn_name)

    # Deleting the VirtualNode: the operator removes its Node and Lease, then its finalizer.
    def vn_gone() -> bool:
        names_left = {
            o["metadata"]["name"] for o in custom.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
        }
        return vn_name not in names_left

    wait_until(vn_gone, 60, "the VirtualNode to be finalized")
    assert not [n for n in core.list_node().items if n.metadata.name == vn_name]

    log = chart_replica.log_text()
    # A status code 403 (not the digits inside a timestamp such as 08:01:10.403517) or the word Forbidden.
    refusal = re.search(r"(?<![\d.:])403(?!\d)|[Ff]orbidden", log)
    assert refusal is None, f"the operator met a permission error ({refusal.group(0)!r}):\n{log[-3000:]}"
