"""Registering a VirtualNode's Node: create when missing, leave alone when in line, patch only the drift, and
only ever a Node that is this VirtualNode's (by uid annotation); remove only its own Node and Lease."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
from node_builders import IDENTITY, NODES, lease_path, node_path, virtual_node

from acinode import errors
from acinode.kube import resources
from acinode.mapping import node as node_mapping
from acinode.mapping import ownership, virtualnode
from acinode.node import registration
from fakes.fake_kube import FakeKube

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
UID = "vn-uid"


def config(**spec: Any) -> virtualnode.VirtualNodeConfig:
    return virtualnode.virtual_node_config_from_resource(virtual_node(**spec))


def kube_with(*virtual_nodes: dict[str, Any]) -> FakeKube:
    kube = FakeKube()
    for vn in virtual_nodes or (virtual_node(),):
        kube.put(resources.VIRTUALNODES, vn)
    return kube


async def claimed(kube: FakeKube, cfg: virtualnode.VirtualNodeConfig, uid: str = UID) -> dict[str, Any]:
    claim = await registration.claim_node(kube, cfg, IDENTITY, uid)
    assert claim.refusal is None and claim.node is not None
    return claim.node


def foreign_node(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "vn-1", "labels": {"kubernetes.io/hostname": "vn-1"}, **metadata},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        "status": {
            "nodeInfo": {"kubeletVersion": "v1.37.2"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


# --- claiming ---------------------------------------------------------------------------------------------------


async def test_a_missing_node_is_created_annotated_with_the_virtual_node_uid() -> None:
    kube = kube_with()
    node = await claimed(kube, config(labels={"team": "burst"}))
    assert [(c.method, c.path) for c in kube.calls] == [
        ("GET", node_path()),
        ("GET", resources.VIRTUALNODES),  # who claims the name first
        ("POST", NODES),
    ]
    assert node == kube.stored(node_path())
    assert node["metadata"]["uid"]
    assert node["metadata"]["labels"]["team"] == "burst"
    assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == UID
    assert node["spec"]["taints"] == [
        {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}
    ]


async def test_a_node_in_line_with_the_spec_costs_one_get() -> None:
    kube = kube_with()
    first = await claimed(kube, config())
    kube.reset_calls()
    assert await claimed(kube, config()) == first
    assert [c.method for c in kube.calls] == ["GET"]


async def test_drift_is_patched_keeping_what_others_added_and_guarded_by_resource_version() -> None:
    kube = kube_with()
    created = await claimed(kube, config(labels={"team": "burst"}))
    stored = kube.put(
        node_path(),
        created
        | {
            "spec": {
                "taints": [
                    {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                ]
            }
        },
    )
    kube.reset_calls()
    node = await claimed(kube, config(disableDefaultTaint=True))
    assert [(c.method, c.patch_type) for c in kube.calls] == [("GET", None), ("PATCH", "merge")]
    assert kube.calls[1].body["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert "team" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert (
        node_mapping.node_metadata_drift(
            node_mapping.node_from_virtual_node(config(disableDefaultTaint=True), IDENTITY, UID), node
        )
        is None
    )


async def test_a_node_created_meanwhile_is_a_conflict() -> None:
    kube = kube_with()
    kube.fail(NODES, errors.ConflictError("409 already exists"), method="POST")
    with pytest.raises(errors.ConflictError):
        await registration.claim_node(kube, config(), IDENTITY, UID)


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        pytest.param({}, "registered by kubelet v1.37.2", id="a-real-node"),
        pytest.param(
            {
                "annotations": {"acinode.dev/virtual-node-uid": "other-uid"},
                "labels": {"acinode.dev/virtual-node": "vn-0"},
            },
            "belongs to VirtualNode vn-0 (uid other-uid)",
            id="another-virtual-nodes-node",
        ),
        pytest.param(
            {"labels": {"acinode.dev/virtual-node": "vn-1"}},
            "without the acinode.dev/virtual-node-uid annotation",
            id="labelled-ours-but-unannotated",
        ),
    ],
)
async def test_a_node_that_is_not_ours_is_refused_without_a_write(
    metadata: dict[str, Any], named: str
) -> None:
    kube = kube_with()
    before = kube.put(NODES, foreign_node(**metadata))
    kube.reset_calls()
    claim = await registration.claim_node(kube, config(labels={"team": "burst"}), IDENTITY, UID)
    assert claim.node is None
    assert claim.refusal is not None
    assert claim.refusal.reason == "NodeNameConflict"
    assert named in claim.refusal.message
    assert [c.method for c in kube.calls] == ["GET"]
    assert kube.stored(node_path()) == before


async def test_a_missing_node_claimed_first_by_another_virtual_node_is_not_created() -> None:
    first = virtual_node("vn-0", uid="first-uid", created="2025-01-01T10:00:00Z", nodeName="vn-1")
    kube = kube_with(first, virtual_node())
    claim = await registration.claim_node(kube, config(), IDENTITY, UID)
    assert claim.refusal is not None
    assert "claimed by VirtualNode vn-0 (uid first-uid)" in claim.refusal.message
    assert kube.count("POST") == 0
    # …but the first one may.
    first_config = virtualnode.virtual_node_config_from_resource(first)
    node = await claimed(kube, first_config, "first-uid")
    assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == "first-uid"


async def test_a_spec_with_forbidden_labels_is_refused_before_any_call() -> None:
    kube = kube_with()
    claim = await registration.claim_node(
        kube, config(labels={"node-role.kubernetes.io/control-plane": ""}), IDENTITY, UID
    )
    assert claim.refusal is not None
    assert claim.refusal.reason == "ForbiddenLabels"
    assert "node-role.kubernetes.io/control-plane" in claim.refusal.message
    assert kube.calls == []


# --- removing ---------------------------------------------------------------------------------------------------


def lease_owned_by(node_uid: str, name: str = "vn-1") -> dict[str, Any]:
    return node_mapping.lease_from_node(name, node_uid, NOW, 40)


async def test_remove_node_deletes_our_lease_and_node_with_uid_preconditions_and_may_repeat() -> None:
    kube = kube_with()
    node = await claimed(kube, config())
    lease = kube.put(lease_path(), lease_owned_by(node["metadata"]["uid"]))
    kube.reset_calls()
    await registration.remove_node(kube, "vn-1", node["metadata"]["uid"])
    assert kube.stored(node_path()) is None
    assert kube.stored(lease_path()) is None
    deletes = kube.calls_to("DELETE")
    assert [c.body["preconditions"] for c in deletes] == [
        {"uid": lease["metadata"]["uid"]},
        {"uid": node["metadata"]["uid"]},
    ]
    await registration.remove_node(kube, "vn-1", node["metadata"]["uid"])


async def test_remove_node_leaves_a_foreign_node_and_lease_alone() -> None:
    kube = kube_with()
    node = kube.put(NODES, foreign_node())
    lease = kube.put(lease_path(), lease_owned_by(node["metadata"]["uid"]))
    await registration.remove_node(kube, "vn-1", "our-old-node-uid")
    assert kube.stored(node_path()) == node
    assert kube.stored(lease_path()) == lease


async def test_remove_node_leaves_a_lease_that_is_not_the_nodes() -> None:
    kube = kube_with()
    node = await claimed(kube, config())
    foreign = kube.put(lease_path(), {"metadata": {"name": "vn-1"}, "spec": {"holderIdentity": "someone"}})
    await registration.remove_node(kube, "vn-1", node["metadata"]["uid"])
    assert kube.stored(node_path()) is None
    assert kube.stored(lease_path()) == foreign


# --- what a deleted VirtualNode releases ------------------------------------------------------------------------


async def test_release_scope_of_the_owner_covers_groups_node_and_lease() -> None:
    kube = kube_with()
    node = await claimed(kube, config())
    scope = await registration.release_scope(kube, "vn-1", UID)
    assert (scope.groups, scope.node_uid) == (True, node["metadata"]["uid"])


async def test_release_scope_of_a_refused_duplicate_is_empty() -> None:
    first = virtual_node("vn-0", uid="first-uid", created="2025-01-01T10:00:00Z", nodeName="vn-1")
    kube = kube_with(first, virtual_node())
    await claimed(kube, virtualnode.virtual_node_config_from_resource(first), "first-uid")
    scope = await registration.release_scope(kube, "vn-1", UID)
    assert (scope.groups, scope.node_uid) == (False, None)
    assert "belongs to VirtualNode vn-0" in scope.reason


async def test_release_scope_when_the_node_is_gone_depends_on_other_claimants() -> None:
    deleting = copy.deepcopy(virtual_node())
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T12:00:00Z"
    alone = kube_with(deleting)
    assert (await registration.release_scope(alone, "vn-1", UID)).groups
    other = virtual_node("vn-2", uid="other-uid", created="2025-01-01T11:30:00Z", nodeName="vn-1")
    shared = kube_with(deleting, other)
    scope = await registration.release_scope(shared, "vn-1", UID)
    assert (scope.groups, scope.node_uid) == (False, None)
    assert ownership.first_claimant([other], "vn-1") is not None
