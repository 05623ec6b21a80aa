"""``/stats/summary`` and ``/metrics/resource``: what metrics-server and ``kubectl top`` read from a kubelet.

The figures are real usage, from Azure Monitor (``usage``: ``CpuUsage`` and ``MemoryUsage`` of each container
group, sampled within a read budget, one minute per value and 1-3 minutes late). A running container that has not
been sampled yet (or whose newest value is too old) is listed without figures, never with its requests; a pod has
figures only when all its running containers have. Terminated and waiting containers report nothing, as a kubelet
reports nothing for them.

Formats are the kubelet's: ``stats/v1alpha1`` Summary (``usageNanoCores``, ``usageCoreNanoSeconds``,
``workingSetBytes`` with their ``time``), and Prometheus text 0.0.4 with millisecond timestamps, the series
metrics-server ≥ 0.6 decodes (``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
``container_start_time_seconds``, ``pod_*``, ``node_*``). Each figure carries the time Azure Monitor's newest
interval ended, so metrics-server's rate over two scrapes is a rate over Azure Monitor's intervals; a repeated
timestamp makes it keep its older point, as it does for a kubelet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from acinode.kubelet import usage
from acinode.mapping import objects, timestamps
from acinode.pods import protocols

NANO = usage.NANO


@dataclasses.dataclass(frozen=True)
class ContainerFigures:
    name: str
    started: dt.datetime | None
    """When the running container started."""
    sample: usage.ContainerSample | None
    """Its usage, None until sampled."""


@dataclasses.dataclass(frozen=True)
class PodFigures:
    namespace: str
    name: str
    uid: str
    started: dt.datetime | None
    containers: tuple[ContainerFigures, ...]

    @property
    def is_sampled(self) -> bool:
        """Every running container has figures (a pod total of some containers would be a lie)."""
        return bool(self.containers) and all(c.sample is not None for c in self.containers)


def pod_figures(pod: objects.Pod, sampler: usage.UsageSampler | None) -> PodFigures | None:
    """The figures of a running pod (None for a pod that is not Running)."""
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return None
    metadata = pod.get("metadata", {})
    uid = str(metadata.get("uid", ""))
    running = usage.running_containers(pod)
    containers = tuple(
        ContainerFigures(
            name=name,
            started=started,
            sample=sampler.container_sample(uid, name, started) if sampler is not None else None,
        )
        for name, started in running.items()
    )
    return PodFigures(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=uid,
        started=timestamps.parse_rfc3339(status.get("startTime")),
        containers=containers,
    )


def node_pod_figures(
    node: protocols.ServedNode, sampler: usage.UsageSampler | None = None
) -> list[PodFigures]:
    figures = (pod_figures(pod, sampler) for pod in node.bound_pods())
    return [f for f in figures if f is not None]


def _samples(containers: Iterable[ContainerFigures]) -> list[usage.ContainerSample]:
    return [c.sample for c in containers if c.sample is not None]


def _cpu(samples: Sequence[usage.ContainerSample], cumulative: int | None = None) -> dict[str, Any]:
    return {
        "time": timestamps.rfc3339(max(s.time for s in samples)),
        "usageNanoCores": sum(s.cpu_nano_cores for s in samples),
        "usageCoreNanoSeconds": (
            sum(s.cpu_core_nano_seconds for s in samples) if cumulative is None else cumulative
        ),
    }


def _memory(samples: Sequence[usage.ContainerSample]) -> dict[str, Any]:
    used = sum(s.memory_bytes for s in samples)
    # Azure Monitor's MemoryUsage does not tell working set from page cache: both carry it.
    return {
        "time": timestamps.rfc3339(max(s.time for s in samples)),
        "usageBytes": used,
        "workingSetBytes": used,
    }


def summary(
    node_name: str,
    node_started: dt.datetime,
    pods: Sequence[PodFigures],
    node_usage: usage.NodeSample | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """A ``stats/v1alpha1`` Summary."""
    node: dict[str, Any] = {
        "nodeName": node_name,
        "startTime": timestamps.rfc3339(node_started),
        "systemContainers": [],
    }
    every = _samples(c for p in pods for c in p.containers)
    if every and node_usage is not None:
        node["cpu"] = _cpu(every, node_usage.cpu_core_nano_seconds)
        node["cpu"]["time"] = timestamps.rfc3339(node_usage.time)
        node["memory"] = _memory(every)
    pod_stats = []
    for pod in pods:
        containers = []
        for container in pod.containers:
            entry: dict[str, Any] = {
                "name": container.name,
                "startTime": timestamps.rfc3339(container.started or now),
            }
            if container.sample is not None:
                entry["cpu"], entry["memory"] = _cpu([container.sample]), _memory([container.sample])
            containers.append(entry)
        stats: dict[str, Any] = {
            "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "startTime": timestamps.rfc3339(pod.started or now),
            "containers": containers,
        }
        if pod.is_sampled:
            samples = _samples(pod.containers)
            stats["cpu"], stats["memory"] = _cpu(samples), _memory(samples)
        pod_stats.append(stats)
    return {"node": node, "pods": pod_stats}


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _ms(moment: dt.datetime) -> str:
    return str(round(moment.timestamp() * 1000))


def resource_metrics(
    pods: Sequence[PodFigures], node_usage: usage.NodeSample | None, now: dt.datetime
) -> str:
    """The kubelet's ``/metrics/resource`` (Prometheus text format 0.0.4), each sample with its timestamp in ms."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float, str]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {float(value)!r} {stamp}" for labels, value, stamp in samples)

    sampled = [(p, c, c.sample) for p in pods for c in p.containers if c.sample is not None]
    whole_pods = [(p, _samples(p.containers)) for p in pods if p.is_sampled]
    family(
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
        (
            (_labels(container=c.name, namespace=p.namespace, pod=p.name), c.started.timestamp(), _ms(now))
            for p in pods
            for c in p.containers
            if c.started
        ),
    )
    family(
        "container_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds (ACI: Azure Monitor CpuUsage)",
        (
            (
                _labels(container=c.name, namespace=p.namespace, pod=p.name),
                s.cpu_core_nano_seconds / NANO,
                _ms(s.time),
            )
            for p, c, s in sampled
        ),
    )
    family(
        "container_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the container in bytes (ACI: Azure Monitor MemoryUsage)",
        (
            (_labels(container=c.name, namespace=p.namespace, pod=p.name), s.memory_bytes, _ms(s.time))
            for p, c, s in sampled
        ),
    )
    family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        (
            (
                _labels(namespace=p.namespace, pod=p.name),
                sum(s.cpu_core_nano_seconds for s in samples) / NANO,
                _ms(max(s.time for s in samples)),
            )
            for p, samples in whole_pods
        ),
    )
    family(
        "pod_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the pod in bytes",
        (
            (
                _labels(namespace=p.namespace, pod=p.name),
                sum(s.memory_bytes for s in samples),
                _ms(max(s.time for s in samples)),
            )
            for p, samples in whole_pods
        ),
    )
    every = [s for _, _, s in sampled]
    if every and node_usage is not None:
        family(
            "node_cpu_usage_seconds_total",
            "counter",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds (its containers, as sampled)",
            [("", node_usage.cpu_core_nano_seconds / NANO, _ms(node_usage.time))],
        )
        family(
            "node_memory_working_set_bytes",
            "gauge",
            "[STABLE] Current working set of the node in bytes (its sampled containers)",
            [("", sum(s.memory_bytes for s in every), _ms(max(s.time for s in every)))],
        )
    family(
        "resource_scrape_error",
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics",
        [("", 0, _ms(now))],
    )
    return "\n".join(lines) + "\n"
