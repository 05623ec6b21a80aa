"""Paths of the objects acinode keeps, and the verbs with built-in idempotence (get-or-none, delete-if-present)."""

from __future__ import annotations

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
