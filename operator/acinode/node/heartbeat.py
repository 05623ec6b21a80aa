"""Node status heartbeats: tell the truth about the backend in the Node's conditions.

Ready follows a cheap, cached backend check (the probe): when ARM is unreachable or refuses our credentials,
the node turns Ready=False with the reason, and lease renewal stops so the node lifecycle controller reacts as
for any unhealthy kubelet.
"""

from __future__ import annotations

import datetime
import logging
from typing import Protocol

from acinode import errors
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode

logger = logging.getLogger(__name__)


class BackendProbe(Protocol):
    """A cheap check that the node's ACI backend is reachable with its credentials.

    Contract: returns normally when healthy, raises an ``acinode.errors.AcinodeError`` otherwise; must not
    take longer than its own timeout; may cache its result.
    """

    async def check(self) -> None: ...


READY = node_mapping.Readiness(True, "KubeletReady", "acinode is ready; Azure Container Instances reachable")


def readiness_from_error(error: Exception) -> node_mapping.Readiness:
    if isinstance(error, errors.AuthenticationError | errors.PermissionDeniedError):
        return node_mapping.Readiness(False, "BackendCredentialsRefused", str(error)[:500])
    if isinstance(error, errors.ConfigurationError):
        return node_mapping.Readiness(False, "InvalidConfiguration", str(error)[:500])
    if isinstance(error, errors.ThrottledError):
        # Being throttled is not being down: the backend answered.
        return READY
    return node_mapping.Readiness(False, "BackendUnreachable", str(error)[:500] or error.__class__.__name__)


async def probe_readiness(probe: BackendProbe) -> node_mapping.Readiness:
    try:
        await probe.check()
    except errors.AcinodeError as err:
        return readiness_from_error(err)
    return READY


async def patch_status_once(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    identity: node_mapping.NodeIdentity,
    readiness: node_mapping.Readiness,
    *,
    now: datetime.datetime,
    previous_conditions: list[dict[str, object]],
    node_uid: str,
) -> list[dict[str, object]]:
    """Patch the status (capacity, addresses, conditions) of the Node with ``node_uid``, and of no other.

    The patch carries the uid: the API server refuses it (uid is immutable) for a Node replaced under the same
    name. Raises NotFoundError if the Node is gone.
    """
    conditions = node_mapping.node_conditions(readiness, now, previous_conditions)
    status = {**node_mapping.node_static_status(config, identity), "conditions": conditions}
    await resources.patch_node_status(kube, config.node_name, node_uid, status)
    return conditions
