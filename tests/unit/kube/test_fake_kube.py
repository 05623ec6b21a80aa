"""FakeKube keeps the API server's generic rules, so tests built on it mean what they say."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from acinode import errors
from fakes.fake_kube import FakeKube

NODES = "/api/v1/nodes"
PODS = "/api/v1/namespaces/shop/pods"
CONDITIONS_NODE = {
    "metadata": {"name": "vn-1", "labels": {"a": "1"}},
    "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}]},
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
        ],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    },
}


def pod(name: str, namespace: str = "shop", node: str = "vn-1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node},
    }


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


async def test_create_assigns_identity_and_get_returns_a_copy(kube: FakeKube) -> None:
    created = await kube.create(NODES, {"metadata": {"name": "vn-1"}})
    metadata = created["metadata"]
    assert metadata["uid"] and metadata["resourceVersion"] and metadata["creationTimestamp"]
    assert metadata["generation"] == 1
    fetched = await kube.get(f"{NODES}/vn-1")
    assert fetched == created
    fetched["metadata"]["name"] = "changed"
    assert kube.objects[f"{NODES}/vn-1"]["metadata"]["name"] == "vn-1"


async def test_create_of_an_existing_name_conflicts(kube: FakeKube) -> None:
    await kube.create(NODES, {"metadata": {"name": "vn-1"}})
    with pytest.raises(errors.ConflictError, match="already exists"):
        await kube.create(NODES, {"metadata": {"name": "vn-1"}})


async def test_generate_name(kube: FakeKube) -> None:
    created = await kube.create(PODS, {"metadata": {"generateName": "web-"}})
    assert created["metadata"]["name"].startswith("web-")
    assert created["metadata"]["namespace"] == "shop"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_missing_objects_are_not_found(kube: FakeKube, method: str) -> None:
    with pytest.raises(errors.NotFoundError, match='404 nodes "vn-1" not found'):
        await kube.request(method, f"{NODES}/vn-1", body={"metadata": {"name": "vn-1"}})


async def test_namespaced_collections_and_selectors(kube: FakeKube) -> None:
    kube.put(PODS, pod("a", app="web"))
    kube.put(PODS, pod("b", app="db", node="vn-2"))
    kube.put("/api/v1/namespaces/other/pods", pod("c", namespace="other", app="web"))

    async def names(path: str, **params: str) -> list[str]:
        return [item["metadata"]["name"] for item in (await kube.get(path, params))["items"]]

    assert await names(PODS) == ["a", "b"]
    assert await names("/api/v1/pods") == ["c", "a", "b"]  # all namespaces, by path
    assert await names("/api/v1/pods", labelSelector="app=web") == ["c", "a"]
    assert await names(PODS, labelSelector="app!=web") == ["b"]
    assert await names(PODS, labelSelector="app in (db, cache)") == ["b"]
    assert await names(PODS, labelSelector="app notin (db),app") == ["a"]
    assert await names(PODS, labelSelector="!app") == []
    assert await names(PODS, fieldSelector="spec.nodeName=vn-2") == ["b"]
    assert await names(PODS, fieldSelector="metadata.name!=a,spec.nodeName==vn-2") == ["b"]
    assert await names(NODES) == []


async def test_merge_patch_merges_objects_replaces_lists_and_removes_nulls(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    patched = await kube.patch(
        f"{NODES}/vn-1", {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": {"taints": []}}, "merge"
    )
    assert patched["metadata"]["labels"] == {"b": "2"}
    assert patched["spec"]["taints"] == []
    assert patched["metadata"]["generation"] == 2  # spec changed


async def test_strategic_merge_merges_conditions_by_type(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    patched = await kube.patch(
        f"{NODES}/vn-1/status",
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "PIDPressure", "status": "False"},
                ]
            }
        },
        "strategic",
    )
    assert patched["status"]["conditions"] == [
        {"type": "Ready", "status": "False", "reason": "KubeletReady"},
        {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
        {"type": "PIDPressure", "status": "False"},
    ]
    assert patched["metadata"]["generation"] == 1


async def test_strategic_merge_directives(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    patched = await kube.patch(
        f"{NODES}/vn-1/status",
        {
            "status": {
                "conditions": [{"type": "DiskPressure", "$patch": "delete"}],
                "addresses": {"$patch": "replace"},
            }
        },
        "strategic",
    )
    assert [c["type"] for c in patched["status"]["conditions"]] == ["Ready"]
    assert patched["status"]["addresses"] == {}


async def test_strategic_merge_replaces_lists_without_a_merge_key(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    patched = await kube.patch(
        f"{NODES}/vn-1", {"spec": {"taints": [{"key": "u", "effect": "NoExecute"}]}}, "strategic"
    )
    assert patched["spec"]["taints"] == [{"key": "u", "effect": "NoExecute"}]


async def test_json_patch(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    patched = await kube.patch(
        f"{NODES}/vn-1",
        [
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "add", "path": "/metadata/labels/example.com~1tier", "value": "spot"},
            {"op": "replace", "path": "/spec/taints/0/effect", "value": "NoExecute"},
            {"op": "add", "path": "/spec/taints/-", "value": {"key": "v", "effect": "NoSchedule"}},
            {"op": "remove", "path": "/metadata/labels/a"},
        ],
        "json",
    )
    assert patched["metadata"]["labels"] == {"example.com/tier": "spot"}
    assert patched["spec"]["taints"] == [
        {"key": "t", "effect": "NoExecute"},
        {"key": "v", "effect": "NoSchedule"},
    ]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "test", "path": "/metadata/labels/a", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/missing"},
        {"op": "replace", "path": "/metadata/labels/missing", "value": "x"},
        {"op": "move", "path": "/a", "from": "/b"},
    ],
)
async def test_a_failing_json_patch_is_invalid_and_changes_nothing(
    kube: FakeKube, operation: dict[str, Any]
) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    before = kube.stored(f"{NODES}/vn-1")
    with pytest.raises(errors.InvalidRequestError):
        await kube.patch(
            f"{NODES}/vn-1", [{"op": "add", "path": "/metadata/labels/z", "value": "1"}, operation], "json"
        )
    assert kube.stored(f"{NODES}/vn-1") == before


async def test_the_status_subresource_changes_only_status_and_the_object_never_status(kube: FakeKube) -> None:
    kube.put(NODES, CONDITIONS_NODE)
    await kube.patch(
        f"{NODES}/vn-1/status", {"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Running"}}
    )
    await kube.patch(f"{NODES}/vn-1", {"metadata": {"labels": {"z": "1"}}, "status": {"phase": "Lost"}})
    node = kube.stored(f"{NODES}/vn-1")
    assert node is not None
    assert node["status"]["phase"] == "Running"
    assert node["metadata"]["labels"] == {"a": "1", "z": "1"}
    status = await kube.get(f"{NODES}/vn-1/status")
    assert status["status"]["phase"] == "Running"


async def test_replace_with_a_stale_resource_version_conflicts(kube: FakeKube) -> None:
    current = kube.put(NODES, {"metadata": {"name": "vn-1"}})
    await kube.replace(f"{NODES}/vn-1", {**current, "spec": {"unschedulable": True}})
    with pytest.raises(errors.ConflictError):
        await kube.replace(f"{NODES}/vn-1", {**current, "spec": {}})
    with pytest.raises(errors.ConflictError):
        await kube.patch(
            f"{NODES}/vn-1", {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}}
        )


async def test_names_are_immutable(kube: FakeKube) -> None:
    kube.put(NODES, {"metadata": {"name": "vn-1"}})
    with pytest.raises(errors.InvalidRequestError):
        await kube.patch(f"{NODES}/vn-1", {"metadata": {"name": "vn-2"}})


async def test_delete_honours_preconditions(kube: FakeKube) -> None:
    uid = kube.put(PODS, pod("a"))["metadata"]["uid"]
    with pytest.raises(errors.ConflictError):
        await kube.delete(f"{PODS}/a", {"preconditions": {"uid": "someone-else"}})
    await kube.delete(f"{PODS}/a", {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
    assert kube.stored(f"{PODS}/a") is None
    with pytest.raises(errors.NotFoundError):
        await kube.delete(f"{PODS}/a")


async def test_finalizers_hold_a_deleted_object_until_removed(kube: FakeKube) -> None:
    kube.put(PODS, pod("a") | {"metadata": {"name": "a", "finalizers": ["example.com/keep"]}})
    await kube.delete(f"{PODS}/a")
    held = kube.stored(f"{PODS}/a")
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]
    await kube.patch(f"{PODS}/a", {"metadata": {"finalizers": None}})
    assert kube.stored(f"{PODS}/a") is None


async def test_garbage_collection_deletes_objects_whose_owner_is_gone(kube: FakeKube) -> None:
    uid = kube.put(NODES, {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1"
    kube.put(lease, {"metadata": {"ownerReferences": [{"kind": "Node", "name": "vn-1", "uid": uid}]}})
    assert kube.collect_garbage() == []
    kube.remove(f"{NODES}/vn-1")
    assert kube.collect_garbage() == [lease]


async def test_watch_streams_current_objects_then_changes(kube: FakeKube) -> None:
    kube.put(PODS, pod("a", app="web"))
    kube.put(PODS, pod("b", app="db"))
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in kube.watch(PODS, {"labelSelector": "app=web"}):
            events.append((event["type"], event["object"]["metadata"]["name"]))

    task = asyncio.create_task(consume())
    await kube.wait_until(lambda: events == [("ADDED", "a")])
    await kube.create(PODS, pod("c", app="web"))
    await kube.patch(f"{PODS}/a", {"metadata": {"labels": {"x": "1"}}})
    await kube.delete(f"{PODS}/c")
    await kube.create(PODS, pod("d", app="db"))
    await kube.close_watches()
    await asyncio.wait_for(task, 1)
    assert events == [("ADDED", "a"), ("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "c")]


async def test_calls_are_recorded_and_counted(kube: FakeKube) -> None:
    kube.put(NODES, {"metadata": {"name": "vn-1"}})
    await kube.get(f"{NODES}/vn-1")
    await kube.patch(f"{NODES}/vn-1/status", {"status": {}}, "strategic")
    with pytest.raises(errors.NotFoundError):
        await kube.get(f"{NODES}/vn-2")
    assert kube.count() == 3
    assert kube.count("GET") == 2
    assert kube.count(path="*/status") == 1
    (call,) = kube.calls_to("PATCH")
    assert (call.path, call.body, call.patch_type) == (f"{NODES}/vn-1/status", {"status": {}}, "strategic")
    kube.reset_calls()
    assert kube.count() == 0


async def test_injected_failures_hit_matching_calls_the_given_number_of_times(kube: FakeKube) -> None:
    kube.put(NODES, {"metadata": {"name": "vn-1"}})
    kube.fail(f"{NODES}/*", errors.TransientError("503"), method="GET", times=2)
    for _ in range(2):
        with pytest.raises(errors.TransientError):
            await kube.get(f"{NODES}/vn-1")
    await kube.get(f"{NODES}/vn-1")
    await kube.patch(f"{NODES}/vn-1", {})
    kube.fail("*", lambda: errors.ThrottledError("429", retry_after_seconds=1), times=None)
    for _ in range(3):
        with pytest.raises(errors.ThrottledError):
            await kube.get(f"{NODES}/vn-1")
    assert kube.count("GET") == 6  # failed calls were still made


async def test_held_calls_wait_for_their_gate(kube: FakeKube) -> None:
    kube.put(NODES, {"metadata": {"name": "vn-1"}})
    gate = kube.hold(f"{NODES}/vn-1", method="GET", times=1)
    call = asyncio.create_task(kube.get(f"{NODES}/vn-1"))
    await kube.wait_for_calls(1, "GET")
    assert not call.done()
    gate.set()
    assert (await asyncio.wait_for(call, 1))["metadata"]["name"] == "vn-1"


async def test_delayed_calls_can_time_out(kube: FakeKube) -> None:
    kube.put(NODES, {"metadata": {"name": "vn-1"}})
    kube.delay(f"{NODES}/vn-1", 5.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await kube.get(f"{NODES}/vn-1")


async def test_waiting_fails_after_its_time(kube: FakeKube) -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for nothing"):
        await kube.wait_until(lambda: False, within=0.05, what="nothing")


async def test_it_never_opens_a_connection(kube: FakeKube) -> None:
    with pytest.raises(AssertionError):
        kube._session_or_new()
    await kube.close()
    assert kube.closed


@pytest.mark.parametrize("path", ["/healthz", "/api", "/api/v1/nodes/vn-1/status/extra/more"])
async def test_paths_that_name_no_resource_are_refused(kube: FakeKube, path: str) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await kube.get(path)
