"""SPDY/3.1 framing, as much as a remote-command server needs (the frames Go's ``moby/spdystream`` sends).

The API server speaks SPDY to kubelets for ``exec`` unless the Node declares ``ExtendWebSocketsToKubelet``: it
translates ``kubectl``'s websocket into SPDY (``TranslateStreamCloseWebsocketRequests``), and it passes SPDY
through unchanged from older clients. Only what that needs is here: parsing the client's frames (SYN_STREAM with
zlib-compressed headers, DATA, PING, RST_STREAM, GOAWAY; SETTINGS, HEADERS and WINDOW_UPDATE are read and
ignored, since spdystream enforces no flow control) and writing SYN_REPLY, DATA, PING and GOAWAY.
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
RST_CANCEL = 5

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
    """Incremental parser: ``feed`` bytes, then take complete frames from ``frames()``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def frames(self) -> list[Frame]:
        found: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack(">II", self._buffer[:8])
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version}, expected {VERSION}")
                found.append(ControlFrame(first & 0xFFFF, flags, payload))
            else:
                found.append(DataFrame(first & 0x7FFFFFFF, flags, payload))
        return found


class HeaderCodec:
    """The two zlib streams of one connection: one per direction, each primed with the SPDY dictionary."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=HEADER_DICTIONARY
        )

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"header block: {err}") from err
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


def goaway(last_stream_id: int) -> bytes:
    return control_frame(GOAWAY, struct.pack(">II", last_stream_id, 0))
