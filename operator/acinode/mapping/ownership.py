"""Whose is this Node, this Lease, this nodeName? The ownership rules of virtual nodes (pure: no I/O).

A kubelet can touch only its own Node and Lease: the Node authorizer and NodeRestriction enforce it in the API
server. acinode may write any Node and Lease, so it keeps itself to its own, checked by uid and never by name or
label alone:
- a Node is a VirtualNode's only when its ``acinode.dev/virtual-node-uid`` annotation is that VirtualNode's uid
  (acinode writes it when it creates the Node). A real node, another VirtualNode's Node or an unannotated one is
  never adopted;
- a Lease is a Node's only when one of its ownerReferences carries that Node's uid;
- a nodeName whose Node does not exist goes to the live VirtualNode that claimed it first (created first, then by
  name), so that two VirtualNodes with one nodeName never take turns at a Node deleted under them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

VIRTUAL_NODE_UID_ANNOTATION = "acinode.dev/virtual-node-uid"
"""On every Node acinode creates: the uid of the VirtualNode it stands for (the proof of ownership)."""
MANAGED_BY_LABEL = "acinode.dev/virtual-node"
"""Names the VirtualNode (a hint for messages and watches; anyone may set a label, so it proves nothing)."""

NODE_NAME_CONFLICT = "NodeNameConflict"
LEASE_CONFLICT = "LeaseConflict"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why acinode will not act for a VirtualNode (a condition reason and a message for its status and Event)."""

    reason: str
    message: str


