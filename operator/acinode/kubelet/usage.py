"""Container usage for ``/stats/summary`` and ``/metrics/resource``: Azure Monitor, sampled within a budget.

ACI's container-group API reports no usage; Azure Monitor has each container's ``CpuUsage`` (millicores) and
``MemoryUsage`` (bytes), one average per minute, 1-3 minutes late (``AciApi.container_usage``). The
``UsageSampler`` reads them for the running pods of every served node:

- **at most one read per group per** ``usage_sample_interval_seconds`` (one read covers all its containers);
- **within a budget**: a token bucket of its own (``usage_reads_per_second``, ``usage_read_burst``) for the whole
  operator; each pass reads the due groups oldest sample first (never-read ones first) while tokens last, so with
  more groups than the budget covers per interval, reads go round-robin. On the wire the reads go through a lane
  of their own (``ratelimit.interactive``), never the reconciler's read bucket, and fail at once while ARM has
  paused the subscription's reads;
- **only on demand**: the sampler starts with the first stats request and stops ``usage_idle_seconds`` after the
  last one, so no read is made while nobody looks.

From the averages it keeps, per container run: the newest complete interval's CPU average (``usageNanoCores``),
the newest memory average (``workingSetBytes``), and a cumulative CPU counter (``usageCoreNanoSeconds``,
``container_cpu_usage_seconds_total``): the sum of average × interval over every complete interval read since
the container started (intervals Azure Monitor has no value for add nothing). Its time is the end of the newest
interval integrated, so metrics-server computes rates over Azure Monitor's own intervals. A node's counter sums
every interval ever integrated for its containers, so it never decreases when a pod goes. Until a container's
first complete interval is read, it has no figures (reported as none, never as its requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Iterable

from acinode import clock, errors, settings, types
from acinode.aci import api, ratelimit
from acinode.kubelet import targets
from acinode.mapping import names, objects, timestamps
from acinode.mapping import pods as pod_mapping
from acinode.pods import protocols

logger = logging.getLogger(__name__)

NANO = 1_000_000_000
MAX_LOOKBACK_SECONDS = 3600.0
"""Oldest interval one read asks for: a group unread for longer restarts its counter from the last hour."""


@dataclasses.dataclass(frozen=True)
class ContainerSample:
    """One container's usage as last read."""

    time: dt.datetime
    """End of the newest complete interval integrated: when these figures were true."""
    cpu_nano_cores: int
    """The newest complete interval's CPU average."""
    cpu_core_nano_seconds: int
    """Cumulative CPU time of this run of the container (see the module doc)."""
    memory_bytes: int
    """The newest memory average (Azure Monitor's MemoryUsage: it does not split working set and cache)."""


@dataclasses.dataclass(frozen=True)
class NodeSample:
    time: dt.datetime
    cpu_core_nano_seconds: int
    """Cumulative CPU time of every container of the node(s), since the operator started sampling."""


@dataclasses.dataclass(frozen=True)
class GroupTarget:
    """A running pod's group, as the sampler reads it."""

    node: str
    pod_uid: str
    group: types.ContainerGroupName
    access: protocols.ContainerAccess
    containers: dict[str, tuple[str, dt.datetime | None]]
    """ACI container name → (Kubernetes container name, start of its current run)."""


@dataclasses.dataclass
class _ContainerState:
    started: dt.datetime | None
    integrated_until: dt.datetime | None = None
    cumulative_core_seconds: float = 0.0
    sample: ContainerSample | None = None


def running_containers(pod: objects.Pod) -> dict[str, dt.datetime | None]:
    """The pod's running containers and when each started (empty unless the pod is Running)."""
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return {}
    return {
        str(entry.get("name", "")): timestamps.parse_rfc3339(
            entry.get("state", {}).get("running", {}).get("startedAt")
        )
        for entry in status.get("containerStatuses", [])
        if "running" in entry.get("state", {})
    }


def group_targets(nodes: Iterable[protocols.ServedNode]) -> list[GroupTarget]:
    """The groups of every running pod of ``nodes`` that has a running container."""
    found = []
    for node in nodes:
        for pod in node.bound_pods():
            running = running_containers(pod)
            if not running:
                continue
            found.append(
                GroupTarget(
                    node=str(node.node_name),
                    pod_uid=str(pod.get("metadata", {}).get("uid", "")),
                    group=pod_mapping.container_group_name_from_pod(pod),
                    access=node.containers,
                    containers={names.aci_container_name(n): (n, started) for n, started in running.items()},
                )
            )
    return found


