"""Client-side rate limiting of ARM requests, so that steady-state operation never draws a 429.

ARM throttles per subscription (reads, writes) and ACI adds its own limits on container-group creates and
deletes. Each request draws one token from every budget it counts against (a GET from ``read``; a group PUT
from ``write`` and ``create``). Buckets hand out *reservations* (GCRA): a caller learns at once when it may
send, so waiting callers go in arrival order and a caller whose turn is too far away fails fast with
``ThrottledError`` instead of queueing for minutes.

When ARM answers 429 anyway, ``pause`` stops the budgets the throttled request counted against for the
Retry-After the server asked for (their callers wait, nothing is dropped) and empties those buckets, so work
resumes at the refill rate, not in a burst. ARM keeps separate read and write limits per subscription, so a
throttled GET holds every read but not the PUTs and DELETEs of a burst, and a throttled PUT holds every write.

Interactive calls (the kubelet API's ``logs -f`` polls, exec starts and the reads behind them) are sent inside
``interactive(lanes)``: then ``route`` sends them to a lane of their own, one small bucket per subscription
limiter, so they never take a token the reconciler's creates, deletes and status reads need. They do not queue
behind a pause ARM asked of the subscription either: while one holds their kind of request, they fail at once.

No SDK here, and time comes from an injectable ``Clock`` so tests run on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import enum
import logging
import math
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from acinode import errors, settings

logger = logging.getLogger(__name__)


class Clock(Protocol):
    """Monotonic time and sleeping on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Budget(enum.Enum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DELETE = "delete"
    INTERACTIVE = "interactive"
    """The interactive lane's only budget (see ``InteractiveLanes``)."""


def budgets_for(method: str, operation: str) -> tuple[Budget, ...]:
    """The budgets one request counts against: reads are GETs; every other method is a write, and
    container-group PUTs and DELETEs also count against ACI's own create and delete limits."""
    if method.upper() in ("GET", "HEAD"):
        return (Budget.READ,)
    if operation == "create_or_update":
        return (Budget.WRITE, Budget.CREATE)
    if operation == "delete":
        return (Budget.WRITE, Budget.DELETE)
    return (Budget.WRITE,)


class TokenBucket:
    """A token bucket as a generic cell rate algorithm: ``rate_per_second`` refill, ``burst`` tokens at most.

    ``reserve`` takes a token now or in the future and returns when it may be used. ``_tat`` is the
    theoretical arrival time: the moment the bucket would be full again if nothing else were taken.
    """

    def __init__(self, rate_per_second: float, burst: int) -> None:
        if rate_per_second <= 0 or not math.isfinite(rate_per_second):
            raise ValueError(f"rate must be a positive number, got {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._interval = 1.0 / rate_per_second
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf

    def reserve(self, now: float) -> float:
        """Take one token; return the time at which it may be used (``now`` if one is available)."""
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return max(now, tat - self._tolerance)

    def cancel(self) -> None:
        """Give back the last reservation (the caller decided not to wait for it)."""
        self._tat -= self._interval

    def empty_until(self, moment: float) -> None:
        """Make the bucket hold no more than one token at ``moment``: it refills from there."""
        self._tat = max(self._tat, moment + self._tolerance)

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (negative when callers are queued)."""
        return min(
            float(self.burst), (now + self._tolerance + self._interval - max(self._tat, now)) / self._interval
        )


class ArmRateLimiter:
    """Budgets for one ARM subscription, plus the pauses a 429 asks for. Share one per subscription."""

    def __init__(
        self,
        buckets: Mapping[Budget, TokenBucket],
        *,
        max_queue_seconds: float,
        clock: Clock | None = None,
    ) -> None:
        self._buckets = dict(buckets)
        self._max_queue_seconds = max_queue_seconds
        self._clock: Clock = clock or MonotonicClock()
        self._paused_until: dict[Budget, float] = dict.fromkeys(self._buckets, -math.inf)
        self.queued = 0
        """Callers waiting right now (for a token or for the pause)."""
        self.rejected = 0
        """Calls that failed fast because their turn was further away than ``max_queue_seconds``."""

    @classmethod
    def from_settings(cls, aci: settings.AciSettings, *, clock: Clock | None = None) -> ArmRateLimiter:
        return cls(
            {
                Budget.READ: TokenBucket(aci.reads_per_second, aci.read_burst),
                Budget.WRITE: TokenBucket(aci.writes_per_second, aci.write_burst),
                Budget.CREATE: TokenBucket(aci.creates_per_second, aci.create_burst),
                Budget.DELETE: TokenBucket(aci.deletes_per_second, aci.delete_burst),
            },
            max_queue_seconds=aci.max_queue_seconds,
            clock=clock,
        )

    @property
    def clock(self) -> Clock:
        return self._clock

    def paused_for(self, budgets: Iterable[Budget] | None = None) -> float:
        """Seconds left of the longest pause on ``budgets`` (all by default) that a 429 asked for; 0 if none."""
        return max(0.0, self._pause_end(budgets) - self._clock.now())

    def tokens(self, budget: Budget) -> float:
        return self._buckets[budget].tokens(self._clock.now())

    def pause(self, seconds: float, budgets: Iterable[Budget] | None = None) -> None:
        """The server asked callers of ``budgets`` (all by default: the budgets of the throttled request) to
        wait ``seconds``: hold them until then, and refill those buckets slowly."""
        chosen = [b for b in (self._buckets if budgets is None else budgets) if b in self._buckets]
        until = self._clock.now() + max(0.0, seconds)
        for budget in chosen:
            self._paused_until[budget] = max(self._paused_until[budget], until)
            self._buckets[budget].empty_until(until)
        logger.info(
            "pausing ARM requests", extra={"pause_seconds": seconds, "budgets": [b.value for b in chosen]}
        )

    def _pause_end(self, budgets: Iterable[Budget] | None) -> float:
        chosen = self._buckets if budgets is None else budgets
        return max((self._paused_until[b] for b in chosen if b in self._paused_until), default=-math.inf)

    async def acquire(self, budgets: Iterable[Budget]) -> None:
        """Wait until a request counting against ``budgets`` may be sent.

        Raises ``ThrottledError`` at once, without consuming anything, when that moment (or the end of a
        pause) is more than ``max_queue_seconds`` away; its ``retry_after_seconds`` says when to try again.
        """
        budgets = [b for b in budgets if b in self._buckets]
        chosen = [self._buckets[b] for b in budgets]
        self.queued += 1
        try:
            while True:
                now = self._clock.now()
                paused_until = self._pause_end(budgets)
                if paused_until > now:
                    self._check_wait(paused_until - now, "paused after a 429")
                    await self._clock.sleep(paused_until - now)
                    continue
                send_at = max((bucket.reserve(now) for bucket in chosen), default=now)
                wait = send_at - now
                if wait > self._max_queue_seconds:
                    for bucket in chosen:
                        bucket.cancel()
                    self._check_wait(wait, "client-side rate budget exhausted")
                if wait > 0:
                    try:
                        await self._clock.sleep(wait)
                    except asyncio.CancelledError:
                        # The caller gave up (its own timeout): the slot goes back to those queued behind it.
                        # Kept, every cancelled waiter would push every later one further out, and callers
                        # that time out and retry (a node's backend probe) would crowd the budget out entirely.
                        for bucket in chosen:
                            bucket.cancel()
                        raise
                # A 429 may have paused our budgets while we queued: then wait it out and take fresh tokens,
                # which the pause spaced out, rather than all firing together when it ends.
                if self._pause_end(budgets) <= self._clock.now():
                    return
        finally:
            self.queued -= 1

    def _check_wait(self, wait: float, why: str) -> None:
        if wait > self._max_queue_seconds:
            self.rejected += 1
            raise errors.ThrottledError(
                f"ARM request not sent: {why}, next slot in {wait:.1f}s", retry_after_seconds=wait
            )


class SubscriptionLimiters:
    """One ``ArmRateLimiter`` per ARM subscription, built on first use: ARM's limits are per subscription, so
    every client of a subscription (one per VirtualNode) must draw from the same budget. The composition root
    owns one of these and passes ``limiter_for(target.subscription_id)`` to each client."""

    def __init__(self, aci: settings.AciSettings, *, clock: Clock | None = None) -> None:
        self._settings = aci
        self._clock = clock
        self._limiters: dict[str, ArmRateLimiter] = {}

    def limiter_for(self, subscription_id: str) -> ArmRateLimiter:
        key = subscription_id.lower()
        if key not in self._limiters:
            self._limiters[key] = ArmRateLimiter.from_settings(self._settings, clock=self._clock)
        return self._limiters[key]


class InteractiveLanes:
    """The interactive lane of each subscription: an ``ArmRateLimiter`` with one INTERACTIVE bucket per
    subscription limiter, made on first use. The kubelet API owns one and sends its ARM calls inside
    ``interactive(lanes)``."""

    def __init__(
        self, rate_per_second: float, burst: int, *, max_queue_seconds: float, clock: Clock | None = None
    ) -> None:
        TokenBucket(rate_per_second, burst)  # refuse a bad rate or burst now, not at the first call
        self._rate_per_second = rate_per_second
        self._burst = burst
        self._max_queue_seconds = max_queue_seconds
        self._clock = clock
        self._lanes: weakref.WeakKeyDictionary[ArmRateLimiter, ArmRateLimiter] = weakref.WeakKeyDictionary()

    def lane_for(self, limiter: ArmRateLimiter) -> ArmRateLimiter:
        """The lane beside ``limiter`` (the limiter of one subscription)."""
        lane = self._lanes.get(limiter)
        if lane is None:
            lane = ArmRateLimiter(
                {Budget.INTERACTIVE: TokenBucket(self._rate_per_second, self._burst)},
                max_queue_seconds=self._max_queue_seconds,
                clock=self._clock or limiter.clock,
            )
            self._lanes[limiter] = lane
        return lane


_INTERACTIVE: contextvars.ContextVar[InteractiveLanes | None] = contextvars.ContextVar(
    "acinode_interactive_lanes", default=None
)


@contextlib.contextmanager
def interactive(lanes: InteractiveLanes) -> Iterator[None]:
    """ARM requests sent inside (by this task, and tasks it starts) draw from ``lanes``."""
    token = _INTERACTIVE.set(lanes)
    try:
        yield
    finally:
        _INTERACTIVE.reset(token)


def route(limiter: ArmRateLimiter, budgets: tuple[Budget, ...]) -> tuple[ArmRateLimiter, tuple[Budget, ...]]:
    """The limiter and budgets a request draws from: its own ``budgets`` on ``limiter``, or inside
    ``interactive`` the INTERACTIVE budget of ``limiter``'s lane. Raises ThrottledError for an interactive request
    while ARM has paused ``budgets`` on ``limiter`` (it does not queue behind the reconciler's pause)."""
    lanes = _INTERACTIVE.get()
    if lanes is None:
        return limiter, budgets
    paused = limiter.paused_for(budgets)
    if paused > 0:
        raise errors.ThrottledError(
            f"interactive ARM request not sent: ARM paused the subscription for {paused:.1f}s",
            retry_after_seconds=paused,
        )
    return lanes.lane_for(limiter), (Budget.INTERACTIVE,)


MAX_RETRY_AFTER_SECONDS = 300.0
"""``AciSettings.max_retry_after_seconds``' default: the cap where no settings are at hand (error translation)."""


def retry_after_seconds(
    headers: Mapping[str, str], *, now: float | None = None, cap: float = MAX_RETRY_AFTER_SECONDS
) -> float | None:
    """The wait a response asks for, at most ``cap``: ``Retry-After`` (seconds or an HTTP date), else
    ``retry-after-ms`` or ``x-ms-retry-after-ms``; None when absent or unreadable. ``now`` is wall-clock time,
    for the date form."""
    asked = _retry_after_seconds(headers, now)
    return None if asked is None else min(asked, cap)


def _retry_after_seconds(headers: Mapping[str, str], now: float | None) -> float | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    value = lowered.get("retry-after")
    if value:
        seconds = _seconds_or_date(value.strip(), time.time() if now is None else now)
        if seconds is not None:
            return seconds
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = lowered.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                continue
    return None


def _seconds_or_date(value: str, now: float) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
