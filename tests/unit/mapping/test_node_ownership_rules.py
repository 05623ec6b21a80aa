"""Whose is this Node, this Lease, this nodeName, and which labels a VirtualNode may not set (pure tables)."""

from __future__ import annotations

from typing import Any

import pytest

from acinode.mapping import node as node_mapping
from acinode.mapping import ownership, virtualnode

pytestmark = pytest.mark.timeout(2)

OURS = "vn-uid"


def node(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None, **status: Any
) -> Any:
    return {
        "metadata": {
            "name": "n1",
            "uid": "node-uid",
            "annotations": annotations or {},
            "labels": labels or {},
        },
        "status": status,
    }


def vn(name: str, uid: str, created: str, node_name: str | None = None, deleting: bool = False) -> Any:
    metadata: dict[str, Any] = {"name": name, "uid": uid, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-01T13:00:00Z"
    return {"metadata": metadata, "spec": {"nodeName": node_name} if node_name else {}}


# --- Nodes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "uid", "ours"),
    [
        pytest.param(node({"acinode.dev/virtual-node-uid": OURS}), OURS, True, id="annotated-with-our-uid"),
        pytest.param(node({"acinode.dev/virtual-node-uid": "other"}), OURS, False, id="another-virtual-node"),
        pytest.param(node(), OURS, False, id="unannotated-real-node"),
        pytest.param(
            node(labels={"acinode.dev/virtual-node": "vn-1"}), OURS, False, id="our-label-but-no-annotation"
        ),
        pytest.param(node({"acinode.dev/virtual-node-uid": ""}), "", False, id="empty-uid-never-matches"),
        pytest.param(node({"acinode.dev/virtual-node-uid": OURS}), None, False, id="no-uid-owns-nothing"),
        pytest.param(None, OURS, False, id="no-node"),
    ],
)
def test_a_node_is_ours_only_by_the_uid_annotation(candidate: Any, uid: str | None, ours: bool) -> None:
    assert ownership.is_own_node(candidate, uid) is ours


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        pytest.param(
            node({"acinode.dev/virtual-node-uid": "u0"}, {"acinode.dev/virtual-node": "vn-0"}),
            "Node n1 belongs to VirtualNode vn-0 (uid u0)",
            id="another-virtual-node",
        ),
        pytest.param(
            node(nodeInfo={"kubeletVersion": "v1.31.0"}),
            "Node n1 (uid node-uid) already exists and is not acinode's: a node registered by kubelet v1.31.0",
            id="real-node",
        ),
        pytest.param(
            node(),
            "Node n1 (uid node-uid) already exists and is not acinode's: a node acinode did not create",
            id="unannotated",
        ),
    ],
)
def test_the_refusal_names_who_holds_the_node(candidate: Any, expected: str) -> None:
    refusal = ownership.foreign_node_refusal(candidate, "vn-2")
    assert refusal.reason == "NodeNameConflict"
    assert refusal.message.startswith(expected)
    assert "vn-2 waits until Node n1 is gone" in refusal.message


# --- who claims a missing Node's name ---------------------------------------------------------------------------

EARLY, LATE = "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"


@pytest.mark.parametrize(
    ("virtual_nodes", "first"),
    [
        pytest.param([vn("a", "ua", LATE, "n1"), vn("b", "ub", EARLY, "n1")], "ub", id="created-first-wins"),
        pytest.param(
            [vn("b", "ub", EARLY, "n1"), vn("a", "ua", EARLY, "n1")], "ua", id="same-second-by-name"
        ),
        pytest.param(
            [vn("a", "ua", EARLY, "n1", deleting=True), vn("b", "ub", LATE, "n1")], "ub", id="deleting"
        ),
        pytest.param([vn("n1", "u1", LATE), vn("a", "ua", EARLY, "n2")], "u1", id="name-is-node-name"),
        pytest.param([vn("a", "ua", EARLY, "n2")], None, id="nobody"),
    ],
)
def test_the_first_live_claimant_of_a_node_name(virtual_nodes: list[Any], first: str | None) -> None:
    found = ownership.first_claimant(virtual_nodes, "n1")
    assert (found["metadata"]["uid"] if found else None) == first


def test_only_the_first_claimant_may_create_a_missing_node() -> None:
    both = [vn("a", "ua", EARLY, "n1"), vn("b", "ub", LATE, "n1")]
    assert ownership.missing_node_refusal(both, "n1", "a", "ua") is None
    refusal = ownership.missing_node_refusal(both, "n1", "b", "ub")
    assert refusal is not None and "claimed by VirtualNode a (uid ua), created earlier" in refusal.message
    gone = ownership.missing_node_refusal([vn("a", "ua", EARLY, "n1", deleting=True)], "n1", "a", "ua")
    assert gone is not None and "being deleted" in gone.message


# --- what a deleted VirtualNode may remove ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "others", "groups", "node_uid"),
    [
        pytest.param(node({"acinode.dev/virtual-node-uid": OURS}), [], True, "node-uid", id="our-node"),
        pytest.param(
            node({"acinode.dev/virtual-node-uid": "u0"}), [], False, None, id="another-virtual-nodes"
        ),
        pytest.param(node(), [], False, None, id="a-real-node"),
        pytest.param(None, [], True, None, id="gone-nobody-else"),
        pytest.param(None, [vn("b", "ub", LATE, "n1")], False, None, id="gone-claimed-by-another"),
        pytest.param(None, [vn("b", "ub", LATE, "n1", deleting=True)], True, None, id="gone-other-deleting"),
        pytest.param(None, [vn("self", OURS, EARLY, "n1", deleting=True)], True, None, id="gone-only-self"),
    ],
)
def test_a_deleted_virtual_node_removes_only_what_is_its_own(
    existing: Any, others: list[Any], groups: bool, node_uid: str | None
) -> None:
    release = ownership.release_on_delete(existing, others, "n1", OURS)
    assert (release.groups, release.node_uid) == (groups, node_uid)


