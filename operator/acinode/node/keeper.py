"""One virtual node's life: registration, Lease renewal and status heartbeats as independent loops.

Each VirtualNode gets its own keeper with its own tasks, and every API call has a timeout, so a slow call for
one node never delays another node's lease, and a slow backend probe never delays this node's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from acinode import errors, settings
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import heartbeat, lease, registration

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
PROBE_GRACE_SECONDS = 1.0


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class NodeKeeper:
    def __init__(
        self,
        kube: client.KubeClient,
        config: virtualnode.VirtualNodeConfig,
        identity: node_mapping.NodeIdentity,
        probe: heartbeat.BackendProbe,
        operator_settings: settings.Settings,
        owner_uid: str | None = None,
        clock: Clock = utc_now,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        pod_count: Callable[[], int] | None = None,
    ) -> None:
        self.kube = kube
        self.config = config
        self.identity = identity
        self.probe = probe
        self.settings = operator_settings
        self.owner_uid = owner_uid
        self.clock = clock
        self.monotonic = monotonic
        """Measures intervals (status patches, lease age); injectable so tests control time."""
        self.readiness = node_mapping.Readiness(False, "KubeletNotReady", "acinode is starting")
        self.node_uid: str | None = None
        self.conditions: list[dict[str, Any]] = []
        self.last_renewal: float | None = None
        """Monotonic time of the last successful Lease renewal (heartbeat age for metrics)."""
        self._last_status_patch = 0.0
        self._reported: dict[str, Any] | None = None
        self._poked = asyncio.Event()
        self._renew_now = asyncio.Event()
        self.pod_count = pod_count
        """How many pods are bound to the node (shown as the VirtualNode's ``status.pods``)."""

    @property
    def log_fields(self) -> dict[str, str]:
        return {"node": self.config.node_name}

    def poke(self) -> None:
        """Re-check registration and status now (the Node was deleted, the spec changed)."""
        self._poked.set()

    def update_config(self, config: virtualnode.VirtualNodeConfig) -> None:
        self.config = config
        self.poke()

    async def _call(self, coroutine: Any) -> Any:
        async with asyncio.timeout(self.settings.node.api_timeout_seconds):
            return await coroutine

    # --- one iteration of each loop -----------------------------------------------------------------------

    async def register_once(self) -> None:
        node = await self._call(
            registration.ensure_node(self.kube, self.config, self.identity, self.owner_uid)
        )
        self.node_uid = node["metadata"]["uid"]
        self.conditions = list(node.get("status", {}).get("conditions") or [])
        if self.readiness.ready:
            self._renew_now.set()  # a (new) Node to own the Lease: renew now, not a whole interval later

    async def status_once(self, force: bool = False) -> None:
        """Probe the backend; patch Node status if readiness changed, on ``force``, or when the last is old."""
        timeout = self.settings.node.api_timeout_seconds
        try:
            # A grace beyond the probe's own timeout (the probe contract: it bounds itself), so that the probe
            # decides what a slow answer means — e.g. throttled (Ready) rather than unreachable — and this guard
            # only catches a probe that breaks its contract.
            async with asyncio.timeout(timeout + min(PROBE_GRACE_SECONDS, timeout / 2)):
                readiness = await heartbeat.probe_readiness(self.probe)
        except TimeoutError:
            # A probe that does not answer in time is a backend that does not answer: not ready, no lease.
            unavailable = errors.BackendUnavailableError(f"the backend check took longer than {timeout:g}s")
            readiness = heartbeat.readiness_from_error(unavailable)
        changed = readiness != self.readiness
        if changed:
            log = logger.info if readiness.ready else logger.warning
            log("node readiness changed: %s (%s)", readiness.reason, readiness.message, extra=self.log_fields)
            await self._post_readiness_event(readiness)
        self.readiness = readiness
        if changed and readiness.ready:
            self._renew_now.set()  # a node that turns ready must not wait a whole interval for its lease
        due = self.monotonic() - self._last_status_patch >= self.settings.node.status_interval_seconds
        if not (changed or force or due or self.node_uid is None):
            await self.report_once()
            return
        if self.node_uid is None:
            await self.register_once()
        try:
            self.conditions = await self._call(
                heartbeat.patch_status_once(
                    self.kube,
                    self.config,
                    self.identity,
                    readiness,
                    now=self.clock(),
                    previous_conditions=self.conditions,
                )
            )
        except errors.NotFoundError:
            logger.warning("node is gone; registering it again", extra=self.log_fields)
            await self.register_once()
            self.conditions = await self._call(
                heartbeat.patch_status_once(
                    self.kube, self.config, self.identity, readiness, now=self.clock(), previous_conditions=[]
                )
            )
        self._last_status_patch = self.monotonic()
        await self.report_once()

    async def lease_once(self) -> None:
        """Renew the Lease, unless the backend is not ready (then the node must be seen to go stale)."""
        if not self.readiness.ready or self.node_uid is None:
            return
        duration = self.settings.lease.duration_seconds
        try:
            await self._call(
                lease.renew_once(self.kube, self.config.node_name, self.node_uid, self.clock(), duration)
            )
        except errors.NotFoundError:
            # The Lease may be gone with its Node: re-register on the status loop, now.
            self.poke()
            raise
        self.last_renewal = self.monotonic()

    async def report_once(self) -> None:
        """Mirror registration and readiness on the VirtualNode's status (only when something changed)."""
        registered = self.node_uid is not None
        status: dict[str, Any] = {
            "observedGeneration": self.config.generation,
            "nodeName": self.config.node_name,
            "conditions": _virtual_node_conditions(self.readiness, registered, self.clock(), self._reported),
        }
        if self.pod_count is not None:
            status["pods"] = self.pod_count()
        if self._reported is not None and _same_status(self._reported, status):
            return
        await self._call(
            self.kube.patch(
                f"{resources.virtual_node_path(self.config.name)}/status", {"status": status}, "merge"
            )
        )
        self._reported = status

    async def _post_readiness_event(self, readiness: node_mapping.Readiness) -> None:
        """An Event on the VirtualNode whenever its readiness changes, so `kubectl describe vn` tells why."""
        involved = {
            "apiVersion": "acinode.dev/v1alpha1",
            "kind": "VirtualNode",
            "name": self.config.name,
            **({"uid": self.owner_uid} if self.owner_uid else {}),
        }
        try:
            await self._call(
                resources.post_event(
                    self.kube,
                    involved=involved,
                    reason="NodeReady" if readiness.ready else readiness.reason,
                    message=readiness.message,
                    event_type="Normal" if readiness.ready else "Warning",
                )
            )
        except (errors.AcinodeError, TimeoutError) as err:
            logger.warning("posting a readiness event failed: %s", err, extra=self.log_fields)

    # --- loops --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled. Errors in one iteration are logged and retried on the next."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._run_status(), name=f"status:{self.config.node_name}")
            tasks.create_task(self._run_lease(), name=f"lease:{self.config.node_name}")

    async def _run_status(self) -> None:
        force = True
        while True:
            self._poked.clear()  # before the iteration: a poke that arrives during it is not lost
            try:
                await self.status_once(force=force)
                force = False
            except (errors.AcinodeError, TimeoutError) as err:
                logger.warning("node status update failed: %s", err, extra=self.log_fields)
                force = True
            except Exception:
                # A loop that dies would silently stop the heartbeats: log, and go on.
                logger.exception("unexpected error in the node status loop", extra=self.log_fields)
                force = True
            try:
                async with asyncio.timeout(self.settings.node.probe_interval_seconds):
                    await self._poked.wait()
                    force = True
            except TimeoutError:
                pass

    async def _run_lease(self) -> None:
        interval = self.settings.lease.renew_interval_seconds
        while True:
            self._renew_now.clear()  # before the iteration: a request that arrives during it is not lost
            started = self.monotonic()
            try:
                await self.lease_once()
            except (errors.AcinodeError, TimeoutError) as err:
                logger.warning("lease renewal failed: %s", err, extra=self.log_fields)
            except Exception:
                logger.exception("unexpected error in the lease loop", extra=self.log_fields)
            # Fixed rate: the time the renewal took counts towards the interval, so a slow API server does not
            # stretch it. A little jitter keeps many nodes' renewals from hitting the API server in lockstep.
            pause = interval * random.uniform(0.95, 1.0) - (self.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(pause, 0.0)):
                    await self._renew_now.wait()


def _condition(
    kind: str, ok: bool, reason: str, message: str, *, now: datetime.datetime, before: dict[str, Any] | None
) -> dict[str, Any]:
    status = "True" if ok else "False"
    previous = next((c for c in (before or {}).get("conditions", []) if c["type"] == kind), None)
    transition = previous["lastTransitionTime"] if previous and previous["status"] == status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _virtual_node_conditions(
    readiness: node_mapping.Readiness,
    registered: bool,
    now: datetime.datetime,
    before: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    backend_ok = readiness.reason not in {"BackendUnreachable", "BackendCredentialsRefused"}
    return [
        _condition(
            "Ready",
            readiness.ready and registered,
            readiness.reason,
            readiness.message,
            now=now,
            before=before,
        ),
        _condition(
            "Registered",
            registered,
            "NodeRegistered" if registered else "NodeNotRegistered",
            "the Node is registered" if registered else "the Node is not registered yet",
            now=now,
            before=before,
        ),
        _condition(
            "BackendReachable",
            backend_ok,
            "BackendReachable" if backend_ok else readiness.reason,
            "Azure Container Instances answered" if backend_ok else readiness.message,
            now=now,
            before=before,
        ),
    ]


def _same_status(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def essence(s: dict[str, Any]) -> Any:
        return (
            s.get("pods"),
            s["observedGeneration"],
            s["nodeName"],
            [(c["type"], c["status"], c["reason"], c["message"]) for c in s["conditions"]],
        )

    return bool(essence(a) == essence(b))
