"""The backend probe behind a virtual node's Ready condition: the region's usage, one cheap ARM read, cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from acinode import errors
from acinode.aci import api


class UsageProbe:
    """Checks reachability and credentials with ``location_usage``; trusts a success for ``ttl_seconds``.

    Failures are not cached, so recovery is seen on the next check. Concurrent checks share one call.
    """

    def __init__(
        self,
        aci: api.AciApi,
        ttl_seconds: float,
        timeout_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._aci = aci
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._ok_until = 0.0
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        async with self._lock:
            if self._monotonic() < self._ok_until:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    await self._aci.location_usage()
            except TimeoutError as err:
                raise errors.BackendUnavailableError(
                    f"ARM did not answer within {self._timeout:.0f}s"
                ) from err
            self._ok_until = self._monotonic() + self._ttl
