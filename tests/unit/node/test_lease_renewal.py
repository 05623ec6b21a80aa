"""Renewing a node's Lease: one PATCH when it exists, a create when it does not."""

from __future__ import annotations

import pytest
from node_builders import LEASES, lease_path

from acinode import errors
from acinode.mapping import node as node_mapping
from acinode.node import lease
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


async def test_a_missing_lease_is_created_owned_by_the_node(clock: FakeClock) -> None:
    kube = FakeKube()
    await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    assert [(c.method, c.path) for c in kube.calls] == [("PATCH", lease_path()), ("POST", LEASES)]
    stored = kube.stored(lease_path())
    assert stored is not None
    assert stored["spec"] == {
        "holderIdentity": "vn-1",
        "leaseDurationSeconds": 40,
        "renewTime": "2025-01-01T12:00:00.000000Z",
    }
    assert stored["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "vn-1", "uid": "node-uid"}
    ]


async def test_an_existing_lease_is_renewed_with_one_patch(clock: FakeClock) -> None:
    kube = FakeKube()
    await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    kube.reset_calls()
    clock.advance(10.5)
    await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    (call,) = kube.calls
    assert (call.method, call.path, call.patch_type) == ("PATCH", lease_path(), "merge")
    assert call.body == {"spec": node_mapping.lease_from_node("vn-1", "node-uid", clock.now(), 40)["spec"]}
    stored = kube.stored(lease_path())
    assert stored is not None
    assert stored["spec"]["renewTime"] == "2025-01-01T12:00:10.500000Z"


async def test_a_lease_of_an_earlier_node_keeps_its_owner_until_collected(clock: FakeClock) -> None:
    kube = FakeKube()
    old_uid = kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    await lease.renew_once(kube, "vn-1", old_uid, clock.now(), 40)
    kube.remove("/api/v1/nodes/vn-1")
    new_uid = kube.put("/api/v1/nodes", {"metadata": {"name": "vn-1"}})["metadata"]["uid"]
    await lease.renew_once(kube, "vn-1", new_uid, clock.now(), 40)
    stored = kube.stored(lease_path())
    assert stored is not None
    assert stored["metadata"]["ownerReferences"][0]["uid"] == old_uid
    assert kube.collect_garbage() == [lease_path()]
    await lease.renew_once(kube, "vn-1", new_uid, clock.now(), 40)
    stored = kube.stored(lease_path())
    assert stored is not None
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
    kube.fail(lease_path(), errors.TransientError("503"), method="PATCH")
    with pytest.raises(errors.TransientError):
        await lease.renew_once(kube, "vn-1", "node-uid", clock.now(), 40)
    assert kube.count("POST") == 0
