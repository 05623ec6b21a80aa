"""``GET /containerLogs/{namespace}/{pod}/{container}``: a container's log from ACI, with the kubelet's options.

ACI's log API returns a container's log (optionally its last ``tail`` lines, optionally each line prefixed with
an RFC 3339 timestamp); it keeps the current run only (cleared when the container restarts) and up to about 4 MB.
So, as far as ACI allows:
- ``tailLines`` is passed to ACI; ``timestamps`` prefixes each line with ACI's own timestamp;
- ``sinceSeconds``/``sinceTime`` filter by those timestamps (ACI is always asked for them);
- ``limitBytes`` cuts the output at that many bytes, as a kubelet does;
- ``previous`` cannot be served (ACI keeps no log of an earlier run): 400 with a message saying so;
- ``follow`` polls ACI every ``log_follow_interval_seconds`` and writes the lines newer than the last one written
  (by timestamp), until the client goes away, ``limitBytes`` is reached, or the container ends: its group is read
  every ``log_follow_state_interval_seconds`` and the stream ends when the container has terminated, restarted,
  or its group or pod is gone (one last poll first, so its final lines are not lost). A follower that falls more
  than ``FOLLOW_TAIL`` lines behind in one interval loses the lines in between. Transient ARM faults and
  throttling skip a poll; they do not end the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from acinode import errors

FOLLOW_TAIL = 2000
"""Lines asked for by each follow poll (after the first)."""

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$")

Write = Callable[[bytes], Awaitable[None]]
FetchLog = Callable[[int | None], Awaitable[str]]
"""Fetch the container's log with timestamps, its last N lines if given (``AciApi.container_logs``)."""
HasEnded = Callable[[], Awaitable[bool]]
"""Whether the followed container has ended (terminated, restarted, or gone)."""


@dataclasses.dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    timestamps: bool = False
    since: dt.datetime | None = None
    limit_bytes: int | None = None
    previous: bool = False


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "false").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0", ""):
        return False
    raise errors.InvalidRequestError(f"{name}: not a boolean: {value!r}", code="BadRequest")


