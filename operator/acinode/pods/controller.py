"""The pod controller of one virtual node: dispatch of work keys to the lifecycle, the status-sync loop, and the
tasks that run them (virtual-kubelet's ``podcontroller.go``).

Desired state: the non-terminal pods bound to the node (``view.PodView``). Actual state: the groups listed with
our cluster and node tags (``groupcache.GroupCache``). Work is keyed as in controller-runtime: a pod event queues
its pod's key, a deleted pod also its group's, each listing queues groups that look orphaned and pods whose group
vanished, and every ``resync_seconds`` every key is queued again. ``concurrent_actions`` workers take keys from a
``workqueue.RateLimitedQueue`` (each key in one worker's hands at a time, retries by failure kind) and hand them
to ``lifecycle.PodLifecycle``. Status flows back through ``sync_once``: ``statussync.SyncScheduler`` decides which
groups get a GET, this module reads them and patches pod statuses (``reporting.PodReporter``).

Nothing is remembered that the API server and ARM do not also hold, except retry counters and the writes made
since the last listing began: a restarted operator resumes from a fresh list of both.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math

from acinode import errors, settings, types
from acinode.aci import api
from acinode.kube import client
from acinode.mapping import events, objects, placement, tags
from acinode.mapping import pods as pod_mapping
from acinode.mapping import status as status_mapping
from acinode.pods import (
    clock,
    groupcache,
    keys,
    lifecycle,
    policy,
    protocols,
    readbudget,
    reporting,
    retry,
    statussync,
    view,
    workqueue,
)

logger = logging.getLogger(__name__)

PodKey = keys.PodKey
GroupKey = keys.GroupKey
WorkKey = keys.WorkKey
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CREATED_LOOK_DELAY_SECONDS = 0.05
"""How long after a creation its group is first read (ACI answers a PUT before the group has moved on)."""


@dataclasses.dataclass(frozen=True)
class PodFacts:
    """What the status pass reads of one version of a pod."""

    group: types.ContainerGroupName
    settled: bool
    """Ended (Succeeded or Failed) or being deleted: no status to sync."""
    likely_to_end: bool
    has_run: bool
    running_and_ready: bool


class PodController:
    """Serves the pods of one virtual node. Implements ``protocols.ServedNode`` (for the kubelet API) and
    ``protocols.NodeStatsSource`` (for the metrics)."""

    def __init__(
        self,
        kube: client.KubeClient,
        aci: api.AciApi,
        where: placement.GroupPlacement,
        pod_settings: settings.PodSettings,
        *,
        clock: clock.Clock = clock.SYSTEM,
        observer: protocols.PodObserver | None = None,
        images: lifecycle.ImageEntrypoints | None = None,
    ) -> None:
        self.kube = kube
        self.aci = aci
        self.where = where
        self.settings = pod_settings
        self.clock = clock
        self.observer = observer
        self.view = view.PodView(
            kube, where.node_name, self._on_pod_change, retry_after_error=retry.pod_watch(pod_settings)
        )
        self.queue: workqueue.RateLimitedQueue[keys.WorkKey] = workqueue.RateLimitedQueue(
            retry.RetryPolicies.from_settings(pod_settings), clock
        )
        self.groups = groupcache.GroupCache(aci, where.cluster_id, where.node_name, clock)
        self.scheduler = statussync.SyncScheduler(pod_settings, clock)
        self.reporter = reporting.PodReporter(kube, self.view)
        self.lifecycle = lifecycle.PodLifecycle(
            kube,
            aci,
            where,
            self.groups,
            self.reporter,
            self.queue,
            clock,
            on_created=self._created,
            images=images,
        )
        self.orphans = lifecycle.OrphanJudge(kube, where.node_name, self.groups)
        self.sync_soon = asyncio.Event()
        self._gets = asyncio.Semaphore(pod_settings.concurrent_actions)
        self._uid_by_group: dict[types.ContainerGroupName, str] = {}
        """The bound pod each group name belongs to (a pod's group name is derived from its namespace/name)."""
        self._just_created: set[types.ContainerGroupName] = set()
        """Groups created since the last pass: a pass over them alone follows a creation at once."""
        self._facts: dict[str, tuple[objects.Pod, PodFacts]] = {}
        """Each bound pod's facts for the status pass, with the pod object they were read from."""
        self._in_transition = 0

    # --- what the runtime, the kubelet API and the metrics see ---------------------------------------------

    def update_placement(self, where: placement.GroupPlacement) -> None:
        """Create every later group with ``where`` (DNS, OS, kube-proxy, Log Analytics, tags, GPU SKUs, group
        limits); running groups are left as they are. The node and cluster cannot change (a new controller)."""
        if (where.node_name, where.cluster_id) != (self.where.node_name, self.where.cluster_id):
            raise ValueError("a placement for another node or cluster needs another controller")
        self.where = where
        self.lifecycle.where = where

    def pod_count(self) -> int:
        return len(self.view.pods)

    @property
    def node_name(self) -> types.NodeName:
        return self.where.node_name

    @property
    def placement(self) -> placement.GroupPlacement:
        return self.where

    @property
    def containers(self) -> protocols.ContainerAccess:
        return self.aci

    def bound_pods(self) -> list[objects.Pod]:
        return list(self.view.pods.values())

    def find_pod(self, namespace: str, name: str) -> objects.Pod | None:
        for pod in list(self.view.pods.values()):
            metadata = pod.get("metadata", {})
            if metadata.get("name") == name and metadata.get("namespace") == namespace:
                return pod
        return None

    def pod_by_uid(self, uid: str) -> objects.Pod | None:
        return self.view.pods.get(uid)

    def orphan_count(self) -> int:
        """Groups whose pod is gone (``lifecycle.is_orphan``); 0 until the pod view has completed its list."""
        if not self.view.synced:
            return 0
        return sum(
            1 for name, summary in self.groups.items() if lifecycle.is_orphan(summary, self._bound(name))
        )

    def snapshot(self) -> protocols.NodeSnapshot:
        phases = collections.Counter(
            p.get("status", {}).get("phase") or "Pending" for p in list(self.view.pods.values())
        )
        return protocols.NodeSnapshot(
            node_name=str(self.where.node_name),
            pods_by_phase={phase: phases.get(phase, 0) for phase in PHASES},
            groups_by_provisioning_state=self.groups.by_provisioning_state(),
            orphan_groups=self.orphan_count(),
            groups_in_transition=self._in_transition,
            queue_depth=len(self.queue),
            arm_requests=self.aci.arm_requests,
        )

    # --- routing -----------------------------------------------------------------------------------------------

    def _bound(self, name: types.ContainerGroupName) -> str | None:
        """The uid of the bound pod whose group is ``name``, if any."""
        uid = self._uid_by_group.get(name)
        return uid if uid is not None and uid in self.view.pods else None

    def _on_pod_change(self, pod: objects.Pod | None) -> None:
        if pod is None:  # a fresh list replaced the view
            self._facts.clear()
            self._uid_by_group = {
                pod_mapping.container_group_name_from_pod(p): uid for uid, p in self.view.pods.items()
            }
            self.enqueue_all()
            return
        uid = pod["metadata"]["uid"]
        name = pod_mapping.container_group_name_from_pod(pod)
        self.queue.add(PodKey(uid))
        if uid in self.view.pods:
            self._uid_by_group[name] = uid
        else:  # deleted from the API: its group, if any, is now an orphan
            self._facts.pop(uid, None)
            if self._uid_by_group.get(name) == uid:
                del self._uid_by_group[name]
            self.queue.add(GroupKey(name))

    def _created(self, name: types.ContainerGroupName) -> None:
        self.scheduler.forget(name)
        self._just_created.add(name)
        self.sync_soon.set()

    def enqueue_all(self) -> None:
        """Queue every bound pod and every listed group (after a relist, and every ``resync_seconds``)."""
        for uid in list(self.view.pods):
            self.queue.add(PodKey(uid))
        for name in self.groups.names():
            self.queue.add(GroupKey(name))

    # --- dispatch ----------------------------------------------------------------------------------------------

    async def reconcile_key(self, key: keys.WorkKey) -> None:
        """Reconcile one pod or one group against the latest view and listing; failures are retried by kind."""
        started = self.clock.monotonic()
        try:
            if isinstance(key, GroupKey):
                await self._reconcile_group(key)
            else:
                await self._reconcile_pod(key)
        finally:
            if self.observer is not None:
                self.observer.on_reconcile(str(self.where.node_name), self.clock.monotonic() - started)

    async def _reconcile_pod(self, key: keys.PodKey) -> None:
        pod = self.view.pods.get(key.uid)
        if pod is None:
            self.lifecycle.forget(key.uid)
            return
        try:
            if pod["metadata"].get("deletionTimestamp"):
                await self.lifecycle.delete(pod)
            elif not lifecycle.is_terminal(pod):
                deadline = policy.active_deadline(pod)
                left = (deadline - self.clock.now()).total_seconds() if deadline is not None else None
                if left is not None and left <= 0:
                    await self.lifecycle.deadline_exceeded(pod)
                    return
                await self.lifecycle.ensure(pod)
                if left is not None:
                    self.queue.add_after(key, left)  # the deadline's timer: the key comes back when it is due
        except errors.AcinodeError as err:
            decision = policy.decide_action_failure(err)
            assert decision.kind is not None
            self.queue.add_rate_limited(key, decision.kind, at_least=decision.retry_at_least_seconds)
            logger.warning(decision.log, extra=reporting.log_fields(self.where.node_name, pod))

    async def _reconcile_group(self, key: keys.GroupKey) -> None:
        """Delete the group if no bound pod owns it (only once the pod view is complete)."""
        summary = self.groups.get(key.name)
        if summary is None:
            self.orphans.cleared(key.name)
            return
        if not self.view.synced:
            return  # a relist queues every key again
        identity = tags.pod_identity_from_tags(summary.tags)
        if identity is None:
            return
        uid = self._bound(key.name)
        if uid is not None:
            self.orphans.cleared(key.name)
            if uid != identity.uid:
                self.queue.add(PodKey(uid))  # a newer pod of that name replaces the group itself
            return
        try:
            if not await self.orphans.confirm(key.name) or self._bound(key.name) is not None:
                return  # a pod has it after all (the view was behind): the next listing queues it again
            await self.lifecycle.delete_orphan(key.name)
            self.orphans.cleared(key.name)
        except errors.AcinodeError as err:
            decision = policy.decide_action_failure(err)
            assert decision.kind is not None
            self.queue.add_rate_limited(key, decision.kind, at_least=decision.retry_at_least_seconds)
            logger.warning(
                "deleting orphan group failed: %s",
                err,
                extra={"node": self.where.node_name, "container_group": key.name},
            )

    # --- status sync -------------------------------------------------------------------------------------------

    async def sync_once(self) -> int:
        """List our groups (unless a fresh listing exists), queue orphans and pods whose group vanished, then GET
        the groups the scheduler chooses and patch their pods' statuses. Returns how many groups are in
        transition (the loop polls faster while any are)."""
        started = self.clock.monotonic()
        self._just_created.clear()  # this pass sees them all
        try:
            if self.scheduler.listing_is_stale(self.groups.listing_began, self.groups.listed):
                await self.groups.refresh()
                self.scheduler.keep_only(set(self.groups.names()))
            candidates: list[statussync.Candidate] = []
            for name in self.groups.names():
                owner = self.groups.owner_uid(name)
                if owner is None or self._uid_by_group.get(name) != owner:
                    self.queue.add(GroupKey(name))  # an orphan, or a newer pod's: the workers decide
            for uid, pod in list(self.view.pods.items()):
                facts = self._facts_of(uid, pod)
                if facts.settled:
                    continue
                summary = self.groups.get(facts.group)
                if summary is None:
                    if facts.has_run:
                        self.queue.add(PodKey(uid))  # the group vanished: the workers decide what to do
                    continue
                if self.groups.owner_uid(facts.group) != uid:
                    continue
                just_created = self.lifecycle.just_created(uid)
                transition = statussync.in_transition(
                    summary,
                    just_created=just_created,
                    has_run=facts.has_run,
                    running_and_ready=facts.running_and_ready,
                )
                candidates.append(
                    statussync.Candidate(
                        pod, facts.group, summary, just_created, transition, facts.likely_to_end
                    )
                )
            chosen, self._in_transition = self.scheduler.choose(candidates)
            await asyncio.gather(*(self._sync_pod(c.pod, c.name) for c in chosen))
            return self._in_transition
        finally:
            if self.observer is not None:
                self.observer.on_sync(str(self.where.node_name), self.clock.monotonic() - started)

    async def _sync_created(self) -> None:
        """GET the groups created since the last pass (the first look at each, due at once), no others; charged to
        the read budget like a full pass's transition reads. Anything else waits for the next full pass."""
        created, self._just_created = self._just_created, set()
        chosen: list[tuple[objects.Pod, types.ContainerGroupName]] = []
        for name in created:
            uid = self._bound(name)
            if uid is None:
                continue
            pod = self.view.pods[uid]
            if self._facts_of(uid, pod).settled or self.groups.owner_uid(name) != uid:
                continue
            chosen.append((pod, name))
        chosen = chosen[: self.settings.max_gets_per_sync]  # the rest stay due for the next full pass
        self.scheduler.charge(len(chosen))
        await asyncio.gather(*(self._sync_pod(pod, name) for pod, name in chosen))

    def _facts_of(self, uid: str, pod: objects.Pod) -> PodFacts:
        """What a pass needs of a pod, derived once per version of it (a pass visits every bound pod)."""
        known = self._facts.get(uid)
        if known is not None and known[0] is pod:
            return known[1]
        facts = PodFacts(
            group=pod_mapping.container_group_name_from_pod(pod),
            settled=lifecycle.is_terminal(pod) or bool(pod["metadata"].get("deletionTimestamp")),
            likely_to_end=readbudget.likely_to_end(pod),
            has_run=statussync.has_run(pod),
            running_and_ready=statussync.is_running_and_ready(pod),
        )
        self._facts[uid] = (pod, facts)
        return facts

    async def _sync_pod(self, pod: objects.Pod, name: types.ContainerGroupName) -> None:
        async with self._gets:
            log = reporting.log_fields(self.where.node_name, pod)
            try:
                group = await self.aci.get(name)
            except errors.NotFoundError:
                self.groups.vanished(name)
                self.queue.add(PodKey(pod["metadata"]["uid"]))
                return
            except errors.AcinodeError as err:
                logger.warning("reading the container group failed: %s", err, extra=log)
                return
            current = self.view.pods.get(pod["metadata"]["uid"], pod)
            if lifecycle.is_terminal(current) or current["metadata"].get("deletionTimestamp"):
                return
            status = status_mapping.pod_status_from_container_group(
                group, current, now=self.clock.now(), host_ip=self.where.host_ip
            )
            self.groups.observed(name, group.provisioning_state)
            self.scheduler.looked(
                name, unchanged=status == current.get("status"), listed_state=group.provisioning_state
            )
            await self.reporter.patch_status(current, status)
            for event in events.pod_events_from_container_group(group, current):
                await self.reporter.post(current, event)

    # --- tasks -------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The pod view, the status-sync loop, the resync timer and the workers, until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                node = self.where.node_name
                group.create_task(self.view.run(), name=f"pods:{node}")
                group.create_task(self._run_sync(), name=f"sync:{node}")
                group.create_task(self._run_resync(), name=f"resync:{node}")
                for index in range(self.settings.concurrent_actions):
                    group.create_task(self._run_worker(), name=f"reconcile:{node}:{index}")
        finally:
            self.queue.close()

    async def _run_worker(self) -> None:
        await self.groups.listed_event.wait()  # no pod is judged before ARM's side is known
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile_key(key)
            except Exception:
                logger.exception("unexpected error reconciling %s", key, extra={"node": self.where.node_name})
                self.queue.add_rate_limited(key, retry.FailureKind.UNEXPECTED)
            finally:
                self.queue.done(key)

    async def _run_resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            self.enqueue_all()

    async def _run_sync(self) -> None:
        """Full passes on the scheduler's interval; between them, a creation wakes a pass over the groups just
        created only (a full pass visits every bound pod: back to back in a burst of creations, they were the
        largest CPU cost of the burst, each woken by the next creation)."""
        failures = 0
        next_full = -math.inf
        while True:
            self.sync_soon.clear()
            if self.clock.monotonic() < next_full and self.groups.listed:
                # Creations that arrive together are looked at together, and not before ARM can have moved on.
                await asyncio.sleep(CREATED_LOOK_DELAY_SECONDS)
                try:
                    await self._sync_created()
                except Exception:  # a bug must not end the status sync (the full pass catches the same)
                    logger.exception(
                        "unexpected error reading created groups", extra={"node": self.where.node_name}
                    )
                # A new group is in transition: full passes come at the fast interval from now on.
                next_full = min(next_full, self.clock.monotonic() + self.settings.fast_sync_seconds)
            else:
                in_transition = 0
                try:
                    in_transition = await self.sync_once()
                    failures = 0
                except errors.ThrottledError as err:
                    failures += 1
                    await asyncio.sleep(err.retry_after_seconds)
                except errors.AcinodeError as err:
                    failures += 1
                    logger.warning("status sync failed: %s", err, extra={"node": self.where.node_name})
                except Exception:
                    failures += 1
                    logger.exception(
                        "unexpected error in the status sync", extra={"node": self.where.node_name}
                    )
                interval = self.scheduler.interval(
                    listed=self.groups.listed,
                    in_transition=in_transition,
                    has_work=bool(self.view.pods) or len(self.groups) > 0,
                    failures=failures,
                )
                next_full = self.clock.monotonic() + interval
            try:
                async with asyncio.timeout(max(0.0, next_full - self.clock.monotonic())):
                    await self.sync_soon.wait()
            except TimeoutError:
                pass
