"""The one clock of acinode: monotonic seconds for intervals and holds, UTC wall time for timestamps.

Code that tells time takes a ``Clock`` (``SystemClock`` in production, ``tests/fakes/fake_clock.FakeClock`` in unit
tests) or, where only wall time matters, a ``WallClock`` (``utc_now``), so that a test decides what time it is and
nothing needs a real sleep to be tested. Nothing in ``acinode.pods`` reads ``time.monotonic()`` or
``datetime.now()`` itself.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Protocol

WallClock = Callable[[], datetime.datetime]
"""Wall time only: returns the current time, timezone-aware UTC."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, holds, look times)."""
        ...

    def now(self) -> datetime.datetime:
        """The current time, timezone-aware UTC (what goes into pod statuses and Events)."""
        ...


class SystemClock:
    """The real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return utc_now()


SYSTEM = SystemClock()