# --- Leases -----------------------------------------------------------------------------------------------------


def lease(*owners: tuple[str, str, str]) -> Any:
    refs = [{"apiVersion": "v1", "kind": kind, "name": name, "uid": uid} for kind, name, uid in owners]
    return {"metadata": {"name": "n1", "namespace": "kube-node-lease", "ownerReferences": refs}}


@pytest.mark.parametrize(
    ("candidate", "ours", "stale"),
    [
        pytest.param(lease(("Node", "n1", "node-uid")), True, False, id="owned-by-our-node"),
        pytest.param(lease(("Node", "n1", "old-uid")), False, True, id="earlier-node-of-that-name"),
        pytest.param(lease(("Node", "other", "x")), False, False, id="another-node"),
        pytest.param(lease(("ConfigMap", "n1", "node-uid")), False, False, id="right-uid-wrong-kind"),
        pytest.param(lease(), False, False, id="no-owner"),
        pytest.param(
            lease(("Node", "n1", "old-uid"), ("Pod", "p", "y")),
            False,
            False,
            id="earlier-node-and-another-owner",
        ),
    ],
)
def test_a_lease_is_ours_only_when_our_node_owns_it(candidate: Any, ours: bool, stale: bool) -> None:
    assert ownership.is_own_lease(candidate, "node-uid") is ours
    assert ownership.is_stale_lease(candidate, "n1", "node-uid") is stale


# --- labels a VirtualNode may not set ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "forbidden"),
    [
        ("team", False),
        ("example.com/tier", False),
        ("node-restriction.kubernetes.io/pool", True),
        ("a.node-restriction.kubernetes.io/pool", True),
        ("node-role.kubernetes.io/control-plane", True),
        ("node-role.kubernetes.io/master", True),
        ("kubernetes.io/role", True),
        ("k8s.io/anything", True),
        ("sub.k8s.io/anything", True),
        ("sub.kubernetes.io/anything", True),
        ("xnode.kubernetes.io/anything", True),
        ("kubernetes.io/hostname", False),
        ("kubernetes.io/os", False),
        ("kubernetes.io/arch", False),
        ("beta.kubernetes.io/os", False),
        ("beta.kubernetes.io/arch", False),
        ("beta.kubernetes.io/instance-type", False),
        ("node.kubernetes.io/instance-type", False),
        ("topology.kubernetes.io/region", False),
        ("topology.kubernetes.io/zone", False),
        ("failure-domain.beta.kubernetes.io/region", False),
        ("failure-domain.beta.kubernetes.io/zone", False),
        ("kubelet.kubernetes.io/anything", False),
        ("node.kubernetes.io/anything", False),
        (
            "sub.node.kubernetes.io/anything",
            False,
        ),  # NodeRestriction allows the kubelet namespaces' subdomains
        ("mykubernetes.io/x", False),
        ("kubernetes.io.example.com/x", False),
    ],
)
def test_labels_node_restriction_forbids_a_kubelet_to_set_on_itself(key: str, forbidden: bool) -> None:
    assert node_mapping.is_label_forbidden_to_kubelets(key) is forbidden


@pytest.mark.parametrize(
    ("labels", "mentions"),
    [
        pytest.param({"team": "a", "topology.kubernetes.io/zone": "1"}, None, id="allowed"),
        pytest.param(
            {"node-role.kubernetes.io/x": "", "kubernetes.io/role": "master"},
            ["kubernetes.io/role, node-role.kubernetes.io/x: NodeRestriction forbids a kubelet to set these"],
            id="restricted",
        ),
        pytest.param(
            {"type": "custom"}, ["type: acinode sets this label itself (from nodeName"], id="derived-type"
        ),
        pytest.param(
            {"acinode.dev/virtual-node": "x", "kubernetes.io/hostname": "h", "team": "a"},
            ["acinode.dev/virtual-node, kubernetes.io/hostname: acinode sets these labels itself"],
            id="derived-labels",
        ),
        pytest.param(
            {"node-restriction.kubernetes.io/a": "", "kubernetes.io/os": "plan9"},
            ["node-restriction.kubernetes.io/a: NodeRestriction", "kubernetes.io/os: acinode sets this"],
            id="both",
        ),
    ],
)
def test_spec_labels_refusal(labels: dict[str, str], mentions: list[str] | None) -> None:
    refusal = node_mapping.spec_labels_refusal(labels)
    if mentions is None:
        assert refusal is None
        return
    assert refusal is not None and refusal.reason == "ForbiddenLabels"
    for mention in mentions:
        assert mention in refusal.message


def test_the_derived_labels_are_exactly_those_acinode_sets() -> None:
    config = virtualnode.virtual_node_config_from_resource(
        {"metadata": {"name": "vn-1"}, "spec": {"azure": {"region": "westeurope"}}}
    )
    assert set(node_mapping.node_labels(config)) == node_mapping.DERIVED_LABEL_KEYS
