"""Node status heartbeats: Ready says the operator owns and serves the node; backend health is its own signal.

Ready (and the Lease, see ``keeper.py``) follow the operator and the Kubernetes API, as a kubelet's do: an ARM
outage, throttling or refused Azure credentials never make the node NotReady, or the node lifecycle controller
would evict healthy pods whose container groups still run. Only a configuration that can never work
(``ConfigurationError`` from the probe) keeps Ready False. The backend probe feeds ``BackendHealthTracker``
instead: with hysteresis, it decides the BackendReachable conditions and acinode's NoSchedule taint.
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


READY = node_mapping.Readiness(True, "KubeletReady", "acinode is ready")
"""The node's Ready whenever its configuration can work, whatever the backend does."""
REACHABLE = node_mapping.Readiness(True, "BackendReachable", "Azure Container Instances answered")
"""The probe's verdict when ARM answered (throttled included)."""
INVALID_CONFIGURATION = "InvalidConfiguration"
BACKEND_NOT_CHECKED = node_mapping.BackendHealth(
    None, "BackendNotChecked", "the backend has not been checked yet"
)


def readiness_from_error(error: Exception) -> node_mapping.Readiness:
    """The probe's verdict on a failed check: why the backend is not usable (throttled: it is)."""
    if isinstance(error, errors.AuthenticationError | errors.PermissionDeniedError):
        return node_mapping.Readiness(False, "BackendCredentialsRefused", str(error)[:500])
    if isinstance(error, errors.ConfigurationError):
        return node_mapping.Readiness(False, INVALID_CONFIGURATION, str(error)[:500])
    if isinstance(error, errors.ThrottledError):
        # Being throttled is not being down: the backend answered.
        return REACHABLE
    return node_mapping.Readiness(False, "BackendUnreachable", str(error)[:500] or error.__class__.__name__)


async def probe_readiness(probe: BackendProbe) -> node_mapping.Readiness:
    """The probe's verdict on the backend: ``REACHABLE``, or not ready with the reason."""
    try:
        await probe.check()
    except errors.AcinodeError as err:
        return readiness_from_error(err)
    return REACHABLE


def node_readiness(verdict: node_mapping.Readiness) -> node_mapping.Readiness:
    """The node's Ready given the probe's verdict: ready unless the configuration can never work."""
    return verdict if verdict.reason == INVALID_CONFIGURATION else READY


class BackendHealthTracker:
    """Backend health with hysteresis: ``unhealthy_after`` consecutive failed probes turn it unhealthy,
    ``healthy_after`` consecutive successes turn it healthy again; a first success turns "not checked" healthy.

    A verdict of invalid configuration is no backend health at all: it resets the tracker to not checked (Ready
    says why). While unhealthy, the reason follows the latest failure (unreachable, credentials refused) but the
    message stays that of the failure which set the reason, so a changing error text does not patch the node at
    every probe.
    """

    def __init__(self, unhealthy_after: int, healthy_after: int) -> None:
        self.unhealthy_after = unhealthy_after
        self.healthy_after = healthy_after
        self.health = BACKEND_NOT_CHECKED
        self.failures = 0
        """Consecutive failed probes."""
        self.successes = 0
        """Consecutive successful probes."""

    @property
    def unavailable(self) -> bool:
        """Whether the node should carry the backend taint (only once the backend is known to be unhealthy)."""
        return self.health.reachable is False

    def observe(self, verdict: node_mapping.Readiness) -> bool:
        """Count one probe's verdict; returns whether the health (status, reason or message) changed."""
        before = self.health
        if verdict.reason == INVALID_CONFIGURATION:
            self.failures = self.successes = 0
            self.health = node_mapping.BackendHealth(
                None,
                "BackendNotChecked",
                "the backend is not checked while the configuration cannot be used (see the Ready condition)",
            )
        elif verdict.ready:
            self.failures = 0
            self.successes += 1
            if self.health.reachable is None or self.successes >= self.healthy_after:
                self.health = node_mapping.BackendHealth(True, REACHABLE.reason, REACHABLE.message)
        else:
            self.successes = 0
            self.failures += 1
            if self.health.reachable is False and self.health.reason == verdict.reason:
                pass  # still unhealthy for the same reason: keep the message (no patch at every probe)
            elif self.failures >= self.unhealthy_after:
                self.health = node_mapping.BackendHealth(False, verdict.reason, verdict.message)
        return self.health != before


async def patch_status_once(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    identity: node_mapping.NodeIdentity,
    readiness: node_mapping.Readiness,
    *,
    now: datetime.datetime,
    previous_conditions: list[dict[str, object]],
    node_uid: str,
    backend: node_mapping.BackendHealth | None = None,
) -> list[dict[str, object]]:
    """Patch the status (capacity, addresses, conditions) of the Node with ``node_uid``, and of no other.

    ``backend`` adds the BackendReachable condition.

    The patch carries the uid: the API server refuses it (uid is immutable) for a Node replaced under the same
    name. Raises NotFoundError if the Node is gone.
    """
    conditions = node_mapping.node_conditions(readiness, now, previous_conditions, backend)
    status = {**node_mapping.node_static_status(config, identity), "conditions": conditions}
    await resources.patch_node_status(kube, config.node_name, node_uid, status)
    return conditions
