"""One virtual node's life: registration, Lease renewal and status heartbeats as independent loops.

Each VirtualNode gets its own keeper with its own tasks, and every API call has a timeout, so a slow call for
one node never delays another node's lease, and a slow backend probe never delays this node's lease.

The Lease and Ready mean what they mean for a kubelet, "the agent that owns this node is alive": the Lease is
renewed whenever the Node is ours and the Kubernetes API answers, whatever ARM does, and Ready is False only for a
configuration that can never work. Backend health is a separate signal with hysteresis (``heartbeat``): the
BackendReachable conditions, Events, and acinode's NoSchedule taint while the backend is unhealthy, so that no new
pod lands where it cannot start while running pods stay (docs/reliability.md).
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

from acinode import clock, errors, settings
from acinode.kube import client, resources
from acinode.mapping import node as node_mapping
from acinode.mapping import ownership, virtualnode
from acinode.node import heartbeat, lease, registration, report

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
PROBE_GRACE_SECONDS = 1.0


utc_now = clock.utc_now


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
        self.backend = heartbeat.BackendHealthTracker(
            operator_settings.node.backend_unhealthy_after, operator_settings.node.backend_healthy_after
        )
        """Backend health with hysteresis: the BackendReachable conditions and the backend taint follow it."""
        self.node_uid: str | None = None
        """The uid of our Node, once confirmed ours (created by us, or annotated with ``owner_uid``)."""
        self.refusal: ownership.Refusal | None = None
        """Why there is no Node of ours to serve (the name is taken, the spec refused); None once there is."""
        self.lease_refusal: ownership.Refusal | None = None
        """Why the Lease of our Node's name is not renewed (it belongs to someone else); None while it is ours."""
        self.owned = asyncio.Event()
        """Set while the Node is confirmed ours: the node's pods are served only then."""
        self.disowned = asyncio.Event()
        """Set once a Node confirmed ours turns out not to be (replaced, refused): its pods must stop being served."""
        self._lease_version: str | None = None
        self._claim_due = False
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

    def update_config(self, config: virtualnode.VirtualNodeConfig, *, reclaim: bool = True) -> None:
        """Follow an edited spec. ``reclaim``: the edit touches the Node (labels, taints, capacity, which may also
        be refused), so claim it again; otherwise only the reported generation moves on."""
        self.config = config
        self._claim_due = self._claim_due or reclaim
        self.poke()

    async def _call(self, coroutine: Any) -> Any:
        async with asyncio.timeout(self.settings.node.api_timeout_seconds):
            return await coroutine

    # --- one iteration of each loop -----------------------------------------------------------------------

    async def register_once(self) -> None:
        """Claim the Node: ours (created or adopted by uid annotation), or refused with the reason."""
        claim = await self._call(
            registration.claim_node(
                self.kube,
                self.config,
                self.identity,
                self.owner_uid,
                backend_unavailable=self.backend.unavailable,
            )
        )
        if claim.node is None:
            assert claim.refusal is not None
            await self._refuse(claim.refusal)
            return
        node_uid = claim.node["metadata"]["uid"]
        if node_uid != self.node_uid:
            self._lease_version = None  # the Lease we renewed was another Node's
            self._renew_now.set()  # a (new) Node to own the Lease: renew now, not a whole interval later
        self.node_uid = node_uid
        self.conditions = list(claim.node.get("status", {}).get("conditions") or [])
        if self.refusal is not None:
            logger.info("the node is ours now: %s", self.config.node_name, extra=self.log_fields)
            self.refusal = None
        self.owned.set()

    async def _refuse(self, refusal: ownership.Refusal) -> None:
        """No Node of ours: nothing is written to the Node or Lease, and the pods stop being served."""
        self.node_uid = None
        self._lease_version = None
        self.readiness = node_mapping.Readiness(False, refusal.reason, refusal.message)
        if self.owned.is_set():
            self.owned.clear()
            self.disowned.set()
        if refusal != self.refusal:
            logger.warning("node refused: %s", refusal.message, extra=self.log_fields)
            await self._post_event(refusal.reason, refusal.message, "Warning")
        self.refusal = refusal

    async def status_once(self, force: bool = False) -> None:
        """Probe the backend; patch Node status if readiness or backend health changed, on ``force``, or when the
        last patch is old. A change of backend health also adds or removes the backend taint (a claim).

        Nothing is probed or patched while there is no Node of ours (its name is taken, the spec is refused):
        registration is retried each time, and the refusal reported on the VirtualNode.
        """
        if (self.node_uid is None or self._claim_due) and not await self._claim():
            return
        verdict = await self._probe()
        readiness = heartbeat.node_readiness(verdict)
        changed = readiness != self.readiness
        if changed:
            log = logger.info if readiness.ready else logger.warning
            log("node readiness changed: %s (%s)", readiness.reason, readiness.message, extra=self.log_fields)
            await self._post_readiness_event(readiness)
        self.readiness = readiness
        tainted = self.backend.unavailable
        previous_health = self.backend.health
        if self.backend.observe(verdict):
            changed = True
            await self._backend_health_changed(previous_health)
        if self.backend.unavailable != tainted:
            self._claim_due = True  # add or remove the backend taint now
            if not await self._claim():
                return
        due = self.monotonic() - self._last_status_patch >= self.settings.node.status_interval_seconds
        if not (changed or force or due):
            await self.report_once()
            return
        try:
            self.conditions = await self._patch_status(readiness, self.conditions)
        except errors.NotFoundError:
            logger.warning("node is gone; registering it again", extra=self.log_fields)
            await self._register_again()
        except (errors.InvalidRequestError, errors.ConflictError):
            # The uid guard refused the patch (or the Node changed under us): whose is the Node now?
            logger.warning("node status patch refused; checking whose the node is", extra=self.log_fields)
            await self._register_again()
        if self.node_uid is not None:
            self._last_status_patch = self.monotonic()
        await self.report_once()

    async def _claim(self) -> bool:
        """Register (or re-claim, with the taints now due); whether there is a Node of ours to go on with.

        A failed claim raises and stays due, so the next iteration tries again.
        """
        await self.register_once()
        self._claim_due = False
        if self.node_uid is None:
            await self.report_once()
            return False
        return True

    async def _probe(self) -> node_mapping.Readiness:
        """The backend probe's verdict, bounded in time."""
        timeout = self.settings.node.api_timeout_seconds
        try:
            # A grace beyond the probe's own timeout (the probe contract: it bounds itself), so that the probe
            # decides what a slow answer means — e.g. throttled (reachable) rather than unreachable — and this
            # guard only catches a probe that breaks its contract.
            async with asyncio.timeout(timeout + min(PROBE_GRACE_SECONDS, timeout / 2)):
                return await heartbeat.probe_readiness(self.probe)
        except TimeoutError:
            # A probe that does not answer in time is a backend that does not answer.
            unavailable = errors.BackendUnavailableError(f"the backend check took longer than {timeout:g}s")
            return heartbeat.readiness_from_error(unavailable)

    async def _backend_health_changed(self, before: node_mapping.BackendHealth) -> None:
        """Log it, and post an Event on the VirtualNode when the backend turns unhealthy (or the reason changes)
        or healthy again; not for "not checked" (Ready tells about an unusable configuration)."""
        health = self.backend.health
        if health.reachable is False:
            logger.warning(
                "backend unhealthy after %d failed probes: %s (%s); new pods are kept off the node",
                self.backend.failures,
                health.reason,
                health.message,
                extra=self.log_fields,
            )
            if before.reachable is not False or before.reason != health.reason:
                await self._post_event(health.reason, health.message, "Warning")
        elif health.reachable is True and before.reachable is False:
            logger.info("backend healthy again: %s", health.message, extra=self.log_fields)
            await self._post_event(health.reason, health.message, "Normal")

    async def _register_again(self) -> None:
        self.node_uid = None
        await self.register_once()
        if self.node_uid is not None:
            self.conditions = await self._patch_status(self.readiness, [])

    async def _patch_status(
        self, readiness: node_mapping.Readiness, previous: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        assert self.node_uid is not None
        conditions: list[dict[str, Any]] = await self._call(
            heartbeat.patch_status_once(
                self.kube,
                self.config,
                self.identity,
                readiness,
                now=self.clock(),
                previous_conditions=previous,
                node_uid=self.node_uid,
                backend=self.backend.health,
            )
        )
        return conditions

    async def lease_once(self) -> None:
        """Renew our Node's Lease whenever the Node is ours, whatever the backend does (the Lease says the
        operator is alive, as a kubelet's says the kubelet is).

        A Lease of that name that is not our Node's is left alone, and reported.
        """
        if self.node_uid is None:
            return
        duration = self.settings.lease.duration_seconds
        try:
            renewal: lease.Renewal = await self._call(
                lease.renew_once(
                    self.kube,
                    self.config.node_name,
                    self.node_uid,
                    self.clock(),
                    duration,
                    self._lease_version,
                )
            )
        except errors.NotFoundError:
            # The Lease may be gone with its Node: re-register on the status loop, now.
            self._lease_version = None
            self.poke()
            raise
        self._lease_version = renewal.resource_version
        if renewal.refusal != self.lease_refusal:
            if renewal.refusal is not None:
                logger.warning("lease refused: %s", renewal.refusal.message, extra=self.log_fields)
                await self._post_event(renewal.refusal.reason, renewal.refusal.message, "Warning")
            self.lease_refusal = renewal.refusal
        if renewal.stale:
            logger.info(
                "the Lease is an earlier node's: waiting for the garbage collector", extra=self.log_fields
            )
        if renewal.renewed:
            self.last_renewal = self.monotonic()

    async def report_once(self) -> None:
        """Mirror registration and readiness on the VirtualNode's status (only when something changed)."""
        registered = self.node_uid is not None
        status: dict[str, Any] = {
            "observedGeneration": self.config.generation,
            "nodeName": self.config.node_name,
            "conditions": report.virtual_node_conditions(
                self.readiness,
                registered,
                self.clock(),
                self._reported,
                refusal=self.refusal,
                lease_refusal=self.lease_refusal,
                backend=self.backend.health,
            ),
        }
        if self.pod_count is not None:
            status["pods"] = self.pod_count()
        if self._reported is not None and report.same_status(self._reported, status):
            return
        await self._call(resources.patch_virtual_node_status(self.kube, self.config.name, status))
        self._reported = status

    async def _post_readiness_event(self, readiness: node_mapping.Readiness) -> None:
        """An Event on the VirtualNode whenever its readiness changes, so `kubectl describe vn` tells why."""
        await self._post_event(
            "NodeReady" if readiness.ready else readiness.reason,
            readiness.message,
            "Normal" if readiness.ready else "Warning",
        )

    async def _post_event(self, reason: str, message: str, event_type: str) -> None:
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
                    reason=reason,
                    message=message,
                    event_type=event_type,
                )
            )
        except (errors.AcinodeError, TimeoutError) as err:
            logger.warning("posting an event failed: %s", err, extra=self.log_fields)

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
