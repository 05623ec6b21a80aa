"""``/stats/summary`` and ``/metrics/resource``: what metrics-server and ``kubectl top`` read from a kubelet.

Where the figures come from: ACI's container-group API reports **no live CPU or memory usage** (only Azure
Monitor has sampled usage, through another API and with minutes of delay). What is known is what each running
container was given, which is also what ACI bills: its CPU and memory requests as the mapping sized them
(``mapping.resources``: defaults for containers without requests, group totals raised to cover limits). With
``report_requests_as_usage`` (the default) those are reported as the usage of running containers — a constant
line at the reservation — and cumulative CPU time is requests × time since the container started. With it off
the summary lists pods and containers without figures, and ``/metrics/resource`` has only start times.
Terminated and waiting containers report nothing, as a kubelet reports nothing for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from acinode.mapping import objects, placement, problems, resources, timestamps
from acinode.pods import protocols

NANO = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class ContainerFigures:
    name: str
    started: dt.datetime | None
    """When the running container started; None when it is not running."""
    cpu_cores: float
    memory_bytes: int


@dataclasses.dataclass(frozen=True)
class PodFigures:
    namespace: str
    name: str
    uid: str
    started: dt.datetime | None
    containers: tuple[ContainerFigures, ...]


def pod_figures(pod: objects.Pod, where: placement.GroupPlacement) -> PodFigures | None:
    """The figures of a pod that has run (None for a pod that ended or never started)."""
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return None
    spec = pod.get("spec", {})
    sized = resources.group_resources_from_pod(spec, where, None, problems.Problems())
    running = {
        s.get("name"): timestamps.parse_rfc3339(s.get("state", {}).get("running", {}).get("startedAt"))
        for s in status.get("containerStatuses", [])
        if "running" in s.get("state", {})
    }
    containers = []
    for container, size in zip(spec.get("containers", []), sized.containers, strict=False):
        name = str(container.get("name", ""))
        if name not in running:
            continue
        containers.append(
            ContainerFigures(
                name=name,
                started=running[name],
                cpu_cores=resources.cpu_from_steps(size.request_cpu),
                memory_bytes=resources.bytes_from_memory_steps(size.request_memory),
            )
        )
    metadata = pod.get("metadata", {})
    return PodFigures(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        started=timestamps.parse_rfc3339(status.get("startTime")),
        containers=tuple(containers),
    )


def node_pod_figures(node: protocols.ServedNode) -> list[PodFigures]:
    where = node.placement
    figures = (pod_figures(pod, where) for pod in node.bound_pods())
    return [f for f in figures if f is not None]


def _cpu(figures: Iterable[ContainerFigures], now: dt.datetime) -> dict[str, Any]:
    cores = sum(c.cpu_cores for c in figures)
    seconds = sum(c.cpu_cores * max(0.0, (now - c.started).total_seconds()) for c in figures if c.started)
    return {
        "time": timestamps.rfc3339(now),
        "usageNanoCores": round(cores * NANO),
        "usageCoreNanoSeconds": round(seconds * NANO),
    }


def _memory(figures: Iterable[ContainerFigures], now: dt.datetime) -> dict[str, Any]:
    used = sum(c.memory_bytes for c in figures)
    return {"time": timestamps.rfc3339(now), "usageBytes": used, "workingSetBytes": used, "rssBytes": used}


def summary(
    node_name: str,
    node_started: dt.datetime,
    pods: Sequence[PodFigures],
    now: dt.datetime,
    report_usage: bool,
) -> dict[str, Any]:
    """A ``stats/v1alpha1`` Summary."""
    every = [c for p in pods for c in p.containers]
    node: dict[str, Any] = {
        "nodeName": node_name,
        "startTime": timestamps.rfc3339(node_started),
        "systemContainers": [],
    }
    if report_usage:
        node["cpu"], node["memory"] = _cpu(every, now), _memory(every, now)
    pod_stats = []
    for pod in pods:
        containers = []
        for container in pod.containers:
            entry: dict[str, Any] = {
                "name": container.name,
                "startTime": timestamps.rfc3339(container.started or now),
            }
            if report_usage:
                entry["cpu"], entry["memory"] = _cpu([container], now), _memory([container], now)
            containers.append(entry)
        stats: dict[str, Any] = {
            "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "startTime": timestamps.rfc3339(pod.started or now),
            "containers": containers,
        }
        if report_usage:
            stats["cpu"], stats["memory"] = _cpu(pod.containers, now), _memory(pod.containers, now)
        pod_stats.append(stats)
    return {"node": node, "pods": pod_stats}


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def resource_metrics(pods: Sequence[PodFigures], now: dt.datetime, report_usage: bool) -> str:
    """The kubelet's ``/metrics/resource`` (Prometheus text format 0.0.4), with millisecond timestamps."""
    ms = str(round(now.timestamp() * 1000))
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {float(value)!r} {ms}" for labels, value in samples)

    every = [c for p in pods for c in p.containers]
    family(
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
        (
            (_labels(container=c.name, namespace=p.namespace, pod=p.name), c.started.timestamp())
            for p in pods
            for c in p.containers
            if c.started
        ),
    )
    if report_usage:
        cpu, memory = _cpu(every, now), _memory(every, now)
        family(
            "container_cpu_usage_seconds_total",
            "counter",
            "[STABLE] Cumulative cpu time consumed by the container in core-seconds (ACI: requests × run time)",
            (
                (
                    _labels(container=c.name, namespace=p.namespace, pod=p.name),
                    _cpu([c], now)["usageCoreNanoSeconds"] / NANO,
                )
                for p in pods
                for c in p.containers
            ),
        )
        family(
            "container_memory_working_set_bytes",
            "gauge",
            "[STABLE] Current working set of the container in bytes (ACI: the memory request)",
            (
                (_labels(container=c.name, namespace=p.namespace, pod=p.name), c.memory_bytes)
                for p in pods
                for c in p.containers
            ),
        )
        family(
            "pod_cpu_usage_seconds_total",
            "counter",
            "[STABLE] Cumulative cpu time consumed by the pod in core-seconds (ACI: requests × run time)",
            (
                (
                    _labels(namespace=p.namespace, pod=p.name),
                    _cpu(p.containers, now)["usageCoreNanoSeconds"] / NANO,
                )
                for p in pods
            ),
        )
        family(
            "pod_memory_working_set_bytes",
            "gauge",
            "[STABLE] Current working set of the pod in bytes (ACI: the memory requests)",
            (
                (_labels(namespace=p.namespace, pod=p.name), _memory(p.containers, now)["workingSetBytes"])
                for p in pods
            ),
        )
        family(
            "node_cpu_usage_seconds_total",
            "counter",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds (ACI: its running pods' requests)",
            [("", cpu["usageCoreNanoSeconds"] / NANO)],
        )
        family(
            "node_memory_working_set_bytes",
            "gauge",
            "[STABLE] Current working set of the node in bytes (ACI: its running pods' requests)",
            [("", memory["workingSetBytes"])],
        )
    family(
        "resource_scrape_error",
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics",
        [("", 0)],
    )
    return "\n".join(lines) + "\n"
