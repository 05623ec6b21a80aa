"""A keyed work queue with client-go's semantics, for asyncio, and its rate-limited form.

``WorkQueue``: a key is queued at most once, however often it is added; a key is never handed to two workers at
once (one added while it is being processed is handed out again after ``done``); ``add_after`` schedules an add.
The controller's keys name a pod or a container group, never a snapshot of one: whoever processes a key reads the
latest state, so coalescing many adds into one pass loses nothing.

``RateLimitedQueue`` adds client-go's rate-limited queue: ``add_rate_limited(key, kind)`` counts a failure of that key *of
that kind* and schedules the key after the kind's policy delay (``retry.RetryPolicies``); ``forget`` resets the
counters after a success. A retried key is also *held*: ``held_for`` tells how long it must wait, so an event
arriving during a back-off does not retry it early.

Scheduled adds fire from the event loop's timers; ``fire_due`` adds at once every key whose time has come on the
queue's ``Clock`` (tests advance a fake clock and call it: no real sleep).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

from acinode.pods import clock, retry

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    def __init__(self, clock_: clock.Clock = clock.SYSTEM) -> None:
        self.clock = clock_
        self._order: collections.deque[Key] = collections.deque()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        """Keys added while being processed: queued again by ``done``."""
        self._ready = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._due: dict[Key, float] = {}
        """Scheduled adds, by the queue clock's monotonic time."""

    def __len__(self) -> int:
        """Keys waiting to be handed out (not counting those being processed)."""
        return len(self._order)

    @property
    def processing(self) -> int:
        return len(self._processing)

    def scheduled(self, key: Key) -> float | None:
        """When (queue clock, monotonic) a scheduled add of ``key`` is due; None if none is."""
        return self._due.get(key)

    def add(self, key: Key) -> None:
        if key in self._queued:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        self._queued.add(key)
        self._order.append(key)
        self._ready.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Add ``key`` in ``delay`` seconds, unless an earlier add of it is already scheduled."""
        if delay <= 0:
            self.add(key)
            return
        due = self.clock.monotonic() + delay
        if key in self._due:
            if self._due[key] <= due:
                return
            self._timers[key].cancel()
        self._due[key] = due
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._due.pop(key, None)
        self.add(key)

    def fire_due(self) -> int:
        """Add now every scheduled key that is due on the queue's clock; returns how many."""
        now = self.clock.monotonic()
        due = [key for key, at in self._due.items() if at <= now]
        for key in due:
            self._timers[key].cancel()
            self._fire(key)
        return len(due)

    async def get(self) -> Key:
        """The next key, marked as being processed until ``done(key)``."""
        while not self._order:
            self._ready.clear()
            await self._ready.wait()
        key = self._order.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        """Cancel scheduled adds (the queue's owner is stopping)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()


class RateLimitedQueue(WorkQueue[Key]):
    """A ``WorkQueue`` with per-key, per-kind failure counters and the retry policy of each kind injected."""

    def __init__(self, policies: retry.RetryPolicies, clock_: clock.Clock = clock.SYSTEM) -> None:
        super().__init__(clock_)
        self.policies = policies
        self._failures: dict[Key, collections.Counter[retry.FailureKind]] = {}
        self._held_until: dict[Key, float] = {}

    def failures(self, key: Key, kind: retry.FailureKind) -> int:
        """Failures of ``kind`` counted for ``key`` since it was last forgotten."""
        counts = self._failures.get(key)
        return counts[kind] if counts is not None else 0

    def add_rate_limited(self, key: Key, kind: retry.FailureKind, *, at_least: float = 0.0) -> float:
        """Count one more failure of ``kind`` for ``key``, hold it for the policy's delay (at least
        ``at_least``, e.g. a Retry-After) and schedule it then. Returns the delay."""
        counts = self._failures.setdefault(key, collections.Counter())
        counts[kind] += 1
        delay = max(self.policies.delay(kind, counts[kind]), at_least)
        self._held_until[key] = self.clock.monotonic() + delay
        self.add_after(key, delay)
        return delay

    def held_for(self, key: Key) -> float:
        """Seconds ``key`` must still wait after its last failure (0 when it may be processed)."""
        until = self._held_until.get(key)
        if until is None:
            return 0.0
        left = until - self.clock.monotonic()
        if left <= 0:
            del self._held_until[key]
            return 0.0
        return left

    def forget(self, key: Key, kind: retry.FailureKind | None = None) -> None:
        """Reset ``key``'s failure counter of ``kind`` (every kind, and its hold, when None): it succeeded, or
        it is gone."""
        if kind is not None:
            self._failures.get(key, collections.Counter()).pop(kind, None)
            return
        self._failures.pop(key, None)
        self._held_until.pop(key, None)
