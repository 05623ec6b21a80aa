"""Create a VirtualNode's Node, keep its labels and taints in line with the spec, and remove it: only its own.

A Node is this VirtualNode's when its ``acinode.dev/virtual-node-uid`` annotation is the VirtualNode's uid (see
``mapping/ownership.py``). Any other Node of that name (a real node, another VirtualNode's, an unannotated one)
is never patched or deleted: the caller gets the refusal to report instead.
"""

from __future__ import annotations

import dataclasses
import logging

from acinode import errors
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import ownership, virtualnode

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Claim:
    """The outcome of registering: our Node, or why there is none to serve."""

    node: client.JsonObject | None
    refusal: ownership.Refusal | None = None


async def claim_node(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    identity: node_mapping.NodeIdentity,
    owner_uid: str | None,
    *,
    backend_unavailable: bool = False,
) -> Claim:
    """Our Node, created if missing and patched if its labels or taints drifted from the spec; or the refusal.

    ``backend_unavailable`` adds acinode's backend taint (``node_mapping.BACKEND_TAINT_KEY``); without it, a
    backend taint acinode set earlier is removed (taints are managed, so others' taints stay).

    Refused without a write: a spec with labels a kubelet may not set on itself; a Node of that name that is not
    ours (``owner_uid`` is the VirtualNode's uid); a missing Node whose name another live VirtualNode claimed
    first. The drift patch carries the resourceVersion read, so a Node replaced in between is not patched.
    """
    refusal = node_mapping.spec_labels_refusal(config.labels)
    if refusal is not None:
        return Claim(None, refusal)
    actual = await resources.get_node(kube, config.node_name)
    if actual is None:
        virtual_nodes = await resources.list_virtual_nodes(kube)
        refusal = ownership.missing_node_refusal(
            virtual_nodes, config.node_name, config.name, owner_uid or ""
        )
        if refusal is not None:
            return Claim(None, refusal)
        logger.info("registering node", extra={"node": config.node_name})
        desired = node_mapping.node_from_virtual_node(
            config, identity, owner_uid, backend_unavailable=backend_unavailable
        )
        return Claim(await resources.create_node(kube, desired))
    if not ownership.is_own_node(actual, owner_uid):
        return Claim(None, ownership.foreign_node_refusal(actual, config.name))
    desired = node_mapping.node_from_virtual_node(
        config, identity, owner_uid, backend_unavailable=backend_unavailable
    )
    patch = node_mapping.node_metadata_drift(desired, actual)
    if patch is None:
        return Claim(actual)
    patch.setdefault("metadata", {})["resourceVersion"] = actual["metadata"]["resourceVersion"]
    logger.info("updating node labels/taints", extra={"node": config.node_name})
    return Claim(await resources.patch_node(kube, config.node_name, patch))


async def release_scope(
    kube: client.KubeClient, node_name: str, virtual_node_uid: str | None
) -> ownership.Release:
    """What a deleted VirtualNode may remove (its Node, Lease and container groups), from what exists now."""
    node = await resources.get_node(kube, node_name)
    virtual_nodes = [] if node is not None else await resources.list_virtual_nodes(kube)
    return ownership.release_on_delete(node, virtual_nodes, node_name, virtual_node_uid or "")


async def remove_node(kube: client.KubeClient, node_name: str, node_uid: str) -> None:
    """Delete the Node with ``node_uid`` and its Lease, when the Lease is that Node's (either may be gone).

    Both deletes carry a uid precondition: a Node or Lease replaced meanwhile is someone else's and stays.
    A Lease that is not the Node's is left alone (a stale one of an earlier Node is the garbage collector's).
    """
    lease = await resources.get_lease(kube, node_mapping.LEASE_NAMESPACE, node_name)
    if lease is not None and ownership.is_own_lease(lease, node_uid):
        try:
            await resources.delete_lease(
                kube, node_mapping.LEASE_NAMESPACE, node_name, lease["metadata"]["uid"]
            )
        except errors.ConflictError:
            logger.warning("the Lease was replaced meanwhile: left alone", extra={"node": node_name})
    elif lease is not None:
        logger.warning(
            "leaving the Lease alone: %s",
            ownership.foreign_lease_refusal(lease, node_name, node_uid).message,
            extra={"node": node_name},
        )
    try:
        removed = await resources.delete_node(kube, node_name, node_uid)
    except errors.ConflictError:
        logger.warning("the Node was replaced meanwhile: not ours, left alone", extra={"node": node_name})
        return
    if removed:
        logger.info("removed node", extra={"node": node_name})
