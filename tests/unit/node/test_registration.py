"""Registering a VirtualNode's Node: create when missing, leave alone when in line, patch only the drift."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from node_builders import IDENTITY, NODES, lease_path, node_path, virtual_node

from acinode import errors
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import registration
from fakes.fake_kube import FakeKube

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def config(**spec: Any) -> virtualnode.VirtualNodeConfig:
    return virtualnode.virtual_node_config_from_resource(virtual_node(**spec))


async def test_a_missing_node_is_created() -> None:
    kube = FakeKube()
    node = await registration.ensure_node(kube, config(labels={"team": "burst"}), IDENTITY, "vn-uid")
    assert [(c.method, c.path) for c in kube.calls] == [("GET", node_path()), ("POST", NODES)]
    assert node == kube.stored(node_path())
    assert node["metadata"]["uid"]
    assert node["metadata"]["labels"]["team"] == "burst"
    assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == "vn-uid"
    assert node["spec"]["taints"] == [
        {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}
    ]


async def test_a_node_in_line_with_the_spec_costs_one_get() -> None:
    kube = FakeKube()
    first = await registration.ensure_node(kube, config(), IDENTITY)
    kube.reset_calls()
    assert await registration.ensure_node(kube, config(), IDENTITY) == first
    assert [c.method for c in kube.calls] == ["GET"]


async def test_drift_is_patched_keeping_what_others_added() -> None:
    kube = FakeKube()
    created = await registration.ensure_node(kube, config(labels={"team": "burst"}), IDENTITY)
    kube.put(
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
    node = await registration.ensure_node(kube, config(disableDefaultTaint=True), IDENTITY)
    assert [(c.method, c.patch_type) for c in kube.calls] == [("GET", None), ("PATCH", "merge")]
    assert "team" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert (
        node_mapping.node_metadata_drift(
            node_mapping.node_from_virtual_node(config(disableDefaultTaint=True), IDENTITY), node
        )
        is None
    )


async def test_a_node_created_meanwhile_is_a_conflict() -> None:
    kube = FakeKube()
    kube.fail(NODES, errors.ConflictError("409 already exists"), method="POST")
    with pytest.raises(errors.ConflictError):
        await registration.ensure_node(kube, config(), IDENTITY)


async def test_remove_node_deletes_the_lease_and_the_node_and_may_repeat() -> None:
    kube = FakeKube()
    node = await registration.ensure_node(kube, config(), IDENTITY)
    kube.put(lease_path(), node_mapping.lease_from_node("vn-1", node["metadata"]["uid"], NOW, 40))
    await registration.remove_node(kube, "vn-1")
    assert kube.objects.keys() == set()
    await registration.remove_node(kube, "vn-1")
    assert [c.method for c in kube.calls_to(path="*vn-1")][-4:] == ["DELETE", "DELETE", "DELETE", "DELETE"]
