"""The stats formats with real usage: the Summary and ``/metrics/resource`` as metrics-server reads them, and no
figures (never the requests) before a first sample."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubelet_builders import NODE, T0, FakeAci, FakeNode, fake_node, running_pod

from acinode.aci import api
from acinode.kubelet import server, stats, usage

Url = Callable[[str], str]
PROXIED = {"X-Forwarded-Uri": f"/api/v1/nodes/{NODE}/proxy/stats/summary"}


def sample(seconds: float, cores: float, cumulative: float, memory: int) -> usage.ContainerSample:
    return usage.ContainerSample(
        time=T0 + dt.timedelta(seconds=seconds),
        cpu_nano_cores=round(cores * 1e9),
        cpu_core_nano_seconds=round(cumulative * 1e9),
        memory_bytes=memory,
    )


def figures(name: str, *containers: tuple[str, usage.ContainerSample | None]) -> stats.PodFigures:
    return stats.PodFigures(
        namespace="default",
        name=name,
        uid=f"uid-{name}",
        started=T0,
        containers=tuple(stats.ContainerFigures(c, T0, s) for c, s in containers),
    )


def decode_like_metrics_server(
    text: str,
) -> tuple[dict[str, Any] | None, dict[tuple[str, str], dict[str, dict[str, Any]]]]:
    """metrics-server's ``decodeBatch``: series with ms timestamps; a container needs CPU and memory above 0 or
    its whole pod is dropped; the node needs both and a timestamp."""
    line = re.compile(r"^(\w+)(\{[^}]*\})? (\S+) (\d+)$")
    node: dict[str, Any] = {}
    pods: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        match = line.match(raw)
        assert match, f"not a sample with a timestamp: {raw!r}"
        name, labels, value, stamp = (
            match.group(1),
            dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")),
            float(match.group(3)),
            int(match.group(4)),
        )
        if name == "node_cpu_usage_seconds_total":
            node.update(cpu=value, time=stamp)
        elif name == "node_memory_working_set_bytes":
            node.update(memory=value, time=stamp)
        elif name.startswith("container_"):
            entry = pods.setdefault((labels["namespace"], labels["pod"]), {}).setdefault(
                labels["container"], {}
            )
            key = {
                "container_cpu_usage_seconds_total": "cpu",
                "container_memory_working_set_bytes": "memory",
            }.get(name)
            if key:
                entry.update({key: value, "time": stamp})
            elif name == "container_start_time_seconds":
                entry["start"] = value
    complete = {
        ref: containers
        for ref, containers in pods.items()
        if all(c.get("cpu", 0) > 0 and c.get("memory", 0) > 0 for c in containers.values())
    }
    whole_node = node if node.get("cpu", 0) > 0 and node.get("memory", 0) > 0 else None
    return whole_node, complete


def test_the_summary_carries_usage_of_sampled_containers_with_their_times() -> None:
    pods = [
        figures("web", ("main", sample(120, 0.4, 36, 30_000_000)), ("side", sample(60, 0.1, 6, 10_000_000)))
    ]
    body = stats.summary(NODE, T0, pods, usage.NodeSample(T0 + dt.timedelta(seconds=120), 50 * 10**9), T0)
    main, _side = body["pods"][0]["containers"]
    assert main["cpu"] == {
        "time": "2026-01-01T12:02:00Z",
        "usageNanoCores": 400_000_000,
        "usageCoreNanoSeconds": 36 * 10**9,
    }
    assert main["memory"] == {
        "time": "2026-01-01T12:02:00Z",
        "usageBytes": 30_000_000,
        "workingSetBytes": 30_000_000,
    }
    assert body["pods"][0]["cpu"]["usageNanoCores"] == 500_000_000
    assert body["pods"][0]["memory"]["workingSetBytes"] == 40_000_000
    assert body["node"]["cpu"]["usageCoreNanoSeconds"] == 50 * 10**9, "the node's own counter"
    assert body["node"]["memory"]["workingSetBytes"] == 40_000_000


def test_a_pod_with_an_unsampled_container_has_no_pod_totals_and_that_container_no_figures() -> None:
    pods = [figures("web", ("main", sample(60, 0.2, 12, 1)), ("late", None))]
    body = stats.summary(NODE, T0, pods, None, T0)
    pod = body["pods"][0]
    assert "cpu" not in pod and "memory" not in pod
    assert "cpu" not in pod["containers"][1]
    assert "cpu" not in body["node"], "no node figures before the node has a counter"


def test_metrics_resource_is_what_metrics_server_decodes() -> None:
    pods = [
        figures("web", ("main", sample(120, 0.4, 36, 30_000_000))),
        figures("new", ("main", None)),
    ]
    text = stats.resource_metrics(pods, usage.NodeSample(T0 + dt.timedelta(seconds=120), 36 * 10**9), T0)
    stamp = str(round((T0 + dt.timedelta(seconds=120)).timestamp() * 1000))
    assert (
        f'container_cpu_usage_seconds_total{{container="main",namespace="default",pod="web"}} 36.0 {stamp}'
        in text
    )
    assert (
        f'container_memory_working_set_bytes{{container="main",namespace="default",pod="web"}} 30000000.0 {stamp}'
        in text
    )
    assert f'pod_cpu_usage_seconds_total{{namespace="default",pod="web"}} 36.0 {stamp}' in text
    assert f"node_cpu_usage_seconds_total 36.0 {stamp}" in text
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    node, pods_seen = decode_like_metrics_server(text)
    assert node == {"cpu": 36.0, "memory": 30_000_000.0, "time": int(stamp)}
    assert list(pods_seen) == [("default", "web")], "the unsampled pod is left out, as metrics-server would"
    assert pods_seen[("default", "web")]["main"]["start"] == T0.timestamp()


def test_without_samples_only_start_times_are_served() -> None:
    text = stats.resource_metrics([figures("web", ("main", None))], None, T0)
    assert "container_cpu_usage_seconds_total{" not in text
    assert "node_cpu_usage_seconds_total" not in text
    assert 'container_start_time_seconds{container="main",namespace="default",pod="web"}' in text
    assert decode_like_metrics_server(text) == (None, {})


class RecentUsageAci(FakeAci):
    """Answers every usage read with two complete minutes just before ``end``: 300 then 500 millicores."""

    async def container_usage(self, name: str, *, start: dt.datetime, end: dt.datetime) -> api.GroupUsage:
        first = end.replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
        points = (api.UsagePoint(first, 300.0), api.UsagePoint(first + dt.timedelta(minutes=1), 500.0))
        memory = (api.UsagePoint(first, 64.0 * 2**20),)
        return api.GroupUsage(60.0, {"main": api.ContainerUsage(points, memory)})


@pytest.fixture
def node() -> FakeNode:
    served = fake_node()
    served.aci = RecentUsageAci()
    return served


async def test_the_kubelet_serves_no_figures_until_sampled_then_real_usage(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, kubelet: server.KubeletServer
) -> None:
    pod = node.add(running_pod("web", cpu="2", memory="4Gi"))
    now = dt.datetime.now(dt.UTC)
    pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] = (
        now - dt.timedelta(minutes=10)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with http.get(url("/stats/summary"), headers=PROXIED) as response:
        body = await response.json()
    (container,) = body["pods"][0]["containers"]
    assert "cpu" not in container and "memory" not in container, "never the requests"
    # That first request started the sampler: its first pass reads the group.
    sampler = kubelet.routes.usage
    for _ in range(100):
        if sampler.reads:
            break
        await asyncio.sleep(0.01)
    assert sampler.reads == 1
    async with http.get(url("/stats/summary"), headers=PROXIED) as response:
        body = await response.json()
    (container,) = body["pods"][0]["containers"]
    assert container["cpu"]["usageNanoCores"] == 500_000_000
    assert container["cpu"]["usageCoreNanoSeconds"] == 48 * 10**9
    assert container["memory"]["workingSetBytes"] == 64 * 2**20
    assert body["node"]["cpu"]["usageCoreNanoSeconds"] == 48 * 10**9
    async with http.get(url("/metrics/resource")) as response:
        text = await response.text()
    _node, pods = decode_like_metrics_server(text)
    assert pods[("default", "web")]["main"]["cpu"] == 48.0
