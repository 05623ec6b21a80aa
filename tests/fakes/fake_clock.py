"""FakeClock: wall and monotonic time that move only when a test says so."""

from __future__ import annotations

import datetime

EPOCH = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


class FakeClock:
    """``now`` (an aware UTC datetime, for timestamps) and ``monotonic`` (seconds, for intervals and TTLs).

    Pass ``clock.now`` where the code takes a wall clock and ``clock.monotonic`` where it takes a monotonic one.
    """

    def __init__(self, start: datetime.datetime = EPOCH, monotonic_start: float = 1000.0) -> None:
        self._now = start
        self._monotonic = monotonic_start

    def now(self) -> datetime.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += datetime.timedelta(seconds=seconds)
        self._monotonic += seconds

    def stamp(self, offset_seconds: float = 0.0) -> str:
        """``now`` (plus an offset) formatted as Kubernetes writes condition times."""
        when = self._now + datetime.timedelta(seconds=offset_seconds)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
