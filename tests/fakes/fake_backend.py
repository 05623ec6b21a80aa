"""FakeBackendProbe: a ``heartbeat.BackendProbe`` whose answer the test decides."""

from __future__ import annotations

import asyncio

from fakes import changes


class FakeBackendProbe:
    """Healthy by default; ``fail`` makes each check raise an error, ``hold`` makes checks wait (or hang).

    ``checks`` counts calls. Every check yields to the event loop once, like a real call.
    """

    def __init__(
        self, error: BaseException | None = None, *, changes_signal: changes.Changes | None = None
    ) -> None:
        self.error = error
        self.checks = 0
        self.changes = changes_signal or changes.Changes()
        self._gate: asyncio.Event | None = None

    def healthy(self) -> None:
        self.error = None

    def fail(self, error: BaseException) -> None:
        self.error = error

    def hold(self) -> asyncio.Event:
        """Make checks wait until the returned event is set (never set: they hang)."""
        self._gate = asyncio.Event()
        return self._gate

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    async def check(self) -> None:
        self.checks += 1
        self.changes.wake()
        try:
            await asyncio.sleep(0)
            if self._gate is not None:
                await self._gate.wait()
            if self.error is not None:
                raise self.error
        finally:
            self.changes.wake()
