"""The one clock of the pod controller: monotonic seconds for intervals and holds, UTC wall time for timestamps.

Nothing in ``acinode.pods`` reads ``time.monotonic()`` or ``datetime.now()`` itself: every part takes a ``Clock``
(``SystemClock`` in production, ``tests/fakes/fake_clock.FakeClock`` in unit tests), so a test decides what time
it is and nothing needs a real sleep to be tested.
"""

from __future__ import annotations

import datetime
import time
from typing import Protocol


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
        return datetime.datetime.now(datetime.UTC)


SYSTEM = SystemClock()