class UsageSampler:
    """Reads the running groups' usage within the budget and keeps the newest figures (see the module doc)."""

    def __init__(
        self,
        directory: targets.Directory,
        kubelet: settings.KubeletSettings,
        *,
        clock_: clock.Clock = clock.SYSTEM,
        lanes: ratelimit.InteractiveLanes | None = None,
    ) -> None:
        self.directory = directory
        self.settings = kubelet
        self.clock = clock_
        self._bucket = ratelimit.TokenBucket(kubelet.usage_reads_per_second, kubelet.usage_read_burst)
        self._lanes = lanes or ratelimit.InteractiveLanes(
            kubelet.usage_reads_per_second,
            kubelet.usage_read_burst,
            max_queue_seconds=kubelet.usage_sample_interval_seconds,
        )
        self._containers: dict[tuple[str, str], _ContainerState] = {}
        self._last_read: dict[str, float] = {}
        self._node_cpu: dict[str, float] = {}
        self._node_time: dict[str, dt.datetime] = {}
        self._last_demand: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.reads = 0
        """Usage reads that succeeded."""
        self.failures = 0
        """Usage reads that failed (the group is read again after the interval)."""

    @property
    def tick_seconds(self) -> float:
        """How often the loop looks for due groups: often enough to spend the budget as it refills."""
        interval = self.settings.usage_sample_interval_seconds
        return max(0.05, min(interval, 1.0 / self.settings.usage_reads_per_second, 5.0))

    # --- what the stats read --------------------------------------------------------------------------------

    def container_sample(
        self, pod_uid: str, container: str, started: dt.datetime | None
    ) -> ContainerSample | None:
        """The figures of the container's current run, if read and fresh enough."""
        state = self._containers.get((pod_uid, container))
        if state is None or state.sample is None or state.started != started:
            return None
        age = (self.clock.now() - state.sample.time).total_seconds()
        return state.sample if age <= self.settings.usage_max_age_seconds else None

    def node_sample(self, node_names: Iterable[str]) -> NodeSample | None:
        """The nodes' cumulative CPU (summed) at the newest time any of them was read; None before a first read."""
        chosen = [n for n in node_names if n in self._node_time]
        if not chosen:
            return None
        total = sum(self._node_cpu.get(n, 0.0) for n in chosen)
        return NodeSample(max(self._node_time[n] for n in chosen), round(total * NANO))

    # --- the loop -----------------------------------------------------------------------------------------

    def wanted(self) -> None:
        """Someone reads the stats: keep (or start) sampling."""
        if not self.settings.usage_enabled:
            return
        self._last_demand = self.clock.monotonic()
        if self._task is None or self._task.done():
            # A fresh context: the reads draw from the usage lane, never from the requesting call's lane.
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _is_wanted(self) -> bool:
        return (
            self._last_demand is not None
            and self.clock.monotonic() - self._last_demand < self.settings.usage_idle_seconds
        )

    async def _run(self) -> None:
        logger.info("usage sampling started")
        while self._is_wanted():
            try:
                await self.sample_once()
            except Exception:
                logger.exception("usage sampling pass failed")
            await asyncio.sleep(self.tick_seconds)
        logger.info("usage sampling stopped: no stats read for %ss", self.settings.usage_idle_seconds)

    async def sample_once(self) -> int:
        """One pass: read the due groups, oldest sample first, while the budget lasts. Returns the reads made."""
        running = group_targets(self.directory())
        self._forget(running)
        interval = self.settings.usage_sample_interval_seconds
        moment = self.clock.monotonic()
        due = [t for t in running if moment - self._last_read.get(t.pod_uid, -math.inf) >= interval]
        due.sort(key=lambda t: self._last_read.get(t.pod_uid, -math.inf))
        reads = 0
        for target in due:
            moment = self.clock.monotonic()
            if self._bucket.tokens(moment) < 1:
                break
            self._bucket.reserve(moment)
            self._last_read[target.pod_uid] = moment
            now = self.clock.now()
            try:
                with ratelimit.interactive(self._lanes):
                    usage = await target.access.container_usage(
                        target.group, start=self._window_start(target, now), end=now
                    )
            except errors.AcinodeError as err:
                self.failures += 1
                logger.debug(
                    "usage read failed: %s", err, extra={"node": target.node, "container_group": target.group}
                )
                if isinstance(err, errors.ThrottledError):
                    break
                continue
            reads += 1
            self.reads += 1
            self._absorb(target, usage, now)
        return reads

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _forget(self, running: list[GroupTarget]) -> None:
        live = {(t.pod_uid, name) for t in running for name, _ in t.containers.values()}
        for key in [k for k in self._containers if k not in live]:
            del self._containers[key]
        uids = {t.pod_uid for t in running}
        for uid in [u for u in self._last_read if u not in uids]:
            del self._last_read[uid]

    def _window_start(self, target: GroupTarget, now: dt.datetime) -> dt.datetime:
        needs = []
        for name, started in target.containers.values():
            state = self._containers.get((target.pod_uid, name))
            if state is not None and state.started == started and state.integrated_until is not None:
                needs.append(state.integrated_until)
            else:
                needs.append(started or now)
        oldest = now - dt.timedelta(seconds=MAX_LOOKBACK_SECONDS)
        start = max(min(needs, default=now), oldest)
        return start.replace(second=0, microsecond=0) if start.second or start.microsecond else start

    def _absorb(self, target: GroupTarget, usage: api.GroupUsage, now: dt.datetime) -> None:
        grain = dt.timedelta(seconds=usage.grain_seconds)
        for aci_name, (name, started) in target.containers.items():
            figures = usage.containers.get(aci_name)
            if figures is None:
                continue
            key = (target.pod_uid, name)
            state = self._containers.get(key)
            if state is None or state.started != started:
                state = self._containers[key] = _ContainerState(started=started)
            newest: api.UsagePoint | None = None
            for point in figures.cpu_millicores:
                end = point.start + grain
                if end > now:
                    continue  # not complete: its average may still change
                if state.integrated_until is not None:
                    if point.start < state.integrated_until:
                        continue
                elif started is not None and end <= started:
                    continue  # before this run of the container
                core_seconds = point.average / 1000.0 * usage.grain_seconds
                state.cumulative_core_seconds += core_seconds
                state.integrated_until = end
                self._node_cpu[target.node] = self._node_cpu.get(target.node, 0.0) + core_seconds
                newest = point
            if newest is None or not figures.memory_bytes or state.integrated_until is None:
                continue
            memory = figures.memory_bytes[-1].average
            state.sample = ContainerSample(
                time=state.integrated_until,
                cpu_nano_cores=round(newest.average / 1000.0 * NANO),
                cpu_core_nano_seconds=round(state.cumulative_core_seconds * NANO),
                memory_bytes=round(memory),
            )
            if state.integrated_until > self._node_time.get(target.node, state.integrated_until - grain):
                self._node_time[target.node] = state.integrated_until
