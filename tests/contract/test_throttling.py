"""The client under ARM throttling (the emulator's token buckets and injected 429s): it stays under its
budget, pauses as a whole when told, never resends early, and gives up with ThrottledError only after its
budget."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable

import pytest

from acinode import errors, types
from contract import emulated

WEB = types.ContainerGroupName("web")


async def enable_throttling(emulator: emulated.Emulator, read_burst: int, read_rate: float) -> None:
    await emulator.hook("PATCH", "config", {"throttle": True, "readBurst": read_burst, "readRate": read_rate})
    await emulator.hook("POST", "throttle/reset")
    await emulator.hook("POST", "stats/reset")


async def test_a_client_within_its_budget_never_draws_a_429(
    clean_emulator, resource_group, client_settings
) -> None:
    # ARM side: 10 reads at once, 10/s. Client side: 8 at once, 8/s. 40 reads as fast as the client allows.
    await enable_throttling(clean_emulator, read_burst=10, read_rate=10.0)
    budget = dataclasses.replace(client_settings, reads_per_second=8.0, read_burst=8)
    async with emulated.make_client(clean_emulator, resource_group, budget) as aci:
        started = time.monotonic()
        await asyncio.gather(*(aci.list_groups() for _ in range(40)))
        elapsed = time.monotonic() - started
        assert aci.counter.snapshot() == {("list", "200"): 40}
    stats = await clean_emulator.hook("GET", "stats")
    assert "429" not in str(stats["requests"])
    assert elapsed >= (40 - 8) / 8.0 - 0.2  # it really held itself to 8/s


async def test_one_429_on_a_read_pauses_every_read_of_the_client(
    clean_emulator, resource_group, client_settings
) -> None:
    async with emulated.make_client(clean_emulator, resource_group, client_settings) as aci:
        await aci.create_or_update(WEB, emulated.container_group())
        await clean_emulator.hook(
            "POST",
            "faults",
            {
                "operation": "ContainerGroups_Get",
                "status": 429,
                "code": "TooManyRequests",
                "retryAfter": 2,
                "count": 1,
            },
        )
        aci.counter.reset()
        started = time.monotonic()
        first = asyncio.create_task(aci.get(WEB))

        async def throttled() -> bool:
            return aci.counter.count("get", "429") == 1

        await emulated.wait_for(throttled, within=10, what="the first 429", interval=0.01)

        # Other readers arrive during the pause: they wait for its end, none is sent early. A write does not:
        # ARM limits reads and writes separately.
        async def finished_after(call: Awaitable[object]) -> float:
            await call
            return time.monotonic() - started

        reads = [first, *(aci.get(WEB) for _ in range(5)), aci.list_groups()]
        *read_times, write_time = await asyncio.gather(
            *(finished_after(call) for call in reads),
            finished_after(aci.create_or_update(types.ContainerGroupName("api"), emulated.container_group())),
        )
    assert min(read_times) >= 2.0
    assert write_time < 2.0
    assert aci.counter.snapshot() == {
        ("get", "429"): 1,
        ("get", "200"): 6,
        ("list", "200"): 1,
        ("create_or_update", "201"): 1,
    }


async def test_endless_429s_surface_as_throttled_after_the_budget(
    clean_emulator, resource_group, client_settings
) -> None:
    budget = dataclasses.replace(client_settings, throttle_retries=2)
    async with emulated.make_client(clean_emulator, resource_group, budget) as aci:
        await clean_emulator.hook(
            "POST",
            "faults",
            {"operation": "ContainerGroups_Get", "status": 429, "code": "TooManyRequests", "retryAfter": 1},
        )
        started = time.monotonic()
        with pytest.raises(errors.ThrottledError) as throttled:
            await aci.get(WEB)
        elapsed = time.monotonic() - started
        assert throttled.value.retry_after_seconds > 0
        assert aci.counter.snapshot() == {("get", "429"): 3}  # the first send and two retries, no more
        assert elapsed >= 2.0  # each retry waited the second the server asked for


async def test_an_over_eager_client_slows_down_and_stays_bounded(
    clean_emulator, resource_group, client_settings
) -> None:
    """A client configured above ARM's real limit (as when other tools share the subscription) still never
    sends more than 1 + throttle_retries requests per call, and pauses after each 429."""
    await enable_throttling(clean_emulator, read_burst=5, read_rate=5.0)
    async with emulated.make_client(clean_emulator, resource_group, client_settings) as aci:  # 200 reads/s
        started = time.monotonic()
        results = await asyncio.gather(*(aci.list_groups() for _ in range(20)), return_exceptions=True)
        elapsed = time.monotonic() - started
        succeeded = sum(not isinstance(r, BaseException) for r in results)
        assert all(isinstance(r, (list, errors.ThrottledError)) for r in results), results
        sent = aci.counter.count("list")
        assert sent <= 20 * (1 + client_settings.throttle_retries)
        assert aci.counter.count("list", "200") == succeeded
        assert aci.counter.count("list", "429") >= 1
        # It slowed down to the server's pace instead of firing 200/s: 15 reads beyond the burst at 5/s.
        assert elapsed >= (succeeded - 5) / 5.0 - 0.5
