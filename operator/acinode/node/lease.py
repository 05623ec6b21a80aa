"""Renewing a virtual node's Lease in kube-node-lease: the heartbeat the node lifecycle controller watches."""

from __future__ import annotations

import datetime

from acinode import errors
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping

LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{node_mapping.LEASE_NAMESPACE}/leases"


async def renew_once(
    kube: client.KubeClient, node_name: str, node_uid: str, now: datetime.datetime, duration_seconds: int
) -> None:
    """Renew the Lease with one PATCH, creating it when missing.

    A Lease left by an earlier Node of the same name carries that Node's uid as owner: the garbage collector
    deletes it, and the next renewal creates a fresh one owned by the current Node.
    """
    desired = node_mapping.lease_from_node(node_name, node_uid, now, duration_seconds)
    try:
        await kube.patch(
            resources.lease_path(node_mapping.LEASE_NAMESPACE, node_name), {"spec": desired["spec"]}
        )
    except errors.NotFoundError:
        await kube.create(LEASES, desired)
