"""The level-based reconciler of one virtual node: bound pods (desired) against tagged container groups (actual).

Work is keyed, as in controller-runtime: a pod event queues its pod's key, a listing queues the keys of groups
that look orphaned, a timer queues every key each ``resync_seconds``; ``concurrent_actions`` workers take keys
from a ``WorkQueue`` (each key is processed by one worker at a time) and reconcile that one pod or group against
the latest state (see docs/architecture.md):
1. a pod without its group gets one (resolve references, map, PUT — idempotent under a deterministic name);
2. a pod being deleted loses its group, then leaves the API at once (grace 0, uid precondition);
3. a group without its pod (or for an older pod of the same name) is deleted — only once the pod view has
   completed its first list, and only groups carrying this cluster's and this node's tags;
4. status flows back through ``sync``; a group that vanished under a running pod is recreated or, for
   restartPolicy Never, fails the pod.
Nothing is remembered that the API server and ARM do not also hold, except retry backoff and the writes made
since the last listing began: a restarted operator resumes from a fresh list of both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from typing import Any, cast

from acinode import errors, settings, types
from acinode.aci import api
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import events, failures, objects, placement, tags
from acinode.mapping import pods as pod_mapping
from acinode.mapping import status as status_mapping
from acinode.pods import references, view, workqueue

logger = logging.getLogger(__name__)
JsonObject = client.JsonObject
TERMINAL_PHASES = ("Succeeded", "Failed")
REFERENCE_RETRY_MAX_SECONDS = 60.0


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class PodKey:
    uid: str


@dataclasses.dataclass(frozen=True)
class GroupKey:
    name: types.ContainerGroupName


WorkKey = PodKey | GroupKey


@dataclasses.dataclass
class LookState:
    """When the status sync last read a group in transition, and how often in a row that changed nothing: the
    next look waits ``fast_sync_seconds * 2**unchanged`` (at most ``steady_sync_seconds``), so a new group is
    read within a second while one stuck (crash-looping, pulling for minutes) costs few ARM reads."""

    at: float
    unchanged: int = 0
    provisioning_state: str | None = None
    """The group's provisioningState in the listing at the time of the look."""


@dataclasses.dataclass
class PodMemory:
    """What the reconciler keeps about one pod between passes: only backoff and what it already reported."""

    refused_generation: int | None = None
    """The pod generation the mapping refused: not retried until the pod changes."""
    retry_at: float = 0.0
    failures: int = 0
    group_deleted: bool = False
    """The pod is being deleted and its group is already gone: only the pod object remains to delete."""
    created_at: float | None = None
    """Monotonic time of our last PUT: the group is in transition until its containers are seen running."""
    posted_events: dict[str, int] = dataclasses.field(default_factory=dict)
    """Event key → count already posted."""


def is_terminal(pod: objects.Pod) -> bool:
    return pod.get("status", {}).get("phase") in TERMINAL_PHASES


def has_run(pod: objects.Pod) -> bool:
    """Whether the pod's status shows that its group existed (so a missing group was lost, not never made)."""
    status = pod.get("status", {})
    return status.get("phase") == "Running" or any(
        "running" in s.get("state", {}) or "terminated" in s.get("state", {})
        for s in status.get("containerStatuses", [])
    )


