"""Virtual time for the ACI client's unit tests: the rate limiter and the throttling policy sleep on it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

import pytest

from acinode import settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every unit test of the client is fast: 2 s is generous (virtual time, no network).
    for item in items:
        if "unit/aci" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(2))


class VirtualClock:
    """A ``ratelimit.Clock`` whose time moves only when ``run`` finds every task asleep on it.

    ``run`` drives a set of coroutines to completion: it lets the loop settle, then jumps to the earliest
    deadline and wakes whoever sleeps until then. No real time passes, so tests of minutes of throttling take
    milliseconds and are exact.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def elapsed(self) -> float:
        return self._now - self.start

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self) -> bool:
        """Jump to the next deadline and wake its sleepers; False if nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        deadline = self._sleepers[0][0]
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        return True

    async def run(self, *coros: Coroutine[Any, Any, Any], max_steps: int = 100_000) -> list[Any]:
        """Run ``coros`` concurrently (started in order) on virtual time; return results or exceptions."""
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        for _ in range(max_steps):
            await self.settle()
            if all(task.done() for task in tasks):
                break
            if not await self.advance():
                pending = sum(not task.done() for task in tasks)
                raise AssertionError(f"{pending} task(s) blocked on something other than the virtual clock")
        else:
            raise AssertionError("virtual time ran for too many steps")
        return [task.exception() or task.result() for task in tasks]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def aci_settings() -> settings.AciSettings:
    """Small numbers, so that tests can reason about each token."""
    return settings.AciSettings(
        reads_per_second=2.0,
        read_burst=3,
        writes_per_second=1.0,
        write_burst=2,
        creates_per_second=0.5,
        create_burst=2,
        deletes_per_second=0.5,
        delete_burst=2,
        max_queue_seconds=30.0,
        throttle_retries=3,
        throttle_default_pause_seconds=5.0,
    )
