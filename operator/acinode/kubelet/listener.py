"""The kubelet port below HTTP: connection counts, TLS with a deadline, and a bound on request heads.

aiohttp bounds the request line and each header field, and its keep-alive timer (set to
``header_timeout_seconds``) closes a connection that has no complete request head in time, whether it sent
nothing or half a line. It does not count connections, know clients, or bound a TLS handshake it never sees. So
the site here takes the accepted sockets itself:

- each is counted before any TLS work, in total (``max_connections``) and per client IP address
  (``max_connections_per_client``); beyond either it is closed at once, so the cost of a refused one is an accept;
- TLS is started on it here (``loop.start_tls``) with a handshake deadline of ``header_timeout_seconds``;
- the bytes received while no request is being served are the head of the next one; beyond
  ``max_request_head_bytes`` the connection is closed (aiohttp keeps up to 128 header fields of 8 KiB each);
- a slot is given back when the connection ends, however it ends (refused handshake, timeout, close).

``serving(transport)`` marks the time between a request's arrival at the application and its end (the server's
middleware wraps every request in it): bodies and upgraded streams are not head bytes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import ssl
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from acinode import settings

logger = logging.getLogger(__name__)

_WARNING_INTERVAL_SECONDS = 60.0


class ConnectionLimits:
    """Open connections, in total and per client, against their caps; and how many were refused."""

    def __init__(self, *, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.open = 0
        self.refused = 0
        self._by_client: collections.Counter[str] = collections.Counter()

    def open_from(self, client: str) -> int:
        return self._by_client[client]

    def admit(self, client: str) -> bool:
        """Take a slot for a new connection from ``client``; False (counted as refused) if a cap is reached."""
        if self.open >= self.total or self._by_client[client] >= self.per_client:
            self.refused += 1
            return False
        self.open += 1
        self._by_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]


@dataclasses.dataclass
class _Connection:
    client: str
    head_bytes: int = 0
    """Bytes received since the last request ended (the next request's head, so far)."""
    in_request: bool = False
    released: bool = False


class KubeletSite(web.BaseSite):
    """A TLS site for an ``AppRunner`` (in place of ``web.TCPSite``) that enforces the limits above."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        kubelet: settings.KubeletSettings,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._tls = ssl_context
        self._handshake_timeout = kubelet.header_timeout_seconds
        self._max_head_bytes = kubelet.max_request_head_bytes
        self.limits = ConnectionLimits(
            total=kubelet.max_connections, per_client=kubelet.max_connections_per_client
        )
        self.oversized_heads = 0
        """Connections closed because a request head grew past ``max_request_head_bytes``."""
        self.failed_handshakes = 0
        """Connections closed because their TLS handshake failed or took too long."""
        self._connections: dict[Any, _Connection] = {}
        """TLS transport → its connection (for ``serving``)."""
        self._handshakes: dict[asyncio.Task[None], asyncio.Transport] = {}
        self._warned_at: dict[str, float] = {}

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Gate(self), self._host, self._port, backlog=self._backlog
        )

    async def stop(self) -> None:
        await super().stop()
        for task, transport in list(self._handshakes.items()):
            task.cancel()
            transport.abort()

    @contextlib.contextmanager
    def serving(self, transport: asyncio.BaseTransport | None) -> Iterator[None]:
        """Mark a request being served on ``transport``: what arrives meanwhile is not head bytes."""
        connection = self._connections.get(transport)
        if connection is None:
            yield
            return
        connection.in_request, connection.head_bytes = True, 0
        try:
            yield
        finally:
            connection.in_request, connection.head_bytes = False, 0

    # --- the connection's life ------------------------------------------------------------------------------

    def _accepted(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else "unknown"
        if not self.limits.admit(client):
            transport.abort()
            self._warn(
                "kubelet API: connection cap reached, refusing connections",
                client=client,
                open=self.limits.open,
                from_client=self.limits.open_from(client),
                refused_so_far=self.limits.refused,
            )
            return
        transport.pause_reading()  # until TLS takes over: nothing may be read by the gate
        connection = _Connection(client)
        task = asyncio.get_running_loop().create_task(self._start_tls(transport, connection))
        self._handshakes[task] = transport
        task.add_done_callback(self._handshakes.pop)

    async def _start_tls(self, transport: asyncio.Transport, connection: _Connection) -> None:
        server = self._runner.server
        assert server is not None
        protocol = _Counted(server(), connection, self)
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport,
                protocol,
                self._tls,
                server_side=True,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except Exception as err:  # refused certificate, timeout, reset: the connection is over
            logger.debug("kubelet API: TLS handshake with %s failed: %s", connection.client, err)
            self.failed_handshakes += 1
            transport.abort()
            self._release(connection)
            return
        if tls is None:  # closed meanwhile
            self._release(connection)
            return
        protocol.start(tls)

    def _register(self, transport: asyncio.BaseTransport, connection: _Connection) -> None:
        self._connections[transport] = connection

    def _release(self, connection: _Connection, transport: asyncio.BaseTransport | None = None) -> None:
        if transport is not None:
            self._connections.pop(transport, None)
        if not connection.released:
            connection.released = True
            self.limits.release(connection.client)

    def _head_too_long(self, connection: _Connection, size: int) -> bool:
        if connection.in_request:
            return False
        connection.head_bytes += size
        if connection.head_bytes <= self._max_head_bytes:
            return False
        self.oversized_heads += 1
        self._warn(
            "kubelet API: request head too long, closing the connection",
            client=connection.client,
            limit=self._max_head_bytes,
            closed_so_far=self.oversized_heads,
        )
        return True

    def _warn(self, message: str, **extra: object) -> None:
        """Log ``message`` at most once a minute: a flood of refusals must not become a flood of logs."""
        now = time.monotonic()
        if now < self._warned_at.get(message, -math.inf) + _WARNING_INTERVAL_SECONDS:
            return
        self._warned_at[message] = now
        logger.warning(message, extra=extra)


class _Gate(asyncio.Protocol):
    """What the listening socket hands each accepted connection to: the site admits or closes it."""

    def __init__(self, site: KubeletSite) -> None:
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._site._accepted(transport)


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind TLS, seen through: counts head bytes, holds data that TLS
    delivers before ``start_tls`` returns, and gives the connection's slot back when it ends."""

    def __init__(self, inner: asyncio.Protocol, connection: _Connection, site: KubeletSite) -> None:
        self._inner = inner
        self._connection = connection
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._early: list[bytes] = []
        self._early_eof = False
        self._writing_paused = False

    def start(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._site._register(transport, self._connection)
        self._inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)
        if self._early_eof:
            self.eof_received()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            self._early.append(data)
            return
        if self._site._head_too_long(self._connection, len(data)):
            self._transport.abort()
            return
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._transport is None:
            self._early_eof = True
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._transport is not None and not self._writing_paused:
            self._writing_paused = True
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._writing_paused:
            self._writing_paused = False
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._site._release(self._connection, self._transport)
        if self._transport is not None:
            self._inner.connection_lost(exc)