def _metadata(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def is_own_node(node: Mapping[str, Any] | None, virtual_node_uid: str | None) -> bool:
    """Whether ``node`` carries this VirtualNode's uid in its ownership annotation."""
    if node is None or not virtual_node_uid:
        return False
    annotations = _metadata(node).get("annotations") or {}
    return bool(annotations.get(VIRTUAL_NODE_UID_ANNOTATION) == virtual_node_uid)


def foreign_node_refusal(node: Mapping[str, Any], virtual_node_name: str) -> Refusal:
    """Why the existing ``node`` (not this VirtualNode's) cannot be used, naming who holds it."""
    metadata = _metadata(node)
    name = metadata.get("name", "")
    owner_uid = (metadata.get("annotations") or {}).get(VIRTUAL_NODE_UID_ANNOTATION)
    advice = (
        f"acinode never adopts a Node it did not create for this VirtualNode; {virtual_node_name} waits until "
        f"Node {name} is gone (or delete {virtual_node_name} and recreate it with another spec.nodeName)"
    )
    if owner_uid:
        owner_name = (metadata.get("labels") or {}).get(MANAGED_BY_LABEL) or "unknown"
        return Refusal(
            NODE_NAME_CONFLICT,
            f"Node {name} belongs to VirtualNode {owner_name} (uid {owner_uid}); {advice}",
        )
    kubelet = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
    what = f"a node registered by kubelet {kubelet}" if kubelet else "a node acinode did not create"
    return Refusal(
        NODE_NAME_CONFLICT,
        f"Node {name} (uid {metadata.get('uid', 'unknown')}) already exists and is not acinode's: {what}, "
        f"without the {VIRTUAL_NODE_UID_ANNOTATION} annotation; {advice}",
    )


def node_name_of(virtual_node: Mapping[str, Any]) -> str:
    """The Node a VirtualNode object stands for (``spec.nodeName``, else its own name)."""
    spec = virtual_node.get("spec") or {}
    return str(spec.get("nodeName") or _metadata(virtual_node).get("name", ""))


def first_claimant(virtual_nodes: Iterable[Mapping[str, Any]], node_name: str) -> Mapping[str, Any] | None:
    """The live VirtualNode (not being deleted) with this nodeName that was created first (ties: by name)."""
    claimants = [
        vn
        for vn in virtual_nodes
        if node_name_of(vn) == node_name and not _metadata(vn).get("deletionTimestamp")
    ]
    if not claimants:
        return None
    return min(
        claimants,
        key=lambda vn: (str(_metadata(vn).get("creationTimestamp", "")), str(_metadata(vn).get("name"))),
    )


def missing_node_refusal(
    virtual_nodes: Iterable[Mapping[str, Any]], node_name: str, virtual_node_name: str, virtual_node_uid: str
) -> Refusal | None:
    """None when this VirtualNode may create the missing Node ``node_name``; else why not."""
    first = first_claimant(virtual_nodes, node_name)
    if first is not None and _metadata(first).get("uid") == virtual_node_uid:
        return None
    if first is None:
        return Refusal(
            NODE_NAME_CONFLICT,
            f"VirtualNode {virtual_node_name} is being deleted (or no longer exists): Node {node_name} is not "
            "created again",
        )
    other = _metadata(first)
    return Refusal(
        NODE_NAME_CONFLICT,
        f"nodeName {node_name} is claimed by VirtualNode {other.get('name')} (uid {other.get('uid')}), created "
        f"earlier; {virtual_node_name} waits until that VirtualNode is deleted (or delete {virtual_node_name} and "
        "recreate it with another spec.nodeName)",
    )


@dataclasses.dataclass(frozen=True)
class Release:
    """What deleting a VirtualNode may remove: only what is its own."""

    groups: bool
    """Delete the container groups tagged with the nodeName (and this cluster)."""
    node_uid: str | None
    """Delete the Node with this uid (and its Lease), or nothing when None."""
    reason: str
    """Why, for the log."""


def release_on_delete(
    node: Mapping[str, Any] | None,
    virtual_nodes: Iterable[Mapping[str, Any]],
    node_name: str,
    virtual_node_uid: str,
) -> Release:
    """What a deleted VirtualNode removes, given its Node (None: gone) and the VirtualNodes that exist.

    Container groups carry the cluster id and the node name, not the VirtualNode's uid, so they are removed only
    when the nodeName is this VirtualNode's: its Node is its own, or the Node is gone and no other live
    VirtualNode claims the name (whose pods, and so groups, they would be).
    """
    if node is not None:
        if is_own_node(node, virtual_node_uid):
            uid = str(_metadata(node).get("uid", "")) or None
            return Release(groups=True, node_uid=uid, reason="the Node is this VirtualNode's")
        return Release(groups=False, node_uid=None, reason=foreign_node_refusal(node, "it").message)
    others = [vn for vn in virtual_nodes if _metadata(vn).get("uid") != virtual_node_uid]
    first = first_claimant(others, node_name)
    if first is not None:
        return Release(
            groups=False,
            node_uid=None,
            reason=f"nodeName {node_name} is claimed by VirtualNode {_metadata(first).get('name')}",
        )
    return Release(
        groups=True, node_uid=None, reason=f"Node {node_name} is gone and no other VirtualNode claims it"
    )


# --- Leases ---------------------------------------------------------------------------------------------------


def is_own_lease(lease: Mapping[str, Any] | None, node_uid: str | None) -> bool:
    """Whether ``lease`` is owned by the Node with ``node_uid`` (an ownerReference of kind Node with that uid)."""
    if lease is None or not node_uid:
        return False
    return any(
        ref.get("kind") == "Node" and ref.get("uid") == node_uid
        for ref in _metadata(lease).get("ownerReferences") or []
    )


def is_stale_lease(lease: Mapping[str, Any], node_name: str, node_uid: str) -> bool:
    """A Lease of an earlier Node of the same name (owned by a Node of this name with another uid).

    Names are unique, so that Node no longer exists: the garbage collector deletes the Lease, and acinode then
    creates a fresh one owned by the current Node. Not ours to renew or delete meanwhile.
    """
    refs = _metadata(lease).get("ownerReferences") or []
    return bool(refs) and all(
        ref.get("kind") == "Node" and ref.get("name") == node_name and ref.get("uid") != node_uid
        for ref in refs
    )


def foreign_lease_refusal(lease: Mapping[str, Any], node_name: str, node_uid: str) -> Refusal:
    metadata = _metadata(lease)
    refs = metadata.get("ownerReferences") or []
    owners = ", ".join(f"{r.get('kind')} {r.get('name')} (uid {r.get('uid')})" for r in refs)
    holder = (lease.get("spec") or {}).get("holderIdentity")
    held = f", held by {holder}" if holder else ""
    return Refusal(
        LEASE_CONFLICT,
        f"Lease {metadata.get('namespace', 'kube-node-lease')}/{metadata.get('name', node_name)} is not owned by "
        f"Node {node_name} (uid {node_uid}): "
        + (f"its owner is {owners}" if owners else "it has no owner")
        + f"{held}; acinode does not renew, replace or delete it",
    )
