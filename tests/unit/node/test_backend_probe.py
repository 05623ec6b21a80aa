"""UsageProbe: one cheap ARM read decides readiness; a success is trusted for its TTL, a failure never cached."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from acinode import errors
from acinode.aci import api
from acinode.node import backend
from fakes.changes import Changes
from fakes.fake_clock import FakeClock

TTL = 30.0


class FakeUsageApi:
    """The one ``AciApi`` method the probe uses: ``location_usage``, answering, failing or held."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.changes = Changes()

    async def location_usage(self) -> Sequence[Any]:
        self.calls += 1
        self.changes.wake()
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return []


@pytest.fixture
def usage() -> FakeUsageApi:
    return FakeUsageApi()


@pytest.fixture
def probe(usage: FakeUsageApi, clock: FakeClock) -> backend.UsageProbe:
    return backend.UsageProbe(cast(api.AciApi, usage), TTL, 0.05, monotonic=clock.monotonic)


async def test_a_success_is_trusted_for_its_ttl(
    usage: FakeUsageApi, probe: backend.UsageProbe, clock: FakeClock
) -> None:
    await probe.check()
    clock.advance(TTL - 0.001)
    await probe.check()
    assert usage.calls == 1
    clock.advance(0.001)
    await probe.check()
    assert usage.calls == 2


async def test_failures_are_never_cached(usage: FakeUsageApi, probe: backend.UsageProbe) -> None:
    usage.error = errors.AuthenticationError("expired")
    for _ in range(3):
        with pytest.raises(errors.AuthenticationError):
            await probe.check()
    assert usage.calls == 3
    usage.error = None
    await probe.check()
    await probe.check()
    assert usage.calls == 4


async def test_a_failure_after_the_ttl_is_seen(
    usage: FakeUsageApi, probe: backend.UsageProbe, clock: FakeClock
) -> None:
    await probe.check()
    usage.error = errors.BackendUnavailableError("dns")
    await probe.check()  # still trusted
    clock.advance(TTL)
    with pytest.raises(errors.BackendUnavailableError):
        await probe.check()


async def test_a_slow_backend_is_unavailable_after_the_timeout(
    usage: FakeUsageApi, probe: backend.UsageProbe
) -> None:
    usage.gate = asyncio.Event()
    with pytest.raises(errors.BackendUnavailableError, match="did not answer"):
        await probe.check()
    usage.gate = None
    await probe.check()
    assert usage.calls == 2  # the timeout was not cached


async def test_concurrent_checks_share_one_call(usage: FakeUsageApi, probe: backend.UsageProbe) -> None:
    usage.gate = asyncio.Event()
    checks = [asyncio.create_task(probe.check()) for _ in range(3)]
    await usage.changes.wait_until(lambda: usage.calls == 1)
    usage.gate.set()
    await asyncio.gather(*checks)
    assert usage.calls == 1


async def test_concurrent_checks_share_a_failure_and_a_later_check_asks_again(
    usage: FakeUsageApi, probe: backend.UsageProbe
) -> None:
    usage.error = errors.TransientError("503")
    results = await asyncio.gather(*(probe.check() for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, errors.TransientError) for result in results)
    assert usage.calls == 1, "the checks that waited take the failure they waited for"
    usage.error = None
    await probe.check()
    assert usage.calls == 2, "a check asked after the failure reads again"


async def test_checks_waiting_behind_a_timed_out_check_do_not_each_wait_the_timeout(
    usage: FakeUsageApi, probe: backend.UsageProbe
) -> None:
    usage.gate = asyncio.Event()  # ARM does not answer
    results = await asyncio.gather(*(probe.check() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, errors.BackendUnavailableError) for result in results)
    assert usage.calls == 1


async def test_nodes_that_reach_arm_the_same_way_share_one_check_per_ttl(clock: FakeClock) -> None:
    shared = backend.ProbeResults()
    same = [FakeUsageApi() for _ in range(3)]
    other = FakeUsageApi()
    probes = [
        backend.UsageProbe(
            cast(api.AciApi, u), TTL, 0.05, monotonic=clock.monotonic, shared=shared, key="sub-a"
        )
        for u in same
    ]
    elsewhere = backend.UsageProbe(
        cast(api.AciApi, other), TTL, 0.05, monotonic=clock.monotonic, shared=shared, key="sub-b"
    )
    await asyncio.gather(*(p.check() for p in probes), elsewhere.check())
    assert sum(u.calls for u in same) == 1, "one read for the three nodes of one subscription and credential"
    assert other.calls == 1, "another subscription or credential is checked on its own"
    clock.advance(TTL)
    same[1].error = errors.AuthenticationError("expired")
    with pytest.raises(errors.AuthenticationError):
        await probes[1].check()
    with pytest.raises(errors.AuthenticationError):
        await probes[1].check()  # a failure is shared by nobody and cached for nobody
    await probes[0].check()
    assert same[0].calls == 2 and same[1].calls == 2
