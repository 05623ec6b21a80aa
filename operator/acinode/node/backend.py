"""The backend probe behind a virtual node's Ready condition: the region's usage, one cheap ARM read, cached."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Hashable

from acinode import errors
from acinode.aci import api


class ProbeResults:
    """Backend checks shared by the nodes that reach ARM the same way (endpoint, subscription, region,
    credentials): one cheap read per TTL for all of them, not one per node, so fifty nodes of one subscription
    do not spend ARM's read budget (and the client's read bucket) on fifty identical answers. A success is
    trusted for its TTL; a failure only by the checks that were already waiting while it was found."""

    def __init__(self) -> None:
        self.ok_until: dict[Hashable, float] = {}
        self.locks: dict[Hashable, asyncio.Lock] = {}
        self.checks: dict[Hashable, int] = {}
        """How many checks have finished, per key."""
        self.last_failure: dict[Hashable, tuple[int, errors.AcinodeError]] = {}
        """The last failed check per key, numbered as in ``checks``."""

    def lock(self, key: Hashable) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())


class UsageProbe:
    """Checks reachability and credentials with ``location_usage``; trusts a success for ``ttl_seconds``.

    Failures are not cached, so recovery is seen on the next check. Concurrent checks share one call, and its
    answer: a failure is given to the checks that waited for it, never to a later one.
    A check that times out while the client is paused after a 429 (``aci.limiter.paused_for()``, when the client
    has a limiter) is throttling, not an outage: it raises ``ThrottledError``, which keeps the node Ready.
    """

    def __init__(
        self,
        aci: api.AciApi,
        ttl_seconds: float,
        timeout_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        shared: ProbeResults | None = None,
        key: Hashable = None,
    ) -> None:
        self._aci = aci
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        # Alone (no ``shared``), the probe keeps its own result under its own key.
        self._results = shared if shared is not None else ProbeResults()
        self._key = key if shared is not None else id(self)

    async def check(self) -> None:
        results, key = self._results, self._key
        finished_before = results.checks.get(key, 0)
        async with results.lock(key):
            if self._monotonic() < results.ok_until.get(key, 0.0):
                return
            failed = results.last_failure.get(key)
            if failed is not None and failed[0] > finished_before:
                # A check that ran while this one waited failed: the same answer, not one more read (fifty nodes
                # retrying one by one behind the lock, each with its own timeout, once crowded the read budget
                # out for minutes). A check asked after that failure reads again.
                raise copy.copy(failed[1])
            try:
                await self._read()
            except errors.AcinodeError as err:
                results.checks[key] = results.checks.get(key, 0) + 1
                results.last_failure[key] = (results.checks[key], err)
                raise
            results.checks[key] = results.checks.get(key, 0) + 1
            results.ok_until[key] = self._monotonic() + self._ttl

    async def _read(self) -> None:
        throttled_at_start = self._paused_for() > 0
        try:
            async with asyncio.timeout(self._timeout):
                await self._aci.location_usage()
        except TimeoutError as err:
            pause = self._paused_for()
            if throttled_at_start or pause > 0:
                raise errors.ThrottledError(
                    f"ARM throttles this subscription; the check waited {self._timeout:.0f}s", pause
                ) from err
            raise errors.BackendUnavailableError(f"ARM did not answer within {self._timeout:.0f}s") from err

    def _paused_for(self) -> float:
        """Seconds left of the client's pause after a 429 (0 when not paused or when the client has no limiter)."""
        paused_for = getattr(getattr(self._aci, "limiter", None), "paused_for", None)
        return float(paused_for()) if callable(paused_for) else 0.0
