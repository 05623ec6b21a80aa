"""The keeper touches only a Node and Lease that are its VirtualNode's; anything else is refused and reported.

On fakes and a fixed clock. The API server refuses a patch whose ``metadata.uid`` differs from the object's (uid
is immutable: 422); ``UidCheckingKube`` does the same here, so that a Node replaced under our feet is seen.
"""

from __future__ import annotations

from typing import Any

from node_builders import (
    IDENTITY,
    LEASES,
    NODES,
    MakeKeeper,
    lease_path,
    node_path,
    virtual_node,
    vn_status_path,
)

from acinode import errors
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import keeper
from fakes.fake_backend import FakeBackendProbe
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube

EVENTS = "/api/v1/namespaces/default/events"
NODE_STATUS = f"{node_path()}/status"


class UidCheckingKube(FakeKube):
    """FakeKube plus the API server's rule that a patch cannot change ``metadata.uid``."""

    async def patch(self, path: str, body: Any, patch_type: client.PatchType = "merge") -> client.JsonObject:
        uid = (body.get("metadata") or {}).get("uid") if isinstance(body, dict) else None
        current = self.stored(path.removesuffix("/status"))
        if uid and current is not None and current["metadata"]["uid"] != uid:
            raise errors.InvalidRequestError(
                f"PATCH {path}: 422 metadata.uid: field is immutable", code="Invalid"
            )
        return await super().patch(path, body, patch_type)


