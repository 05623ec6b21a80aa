"""Renewing a virtual node's Lease in kube-node-lease: the heartbeat the node lifecycle controller watches.

Only a Lease that belongs to our Node (an ownerReference with our Node's uid) is renewed; a missing one is created
owned by the Node. A Lease of that name owned by anyone else is never patched, replaced or deleted.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging

from acinode import errors
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import ownership

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Renewal:
    """The outcome of one renewal."""

    resource_version: str | None
    """The renewed Lease's resourceVersion (pass it to the next renewal), or None when none was renewed."""
    refusal: ownership.Refusal | None = None
    """Set when the Lease of that name is not our Node's (left alone)."""
    stale: bool = False
    """The Lease is an earlier Node's of the same name: the garbage collector deletes it, then we create ours."""

    @property
    def renewed(self) -> bool:
        return self.resource_version is not None


async def renew_once(
    kube: client.KubeClient,
    node_name: str,
    node_uid: str,
    now: datetime.datetime,
    duration_seconds: int,
    resource_version: str | None = None,
) -> Renewal:
    """Renew our Node's Lease, creating it when missing.

    ``resource_version``: what the last renewal returned. Then one PATCH guarded by it renews the Lease (the Lease
    is written by us alone); if it changed (409) or nothing is known, the Lease is read and renewed only if an
    ownerReference carries ``node_uid``.
    """
    desired = node_mapping.lease_from_node(node_name, node_uid, now, duration_seconds)
    if resource_version is not None:
        try:
            return await _patch(kube, node_name, resource_version, desired)
        except errors.ConflictError:
            logger.info(
                "the Lease changed since our last renewal: checking whose it is", extra={"node": node_name}
            )
        except errors.NotFoundError:
            pass
    lease = await resources.get_lease(kube, node_mapping.LEASE_NAMESPACE, node_name)
    if lease is None:
        created = await resources.create_lease(kube, node_mapping.LEASE_NAMESPACE, desired)
        return Renewal(str(created["metadata"]["resourceVersion"]))
    if ownership.is_own_lease(lease, node_uid):
        return await _patch(kube, node_name, str(lease["metadata"]["resourceVersion"]), desired)
    if ownership.is_stale_lease(lease, node_name, node_uid):
        return Renewal(None, stale=True)
    return Renewal(None, ownership.foreign_lease_refusal(lease, node_name, node_uid))


async def _patch(
    kube: client.KubeClient, node_name: str, resource_version: str, desired: client.JsonObject
) -> Renewal:
    body = {"metadata": {"resourceVersion": resource_version}, "spec": desired["spec"]}
    renewed = await resources.patch_lease(kube, node_mapping.LEASE_NAMESPACE, node_name, body)
    return Renewal(str(renewed["metadata"]["resourceVersion"]))
