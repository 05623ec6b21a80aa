"""Which replica serves which VirtualNode: one Lease per VirtualNode, held by one replica at a time, fenced.

Every replica runs Kopf (standalone) and a daemon per VirtualNode; the daemon runs ``serve_virtual_node``, which
takes the VirtualNode's Lease when the rules of ``mapping.election`` say so and runs the node's runtime only while
it holds it. ``Ownership`` is the replica's side: its identity, its presence Lease (so the others can count the
live replicas), and a ``LeaseBoard`` (one LIST of every ownership Lease per ``observe_interval_seconds``: the
observations expiry is judged by, on this replica's monotonic clock).

Fencing (``LeaseHold.keep``): a holder stops the work (cancels the runtime, so no more ARM or pod writes) at
``sent + lease_duration - fence_margin`` after its last successful renewal *sent* at ``sent``; a renewal that
fails is retried until then. Another replica takes over only after seeing the Lease unchanged for a whole
``lease_duration`` on its own clock, and with a write guarded by the resourceVersion it saw, so it acts at least
``fence_margin`` after the holder stopped. A replica that loses or releases a Lease always stops the work first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from acinode import errors, settings
from acinode.kube import client, resources
from acinode.mapping import election

logger = logging.getLogger(__name__)
Monotonic = Callable[[], float]
Wall = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Ending(enum.Enum):
    """Why ``LeaseHold.keep`` returned (the work is stopped in every case)."""

    DONE = "done"
    """The work returned."""
    STOPPED = "stopped"
    """Asked to stop (the VirtualNode is deleted, or the operator exits)."""
    FENCED = "fenced"
    """No renewal succeeded in time: stopped before anyone else may take over."""
    LOST = "lost"
    """Another replica holds the Lease now."""
    SHED = "shed"
    """This replica serves more than its fair share (``election.has_extra``): given up so that another takes it."""


class LeaseBoard:
    """This replica's observations of the ownership Leases (``election.observe``), by Lease name."""

    def __init__(self, kube: client.KubeClient, namespace: str, monotonic: Monotonic) -> None:
        self.kube = kube
        self.namespace = namespace
        self.monotonic = monotonic
        self.observations: dict[str, election.Observation] = {}

    def note(self, name: str, lease: client.JsonObject | None) -> election.Observation:
        record = election.record_from_lease(lease) if lease is not None else None
        observation = election.observe(self.observations.get(name), record, self.monotonic())
        self.observations[name] = observation
        return observation

    def observation(self, name: str) -> election.Observation:
        """What is known of ``name``; a Lease never seen counts as absent since now."""
        if name not in self.observations:
            self.observations[name] = election.Observation(None, self.monotonic())
        return self.observations[name]

    async def refresh(self) -> None:
        """One LIST of every ownership Lease in the namespace."""
        leases = await resources.list_leases(self.kube, self.namespace, election.KIND_LABEL)
        seen = set()
        for lease in leases:
            name = str((lease.get("metadata") or {}).get("name") or "")
            seen.add(name)
            self.note(name, lease)
        for name in list(self.observations):
            if name not in seen:
                self.note(name, None)

    def live_replicas(self, me: str) -> int:
        """This replica and every other whose presence Lease is held (as observed here)."""
        now = self.monotonic()
        others = {
            o.record.holder
            for o in self.observations.values()
            if o.record is not None
            and o.record.kind == election.KIND_REPLICA
            and o.record.holder != me
            and election.is_live_replica(o, now)
        }
        return 1 + len(others)

    def fewest_held_elsewhere(self, me: str) -> int | None:
        """The fewest VirtualNodes any other live replica holds (as observed here); None when there is none."""
        now = self.monotonic()
        others = {
            o.record.holder: 0
            for o in self.observations.values()
            if o.record is not None
            and o.record.kind == election.KIND_REPLICA
            and o.record.holder != me
            and election.is_live_replica(o, now)
        }
        for o in self.observations.values():
            record = o.record
            held = (
                record is not None and record.kind == election.KIND_VIRTUAL_NODE and record.holder in others
            )
            if held and record is not None and election.standing(o, "", now)[0] is election.Standing.HELD:
                others[record.holder] += 1
        return min(others.values()) if others else None


