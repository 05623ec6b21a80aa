"""The SPDY/3.1 transport of the remote-command protocol: the server side of one upgraded connection.

As a kubelet's ``remotecommand`` server: answer ``101 Switching Protocols`` with the negotiated
``X-Stream-Protocol-Version``, accept the client's streams (one per channel, named by their ``streamtype``
header) and reply to each, wait until every expected stream exists, then exchange DATA frames. At the end the
Status goes on the error stream, every stream is finished (FIN), and the connection is closed.

What one client can make a connection hold is bounded (``KubeletSettings``): frames (``spdy_max_frame_bytes``)
and inflated header blocks (``spdy_max_header_block_bytes``) are refused before they are buffered or inflated,
with RST_STREAM and GOAWAY as SPDY/3.1 asks, then the connection is closed; streams are capped
(``spdy_max_streams``: more get RST_STREAM REFUSED_STREAM); and stdin/resize data waiting for ACI, like replies
waiting for the client to read them, stop the reading of the connection beyond ``spdy_max_buffered_bytes``
until they drain (backpressure through TCP, not an unbounded queue).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, cast

from aiohttp import web

from acinode import errors, settings
from acinode.kubelet import channels, spdy

logger = logging.getLogger(__name__)

UPGRADE = "SPDY/3.1"
_ITEM_COST = 64
"""Bytes charged per queued item on top of its data, so that empty frames (FIN, RST_STREAM) are bounded too."""


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
        kubelet: settings.KubeletSettings,
    ) -> None:
        self.response = response
        self._protocol = protocol
        self._transport = transport
        self.options = options
        self.version = version
        self._reader = spdy.FrameReader(kubelet.spdy_max_frame_bytes)
        self._headers = spdy.HeaderCodec(kubelet.spdy_max_header_block_bytes)
        self._max_streams = kubelet.spdy_max_streams
        self._max_buffered = kubelet.spdy_max_buffered_bytes
        self._channels: dict[int, int] = {}
        """Stream id → channel."""
        self._streams: dict[int, int] = {}
        """Channel → stream id."""
        self._incoming: collections.deque[tuple[int, bytes]] = collections.deque()
        self._incoming_bytes = 0
        """What the queued items cost (their data plus ``_ITEM_COST`` each): at most about ``_max_buffered``."""
        self._arrived = asyncio.Event()
        self._holds: set[str] = set()
        """Why the connection is not being read: "queue" (ACI has not taken stdin yet), "replies" (the client
        does not read what we wrote). Reading resumes when there is no reason left."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._gone = False
        self._last_stream = 0
        self._stream_count = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes this connection holds for the client: unparsed frames plus stdin/resize not yet taken."""
        return self._reader.buffered + self._incoming_bytes

    @property
    def is_reading_paused(self) -> bool:
        return bool(self._holds)

    @classmethod
    async def accept(
        cls,
        request: web.Request,
        options: channels.StreamOptions,
        timeout_seconds: float,
        kubelet: settings.KubeletSettings,
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
        session = cls(response, protocol, request.transport, options, version, kubelet)
        protocol.keep_alive(False)
        protocol.set_parser(_Feeder(session))
        try:
            async with asyncio.timeout(timeout_seconds):
                await session._ready.wait()
        except TimeoutError:
            session.abort_now()
            raise errors.TransientError("timed out waiting for the client's SPDY streams") from None
        if session._gone and not options.expected_spdy_streams() <= set(session._streams):
            raise errors.TransientError("the SPDY connection ended before the client created its streams")
        return session

    # --- incoming ---------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._gone:
            return  # closed or closing: nothing more is read or kept
        self._reader.feed(data)
        self._process()

    def _process(self) -> None:
        """Handle the complete frames received, unless reading is held (they wait in the reader until then)."""
        try:
            while not self._holds and not self._gone:
                frame = self._reader.next_frame()
                if frame is None:
                    return
                self._handle(frame)
        except spdy.ProtocolError as err:
            logger.warning("SPDY protocol error, closing the connection: %s", err)
            self._write(spdy.goaway(self._last_stream, spdy.GOAWAY_PROTOCOL_ERROR))
            self.abort_now()

    def feed_eof(self) -> None:
        self._gone = True
        self._arrived.set()
        self._ready.set()

    def _queue(self, channel: int, data: bytes) -> None:
        self._incoming.append((channel, data))
        self._incoming_bytes += len(data) + _ITEM_COST
        self._arrived.set()
        if self._incoming_bytes >= self._max_buffered:
            self._hold("queue")

    def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            channel = self._channels.get(frame.stream_id)
            if channel in (channels.STDIN, channels.RESIZE) and frame.data:
                self._queue(channel, frame.data)
            if channel == channels.STDIN and frame.flags & spdy.FLAG_FIN:
                self._queue(channels.CLOSE_SIGNAL, bytes([channels.STDIN]))
            return
        if frame.kind == spdy.SYN_STREAM:
            self._open_stream(frame)
        elif frame.kind == spdy.PING:
            self._reply(spdy.control_frame(spdy.PING, frame.payload))
        elif frame.kind == spdy.RST_STREAM:
            if self._channels.get(spdy.stream_id_of(frame.payload)) == channels.STDIN:
                self._queue(channels.CLOSE_SIGNAL, bytes([channels.STDIN]))
        elif frame.kind == spdy.GOAWAY:
            self.feed_eof()
        # SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do (no flow control in spdystream).

    def _open_stream(self, frame: spdy.ControlFrame) -> None:
        stream_id, block = spdy.syn_stream_fields(frame.payload)
        try:
            # Always inflated, even for a stream about to be refused: the zlib state spans the connection.
            headers = self._headers.decode(block)
        except spdy.FrameTooLargeError:
            self._write(spdy.rst_stream(stream_id, spdy.RST_FRAME_TOO_LARGE))
            raise
        self._stream_count += 1
        if self._stream_count > self._max_streams:
            if self._stream_count == self._max_streams + 1:  # once per connection: the client may go on
                logger.warning("SPDY streams refused from %s on: more than %s", stream_id, self._max_streams)
            self._reply(spdy.rst_stream(stream_id, spdy.RST_REFUSED_STREAM))
            return
        stream_type = (headers.get("streamtype") or [""])[0]
        channel = channels.SPDY_STREAM_TYPES.get(stream_type)
        self._last_stream = max(self._last_stream, stream_id)
        self._reply(spdy.syn_reply(stream_id, self._headers.encode({}), fin=channel is None))
        if channel is not None:
            self._channels[stream_id] = channel
            self._streams[channel] = stream_id
            if self.options.expected_spdy_streams() <= set(self._streams):
                self._ready.set()

    # --- backpressure -----------------------------------------------------------------------------------

    def _hold(self, reason: str) -> None:
        """Stop reading the connection (TCP then holds the client back) until ``_release(reason)``."""
        if not self._holds and self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        self._holds.add(reason)

    def _release(self, reason: str) -> None:
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if self._holds or self._gone:
            return
        self._process()  # the frames that waited in the reader
        if not self._holds and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _reply(self, data: bytes) -> None:
        """Write a reply to a client frame; hold reading while the client leaves our replies unread."""
        self._write(data)
        if (
            self._transport is not None
            and self._transport.get_write_buffer_size() > self._max_buffered
            and "replies" not in self._holds
        ):
            self._hold("replies")
            task = asyncio.get_running_loop().create_task(self._release_when_drained())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _release_when_drained(self) -> None:
        try:
            await self._protocol._drain_helper()
        except ConnectionError:
            return
        self._release("replies")

    # --- outgoing ---------------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def _drain(self) -> None:
        if self._transport is not None and self._transport.get_write_buffer_size() > self._max_buffered:
            await self._protocol._drain_helper()

    async def send(self, channel: int, data: bytes) -> None:
        stream_id = self._streams.get(channel)
        if stream_id is None or self._gone:
            return
        self._write(spdy.data_frames(stream_id, data))
        await self._drain()

    async def receive(self) -> tuple[int, bytes] | None:
        while not self._incoming:
            if self._gone:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        channel, data = self._incoming.popleft()
        self._incoming_bytes -= len(data) + _ITEM_COST
        if self._incoming_bytes <= self._max_buffered // 2:
            self._release("queue")
        return channel, data

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
        self._arrived.set()
        self._ready.set()
        for task in self._tasks:
            task.cancel()
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
