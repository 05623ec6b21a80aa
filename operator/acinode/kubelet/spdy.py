"""SPDY/3.1 framing, as much as a remote-command server needs (the frames Go's ``moby/spdystream`` sends).

The API server speaks SPDY to kubelets for ``exec`` unless the Node declares ``ExtendWebSocketsToKubelet``: it
translates ``kubectl``'s websocket into SPDY (``TranslateStreamCloseWebsocketRequests``), and it passes SPDY
through unchanged from older clients. Only what that needs is here: parsing the client's frames (SYN_STREAM with
zlib-compressed headers, DATA, PING, RST_STREAM, GOAWAY; SETTINGS, HEADERS and WINDOW_UPDATE are read and
ignored, since spdystream enforces no flow control) and writing SYN_REPLY, DATA, PING, RST_STREAM and GOAWAY.

Every size is bounded before memory is spent on it: a frame whose length field exceeds the reader's limit is
refused from its 8-byte head (nothing of it is buffered), and a header block is inflated at most one byte past its
limit (``zlib`` ``max_length``), so a small compressed block cannot expand into megabytes.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Mapping

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_DATA_LENGTH = 0xFFFFFF
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL, RST_FRAME_TOO_LARGE = 1, 3, 5, 11
"""RST_STREAM status codes (SPDY/3.1 section 2.6.3)."""
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR = 0, 1
"""GOAWAY status codes (SPDY/3.1 section 2.6.6)."""

_DICTIONARY_WORDS = (
    *[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
    ],
    "200 OK",
    *["version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"],
)
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
HEADER_DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _DICTIONARY_WORDS)
    + _DICTIONARY_TAIL.encode()
)
"""The zlib dictionary of SPDY/3 header blocks (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1)."""


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


class FrameTooLargeError(ProtocolError):
    """A frame, or a header block once inflated, is larger than this end accepts."""


@dataclasses.dataclass(frozen=True)
class ControlFrame:
    kind: int
    flags: int
    payload: bytes


@dataclasses.dataclass(frozen=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes


Frame = ControlFrame | DataFrame


class FrameReader:
    """Incremental parser: ``feed`` bytes, then take complete frames from ``next_frame()`` (or ``frames()``).

    A frame longer than ``max_frame_bytes`` raises FrameTooLargeError as soon as its head is read, so the buffer
    never holds more than one frame of at most that size plus what the last ``feed`` brought.
    """

    def __init__(self, max_frame_bytes: int = MAX_DATA_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken as frames."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes come."""
        if len(self._buffer) < 8:
            return None
        first, second = struct.unpack_from(">II", self._buffer, 0)
        length = second & 0xFFFFFF
        if length > self._max_frame_bytes:
            kind = f"control frame {first & 0xFFFF}" if first & 0x80000000 else "DATA frame"
            raise FrameTooLargeError(f"{kind} of {length} bytes, limit {self._max_frame_bytes}")
        if len(self._buffer) < 8 + length:
            return None
        payload = bytes(self._buffer[8 : 8 + length])
        del self._buffer[: 8 + length]
        flags = second >> 24
        if first & 0x80000000:
            version = (first >> 16) & 0x7FFF
            if version != VERSION:
                raise ProtocolError(f"SPDY version {version}, expected {VERSION}")
            return ControlFrame(first & 0xFFFF, flags, payload)
        return DataFrame(first & 0x7FFFFFFF, flags, payload)

    def frames(self) -> list[Frame]:
        """Every complete frame buffered."""
        found: list[Frame] = []
        while (frame := self.next_frame()) is not None:
            found.append(frame)
        return found


class HeaderCodec:
    """The two zlib streams of one connection: one per direction, each primed with the SPDY dictionary.

    ``decode`` inflates at most ``max_block_bytes`` + 1 bytes of one block and raises FrameTooLargeError beyond
    ``max_block_bytes``. The inflating stream is then out of step with the peer's, so the connection cannot go on
    (SPDY/3.1 section 2.6.3, FRAME_TOO_LARGE: the sender must close the session).
    """

    def __init__(self, max_block_bytes: int = MAX_DATA_LENGTH) -> None:
        self._inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=HEADER_DICTIONARY
        )
        self._max_block_bytes = max_block_bytes

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block, self._max_block_bytes + 1)
        except zlib.error as err:
            raise ProtocolError(f"header block: {err}") from err
        if len(raw) > self._max_block_bytes or self._inflate.unconsumed_tail:
            raise FrameTooLargeError(
                f"header block inflates past {self._max_block_bytes} bytes ({len(block)} bytes compressed)"
            )
        return parse_header_block(raw)

    def encode(self, headers: Mapping[str, list[str]]) -> bytes:
        raw = header_block(headers)
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def header_block(headers: Mapping[str, list[str]]) -> bytes:
    out = bytearray(struct.pack(">I", len(headers)))
    for name, values in headers.items():
        key, value = name.lower().encode(), "\x00".join(values).encode()
        out += struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
    return bytes(out)


def parse_header_block(raw: bytes) -> dict[str, list[str]]:
    try:
        (count,) = struct.unpack_from(">I", raw, 0)
        offset, headers = 4, {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", raw, offset)
            name = raw[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            (size,) = struct.unpack_from(">I", raw, offset)
            value = raw[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            headers[name.lower()] = value.split("\x00")
    except (struct.error, UnicodeDecodeError) as err:
        raise ProtocolError(f"header block: {err}") from err
    return headers


def control_frame(kind: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frames(stream_id: int, data: bytes, fin: bool = False, chunk: int = 32 * 1024) -> bytes:
    """``data`` as DATA frames of at most ``chunk`` bytes; the last one carries FIN if asked."""
    out = bytearray()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    for index, piece in enumerate(pieces):
        flags = FLAG_FIN if fin and index == len(pieces) - 1 else 0
        out += struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(piece)) + piece
    return bytes(out)


def syn_stream_fields(payload: bytes) -> tuple[int, bytes]:
    """(stream id, compressed header block) of a SYN_STREAM payload."""
    if len(payload) < 10:
        raise ProtocolError("short SYN_STREAM")
    (stream_id,) = struct.unpack_from(">I", payload, 0)
    return stream_id & 0x7FFFFFFF, payload[10:]


def syn_reply(stream_id: int, header_block_bytes: bytes, fin: bool = False) -> bytes:
    return control_frame(
        SYN_REPLY, struct.pack(">I", stream_id & 0x7FFFFFFF) + header_block_bytes, FLAG_FIN if fin else 0
    )


def syn_stream(stream_id: int, header_block_bytes: bytes) -> bytes:
    """A SYN_STREAM (what clients send; for tests)."""
    return control_frame(SYN_STREAM, struct.pack(">IIBB", stream_id, 0, 0, 0) + header_block_bytes)


def stream_id_of(payload: bytes) -> int:
    if len(payload) < 4:
        raise ProtocolError("short control frame")
    (stream_id,) = struct.unpack_from(">I", payload, 0)
    return int(stream_id & 0x7FFFFFFF)


def goaway(last_stream_id: int, status: int = GOAWAY_OK) -> bytes:
    return control_frame(GOAWAY, struct.pack(">II", last_stream_id & 0x7FFFFFFF, status))


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, struct.pack(">II", stream_id & 0x7FFFFFFF, status))