class Ownership:
    """One replica's side of VirtualNode ownership, shared by its daemons and delete handlers."""

    def __init__(
        self,
        kube: client.KubeClient,
        namespace: str,
        replica_id: str,
        config: settings.OwnershipSettings,
        *,
        monotonic: Monotonic = time.monotonic,
        wall: Wall = utc_now,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.replica_id = replica_id
        self.settings = config
        self.monotonic = monotonic
        self.wall = wall
        self.board = LeaseBoard(kube, namespace, monotonic)
        self.known: set[str] = set()
        """VirtualNodes whose daemon runs on this replica (M of the fair share)."""
        self.held: dict[str, float] = {}
        """VirtualNodes this replica serves now, each with the monotonic time it was taken (oldest first)."""
        self._last_shed = -float("inf")
        self.presence = LeaseHold(self, election.replica_lease_name(replica_id), election.KIND_REPLICA)

    def share(self) -> int:
        return election.fair_share(len(self.known), self.board.live_replicas(self.replica_id))

    def youngest_held(self) -> str | None:
        return max(self.held, key=self.held.__getitem__, default=None)

    def may_shed(self, name: str | None = None) -> bool:
        """Whether one held VirtualNode (``name``, when given) may be given up now (``election.has_extra``; at most
        one per interval). Only the one taken last is given up: a VirtualNode this replica has served all along
        stays put, so a takeover moves only the dead replica's VirtualNodes, never a live one's."""
        if name is not None and name != self.youngest_held():
            return False
        now = self.monotonic()
        if now - self._last_shed < self.settings.rebalance_interval_seconds:
            return False
        if not election.has_extra(
            len(self.held), self.share(), self.board.fewest_held_elsewhere(self.replica_id)
        ):
            return False
        self._last_shed = now
        return True

    async def announce_once(self) -> None:
        """Renew (or take) this replica's presence Lease, then observe every ownership Lease."""
        renewed = self.presence.record is not None and (
            self.monotonic() < self.presence.renew_due or await self.presence.renew()
        )
        if not renewed:
            await self.presence.take(ignore_share=True, force=True)
        await self.board.refresh()

    async def run(self) -> None:
        """Keep the presence Lease and the observations fresh until cancelled; then withdraw the presence."""
        try:
            while True:
                try:
                    await self.announce_once()
                except errors.AcinodeError as err:
                    logger.warning("ownership Leases not refreshed: %s", err)
                await asyncio.sleep(self.settings.observe_interval_seconds)
        finally:
            with contextlib.suppress(errors.AcinodeError, asyncio.CancelledError):
                await asyncio.shield(self.presence.delete())


class LeaseHold:
    """One Lease as this replica holds it (or tries to)."""

    def __init__(
        self,
        ownership: Ownership,
        name: str,
        kind: str,
        *,
        annotations: dict[str, str] | None = None,
        owner: dict[str, Any] | None = None,
    ) -> None:
        self.ownership = ownership
        self.name = name
        self.kind = kind
        self.annotations = annotations
        self.owner = owner
        self.record: election.LeaseRecord | None = None
        """The Lease as our last successful write left it (None: not held)."""
        self.deadline = -float("inf")
        """Fence time: the work must have stopped by then (monotonic)."""
        self.renew_due = -float("inf")

    @property
    def _config(self) -> settings.OwnershipSettings:
        return self.ownership.settings

    @property
    def _me(self) -> str:
        return self.ownership.replica_id

    def _wrote(self, lease: client.JsonObject, sent: float) -> None:
        self.record = election.record_from_lease(lease)
        self.ownership.board.note(self.name, lease)
        config = self._config
        self.deadline = election.fence_deadline(
            sent, config.lease_duration_seconds, config.fence_margin_seconds
        )
        self.renew_due = sent + config.renew_interval_seconds

    def would_take(self) -> election.Decision:
        """The decision on this replica's observations alone (no request): worth a fresh read?"""
        owning = self.ownership
        return election.decide_acquire(
            owning.board.observation(self.name),
            self._me,
            owning.monotonic(),
            held=len(owning.held),
            share=owning.share(),
            free_grace_seconds=self._config.free_grace_seconds,
        )

    async def take(self, *, ignore_share: bool = False, force: bool = False) -> election.Decision:
        """Read the Lease, decide (``election.decide_acquire``) and, if so, write ourselves in as its holder,
        guarded by the resourceVersion read. ``force``: take it whoever holds it (our own presence Lease)."""
        owning = self.ownership
        lease = await resources.get_lease(owning.kube, owning.namespace, self.name)
        observation = owning.board.note(self.name, lease)
        decision = election.decide_acquire(
            observation,
            self._me,
            owning.monotonic(),
            held=len(owning.held),
            share=owning.share(),
            free_grace_seconds=self._config.free_grace_seconds,
            ignore_share=ignore_share,
        )
        if force:
            decision = election.Decision(election.Action.ACQUIRE, "this replica's own")
        if decision.action is not election.Action.ACQUIRE:
            return decision
        sent = owning.monotonic()
        duration = self._config.lease_duration_seconds
        try:
            if lease is None:
                body = election.new_lease(
                    self.name,
                    owning.namespace,
                    kind=self.kind,
                    holder=self._me,
                    now=owning.wall(),
                    duration_seconds=duration,
                    annotations=self.annotations,
                    owner=self.owner,
                )
                written = await resources.create_lease(owning.kube, owning.namespace, body)
            else:
                record = election.record_from_lease(lease)
                patch = election.renewal_patch(record, self._me, owning.wall(), duration)
                patch["metadata"].update(election.takeover_metadata(self.owner))
                written = await resources.patch_lease(owning.kube, owning.namespace, self.name, patch)
        except (errors.ConflictError, errors.NotFoundError) as err:
            return election.Decision(election.Action.WAIT, f"another replica was faster ({err})")
        self._wrote(written, sent)
        return decision

    async def renew(self) -> bool:
        """One renewal. False when another replica holds the Lease now; raises AcinodeError when the API server
        could not be asked (the caller retries until the fence time)."""
        owning = self.ownership
        assert self.record is not None
        sent = owning.monotonic()
        duration = self._config.lease_duration_seconds
        try:
            patch = election.renewal_patch(self.record, self._me, owning.wall(), duration)
            written = await resources.patch_lease(owning.kube, owning.namespace, self.name, patch)
        except errors.ConflictError:
            lease = await resources.get_lease(owning.kube, owning.namespace, self.name)
            current = election.record_from_lease(lease) if lease is not None else None
            if current is None or current.holder != self._me:
                owning.board.note(self.name, lease)
                self.record = None
                return False
            patch = election.renewal_patch(current, self._me, owning.wall(), duration)
            written = await resources.patch_lease(owning.kube, owning.namespace, self.name, patch)
        except errors.NotFoundError:
            # Deleted (the garbage collector, a person): nobody holds it, and creating it again keeps it ours;
            # if another replica created it first, it is theirs.
            body = election.new_lease(
                self.name,
                owning.namespace,
                kind=self.kind,
                holder=self._me,
                now=owning.wall(),
                duration_seconds=duration,
                annotations=self.annotations,
                owner=self.owner,
            )
            try:
                written = await resources.create_lease(owning.kube, owning.namespace, body)
            except errors.ConflictError:
                self.record = None
                return False
        self._wrote(written, sent)
        return True

    async def release(self, *, released_uid: str | None = None) -> None:
        """Give the Lease up (no holder) so that another replica takes it at once. Only after the work stopped."""
        owning = self.ownership
        record, self.record, self.deadline = self.record, None, -float("inf")
        if record is None:
            return
        try:
            try:
                patch = election.release_patch(record, released_uid=released_uid)
                written = await resources.patch_lease(owning.kube, owning.namespace, self.name, patch)
            except errors.ConflictError:
                lease = await resources.get_lease(owning.kube, owning.namespace, self.name)
                current = election.record_from_lease(lease) if lease is not None else None
                if current is None or current.holder != self._me:
                    return
                patch = election.release_patch(current, released_uid=released_uid)
                written = await resources.patch_lease(owning.kube, owning.namespace, self.name, patch)
            owning.board.note(self.name, written)
        except errors.NotFoundError:
            pass

    async def delete(self) -> None:
        """Delete the Lease if we hold it (a replica's presence, when it stops)."""
        record, self.record = self.record, None
        if record is not None and record.uid:
            with contextlib.suppress(errors.ConflictError):
                await resources.delete_lease(
                    self.ownership.kube, self.ownership.namespace, self.name, record.uid
                )

    async def keep(
        self,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        stop: asyncio.Event,
        shed: Callable[[], bool] | None = None,
    ) -> Ending:
        """Run ``work`` while renewing the Lease; stop it (cancel and wait) when asked, when the Lease is lost, when
        the fence time passes without a successful renewal, or when ``shed()`` says so. A crash of ``work`` is
        raised (after the Lease is left as it is: still ours, for a restarted daemon to resume)."""
        owning = self.ownership
        config = self._config
        running = asyncio.create_task(work(), name=f"held:{self.name}")
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                wake = min(self.renew_due, self.deadline) - owning.monotonic()
                await asyncio.wait({running, stopping}, timeout=max(wake, 0.0), return_when="FIRST_COMPLETED")
                if running.done():
                    running.result()
                    return Ending.DONE
                if stop.is_set():
                    return Ending.STOPPED
                if owning.monotonic() >= self.deadline:
                    logger.warning(
                        "Lease %s not renewed in time: stopped serving before another replica may take over",
                        self.name,
                    )
                    return Ending.FENCED
                if owning.monotonic() < self.renew_due:
                    continue
                try:
                    async with asyncio.timeout(max(self.deadline - owning.monotonic(), 0.01)):
                        renewed = await self.renew()
                except (errors.AcinodeError, TimeoutError) as err:
                    logger.warning(
                        "renewing Lease %s failed (retried until its fence time): %s", self.name, err
                    )
                    self.renew_due = owning.monotonic() + min(1.0, config.renew_interval_seconds)
                    continue
                if not renewed:
                    logger.warning("Lease %s is another replica's now: stopped serving", self.name)
                    return Ending.LOST
                if shed is not None and shed():
                    return Ending.SHED
        finally:
            stopping.cancel()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


def virtual_node_hold(ownership: Ownership, name: str, uid: str) -> LeaseHold:
    return LeaseHold(
        ownership,
        election.virtual_node_lease_name(name),
        election.KIND_VIRTUAL_NODE,
        annotations={election.VIRTUAL_NODE_ANNOTATION: name},
        owner=election.virtual_node_owner(name, uid) if uid else None,
    )


async def serve_virtual_node(
    ownership: Ownership,
    name: str,
    uid: str,
    serve: Callable[[], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    keep_lease_on_stop: Callable[[], bool] = lambda: False,
) -> Ending:
    """The ownership loop of one VirtualNode on this replica, until ``stop``: take its Lease when free and this
    replica is under its share (or it has been free for the grace period), run ``serve`` while holding it, and
    stop ``serve`` before the Lease is released, lost or fenced. On ``stop`` the Lease is released unless
    ``keep_lease_on_stop()`` (a deleted VirtualNode: this replica's delete handler resumes it to release)."""
    hold = virtual_node_hold(ownership, name, uid)
    config = ownership.settings
    ownership.known.add(name)
    try:
        while not stop.is_set():
            decision = hold.would_take()
            if decision.action is election.Action.ACQUIRE:
                try:
                    decision = await hold.take()
                except errors.AcinodeError as err:
                    logger.info("cannot read Lease %s: %s", hold.name, err, extra={"virtual_node": name})
                    decision = election.Decision(election.Action.WAIT, str(err))
            if decision.action is election.Action.ACQUIRE:
                logger.info(
                    "serving VirtualNode %s (%s)", name, decision.reason, extra={"virtual_node": name}
                )
                ownership.held[name] = ownership.monotonic()
                try:
                    ending = await hold.keep(serve, stop=stop, shed=lambda: ownership.may_shed(name))
                finally:
                    ownership.held.pop(name, None)
                if ending is Ending.SHED:
                    logger.info(
                        "VirtualNode %s given up: this replica serves more than its share",
                        name,
                        extra={"virtual_node": name},
                    )
                    await _quietly(hold.release())
                elif ending is Ending.STOPPED:
                    if not keep_lease_on_stop():
                        await _quietly(hold.release())
                    return ending
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(config.observe_interval_seconds):
                    await stop.wait()
        return Ending.STOPPED
    finally:
        ownership.known.discard(name)


async def _quietly(call: Awaitable[None]) -> None:
    """A release that fails leaves the Lease to expire: slower for the taker, never unsafe."""
    try:
        await call
    except errors.AcinodeError as err:
        logger.warning("releasing a Lease failed (it expires instead): %s", err)


async def release_deleted_virtual_node(
    ownership: Ownership,
    name: str,
    uid: str,
    release: Callable[[], Awaitable[str]],
    still_there: Callable[[], Awaitable[bool]],
    *,
    serving_here: Callable[[], bool],
    wait_seconds: float = 60.0,
) -> str:
    """The delete handler's side: exactly one replica releases a deleted VirtualNode. It takes the Lease (the
    holder's own delete handler at once, once its runtime stopped; any other replica once the Lease is free, e.g.
    the holder died) and runs ``release`` while holding it, then marks the Lease released for this uid. Others
    wait for that mark (or for the VirtualNode to be gone) and return without releasing anything. Raises
    TransientError after ``wait_seconds`` of waiting, or when the Lease is lost while releasing."""
    hold = virtual_node_hold(ownership, name, uid)
    config = ownership.settings
    give_up = ownership.monotonic() + wait_seconds
    while serving_here() and ownership.monotonic() < give_up:  # noqa: ASYNC110 (a runtime stopping here)
        await asyncio.sleep(
            0.1
        )  # this replica's runtime is still stopping: it must not run beside the release
    while True:
        lease = await resources.get_lease(ownership.kube, ownership.namespace, hold.name)
        record = election.record_from_lease(lease) if lease is not None else None
        if record is not None and record.released_uid == uid:
            return f"released by replica holding {hold.name}"
        decision = await hold.take(ignore_share=True)
        if decision.action is election.Action.ACQUIRE:
            outcome: list[str] = []

            async def work(outcome: list[str] = outcome) -> None:
                outcome.append(await release())

            ending = await hold.keep(work, stop=asyncio.Event())
            if ending is not Ending.DONE:
                raise errors.TransientError(f"Lease {hold.name} lost while releasing ({ending.value})")
            await _quietly(hold.release(released_uid=uid))
            return outcome[0]
        if not await still_there():
            return "already gone"
        if ownership.monotonic() >= give_up:
            raise errors.TransientError(f"waiting for another replica to release it ({decision.reason})")
        await asyncio.sleep(config.observe_interval_seconds)
