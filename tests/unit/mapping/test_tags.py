"""Tags tie a group to its pod, node and cluster; the reconciler reads ownership back from them alone."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import CLUSTER, NODE, group, pod, problems, vnet_placement

from acinode import types
from acinode.mapping import tags

pytestmark = pytest.mark.timeout(2)


def test_every_group_carries_the_pod_identity() -> None:
    body = group(pod())
    assert body["tags"] == {
        tags.TAG_CLUSTER_ID: CLUSTER,
        tags.TAG_NODE: NODE,
        tags.TAG_NAMESPACE: "shop",
        tags.TAG_POD: "web-0",
        tags.TAG_POD_UID: "11111111-2222-3333-4444-555555555555",
        tags.TAG_CREATED: "2024-05-01T11:59:00Z",
    }


@pytest.mark.parametrize(
    ("allowlist", "labels", "expected"),
    [
        ((), {"app": "web"}, {}),
        (("app",), {"app": "web", "tier": "front"}, {"acinode.label.app": "web"}),
        (
            ("app.kubernetes.io/*",),
            {"app.kubernetes.io/name": "web", "app": "x"},
            {"acinode.label.app.kubernetes.io_name": "web"},
        ),
    ],
)
def test_labels_are_copied_only_when_allowlisted(
    allowlist: tuple[str, ...], labels: dict[str, str], expected: dict[str, str]
) -> None:
    body = group(pod(labels=labels), vnet_placement(copied_labels=allowlist))
    copied = {key: value for key, value in body["tags"].items() if key.startswith(tags.LABEL_TAG_PREFIX)}
    assert copied == expected


def test_extra_tags_never_override_ours() -> None:
    where = vnet_placement(extra_tags={"cost-center": "42", tags.TAG_NODE: "someone-else"})
    body = group(pod(), where)
    assert body["tags"]["cost-center"] == "42"
    assert body["tags"][tags.TAG_NODE] == NODE


def test_too_many_tags_is_a_problem() -> None:
    where = vnet_placement(copied_labels=("*",))
    labels = {f"l{i}": "v" for i in range(60)}
    assert "metadata.labels" in problems(pod(labels=labels), where)


def test_identity_round_trips_through_tags() -> None:
    identity = tags.pod_identity_from_tags(group(pod())["tags"])
    assert identity == tags.PodIdentity(
        cluster_id=CLUSTER,
        node_name=NODE,
        namespace="shop",
        name="web-0",
        uid=types.PodUid("11111111-2222-3333-4444-555555555555"),
        created="2024-05-01T11:59:00Z",
    )


OURS: dict[str, Any] = {
    tags.TAG_CLUSTER_ID: CLUSTER,
    tags.TAG_NODE: NODE,
    tags.TAG_NAMESPACE: "shop",
    tags.TAG_POD: "web-0",
    tags.TAG_POD_UID: "uid",
}


@pytest.mark.parametrize(
    ("group_tags", "node", "managed"),
    [
        (OURS, NODE, True),
        (OURS, None, True),
        (OURS, types.NodeName("other-node"), False),
        ({**OURS, tags.TAG_CLUSTER_ID: "other-cluster"}, NODE, False),
        ({key: value for key, value in OURS.items() if key != tags.TAG_POD_UID}, NODE, False),
        # a group of virtual-kubelet's provider in the same resource group
        ({"PodName": "web-0", "NodeName": NODE, "Namespace": "shop", "UID": "uid"}, NODE, False),
        (None, NODE, False),
        ({}, NODE, False),
    ],
)
def test_only_our_groups_are_managed(
    group_tags: dict[str, str] | None, node: types.NodeName | None, managed: bool
) -> None:
    assert tags.is_managed_group(group_tags, CLUSTER, node) is managed
