"""The SPDY/3.1 transport of the remote-command protocol: the server side of one upgraded connection.

As a kubelet's ``remotecommand`` server: answer ``101 Switching Protocols`` with the negotiated
``X-Stream-Protocol-Version``, accept the client's streams (one per channel, named by their ``streamtype``
header) and reply to each, wait until every expected stream exists, then exchange DATA frames. At the end the
Status goes on the error stream, every stream is finished (FIN), and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from aiohttp import web

from acinode import errors
from acinode.kubelet import channels, spdy

logger = logging.getLogger(__name__)

UPGRADE = "SPDY/3.1"
_WRITE_BUFFER_LIMIT = 256 * 1024


def is_spdy_request(request: web.Request) -> bool:
    return (
        request.headers.get("Upgrade", "").lower() == UPGRADE.lower()
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


class SpdyStreams:
    """Remote-command streams over one SPDY connection (a hijacked aiohttp connection)."""

    def __init__(
        self,
        response: web.StreamResponse,
        protocol: Any,
        transport: Any,
        options: channels.StreamOptions,
        version: str,
    ) -> None:
        self.response = response
        self._protocol = protocol
        self._transport = transport
        self.options = options
        self.version = version
        self._reader = spdy.FrameReader()
        self._headers = spdy.HeaderCodec()
        self._channels: dict[int, int] = {}
        """Stream id → channel."""
        self._streams: dict[int, int] = {}
        """Channel → stream id."""
        self._incoming: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._gone = False
        self._last_stream = 0

    @classmethod
    async def accept(
        cls, request: web.Request, options: channels.StreamOptions, timeout_seconds: float
    ) -> SpdyStreams:
        """Upgrade the request and wait for the client's streams. InvalidRequestError if no protocol fits;
        TransientError if the streams do not come in time."""
        offered = channels.split_header_list(request.headers.getall("X-Stream-Protocol-Version", []))
        version = channels.negotiate(offered)
        if version is None:
            raise errors.InvalidRequestError(
                f"unable to negotiate protocol: client supports {offered}, server supports "
                f"{list(channels.SUPPORTED_PROTOCOLS)}",
                code="BadRequest",
            )
        response = web.StreamResponse(
            status=101,
            headers={"Connection": "Upgrade", "Upgrade": UPGRADE, "X-Stream-Protocol-Version": version},
        )
        await response.prepare(request)
        protocol = cast(Any, request.protocol)
        session = cls(response, protocol, request.transport, options, version)
        protocol.keep_alive(False)
        protocol.set_parser(_Feeder(session))
        try:
            async with asyncio.timeout(timeout_seconds):
                await session._ready.wait()
        except TimeoutError:
            session.abort_now()
            raise errors.TransientError("timed out waiting for the client's SPDY streams") from None
        return session

    # --- incoming ---------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            for frame in self._reader.frames():
                self._handle(frame)
        except spdy.ProtocolError as err:
            logger.warning("SPDY protocol error: %s", err)
            self.abort_now()

    def feed_eof(self) -> None:
        self._gone = True
        self._incoming.put_nowait(None)
        self._ready.set()

    def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            channel = self._channels.get(frame.stream_id)
            if channel in (channels.STDIN, channels.RESIZE) and frame.data:
                self._incoming.put_nowait((channel, frame.data))
            if channel == channels.STDIN and frame.flags & spdy.FLAG_FIN:
                self._incoming.put_nowait((channels.CLOSE_SIGNAL, bytes([channels.STDIN])))
            return
        if frame.kind == spdy.SYN_STREAM:
            stream_id, block = spdy.syn_stream_fields(frame.payload)
            headers = self._headers.decode(block)
            stream_type = (headers.get("streamtype") or [""])[0]
            channel = channels.SPDY_STREAM_TYPES.get(stream_type)
            self._last_stream = max(self._last_stream, stream_id)
            self._write(spdy.syn_reply(stream_id, self._headers.encode({}), fin=channel is None))
            if channel is not None:
                self._channels[stream_id] = channel
                self._streams[channel] = stream_id
                if self.options.expected_spdy_streams() <= set(self._streams):
                    self._ready.set()
        elif frame.kind == spdy.PING:
            self._write(spdy.control_frame(spdy.PING, frame.payload))
        elif frame.kind == spdy.RST_STREAM:
            if self._channels.get(spdy.stream_id_of(frame.payload)) == channels.STDIN:
                self._incoming.put_nowait((channels.CLOSE_SIGNAL, bytes([channels.STDIN])))
        elif frame.kind == spdy.GOAWAY:
            self.feed_eof()
        # SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do (no flow control in spdystream).

    # --- outgoing ---------------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def _drain(self) -> None:
        if self._transport is not None and self._transport.get_write_buffer_size() > _WRITE_BUFFER_LIMIT:
            await self._protocol._drain_helper()

    async def send(self, channel: int, data: bytes) -> None:
        stream_id = self._streams.get(channel)
        if stream_id is None or self._gone:
            return
        self._write(spdy.data_frames(stream_id, data))
        await self._drain()

    async def receive(self) -> tuple[int, bytes] | None:
        return await self._incoming.get()

    async def finish(self, status: channels.ExitStatus) -> None:
        error_stream = self._streams.get(channels.ERROR)
        if error_stream is not None:
            self._write(spdy.data_frames(error_stream, status.to_bytes(), fin=True))
        for channel, stream_id in self._streams.items():
            if channel != channels.ERROR:
                self._write(spdy.data_frames(stream_id, b"", fin=True))
        self._write(spdy.goaway(self._last_stream))
        await self._drain()
        self.abort_now()

    async def abort(self) -> None:
        self.abort_now()

    def abort_now(self) -> None:
        self._gone = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class _Feeder:
    """What aiohttp's connection feeds the bytes after the upgrade to (``RequestHandler.set_parser``)."""

    def __init__(self, session: SpdyStreams) -> None:
        self._session = session

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._session.feed(data)
        return False, b""

    def feed_eof(self) -> None:
        self._session.feed_eof()