def foreign_node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "vn-1", "labels": {"kubernetes.io/hostname": "vn-1", "team": "db"}},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        "status": {
            "nodeInfo": {"kubeletVersion": "v1.37.2"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def vn_conditions(kube: FakeKube) -> dict[str, tuple[str, str, str]]:
    vn = kube.stored(resources.virtual_node_path("vn-1"))
    assert vn is not None
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in vn["status"]["conditions"]}


def events(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [(c.body["type"], c.body["reason"], c.body["message"]) for c in kube.calls_to("POST", EVENTS)]


def node_writes(kube: FakeKube) -> list[tuple[str, str]]:
    return [
        (c.method, c.path)
        for c in kube.calls
        if c.method != "GET" and (c.path.startswith(NODES) or c.path.startswith(LEASES))
    ]


async def test_a_foreign_node_is_never_written_and_the_refusal_is_reported(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe
) -> None:
    before = kube.put(NODES, foreign_node())
    node_keeper = make_keeper()
    await node_keeper.status_once(force=True)
    await node_keeper.lease_once()
    await node_keeper.status_once(force=True)
    assert node_writes(kube) == []
    assert kube.stored(node_path()) == before
    assert kube.stored(lease_path()) is None
    assert probe.checks == 0  # nothing is done for a node that is not ours, not even a backend check
    assert node_keeper.node_uid is None and not node_keeper.owned.is_set()
    conditions = vn_conditions(kube)
    assert conditions["Ready"][:2] == ("False", "NodeNameConflict")
    assert conditions["Registered"][:2] == ("False", "NodeNameConflict")
    assert conditions["BackendReachable"][:2] == ("Unknown", "NotChecked")
    message = conditions["Ready"][2]
    assert f"Node vn-1 (uid {before['metadata']['uid']}) already exists and is not acinode's" in message
    assert "kubelet v1.37.2" in message
    assert events(kube) == [("Warning", "NodeNameConflict", message)]  # once, not on every retry


async def test_when_the_foreign_node_is_gone_the_virtual_node_proceeds(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    kube.put(NODES, foreign_node())
    node_keeper = make_keeper()
    await node_keeper.status_once()
    kube.remove(node_path())
    await node_keeper.status_once()
    node = kube.stored(node_path())
    assert node is not None
    assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == "vn-uid"
    assert node_keeper.owned.is_set() and node_keeper.refusal is None
    assert vn_conditions(kube)["Ready"][:2] == ("True", "KubeletReady")
    await node_keeper.lease_once()
    lease = kube.stored(lease_path())
    assert lease is not None and lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


async def test_another_virtual_nodes_node_is_refused_naming_it(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    other = virtual_node("vn-0", uid="first-uid", created="2025-01-01T10:00:00Z", nodeName="vn-1")
    kube.put(resources.VIRTUALNODES, other)
    first = make_keeper(config=virtualnode.virtual_node_config_from_resource(other), owner_uid="first-uid")
    await first.status_once()
    await first.lease_once()
    node_before, lease_before = kube.stored(node_path()), kube.stored(lease_path())
    second = make_keeper()
    await second.status_once(force=True)
    await second.lease_once()
    assert kube.stored(node_path()) == node_before
    assert kube.stored(lease_path()) == lease_before
    assert "Node vn-1 belongs to VirtualNode vn-0 (uid first-uid)" in second.refusal.message  # type: ignore[union-attr]
    assert first.owned.is_set() and not second.owned.is_set()


async def test_a_node_replaced_by_a_foreign_one_is_not_patched_and_the_pods_are_let_go(
    changes: Any, clock: FakeClock, make_keeper: MakeKeeper
) -> None:
    kube = UidCheckingKube(clock=clock.now, changes_signal=changes)
    kube.put(resources.VIRTUALNODES, virtual_node())
    node_keeper = make_keeper(kube=kube)
    await node_keeper.status_once()
    assert node_keeper.owned.is_set()
    kube.remove(node_path())
    replaced = kube.put(NODES, foreign_node())
    kube.reset_calls()
    clock.advance(1)
    await node_keeper.status_once(force=True)  # as when the Node watch pokes the keeper
    assert kube.stored(node_path()) == replaced
    assert node_writes(kube) == []
    assert node_keeper.disowned.is_set() and not node_keeper.owned.is_set()
    assert vn_conditions(kube)["Ready"][1] == "NodeNameConflict"


async def test_a_foreign_lease_is_left_alone_and_reported(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    foreign = kube.put(lease_path(), {"metadata": {"name": "vn-1"}, "spec": {"holderIdentity": "intruder"}})
    node_keeper = make_keeper()
    await node_keeper.status_once()
    await node_keeper.lease_once()
    await node_keeper.lease_once()
    assert kube.stored(lease_path()) == foreign
    assert node_keeper.last_renewal is None
    refusal = node_keeper.lease_refusal
    assert refusal is not None and refusal.reason == "LeaseConflict"
    assert "it has no owner, held by intruder" in refusal.message
    assert events(kube)[-1] == ("Warning", "LeaseConflict", refusal.message)
    assert [e[1] for e in events(kube)].count("LeaseConflict") == 1
    await node_keeper.report_once()
    conditions = vn_conditions(kube)
    assert conditions["Ready"][:2] == ("False", "LeaseConflict")
    assert conditions["Registered"][0] == "True"
    assert node_keeper.owned.is_set()  # the Node is ours: its pods are still served


async def test_forbidden_labels_refuse_the_spec_without_touching_the_node(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    node_keeper = make_keeper()
    await node_keeper.status_once()
    node_before = kube.stored(node_path())
    kube.reset_calls()
    refused = virtual_node(
        labels={"node-restriction.kubernetes.io/pool": "gold", "kubernetes.io/hostname": "x"}
    )
    node_keeper.update_config(virtualnode.virtual_node_config_from_resource(refused))
    await node_keeper.status_once(force=True)
    assert node_writes(kube) == []
    assert kube.stored(node_path()) == node_before
    assert node_keeper.disowned.is_set()
    status, reason, message = vn_conditions(kube)["Ready"]
    assert (status, reason) == ("False", "ForbiddenLabels")
    assert "node-restriction.kubernetes.io/pool: NodeRestriction forbids" in message
    assert "kubernetes.io/hostname: acinode sets this label itself" in message


async def test_a_keeper_without_a_virtual_node_uid_owns_nothing(
    kube: FakeKube, make_keeper: MakeKeeper, config: virtualnode.VirtualNodeConfig
) -> None:
    kube.put(NODES, node_mapping.node_from_virtual_node(config, IDENTITY))  # unannotated
    node_keeper: keeper.NodeKeeper = make_keeper(owner_uid=None)
    await node_keeper.status_once()
    assert node_writes(kube) == []
    assert node_keeper.node_uid is None
    assert kube.count("PATCH", vn_status_path()) == 1  # the refusal is reported