class NodePodReconciler:
    def __init__(
        self,
        kube: client.KubeClient,
        aci: api.AciApi,
        where: placement.GroupPlacement,
        pod_settings: settings.PodSettings,
        clock: Any = utc_now,
    ) -> None:
        self.kube = kube
        self.aci = aci
        self.where = where
        self.settings = pod_settings
        self.clock = clock
        self.view = view.PodView(kube, where.node_name, self._on_pod_change)
        self.groups: dict[types.ContainerGroupName, api.GroupSummary] = {}
        self.groups_listed = False
        self.memory: dict[str, PodMemory] = {}
        self.queue: workqueue.WorkQueue[WorkKey] = workqueue.WorkQueue()
        self.sync_soon = asyncio.Event()
        self._listed = asyncio.Event()
        self._gets = asyncio.Semaphore(pod_settings.concurrent_actions)
        self._sweep_position = 0
        self._uid_by_group: dict[types.ContainerGroupName, str] = {}
        """The bound pod each group name belongs to (a pod's group name is derived from its namespace/name)."""
        self._writes: dict[types.ContainerGroupName, tuple[float, api.GroupSummary | None]] = {}
        """Our PUTs (summary) and DELETEs (None) by completion time: a listing that began before one completed
        may not show it, and must not undo it (a PUT undone would be sent again)."""
        self._looks: dict[types.ContainerGroupName, LookState] = {}
        self._listing_began = -float("inf")

    @property
    def own_tags(self) -> dict[str, str]:
        return {tags.TAG_CLUSTER_ID: self.where.cluster_id, tags.TAG_NODE: self.where.node_name}

    def _log(self, pod: objects.Pod) -> dict[str, str]:
        metadata = pod.get("metadata", {})
        return {
            "node": self.where.node_name,
            "namespace": metadata.get("namespace", ""),
            "pod": metadata.get("name", ""),
        }

    def _on_pod_change(self, pod: objects.Pod | None) -> None:
        if pod is None:  # a fresh list replaced the view
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
            if self._uid_by_group.get(name) == uid:
                del self._uid_by_group[name]
            self.queue.add(GroupKey(name))

    def enqueue_all(self) -> None:
        """Queue every bound pod and every listed group (after a relist, and every ``resync_seconds``)."""
        for uid in list(self.view.pods):
            self.queue.add(PodKey(uid))
        for name in list(self.groups):
            self.queue.add(GroupKey(name))

    # --- ARM view --------------------------------------------------------------------------------------------

    async def refresh_groups(self) -> list[api.GroupSummary]:
        """One list call: which of our groups exist, and which are still provisioning. Our writes that completed
        after the call began are laid over its answer, which may predate them."""
        began = self._listing_began = time.monotonic()
        summaries = await self.aci.list_groups(self.own_tags)
        listed = {s.name: s for s in summaries if tags.is_managed_group(s.tags, self.where.cluster_id)}
        for name, (completed, written) in list(self._writes.items()):
            if completed < began:
                del self._writes[name]  # the listing saw it
            elif written is None:
                listed.pop(name, None)
            else:
                listed.setdefault(name, written)
        self.groups = listed
        for name in set(self._looks) - set(listed):
            del self._looks[name]
        self.groups_listed = True
        self._listed.set()
        return summaries

    def _wrote(self, name: types.ContainerGroupName, summary: api.GroupSummary | None) -> None:
        if summary is None:
            self.groups.pop(name, None)
        else:
            self.groups[name] = summary
        self._writes[name] = (time.monotonic(), summary)

    # --- reconcile ---------------------------------------------------------------------------------------------

    async def reconcile_key(self, key: WorkKey) -> None:
        """Reconcile one pod or one group against the latest view and listing."""
        if isinstance(key, GroupKey):
            await self._reconcile_group(key.name)
            return
        pod = self.view.pods.get(key.uid)
        if pod is None:
            self.memory.pop(key.uid, None)
            return
        await self._reconcile_pod(pod, pod_mapping.container_group_name_from_pod(pod))

    async def _reconcile_pod(self, pod: objects.Pod, name: types.ContainerGroupName) -> None:
        try:
            if pod["metadata"].get("deletionTimestamp"):
                await self._delete_pod(pod, name)
            elif not is_terminal(pod):
                await self._ensure_group(pod, name)
        except errors.AcinodeError as err:
            uid = pod["metadata"]["uid"]
            memory = self.memory.setdefault(uid, PodMemory())
            delay = err.retry_after_seconds if isinstance(err, errors.ThrottledError) else 2.0
            self._retry_later(uid, memory, delay)
            logger.warning("pod action failed, will retry: %s", err, extra=self._log(pod))

    async def _reconcile_group(self, name: types.ContainerGroupName) -> None:
        """Delete the group if no bound pod owns it (only once the pod view is complete)."""
        summary = self.groups.get(name)
        if summary is None or not self.view.synced:
            return  # a relist queues every key again
        identity = tags.pod_identity_from_tags(summary.tags)
        if identity is None:
            return
        uid = self._uid_by_group.get(name)
        if uid is not None and uid in self.view.pods:
            if uid != identity.uid:
                self.queue.add(PodKey(uid))  # a newer pod of that name replaces the group itself
            return
        await self._delete_orphan(name, identity)

    async def _ensure_group(self, pod: objects.Pod, name: types.ContainerGroupName) -> None:
        uid = pod["metadata"]["uid"]
        summary = self.groups.get(name)
        identity = tags.pod_identity_from_tags(summary.tags) if summary else None
        if summary is not None and identity is not None and identity.uid == uid:
            return
        if summary is not None:
            # A group left by an earlier pod of the same name: replace it.
            logger.info("replacing the group of an earlier pod", extra=self._log(pod))
            await self.aci.delete(name)
            self._wrote(name, None)
        memory = self.memory.setdefault(uid, PodMemory())
        wait = memory.retry_at - time.monotonic()
        if wait > 0:
            self.queue.add_after(PodKey(uid), wait)
            return
        if memory.refused_generation is not None and memory.refused_generation == pod["metadata"].get(
            "generation"
        ):
            return
        if has_run(pod):
            # Its status shows the group existed: it vanished (deleted outside acinode, or lost by ACI).
            await self._handle_lost_group(pod, name, memory)
            return
        await self._create(pod, name, memory)

    async def _create(self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory) -> None:
        now = self.clock()
        if pod.get("spec", {}).get("nodeName") != self.where.node_name:
            return  # not bound here (the view filters by node; never act on another node's pod)
        try:
            refs = await references.resolve_references(self.kube, pod)
            if references.needs_tokens(pod):
                # Decide first, mint after: a refused pod never gets a token minted for it.
                pod_mapping.container_group_from_pod(pod, self.where, refs)
                refs = await references.mint_tokens(self.kube, pod, refs)
            group = pod_mapping.container_group_from_pod(pod, self.where, refs)
            summary = await self.aci.create_or_update(name, group)
        except errors.UnsupportedPodSpecError as err:
            if err.only_missing_objects:
                await self._await_references(pod, memory, err, now)
            else:
                await self._refuse(pod, memory, err, now)
            return
        except errors.InvalidRequestError as err:
            problem = errors.FieldProblem("spec", f"ACI refused the container group ({err.code}): {err}")
            await self._refuse(pod, memory, errors.UnsupportedPodSpecError([problem]), now)
            return
        except errors.ImageInaccessibleError as err:
            memory.failures += 1
            self._retry_later(pod["metadata"]["uid"], memory, self._backoff(memory.failures))
            status = failures.pod_status_for_image_pull_failure(
                pod, message=str(err), now=now, image=err.image, backing_off=memory.failures > 1
            )
            await self._patch_status(pod, status)
            await self._post(
                pod,
                events.pod_event(pod, reason="Failed", message=f"Failed to pull image: {err}", now=now),
                memory,
            )
            return
        except errors.QuotaExceededError as err:
            memory.failures += 1
            self._retry_later(pod["metadata"]["uid"], memory, self._backoff(memory.failures))
            status = failures.pod_status_for_quota_failure(pod, code=err.code, message=str(err), now=now)
            await self._patch_status(pod, status)
            await self._post(pod, events.pod_event(pod, reason=err.code, message=str(err), now=now), memory)
            return
        memory.failures = 0
        memory.created_at = time.monotonic()
        self._wrote(name, summary)
        self._looks.pop(name, None)
        self.sync_soon.set()
        logger.info("container group submitted", extra={**self._log(pod), "container_group": name})

    async def _await_references(
        self, pod: objects.Pod, memory: PodMemory, err: errors.UnsupportedPodSpecError, now: datetime.datetime
    ) -> None:
        """A referenced Secret, ConfigMap or service account does not exist yet: wait and retry (1, 2, 4 … 60 s),
        as a kubelet does, instead of refusing a pod that will work once its references are created."""
        memory.failures += 1
        self._retry_later(
            pod["metadata"]["uid"], memory, min(REFERENCE_RETRY_MAX_SECONDS, 2.0 ** (memory.failures - 1))
        )
        logger.info("waiting for referenced objects: %s", err, extra=self._log(pod))
        await self._patch_status(
            pod, failures.pod_status_for_missing_references(pod, message=str(err), now=now)
        )
        await self._post(
            pod, events.pod_event(pod, reason="Failed", message=f"Error: {err}", now=now), memory
        )

    async def _refuse(
        self, pod: objects.Pod, memory: PodMemory, err: errors.UnsupportedPodSpecError, now: datetime.datetime
    ) -> None:
        memory.refused_generation = pod["metadata"].get("generation")
        logger.warning("pod refused: %s", err, extra=self._log(pod))
        await self._patch_status(pod, failures.pod_status_for_mapping_failure(pod, err, now=now))
        await self._post(pod, events.pod_event_for_mapping_failure(pod, err, now=now), memory)

    async def _handle_lost_group(
        self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory
    ) -> None:
        now = self.clock()
        policy = pod.get("spec", {}).get("restartPolicy", "Always")
        if policy == "Never":
            logger.warning("container group lost; pod fails (restartPolicy Never)", extra=self._log(pod))
            await self._patch_status(pod, failures.pod_status_for_lost_group(pod, now=now))
            message = "The pod's ACI container group disappeared; restartPolicy Never: the pod has failed"
        else:
            logger.warning("container group lost; recreating it", extra=self._log(pod))
            await self._create(pod, name, memory)
            message = f"The pod's ACI container group disappeared; recreated it (restartPolicy {policy})"
        await self._post(
            pod, events.pod_event(pod, reason="ContainerGroupLost", message=message, now=now), memory
        )

    async def _delete_pod(self, pod: objects.Pod, name: types.ContainerGroupName) -> None:
        metadata = pod["metadata"]
        group_uid = None
        summary = self.groups.get(name)
        if summary is not None:
            identity = tags.pod_identity_from_tags(summary.tags)
            group_uid = identity.uid if identity else None
        memory = self.memory.setdefault(metadata["uid"], PodMemory())
        if not memory.group_deleted and (summary is None or group_uid == metadata["uid"]):
            # Delete whenever the group may be this pod's (also when the list has not shown it yet), once.
            await self.aci.delete(name)
            self._wrote(name, None)
            memory.group_deleted = True
        if await kube_pods.force_delete(self.kube, metadata["namespace"], metadata["name"], metadata["uid"]):
            logger.info(
                "pod and its container group deleted", extra={**self._log(pod), "container_group": name}
            )

    async def _delete_orphan(self, name: types.ContainerGroupName, identity: tags.PodIdentity) -> None:
        try:
            await self.aci.delete(name)
        except errors.AcinodeError as err:
            logger.warning("deleting orphan group failed: %s", err, extra={"container_group": name})
            self.queue.add_after(GroupKey(name), 2.0)
            return
        self._wrote(name, None)
        logger.info(
            "deleted a container group whose pod is gone",
            extra={"container_group": name, "namespace": identity.namespace, "pod": identity.name},
        )

    def _retry_later(self, uid: str, memory: PodMemory, delay: float) -> None:
        """Hold the pod's actions for ``delay`` seconds (pod events meanwhile do not retry early), then queue it."""
        memory.retry_at = time.monotonic() + delay
        self.queue.add_after(PodKey(uid), delay)

    def _backoff(self, failures_so_far: int) -> float:
        return float(
            min(
                self.settings.backoff_max_seconds,
                self.settings.backoff_base_seconds * 2 ** (failures_so_far - 1),
            )
        )

    # --- status ------------------------------------------------------------------------------------------------

    async def _patch_status(self, pod: objects.Pod, status: objects.PodStatus) -> None:
        if status == pod.get("status"):
            return
        metadata = pod["metadata"]
        try:
            updated = await kube_pods.patch_status(
                self.kube, metadata["namespace"], metadata["name"], metadata["uid"], status
            )
        except errors.NotFoundError:
            return
        if updated.get("metadata", {}).get("uid") == metadata["uid"]:
            self.view.offer(cast(objects.Pod, updated))

    async def _post(self, pod: objects.Pod, event: events.PodEvent, memory: PodMemory) -> None:
        count = int(event.body.get("count", 1))
        if memory.posted_events.get(event.key) == count:
            return  # already reported with this count
        memory.posted_events[event.key] = count
        try:
            await kube_pods.post_event(self.kube, pod["metadata"]["namespace"], dict(event.body))
        except errors.AcinodeError as err:
            logger.warning("posting an event failed: %s", err, extra=self._log(pod))

    def _needs_look(self, pod: objects.Pod, summary: api.GroupSummary) -> bool:
        """In transition: provisioning, just created, or not yet seen running and ready."""
        memory = self.memory.get(pod["metadata"]["uid"])
        if summary.is_provisioning() or (
            memory is not None and memory.created_at is not None and not has_run(pod)
        ):
            return True
        status = pod.get("status", {})
        statuses = status.get("containerStatuses", [])
        return status.get("phase") != "Running" or not statuses or not all(s.get("ready") for s in statuses)

    def _look_due(self, name: types.ContainerGroupName, summary: api.GroupSummary, now: float) -> bool:
        look = self._looks.get(name)
        if look is None or look.provisioning_state != summary.provisioning_state:
            return True  # never read, or ARM's listing shows a change since
        wait = min(self.settings.fast_sync_seconds * 2**look.unchanged, self.settings.steady_sync_seconds)
        return bool(now >= look.at + wait)

    async def sync_once(self) -> int:
        """List our groups, then GET those in transition that are due a look (those the listing shows deployed
        first) plus a slice of the steady ones. Returns how many groups are in transition (the caller polls
        faster while any are). A pass woken early (a group was just created) reuses a listing under
        ``fast_sync_seconds`` old: in a burst, listings of every group would otherwise run back to back."""
        now = time.monotonic()
        if not self.groups_listed or now - self._listing_began >= self.settings.fast_sync_seconds:
            await self.refresh_groups()
            now = time.monotonic()
        due: list[tuple[bool, float, objects.Pod, types.ContainerGroupName]] = []
        in_transition = 0
        steady: list[tuple[objects.Pod, types.ContainerGroupName]] = []
        for name, listed in self.groups.items():
            owner = tags.pod_identity_from_tags(listed.tags)
            if owner is None or self._uid_by_group.get(name) != owner.uid:
                self.queue.add(GroupKey(name))  # an orphan, or a newer pod's: the workers decide
        for uid, pod in self.view.pods.items():
            if is_terminal(pod) or pod["metadata"].get("deletionTimestamp"):
                continue
            name = pod_mapping.container_group_name_from_pod(pod)
            summary = self.groups.get(name)
            if summary is None:
                if has_run(pod):
                    self.queue.add(PodKey(uid))  # the group vanished: the workers decide what to do
                continue
            identity = tags.pod_identity_from_tags(summary.tags)
            if identity is None or identity.uid != uid:
                continue
            if self._needs_look(pod, summary):
                in_transition += 1
                if self._look_due(name, summary, now):
                    look = self._looks.get(name)
                    due.append((summary.is_provisioning(), look.at if look else 0.0, pod, name))
            else:
                steady.append((pod, name))
        due.sort(key=lambda entry: entry[:2])
        chosen = [(pod, name) for _, _, pod, name in due[: self.settings.max_gets_per_sync]]
        if steady and self.settings.steady_gets_per_sync > 0:
            start = self._sweep_position % len(steady)
            rotated = steady[start:] + steady[:start]
            chosen += rotated[: self.settings.steady_gets_per_sync]
            self._sweep_position = start + self.settings.steady_gets_per_sync
        await asyncio.gather(*(self._sync_pod(pod, name) for pod, name in chosen))
        return in_transition

    async def _sync_pod(self, pod: objects.Pod, name: types.ContainerGroupName) -> None:
        async with self._gets:
            try:
                group = await self.aci.get(name)
            except errors.NotFoundError:
                self.groups.pop(name, None)
                self.queue.add(PodKey(pod["metadata"]["uid"]))
                return
            except errors.AcinodeError as err:
                logger.warning("reading the container group failed: %s", err, extra=self._log(pod))
                return
            current = self.view.pods.get(pod["metadata"]["uid"], pod)
            if is_terminal(current) or current["metadata"].get("deletionTimestamp"):
                return
            memory = self.memory.setdefault(current["metadata"]["uid"], PodMemory())
            status = status_mapping.pod_status_from_container_group(
                group, current, now=self.clock(), host_ip=self.where.host_ip
            )
            previous = self._looks.get(name)
            unchanged = status == current.get("status")
            listed = self.groups.get(name)
            self._looks[name] = LookState(
                at=time.monotonic(),
                unchanged=(previous.unchanged + 1 if previous and unchanged else 0),
                # What the listing said when we looked (not the GET's answer, which may be newer than the
                # listing): a later listing that says otherwise makes the group due again at once.
                provisioning_state=listed.provisioning_state if listed else group.provisioning_state,
            )
            await self._patch_status(current, status)
            for event in events.pod_events_from_container_group(group, current):
                await self._post(current, event, memory)

    # --- loops ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
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
        await self._listed.wait()  # no pod is judged before ARM's side is known
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile_key(key)
            except Exception:
                logger.exception("unexpected error reconciling %s", key, extra={"node": self.where.node_name})
                self.queue.add_after(key, self.settings.fast_sync_seconds * 5)
            finally:
                self.queue.done(key)

    async def _run_resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            self.enqueue_all()

    async def _run_sync(self) -> None:
        failures = 0
        while True:
            self.sync_soon.clear()
            transitions = 0
            try:
                transitions = await self.sync_once()
                failures = 0
            except errors.ThrottledError as err:
                failures += 1
                await asyncio.sleep(err.retry_after_seconds)
            except errors.AcinodeError as err:
                failures += 1
                logger.warning("status sync failed: %s", err, extra={"node": self.where.node_name})
            except Exception:
                failures += 1
                logger.exception("unexpected error in the status sync", extra={"node": self.where.node_name})
            if not self.groups_listed:
                # Pods wait for the first listing: retry soon, backing off.
                interval = min(
                    self.settings.fast_sync_seconds * 2**failures, self.settings.steady_sync_seconds
                )
            elif transitions:
                interval = self.settings.fast_sync_seconds
            elif self.view.pods or self.groups:
                interval = self.settings.steady_sync_seconds
            else:
                interval = self.settings.idle_sync_seconds  # an empty node: just the orphan check
            try:
                async with asyncio.timeout(interval):
                    await self.sync_soon.wait()
            except TimeoutError:
                pass
