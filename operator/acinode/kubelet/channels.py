"""The Kubernetes remote-command stream protocol, independent of its transport (websocket or SPDY).

Streams: stdin (0), stdout (1), stderr (2), error (3), resize (4). Over websockets (``v4.channel.k8s.io``,
``v5.channel.k8s.io``) each binary message starts with its channel byte; v5 adds ``[255, channel]``: the client
closed that stream (stdin's end of file). Over SPDY each is a stream of its own. At the end the server writes one
``Status`` on the error stream (v4 and later): ``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and the
exit code as cause ``ExitCode``, or another failure with a message; then it closes everything.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
SUPPORTED_PROTOCOLS = (V5, V4)
"""Stream protocols served, best first. Older ones (v1–v3) have no exit codes; clients since 1.5 offer v4."""

SPDY_STREAM_TYPES: Mapping[str, int] = {
    "stdin": STDIN,
    "stdout": STDOUT,
    "stderr": STDERR,
    "error": ERROR,
    "resize": RESIZE,
}


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """Which streams the client asked for (query ``stdin``, ``stdout``, ``stderr``, ``tty``)."""

    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False

    def expected_spdy_streams(self) -> set[int]:
        """The streams a SPDY client creates before the session starts (error always)."""
        streams = {ERROR}
        if self.stdin:
            streams.add(STDIN)
        if self.stdout:
            streams.add(STDOUT)
        if self.stderr and not self.tty:
            streams.add(STDERR)
        if self.tty:
            streams.add(RESIZE)
        return streams


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true")


def stream_options_from_query(query: Mapping[str, str]) -> StreamOptions:
    """The streams asked for; ``input``/``output`` are the pre-1.4 names."""
    return StreamOptions(
        stdin=_true(query.get("stdin")) or _true(query.get("input")),
        stdout=_true(query.get("stdout")) or _true(query.get("output")),
        stderr=_true(query.get("stderr")),
        tty=_true(query.get("tty")),
    )


def negotiate(offered: Sequence[str]) -> str | None:
    """The first protocol of the client's list that is supported, as the kubelet's handshake picks it."""
    for protocol in offered:
        if protocol.strip() in SUPPORTED_PROTOCOLS:
            return protocol.strip()
    return None


def split_header_list(values: Sequence[str]) -> list[str]:
    """``Sec-WebSocket-Protocol``/``X-Stream-Protocol-Version`` values, which may repeat or be comma-joined."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def frame(channel: int, data: bytes) -> bytes:
    """A websocket message for ``channel``."""
    return bytes([channel]) + data


def parse_frame(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of a websocket message; for a v5 close signal, (CLOSE_SIGNAL, bytes([channel]))."""
    if not message:
        raise ValueError("empty channel message")
    return message[0], message[1:]


@dataclasses.dataclass(frozen=True)
class ExitStatus:
    """How the command ended: an exit code, or an error without one."""

    code: int | None = 0
    message: str = ""

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object written on the error stream."""
        if self.code == 0 and not self.message:
            return {"metadata": {}, "status": "Success"}
        if self.code is not None:
            return {
                "metadata": {},
                "status": "Failure",
                "message": self.message
                or f"command terminated with non-zero exit code: exit status {self.code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(self.code)}]},
            }
        return {
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": "InternalError",
            "code": 500,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_status()).encode()


def exit_status_from_close(code: int | None, reason: str = "") -> ExitStatus:
    """ACI's exec websocket ends with close code ``4000 + exit status`` (the emulator's convention, see
    docs/emulator.md); a plain close carries no status and counts as success, since ACI reports none."""
    if code is not None and 4000 <= code <= 4255:
        return ExitStatus(code - 4000)
    if code == 4401:
        return ExitStatus(None, "ACI refused the exec session (authentication failed)")
    if code in (None, 1000, 1001, 1005):
        return ExitStatus(0)
    return ExitStatus(None, f"the ACI exec session ended abnormally (close code {code} {reason})".strip())


@dataclasses.dataclass(frozen=True)
class TerminalSize:
    """The client's terminal, from the resize stream: ``{"Width": cols, "Height": rows}`` (Go's
    ``remotecommand.TerminalSize``, JSON-encoded, one object per change)."""

    rows: int = 24
    cols: int = 80


DEFAULT_TERMINAL_SIZE = TerminalSize()
_MAX_TERMINAL_SIDE = 65535
"""Go's TerminalSize fields are uint16."""


def terminal_size(data: bytes) -> TerminalSize | None:
    """The first size in a resize message, or None if it holds none (malformed, zero, or out of range)."""
    try:
        text = data.decode().lstrip()
        value, _end = json.JSONDecoder().raw_decode(text)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    width, height = value.get("Width"), value.get("Height")
    if not all(isinstance(side, int) and not isinstance(side, bool) for side in (width, height)):
        return None
    assert isinstance(width, int) and isinstance(height, int)
    if not (0 < width <= _MAX_TERMINAL_SIDE and 0 < height <= _MAX_TERMINAL_SIDE):
        return None
    return TerminalSize(rows=height, cols=width)
