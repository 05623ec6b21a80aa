"""Removing every container group of a virtual node (when its VirtualNode is deleted): nothing is left behind."""

from __future__ import annotations

import asyncio
import logging

from acinode import types
from acinode.aci import api
from acinode.mapping import tags

logger = logging.getLogger(__name__)


async def delete_node_groups(aci: api.AciApi, cluster_id: types.ClusterId, node_name: types.NodeName) -> int:
    """Delete the groups tagged with this cluster and node; returns how many were asked to go.

    Errors propagate (the caller retries): a VirtualNode is only released once this returns.
    """
    summaries = await aci.list_groups({tags.TAG_CLUSTER_ID: cluster_id, tags.TAG_NODE: node_name})
    ours = [s for s in summaries if tags.is_managed_group(s.tags, cluster_id, node_name)]
    await asyncio.gather(*(aci.delete(s.name) for s in ours))
    if ours:
        logger.info("deleted %d container groups of the node", len(ours), extra={"node": node_name})
    return len(ours)
