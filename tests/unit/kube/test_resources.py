"""Paths of the objects acinode keeps, and the verbs with built-in idempotence (get-or-none, delete-if-present)."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import errors
from acinode.kube import resources
from fakes.fake_kube import FakeKube


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (resources.node_path("vn-1"), "/api/v1/nodes/vn-1"),
        (
            resources.lease_path("kube-node-lease", "vn-1"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1",
        ),
        (resources.virtual_node_path("vn-1"), "/apis/acinode.dev/v1alpha1/virtualnodes/vn-1"),
    ],
)
def test_paths(path: str, expected: str) -> None:
    assert path == expected


async def test_get_or_none() -> None:
    kube = FakeKube()
    assert await resources.get_or_none(kube, "/api/v1/nodes/vn-1") is None
    kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})
    node = await resources.get_or_none(kube, "/api/v1/nodes/vn-1")
    assert node is not None
    assert node["metadata"]["name"] == "vn-1"


async def test_get_or_none_lets_other_errors_through() -> None:
    kube = FakeKube()
    kube.fail("*", errors.PermissionDeniedError("403"))
    with pytest.raises(errors.PermissionDeniedError):
        await resources.get_or_none(kube, "/api/v1/nodes/vn-1")


async def test_deletes_may_repeat() -> None:
    kube = FakeKube()
    kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})
    assert await resources.delete_if_present(kube, "/api/v1/nodes/vn-1") is True
    assert await resources.delete_if_present(kube, "/api/v1/nodes/vn-1") is False
    assert kube.count("DELETE") == 2


async def test_delete_if_present_passes_options_and_other_errors() -> None:
    kube = FakeKube()
    uid = kube.put("/api/v1/namespaces/shop/pods", {"metadata": {"name": "web"}})["metadata"]["uid"]
    with pytest.raises(errors.ConflictError):
        await resources.delete_if_present(
            kube, "/api/v1/namespaces/shop/pods/web", {"preconditions": {"uid": "x"}}
        )
    assert await resources.delete_if_present(
        kube, "/api/v1/namespaces/shop/pods/web", {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
    )


@pytest.mark.parametrize(
    ("host", "source"), [(None, {"component": "acinode"}), ("vn-1", {"component": "acinode", "host": "vn-1"})]
)
async def test_post_event(host: str | None, source: dict[str, str]) -> None:
    kube = FakeKube()
    involved = {"kind": "Pod", "namespace": "shop", "name": "web", "uid": "u-1"}
    await resources.post_event(
        kube,
        involved=involved,
        reason="ProviderFailed",
        message="x" * 2000,
        event_type="Warning",
        namespace="shop",
        host=host,
    )
    (call,) = kube.calls_to("POST", "/api/v1/namespaces/shop/events")
    event = call.body
    assert event["metadata"]["name"].startswith("web.")
    assert event["involvedObject"] == involved
    assert (event["reason"], event["type"], event["count"]) == ("ProviderFailed", "Warning", 1)
    assert event["message"] == "x" * 1024
    assert event["source"] == source
    assert event["firstTimestamp"] == event["lastTimestamp"]


async def test_events_get_unique_names() -> None:
    kube = FakeKube()
    for _ in range(3):
        await resources.post_event(kube, involved={"name": "web"}, reason="R", message="m")
    assert len(kube.objects) == 3


NODE = "/api/v1/nodes/vn-1"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1"
VIRTUAL_NODE = "/apis/acinode.dev/v1alpha1/virtualnodes/vn-1"


async def test_nodes_are_read_created_patched_and_deleted_at_their_paths() -> None:
    kube = FakeKube()
    assert await resources.get_node(kube, "vn-1") is None
    created = await resources.create_node(kube, {"metadata": {"name": "vn-1"}})
    patched = await resources.patch_node(kube, "vn-1", {"metadata": {"labels": {"a": "b"}}})
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert await resources.delete_node(kube, "vn-1", created["metadata"]["uid"]) is True
    assert await resources.delete_node(kube, "vn-1", created["metadata"]["uid"]) is False, (
        "deletes may repeat"
    )
    assert [(c.method, c.path, c.patch_type) for c in kube.calls] == [
        ("GET", NODE, None),
        ("POST", "/api/v1/nodes", None),
        ("PATCH", NODE, "merge"),
        ("DELETE", NODE, None),
        ("DELETE", NODE, None),
    ]
    assert kube.calls[-1].body == resources.uid_precondition(created["metadata"]["uid"])


async def test_a_node_patch_with_a_stale_resource_version_is_refused() -> None:
    kube = FakeKube()
    kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})
    with pytest.raises(errors.ConflictError):
        await resources.patch_node(kube, "vn-1", {"metadata": {"resourceVersion": "0", "labels": {"a": "b"}}})


async def test_a_replaced_node_is_not_deleted() -> None:
    kube = FakeKube()
    kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})
    with pytest.raises(errors.ConflictError):
        await resources.delete_node(kube, "vn-1", "the-uid-of-an-earlier-node")
    assert kube.stored(NODE) is not None


async def test_node_status_is_a_strategic_merge_patch_carrying_the_uid() -> None:
    kube = FakeKube()
    uid = kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    status = {"conditions": [{"type": "Ready", "status": "True"}]}
    await resources.patch_node_status(kube, "vn-1", uid, status)
    (call,) = kube.calls
    assert (call.method, call.path, call.patch_type) == ("PATCH", f"{NODE}/status", "strategic")
    assert call.body == {"metadata": {"uid": uid}, "status": status}
    stored = kube.stored(NODE)
    assert stored is not None
    assert stored["status"] == status


async def test_leases_are_read_created_patched_and_deleted_in_their_namespace() -> None:
    kube = FakeKube()
    assert await resources.get_lease(kube, "kube-node-lease", "vn-1") is None
    created = await resources.create_lease(
        kube, "kube-node-lease", {"metadata": {"name": "vn-1"}, "spec": {}}
    )
    version = created["metadata"]["resourceVersion"]
    renewed = await resources.patch_lease(
        kube, "kube-node-lease", "vn-1", {"metadata": {"resourceVersion": version}, "spec": {"x": 1}}
    )
    with pytest.raises(errors.ConflictError):  # the resourceVersion guard
        await resources.patch_lease(
            kube, "kube-node-lease", "vn-1", {"metadata": {"resourceVersion": version}, "spec": {"x": 2}}
        )
    with pytest.raises(errors.ConflictError):  # the uid precondition
        await resources.delete_lease(kube, "kube-node-lease", "vn-1", "another-uid")
    assert await resources.delete_lease(kube, "kube-node-lease", "vn-1", renewed["metadata"]["uid"]) is True
    assert [(c.method, c.path, c.patch_type) for c in kube.calls] == [
        ("GET", LEASE, None),
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", None),
        ("PATCH", LEASE, "merge"),
        ("PATCH", LEASE, "merge"),
        ("DELETE", LEASE, None),
        ("DELETE", LEASE, None),
    ]


async def test_virtual_node_status_is_a_merge_patch_of_the_status_subresource() -> None:
    kube = FakeKube()
    kube.put("/apis/acinode.dev/v1alpha1/virtualnodes", {"metadata": {"name": "vn-1"}, "spec": {"a": 1}})
    await resources.patch_virtual_node_status(kube, "vn-1", {"nodeName": "vn-1"})
    (call,) = kube.calls
    assert (call.method, call.path, call.patch_type) == ("PATCH", f"{VIRTUAL_NODE}/status", "merge")
    assert call.body == {"status": {"nodeName": "vn-1"}}
    assert [vn["metadata"]["name"] for vn in await resources.list_virtual_nodes(kube)] == ["vn-1"]


@pytest.mark.parametrize(
    "call",
    [
        lambda kube: resources.get_node(kube, "../kube-system"),
        lambda kube: resources.patch_node_status(kube, "a/b", "u", {}),
        lambda kube: resources.create_lease(kube, "Kube-Node-Lease", {}),
        lambda kube: resources.patch_virtual_node_status(kube, "vn-1/../x", {}),
    ],
)
async def test_invalid_names_never_become_paths(call: Any) -> None:
    kube = FakeKube()
    with pytest.raises(errors.InvalidRequestError):
        await call(kube)
    assert kube.calls == []
