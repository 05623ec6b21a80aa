"""The life of one pod's container group: create, delete, and what happens when ARM loses it.

The contract (as virtual-kubelet's ``PodLifecycleHandler`` states its own):
- ``ensure(pod)`` makes the pod's group exist for *this* pod uid. It may be called any number of times, with any
  pod bound to the node, whatever the cache says: a group already this pod's is left alone; one left by an
  earlier pod of the same name is deleted first; a pod whose status shows it ran but whose group is gone is
  recreated or failed per restartPolicy (``policy.decide_lost_group``); a pod the mapping refused is not tried
  again until its generation changes; a pod in back-off waits out its hold. Creation failures are reported on
  the pod (status and Event, ``policy.decide_create_failure``) and retried by kind through the work queue: they
  never raise. Other errors (ARM 5xx, Kubernetes API) raise ``AcinodeError``; the caller retries the key.
- ``delete(pod)`` for a pod with a deletion timestamp, as a kubelet: with a grace period (``deletionGracePeriodSeconds``
  > 0) and a group of its own, STOP the group once, then read it again (a timer in the work queue, never a sleep)
  until it reports stopped or the grace period is over (the ``deletionTimestamp``), then write the terminated
  container statuses; then (at once for a force deletion, grace 0) DELETE its group once (not found counts as done;
  never a group of another pod uid) and remove the pod with grace 0 and a uid precondition. May repeat.
- ``deadline_exceeded(pod)`` for a pod past its ``activeDeadlineSeconds``: DELETE its group, then write Failed,
  ``DeadlineExceeded`` (the pod stays). May repeat.
- ``delete_orphan(name)``: DELETE a group whose pod is gone. The caller decides that it is one (``is_orphan``),
  only once the pod view has completed its first list, and only when ``OrphanJudge`` confirms it: a fresh,
  complete pod list and two consecutive group listings agree that no pod has the group.
- Nothing blocks beyond the ARM and API calls it makes; every write is recorded in the group cache at once.

Trust boundary, in ``_create`` (docs/security.md): only a pod whose ``spec.nodeName`` is this node is acted on;
references are resolved (names validated, own namespace only) and the pod mapped with placeholder tokens *before*
any token is minted, so a refused pod never gets one; then mapped again with the real tokens and PUT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from acinode import errors, types
from acinode.aci import api
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import failures, imageconfig, objects, options, placement, problems, tags
from acinode.mapping import pods as pod_mapping
from acinode.mapping import references as pod_references
from acinode.mapping import status as status_mapping
from acinode.pods import clock, groupcache, keys, policy, references, reporting, statussync, workqueue

logger = logging.getLogger(__name__)
TERMINAL_PHASES = ("Succeeded", "Failed")


def is_terminal(pod: objects.Pod) -> bool:
    return pod.get("status", {}).get("phase") in TERMINAL_PHASES


def is_orphan(summary: api.GroupSummary, bound_uid: str | None) -> bool:
    """A group (of ours, carrying a pod identity) whose name no bound pod has. ``bound_uid`` is the uid of the
    bound pod whose group name this is, if any. A group of an earlier pod that a newer pod of the same name
    replaces is not an orphan: ``ensure`` of that pod replaces it."""
    return bound_uid is None and tags.pod_identity_from_tags(summary.tags) is not None


class OrphanJudge:
    """The orphan rule: a group is deleted as an orphan only when two consecutive listings of the node's groups
    agree that no bound pod has it, and a fresh, complete pod list (read from the API server after the first of
    them, not the watch-fed view) has no pod of its name either.

    A group deleted by mistake is a workload lost; a real orphan waits one more list call. The first listing is
    the one that made the group look orphaned (``judged``); when no later listing exists yet, ``confirm`` makes
    one round, shared by every group waiting: the pod list, then a group listing (so a pod created meanwhile is
    seen by one or its group by the other). A replica cut off from the API server cannot complete the pod list,
    so it never deletes an orphan on a stale view."""

    def __init__(self, kube: client.KubeClient, node_name: str, cache: groupcache.GroupCache) -> None:
        self.kube = kube
        self.node_name = node_name
        self.cache = cache
        self._first: dict[types.ContainerGroupName, int] = {}
        """The listing serial at which each group first looked orphaned."""
        self._round_serial = -1
        """The listing serial a confirmation round ended with."""
        self._round_pods: set[types.ContainerGroupName] = set()
        """Group names of the pods its pod list held."""
        self._confirming = asyncio.Lock()

    def cleared(self, name: types.ContainerGroupName) -> None:
        """The group is not (or no longer) an orphan, or it is gone."""
        self._first.pop(name, None)

    def _agreed(self, name: types.ContainerGroupName, first: int) -> bool:
        return self._round_serial > first and name in self.cache and name not in self._round_pods

    async def confirm(self, name: types.ContainerGroupName) -> bool:
        """Whether the group, which looks orphaned in the current view and listing, is one (raises AcinodeError
        when the pod list or the listing fails: the caller retries)."""
        first = self._first.setdefault(name, self.cache.serial)
        if self._round_serial <= first:
            async with self._confirming:
                if self._round_serial <= first:
                    items, _ = await kube_pods.list_pods_on_node(self.kube, self.node_name)
                    pods = {pod_mapping.container_group_name_from_pod(p) for p in items}  # type: ignore[arg-type]
                    await self.cache.refresh()
                    self._round_pods, self._round_serial = pods, self.cache.serial
        agreed = self._agreed(name, first)
        if not agreed:
            self.cleared(name)
        return agreed


@dataclasses.dataclass
class PodMemory:
    """What the lifecycle keeps about one pod between passes (retry counters live in the work queue)."""

    refused_generation: int | None = None
    """The pod generation the mapping refused: not retried until the pod changes."""
    group_deleted: bool = False
    """The pod is being deleted and its group is already gone: only the pod object remains to delete."""
    created_at: float | None = None
    """Monotonic time of our last PUT: the group is in transition until its containers are seen running."""
    stop_requested: bool = False
    """The pod is being deleted gracefully and its group was asked to stop."""


class ImageEntrypoints(Protocol):
    """The image's ENTRYPOINT, from its registry (``oci.client.ImageConfigReader``)."""

    async def entrypoint(
        self, image: str, os_name: str, credentials: Mapping[str, tuple[str, str]]
    ) -> tuple[str, ...]: ...