def _positive(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    if name not in query:
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise errors.InvalidRequestError(
            f"{name}: not an integer: {query[name]!r}", code="BadRequest"
        ) from None
    if value < minimum:
        raise errors.InvalidRequestError(f"{name} must be at least {minimum}", code="BadRequest")
    return value


def parse_timestamp(text: str) -> dt.datetime | None:
    """An RFC 3339 timestamp (any fraction digits, as ACI's 7); None if ``text`` is not one."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    try:
        return dt.datetime.fromisoformat(f"{base}.{micro}{zone}")
    except ValueError:
        return None


def log_options_from_query(query: Mapping[str, str], now: dt.datetime) -> LogOptions:
    """The kubelet's log query parameters. Raises InvalidRequestError for malformed or unservable ones."""
    since_seconds = _positive(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime")
    if since_seconds is not None and since_time:
        raise errors.InvalidRequestError(
            "at most one of sinceSeconds or sinceTime may be set", code="BadRequest"
        )
    since: dt.datetime | None = None
    if since_seconds is not None:
        since = now - dt.timedelta(seconds=since_seconds)
    elif since_time:
        since = parse_timestamp(since_time)
        if since is None:
            raise errors.InvalidRequestError(f"sinceTime: not RFC 3339: {since_time!r}", code="BadRequest")
    options = LogOptions(
        follow=_flag(query, "follow"),
        tail_lines=_positive(query, "tailLines", 0),
        timestamps=_flag(query, "timestamps"),
        since=since,
        limit_bytes=_positive(query, "limitBytes", 1),
        previous=_flag(query, "previous"),
    )
    if options.previous:
        raise errors.InvalidRequestError(
            "previous terminated container not found: ACI keeps the log of the current run only",
            code="BadRequest",
        )
    return options


@dataclasses.dataclass(frozen=True)
class LogLine:
    timestamp: dt.datetime | None
    stamped: str
    """The line with ACI's timestamp prefix."""
    text: str
    """The line without it."""


def split_lines(content: str) -> list[LogLine]:
    """ACI's timestamped log content as lines (a trailing partial line counts as a line)."""
    lines: list[LogLine] = []
    for raw in content.split("\n"):
        if raw == "":
            continue
        head, sep, rest = raw.partition(" ")
        stamp = parse_timestamp(head) if sep else None
        lines.append(LogLine(stamp, raw, rest if stamp is not None else raw))
    return lines


def render(line: LogLine, timestamps: bool) -> bytes:
    return ((line.stamped if timestamps else line.text) + "\n").encode()


class LogWriter:
    """Writes rendered lines, honouring ``limitBytes``; ``full`` once the limit is reached."""

    def __init__(self, write: Write, options: LogOptions) -> None:
        self._write = write
        self._options = options
        self._remaining = options.limit_bytes
        self.last: dt.datetime | None = None
        """Timestamp of the last line written."""
        self.written_at_last = 0
        """How many lines with exactly that timestamp were written (ties are rare but possible)."""

    @property
    def full(self) -> bool:
        return self._remaining is not None and self._remaining <= 0

    async def write_lines(self, lines: list[LogLine]) -> None:
        chunk = bytearray()
        for line in lines:
            if line.timestamp is not None:
                if line.timestamp == self.last:
                    self.written_at_last += 1
                else:
                    self.last, self.written_at_last = line.timestamp, 1
            data = render(line, self._options.timestamps)
            if self._remaining is not None:
                data = data[: self._remaining]
                self._remaining -= len(data)
            chunk += data
            if self.full:
                break
        if chunk:
            await self._write(bytes(chunk))

    def mark_seen(self, lines: list[LogLine]) -> None:
        """Take the last of ``lines`` as already written (where following starts when nothing was written)."""
        stamps = [line.timestamp for line in lines if line.timestamp is not None]
        if stamps:
            self.last = max(stamps)
            self.written_at_last = stamps.count(self.last)

    def newer(self, lines: list[LogLine]) -> list[LogLine]:
        """The lines after the last one written, by timestamp."""
        if self.last is None:
            return lines
        fresh: list[LogLine] = []
        ties = 0
        for line in lines:
            stamp = line.timestamp
            if stamp is None or stamp < self.last:
                continue
            if stamp == self.last:
                ties += 1
                if ties <= self.written_at_last:
                    continue
            fresh.append(line)
        return fresh


def select(lines: list[LogLine], options: LogOptions) -> list[LogLine]:
    """Apply ``since`` (a suffix of the log, as is ``tailLines``, so their order does not matter)."""
    if options.since is None:
        return lines
    since = options.since
    return [line for line in lines if line.timestamp is None or line.timestamp >= since]


async def stream_logs(
    fetch: FetchLog,
    write: Write,
    options: LogOptions,
    *,
    has_ended: HasEnded | None = None,
    interval_seconds: float = 1.0,
    state_interval_seconds: float = 5.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    client_gone: Callable[[], bool] = lambda: False,
) -> None:
    """Write the log as ``options`` ask; with ``follow``, keep writing new lines until the container ends or
    the client goes away."""
    writer = LogWriter(write, options)
    tail = options.tail_lines
    if options.follow and tail is not None and tail <= FOLLOW_TAIL:
        # Read the window the polls will read, so that lines sharing the last timestamp are all counted.
        window = split_lines(await fetch(FOLLOW_TAIL))
        first = window[len(window) - tail :] if tail else []
    else:
        window = first = split_lines(await fetch(tail))
    await writer.write_lines(select(first, options))
    if not options.follow or writer.full:
        return
    # Follow from the end of the log as it was, whatever tailLines and since left out.
    writer.mark_seen(window)
    next_state_check = monotonic()
    ending = False
    while not writer.full and not client_gone():
        if has_ended is not None and monotonic() >= next_state_check:
            next_state_check = monotonic() + state_interval_seconds
            ending = await has_ended()
        if not ending:
            await sleep(interval_seconds)
        try:
            lines = split_lines(await fetch(FOLLOW_TAIL))
        except errors.NotFoundError:
            return
        except errors.TransientError as err:
            # A passing ARM fault (or the read budget) does not end the stream: the next poll tries again.
            if ending:
                return
            if isinstance(err, errors.ThrottledError):
                await sleep(err.retry_after_seconds)
            continue
        await writer.write_lines(select(writer.newer(lines), options))
        if ending:
            return
