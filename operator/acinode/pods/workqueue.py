"""A keyed work queue with client-go's semantics, for asyncio.

A key is queued at most once, however often it is added; a key is never handed to two workers at once (one
added while it is being processed is handed out again after ``done``); ``add_after`` schedules a retry. The
reconciler's keys name a pod or a container group, never a snapshot of one: whoever processes a key reads the
latest state, so coalescing many adds into one pass loses nothing.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    def __init__(self) -> None:
        self._order: collections.deque[Key] = collections.deque()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        """Keys added while being processed: queued again by ``done``."""
        self._ready = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._due: dict[Key, float] = {}

    def __len__(self) -> int:
        """Keys waiting to be handed out (not counting those being processed)."""
        return len(self._order)

    @property
    def processing(self) -> int:
        return len(self._processing)

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
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if key in self._timers:
            if self._due[key] <= due:
                return
            self._timers[key].cancel()
        self._due[key] = due
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._due.pop(key, None)
        self.add(key)

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