class PodLifecycle:
    def __init__(
        self,
        kube: client.KubeClient,
        aci: api.AciApi,
        where: placement.GroupPlacement,
        cache: groupcache.GroupCache,
        reporter: reporting.PodReporter,
        queue: workqueue.RateLimitedQueue[keys.WorkKey],
        clock_: clock.Clock,
        on_created: Callable[[types.ContainerGroupName], None] = lambda name: None,
        images: ImageEntrypoints | None = None,
    ) -> None:
        self.kube = kube
        self.images = images
        """Reads ENTRYPOINTs for containers with args but no command; None: such containers are refused unless
        the entrypoints annotation names it."""
        self.aci = aci
        self.where = where
        """The placement of groups created from now on (``PodController.update_placement`` replaces it)."""
        self.cache = cache
        self.reporter = reporter
        self.queue = queue
        self.clock = clock_
        self.on_created = on_created
        self.memory: dict[str, PodMemory] = {}

    def _log(self, pod: objects.Pod, **more: str) -> dict[str, str]:
        return {**reporting.log_fields(self.where.node_name, pod), **more}

    def just_created(self, uid: str) -> bool:
        memory = self.memory.get(uid)
        return memory is not None and memory.created_at is not None

    def forget(self, uid: str) -> None:
        """The pod left the API: drop what was kept about it."""
        self.memory.pop(uid, None)
        self.reporter.forget(uid)
        self.queue.forget(keys.PodKey(uid))

    # --- create ------------------------------------------------------------------------------------------------

    async def ensure(self, pod: objects.Pod) -> None:
        uid = pod["metadata"]["uid"]
        name = pod_mapping.container_group_name_from_pod(pod)
        summary = self.cache.get(name)
        identity = tags.pod_identity_from_tags(summary.tags) if summary else None
        if summary is not None and identity is not None and identity.uid == uid:
            return
        if summary is not None:
            logger.info("replacing the group of an earlier pod", extra=self._log(pod))
            await self.aci.delete(name)
            self.cache.wrote(name, None)
        memory = self.memory.setdefault(uid, PodMemory())
        wait = self.queue.held_for(keys.PodKey(uid))
        if wait > 0:
            self.queue.add_after(keys.PodKey(uid), wait)
            return
        if memory.refused_generation is not None and memory.refused_generation == pod["metadata"].get(
            "generation"
        ):
            return
        if statussync.has_run(pod):
            # Its status shows the group existed: it vanished (deleted outside acinode, or lost by ACI).
            await self._lost(pod, name, memory)
            return
        await self._create(pod, name, memory)

    async def _create(self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory) -> None:
        now = self.clock.now()
        if pod.get("spec", {}).get("nodeName") != self.where.node_name:
            return  # not bound here (the view filters by node; never act on another node's pod)
        where = self.where  # one placement for the whole attempt, even if it is replaced meanwhile
        try:
            refs = await references.resolve_references(self.kube, pod)
            refs = await self._with_entrypoints(pod, where, refs)
            if references.needs_tokens(pod):
                # Decide first, mint after: a refused pod never gets a token minted for it.
                pod_mapping.container_group_from_pod(pod, where, refs)
                refs = await references.mint_tokens(self.kube, pod, refs)
            group = pod_mapping.container_group_from_pod(pod, where, refs)
            summary = await self.aci.create_or_update(name, group)
        except (
            errors.UnsupportedPodSpecError,
            errors.InvalidRequestError,
            errors.ImageInaccessibleError,
            errors.QuotaExceededError,
        ) as err:
            await self._failed(pod, memory, err, now)
            return
        self.queue.forget(keys.PodKey(pod["metadata"]["uid"]))
        memory.created_at = self.clock.monotonic()
        self.cache.wrote(name, summary)
        self.on_created(name)
        logger.info("container group submitted", extra=self._log(pod, container_group=name))

    async def _with_entrypoints(
        self, pod: objects.Pod, where: placement.GroupPlacement, refs: pod_references.ResolvedReferences
    ) -> pod_references.ResolvedReferences:
        """The ENTRYPOINT of each image run with args but no command, read from its registry with the pod's own
        pull secrets (what a kubelet's runtime knows from the pulled image)."""
        if self.images is None or not imageconfig.args_only_images(pod):
            return refs  # the common case: no annotation parsing, no registry
        annotations = pod.get("metadata", {}).get("annotations") or {}
        chosen = options.group_options_from_annotations(annotations, problems.Problems())
        needed = imageconfig.images_needing_entrypoints(pod, chosen)
        if not needed:
            return refs
        credentials = imageconfig.pull_credentials(pod.get("spec", {}), refs.secrets)
        found = {
            image: await self.images.entrypoint(image, where.os_type.lower(), credentials) for image in needed
        }
        return dataclasses.replace(refs, image_entrypoints={**refs.image_entrypoints, **found})

    async def _failed(
        self, pod: objects.Pod, memory: PodMemory, err: errors.AcinodeError, now: datetime.datetime
    ) -> None:
        """Report a creation failure on the pod and retry it by kind, or refuse it until it changes."""
        key = keys.PodKey(pod["metadata"]["uid"])
        kind = policy.kind_of(err)
        attempt = self.queue.failures(key, kind) + 1 if kind is not None else 1
        decision = policy.decide_create_failure(err, pod, now=now, attempt=attempt)
        if decision.kind is None:
            memory.refused_generation = pod["metadata"].get("generation")
            logger.warning(decision.log, extra=self._log(pod))
        else:
            self.queue.add_rate_limited(key, decision.kind, at_least=decision.retry_at_least_seconds)
            logger.info(decision.log, extra=self._log(pod))
        if decision.status is not None:
            await self.reporter.patch_status(pod, decision.status)
        if decision.event is not None:
            await self.reporter.post(pod, decision.event)

    async def _lost(self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory) -> None:
        decision = policy.decide_lost_group(pod, now=self.clock.now())
        if decision.recreate:
            logger.warning("container group lost; recreating it", extra=self._log(pod))
            await self._create(pod, name, memory)
        else:
            logger.warning("container group lost; pod fails (restartPolicy Never)", extra=self._log(pod))
            assert decision.status is not None
            await self.reporter.patch_status(pod, decision.status)
        await self.reporter.post(pod, decision.event)

    # --- delete ------------------------------------------------------------------------------------------------

    def _group_uid(self, name: types.ContainerGroupName) -> tuple[bool, str | None]:
        """Whether the group is listed, and the pod uid its tags name."""
        summary = self.cache.get(name)
        if summary is None:
            return False, None
        identity = tags.pod_identity_from_tags(summary.tags)
        return True, identity.uid if identity else None

    async def _delete_group(
        self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory
    ) -> None:
        listed, group_uid = self._group_uid(name)
        if not memory.group_deleted and (not listed or group_uid == pod["metadata"]["uid"]):
            # Delete whenever the group may be this pod's (also when the list has not shown it yet), once.
            await self.aci.delete(name)
            self.cache.wrote(name, None)
            memory.group_deleted = True

    async def delete(self, pod: objects.Pod) -> None:
        metadata = pod["metadata"]
        name = pod_mapping.container_group_name_from_pod(pod)
        memory = self.memory.setdefault(metadata["uid"], PodMemory())
        deadline = policy.grace_deadline(pod)
        listed, group_uid = self._group_uid(name)
        graceful = (
            deadline is not None and not memory.group_deleted and listed and group_uid == metadata["uid"]
        )
        if graceful and deadline is not None and not await self._stop_gracefully(pod, name, memory, deadline):
            return  # still stopping: the work queue brings the pod back
        await self._delete_group(pod, name, memory)
        if await kube_pods.force_delete(self.kube, metadata["namespace"], metadata["name"], metadata["uid"]):
            logger.info("pod and its container group deleted", extra=self._log(pod, container_group=name))

    async def _stop_gracefully(
        self, pod: objects.Pod, name: types.ContainerGroupName, memory: PodMemory, deadline: datetime.datetime
    ) -> bool:
        """Stop the group, wait (through the work queue) until it stopped or the grace period is over, then write
        the terminated container statuses. True when the group may now be deleted."""
        if not memory.stop_requested:
            stop_at = policy.pre_stop_until(pod, deadline)
            now = self.clock.now()
            if stop_at is not None and now < stop_at:
                # The containers' preStop sleep: they keep running (and serving) until it is over.
                self.queue.add_after(keys.PodKey(pod["metadata"]["uid"]), (stop_at - now).total_seconds())
                return False
            try:
                await self.aci.stop(name)
            except errors.NotFoundError:
                self.cache.wrote(name, None)
                memory.group_deleted = True
                return True
            except errors.ThrottledError:
                raise
            except errors.AcinodeError as err:
                # ACI refused the stop (e.g. still provisioning): the grace period runs out instead.
                logger.warning("stopping the container group failed: %s", err, extra=self._log(pod))
            memory.stop_requested = True
            logger.info("container group stopping", extra=self._log(pod, container_group=name))
        try:
            group = await self.aci.get(name)
        except errors.NotFoundError:
            self.cache.wrote(name, None)
            memory.group_deleted = True
            return True
        now = self.clock.now()
        stopped = status_mapping.is_group_stopped(group)
        wait = policy.deletion_wait(deadline, now=now, stopped=stopped)
        current = status_mapping.pod_status_from_container_group(
            group, pod, now=now, host_ip=self.where.host_ip
        )
        if wait > 0:
            await self.reporter.patch_status(pod, current)
            self.queue.add_after(keys.PodKey(pod["metadata"]["uid"]), wait)
            return False
        final = failures.pod_status_for_terminated_pod({**pod, "status": current}, now=now)
        await self.reporter.patch_status(pod, final)
        logger.info(
            "containers terminated" if stopped else "grace period over; containers killed",
            extra=self._log(pod, container_group=name),
        )
        return True

    async def deadline_exceeded(self, pod: objects.Pod) -> None:
        """The pod outlived its ``activeDeadlineSeconds``: its group goes, the pod ends Failed (and stays)."""
        name = pod_mapping.container_group_name_from_pod(pod)
        memory = self.memory.setdefault(pod["metadata"]["uid"], PodMemory())
        await self._delete_group(pod, name, memory)
        decision = policy.decide_deadline_exceeded(pod, now=self.clock.now())
        await self.reporter.patch_status(pod, decision.status)
        await self.reporter.post(pod, decision.event)
        logger.info("pod active longer than its deadline; failed", extra=self._log(pod, container_group=name))

    async def delete_orphan(self, name: types.ContainerGroupName) -> None:
        summary = self.cache.get(name)
        identity = tags.pod_identity_from_tags(summary.tags) if summary is not None else None
        await self.aci.delete(name)
        self.cache.wrote(name, None)
        self.queue.forget(keys.GroupKey(name))
        logger.info(
            "deleted a container group whose pod is gone",
            extra={
                "node": self.where.node_name,
                "container_group": name,
                "namespace": identity.namespace if identity else "",
                "pod": identity.name if identity else "",
            },
        )
