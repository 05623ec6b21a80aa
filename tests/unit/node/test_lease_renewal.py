"""Renewing a node's Lease: created when missing, one guarded PATCH when it is ours, never touched otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from node_builders import LEASES, lease_path

from acinode import errors
from acinode.mapping import node as node_mapping
from acinode.node import lease
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


async def test_a_missing_lease_is_created_owned_by_the_node(clock: FakeClock) -> None:
    kube = FakeKube()
    renewal = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    assert [(c.method, c.path) for c in kube.calls] == [("GET", lease_path()), ("POST", LEASES)]
    stored = kube.stored(lease_path())
    assert stored is not None
    assert renewal == lease.Renewal(stored["metadata"]["resourceVersion"])
    assert stored["spec"] == {
        "holderIdentity": "vn-1",
        "leaseDurationSeconds": 40,
        "renewTime": "2025-01-01T12:00:00.000000Z",
    }
    assert stored["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "vn-1", "uid": "node-uid"}
    ]


async def test_our_lease_is_renewed_with_one_patch_guarded_by_its_resource_version(clock: FakeClock) -> None:
    kube = FakeKube()
    first = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    kube.reset_calls()
    clock.advance(10.5)
    second = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40, first.resource_version)
    (call,) = kube.calls
    assert (call.method, call.path, call.patch_type) == ("PATCH", lease_path(), "merge")
    assert call.body == {
        "metadata": {"resourceVersion": first.resource_version},
        "spec": node_mapping.lease_from_node("vn-1", "node-uid", clock.now(), 40)["spec"],
    }
    stored = kube.stored(lease_path())
    assert stored is not None
    assert stored["spec"]["renewTime"] == "2025-01-01T12:00:10.500000Z"
    assert second.renewed and second.resource_version == stored["metadata"]["resourceVersion"]


async def test_an_existing_lease_of_our_node_is_read_then_renewed(clock: FakeClock) -> None:
    kube = FakeKube()
    kube.put(lease_path(), node_mapping.lease_from_node("vn-1", "node-uid", clock.now(), 40))
    renewal = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    assert [c.method for c in kube.calls] == ["GET", "PATCH"]
    assert renewal.renewed


def foreign(**metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "vn-1", **metadata}, "spec": {"holderIdentity": "real-kubelet"}}


@pytest.mark.parametrize(
    ("existing", "named"),
    [
        pytest.param(foreign(), "it has no owner, held by real-kubelet", id="unowned"),
        pytest.param(
            foreign(ownerReferences=[{"apiVersion": "v1", "kind": "Node", "name": "elsewhere", "uid": "x"}]),
            "Node elsewhere (uid x)",
            id="another-nodes",
        ),
        pytest.param(
            foreign(ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "vn-1", "uid": "y"}]),
            "ConfigMap vn-1 (uid y)",
            id="owned-by-something-else",
        ),
    ],
)
async def test_a_lease_that_is_not_our_nodes_is_never_written(
    clock: FakeClock, existing: dict[str, Any], named: str
) -> None:
    kube = FakeKube()
    before = kube.put(lease_path(), existing)
    renewal = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    assert [c.method for c in kube.calls] == ["GET"]
    assert kube.stored(lease_path()) == before
    assert not renewal.renewed
    assert renewal.refusal is not None
    assert renewal.refusal.reason == "LeaseConflict"
    assert named in renewal.refusal.message
    assert "Node vn-1 (uid node-uid)" in renewal.refusal.message


async def test_a_lease_replaced_since_our_last_renewal_is_checked_again(clock: FakeClock) -> None:
    kube = FakeKube()
    ours = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    kube.remove(lease_path())
    kube.put(lease_path(), foreign())
    kube.reset_calls()
    renewal = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40, ours.resource_version)
    assert [c.method for c in kube.calls] == ["PATCH", "GET"]  # 409 on the guarded patch, then a look
    assert renewal.refusal is not None
    stored = kube.stored(lease_path())
    assert stored is not None
    assert stored["spec"] == {"holderIdentity": "real-kubelet"}


async def test_a_lease_of_an_earlier_node_is_left_to_the_garbage_collector(clock: FakeClock) -> None:
    kube = FakeKube()
    old_uid = kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    await lease.renew_once(kube, "vn-1", old_uid, clock.now(), 40)
    kube.remove("/api/v1/nodes/vn-1")
    new_uid = kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    before = kube.stored(lease_path())
    renewal = await lease.renew_once(kube, "vn-1", new_uid, clock.now(), 40)
    assert renewal == lease.Renewal(None, stale=True)
    assert kube.stored(lease_path()) == before
    assert kube.collect_garbage() == [lease_path()]
    renewal = await lease.renew_once(kube, "vn-1", new_uid, clock.now(), 40)
    stored = kube.stored(lease_path())
    assert stored is not None
    assert renewal.renewed
    assert stored["metadata"]["ownerReferences"][0]["uid"] == new_uid


@pytest.mark.parametrize(
    "error", [errors.ConflictError("409 already exists"), errors.PermissionDeniedError("403 forbidden")]
)
async def test_a_failed_create_surfaces(clock: FakeClock, error: errors.AcinodeError) -> None:
    kube = FakeKube()
    kube.fail(LEASES, error, method="POST")
    with pytest.raises(type(error)):
        await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)


async def test_other_patch_errors_are_not_mistaken_for_a_missing_lease(clock: FakeClock) -> None:
    kube = FakeKube()
    ours = await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    kube.fail(lease_path(), errors.TransientError("503"), method="PATCH")
    with pytest.raises(errors.TransientError):
        await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40, ours.resource_version)
    assert kube.count("POST") == 1
