"""How tests wait for what the code under test did: fakes wake waiters on every call, tests never sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Changes:
    """A wake-up signal that fakes pulse whenever they record a call or change state.

    ``wait_until`` re-checks its predicate on each pulse, so it returns as soon as the condition holds and
    fails (AssertionError) after its timeout. Fakes may share one instance so that a test can wait on a
    condition involving several of them.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], object], within: float = 1.0, what: str = "") -> None:
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {within}s waiting for {what or repr(predicate)}") from None
