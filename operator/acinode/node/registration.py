"""Create a VirtualNode's Node, keep its labels and taints in line with the spec, and remove it."""

from __future__ import annotations

import logging

from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode

logger = logging.getLogger(__name__)


async def ensure_node(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    identity: node_mapping.NodeIdentity,
    owner_uid: str | None = None,
) -> client.JsonObject:
    """Return the Node, created if missing and patched if its labels or taints drifted from the spec."""
    desired = node_mapping.node_from_virtual_node(config, identity, owner_uid)
    path = resources.node_path(config.node_name)
    actual = await resources.get_or_none(kube, path)
    if actual is None:
        logger.info("registering node", extra={"node": config.node_name})
        return await kube.create("/api/v1/nodes", desired)
    patch = node_mapping.node_metadata_drift(desired, actual)
    if patch is None:
        return actual
    logger.info("updating node labels/taints", extra={"node": config.node_name})
    return await kube.patch(path, patch, "merge")


async def remove_node(kube: client.KubeClient, node_name: str) -> None:
    """Delete the Node and its Lease (either may already be gone)."""
    await resources.delete_if_present(kube, resources.lease_path(node_mapping.LEASE_NAMESPACE, node_name))
    if await resources.delete_if_present(kube, resources.node_path(node_name)):
        logger.info("removed node", extra={"node": node_name})
