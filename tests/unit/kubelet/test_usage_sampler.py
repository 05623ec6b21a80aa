"""The usage sampler on a fake clock: what it reads (window, budget, round-robin), what it integrates, what it serves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kubelet_builders import T0, FakeAci, FakeNode, fake_node, running_pod

from acinode import errors, settings
from acinode.aci import api
from acinode.kubelet import usage
from fakes.fake_clock import FakeClock

MINUTE = 60.0


class UsageAci(FakeAci):
    """FakeAci that answers usage reads from ``points``: group → container → [(minute, millicores, bytes)]."""

    def __init__(self) -> None:
        super().__init__()
        self.points: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
        self.usage_calls: list[tuple[str, dt.datetime, dt.datetime]] = []
        self.usage_error: errors.AcinodeError | None = None

    async def container_usage(self, name: str, *, start: dt.datetime, end: dt.datetime) -> api.GroupUsage:
        self.usage_calls.append((name, start, end))
        if self.usage_error is not None:
            raise self.usage_error
        containers = {}
        for container, points in self.points.get(name, {}).items():
            chosen = [p for p in points if start <= at(p[0]) < end]
            containers[container] = api.ContainerUsage(
                cpu_millicores=tuple(api.UsagePoint(at(m), cpu) for m, cpu, _ in chosen),
                memory_bytes=tuple(api.UsagePoint(at(m), memory) for m, _, memory in chosen),
            )
        return api.GroupUsage(grain_seconds=MINUTE, containers=containers)


def at(minute: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def kubelet_settings(**overrides: Any) -> settings.KubeletSettings:
    values: dict[str, Any] = {"usage_reads_per_second": 100.0, "usage_read_burst": 100, **overrides}
    return settings.KubeletSettings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def aci() -> UsageAci:
    return UsageAci()


@pytest.fixture
def node(aci: UsageAci) -> FakeNode:
    served = fake_node()
    served.aci = aci
    return served


def sampler_for(node: FakeNode, clock: FakeClock, **overrides: Any) -> usage.UsageSampler:
    return usage.UsageSampler(lambda: [node], kubelet_settings(**overrides), clock_=clock)


def group_of(name: str) -> str:
    return f"default-{name}"


async def test_nothing_is_served_before_a_first_read(node: FakeNode, clock: FakeClock) -> None:
    node.add(running_pod("web"))
    sampler = sampler_for(node, clock)
    assert sampler.container_sample("uid-default-web", "main", T0) is None
    assert sampler.node_sample(["vn-1"]) is None


async def test_a_read_integrates_the_complete_intervals_since_the_container_started(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    node.add(running_pod("web"))
    aci.points[group_of("web")] = {"main": [(0, 200.0, 10e6), (1, 400.0, 20e6), (2, 800.0, 30e6)]}
    clock.advance(150)  # 12:02:30: the 12:02 interval is not complete
    sampler = sampler_for(node, clock)
    assert await sampler.sample_once() == 1
    ((group, start, end),) = aci.usage_calls
    assert (group, start, end) == (group_of("web"), T0, at(2.5))
    sample = sampler.container_sample("uid-default-web", "main", T0)
    assert sample == usage.ContainerSample(
        time=at(2), cpu_nano_cores=400_000_000, cpu_core_nano_seconds=36 * 10**9, memory_bytes=30_000_000
    )
    assert sampler.node_sample(["vn-1"]) == usage.NodeSample(at(2), 36 * 10**9)


async def test_a_group_is_read_once_per_interval_and_then_from_where_it_left_off(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    node.add(running_pod("web"))
    aci.points[group_of("web")] = {"main": [(m, 1000.0, 1e6) for m in range(10)]}
    clock.advance(150)
    sampler = sampler_for(node, clock, usage_sample_interval_seconds=60.0)
    await sampler.sample_once()
    clock.advance(30)
    assert await sampler.sample_once() == 0, "read again within the interval"
    clock.advance(30)  # 12:03:30
    assert await sampler.sample_once() == 1
    assert aci.usage_calls[-1][1] == at(2), "the next read starts where the counter stopped"
    sample = sampler.container_sample("uid-default-web", "main", T0)
    assert sample is not None
    assert (sample.time, sample.cpu_core_nano_seconds) == (at(3), 180 * 10**9)


async def test_the_budget_bounds_each_pass_and_reads_go_round_robin(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    for name in ("a", "b", "c"):
        node.add(running_pod(name))
    clock.advance(90)
    sampler = sampler_for(
        node, clock, usage_reads_per_second=0.1, usage_read_burst=2, usage_sample_interval_seconds=10.0
    )
    assert await sampler.sample_once() == 2
    assert await sampler.sample_once() == 0, "no token left"
    clock.advance(10)  # one token; every group is due again, and c was never read
    assert await sampler.sample_once() == 1
    clock.advance(10)
    assert await sampler.sample_once() == 1
    assert [call[0] for call in aci.usage_calls] == [group_of(n) for n in ("a", "b", "c", "a")]


async def test_a_failed_read_is_retried_after_the_interval_and_throttling_ends_the_pass(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    node.add(running_pod("a"))
    node.add(running_pod("b"))
    sampler = sampler_for(node, clock, usage_sample_interval_seconds=60.0)
    aci.usage_error = errors.ThrottledError("slow down", retry_after_seconds=5)
    assert await sampler.sample_once() == 0
    assert len(aci.usage_calls) == 1, "a 429 ends the pass"
    aci.usage_error = errors.TransientError("ARM hiccup")
    assert await sampler.sample_once() == 0
    assert len(aci.usage_calls) == 2 and sampler.failures == 2
    assert await sampler.sample_once() == 0 and len(aci.usage_calls) == 2, "both wait for the interval"


async def test_a_restart_starts_a_new_counter_while_the_nodes_keeps_growing(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    pod = node.add(running_pod("web"))
    aci.points[group_of("web")] = {"main": [(m, 1000.0, 1e6) for m in range(10)]}
    clock.advance(120)
    sampler = sampler_for(node, clock, usage_sample_interval_seconds=60.0)
    await sampler.sample_once()
    node_before = sampler.node_sample(["vn-1"])
    assert node_before is not None and node_before.cpu_core_nano_seconds == 120 * 10**9
    restarted = at(2)
    pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2026-01-01T12:02:00Z"}}
    clock.advance(120)  # 12:04
    await sampler.sample_once()
    assert aci.usage_calls[-1][1] == restarted
    assert sampler.container_sample("uid-default-web", "main", T0) is None, "the old run is not served"
    sample = sampler.container_sample("uid-default-web", "main", restarted)
    assert sample is not None and sample.cpu_core_nano_seconds == 120 * 10**9
    node_after = sampler.node_sample(["vn-1"])
    assert node_after is not None and node_after.cpu_core_nano_seconds == 240 * 10**9


async def test_old_figures_are_not_served_and_pods_that_stopped_are_forgotten(
    node: FakeNode, aci: UsageAci, clock: FakeClock
) -> None:
    pod = node.add(running_pod("web"))
    aci.points[group_of("web")] = {"main": [(0, 500.0, 1e6)]}
    clock.advance(90)
    sampler = sampler_for(node, clock, usage_max_age_seconds=300.0, usage_sample_interval_seconds=60.0)
    await sampler.sample_once()
    assert sampler.container_sample("uid-default-web", "main", T0) is not None
    aci.usage_error = errors.TransientError("Azure Monitor unavailable")
    clock.advance(300)
    await sampler.sample_once()
    assert sampler.container_sample("uid-default-web", "main", T0) is None, "too old to serve"
    aci.usage_error = None
    pod["status"]["phase"] = "Succeeded"
    await sampler.sample_once()
    assert sampler.container_sample("uid-default-web", "main", T0) is None
    clock.advance(60)
    calls = len(aci.usage_calls)
    await sampler.sample_once()
    assert len(aci.usage_calls) == calls, "a pod that is not running is not read"


async def test_sampling_runs_only_while_stats_are_read(node: FakeNode, clock: FakeClock) -> None:
    sampler = sampler_for(node, clock, usage_idle_seconds=10.0)
    assert not sampler._is_wanted()
    sampler.wanted()
    assert sampler._is_wanted()
    clock.advance(10)
    assert not sampler._is_wanted()
    await sampler.close()
    disabled = sampler_for(node, clock, usage_enabled=False)
    disabled.wanted()
    assert not disabled._is_wanted()
