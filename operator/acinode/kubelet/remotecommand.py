"""``/exec`` and ``/attach``: the client's streams (websocket or SPDY) bridged to ACI's exec or attach websocket.

What ACI offers, and what follows (docs/kubelet-api.md, "Exec and attach"):
- **exec** takes a terminal size (``terminalSize {rows, cols}``) when the session starts and cannot change it
  later. With ``tty``, the client's first resize message (channel 4, ``{"Width","Height"}``) is awaited for up to
  ``RESIZE_WAIT_SECONDS`` after the upgrade and becomes the session's size (24×80 if none comes); later resizes
  are read and ignored. Since the size is known only after the upgrade, ACI's refusal of a ``tty`` exec is the
  error Status on the stream rather than an HTTP status; without ``tty`` ACI is asked first, so its refusal is
  still an HTTP status (kubectl shows both).
- **attach** (``POST …/containers/{name}/attach``) streams the container's output and nothing else: no stdin, no
  terminal size. A request with ``stdin`` is refused (400) before anything starts; ``tty`` is accepted (the
  output goes to stdout, resizes are ignored). The session ends when ACI closes the stream (the emulator does when
  the container terminates) or the client leaves, and is then reported as a success.
Both are long-lived sessions, counted by ``sessions`` (server) and limited to ``exec_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from aiohttp import web

from acinode import errors, settings
from acinode.aci import api
from acinode.kubelet import channels, execbridge, spdysession, targets, websocket

logger = logging.getLogger(__name__)

SPDY_STREAM_TIMEOUT_SECONDS = 30.0
"""How long the client has to create its SPDY streams (a kubelet's stream creation timeout)."""
RESIZE_WAIT_SECONDS = 2.0
"""How long a ``tty`` exec waits for the client's terminal size before starting at 24×80. kubectl sends the
size as soon as its streams are up, so the wait is normally a round trip."""

Kind = Literal["exec", "attach"]
Item = tuple[int, bytes]


class _Replayed:
    """Client streams that first give back what was read while waiting for the terminal size."""

    def __init__(self, streams: execbridge.ClientStreams, pending: Sequence[Item]) -> None:
        self._streams = streams
        self._pending = list(pending)

    async def send(self, channel: int, data: bytes) -> None:
        await self._streams.send(channel, data)

    async def receive(self) -> Item | None:
        if self._pending:
            return self._pending.pop(0)
        return await self._streams.receive()

    async def finish(self, status: channels.ExitStatus) -> None:
        await self._streams.finish(status)

    async def abort(self) -> None:
        await self._streams.abort()


async def first_terminal_size(
    streams: execbridge.ClientStreams, *, wait_seconds: float, max_pending_bytes: int
) -> tuple[channels.TerminalSize | None, list[Item], bool]:
    """Read the client's streams until its first terminal size: (size or None, the other items read meanwhile in
    order, whether the client went away). Stops waiting after ``wait_seconds``, or once the items kept exceed
    ``max_pending_bytes``."""
    pending: list[Item] = []
    kept = 0
    try:
        async with asyncio.timeout(wait_seconds):
            while kept <= max_pending_bytes:
                item = await streams.receive()
                if item is None:
                    return None, pending, True
                channel, data = item
                if channel == channels.RESIZE:
                    size = channels.terminal_size(data)
                    if size is not None:
                        return size, pending, False
                    continue
                pending.append(item)
                kept += len(data) + 64
    except TimeoutError:
        pass
    return None, pending, False


def _transport_check(request: web.Request, kind: Kind) -> bool:
    """Whether the request is a websocket (else SPDY); InvalidRequestError if it is neither."""
    if websocket.is_websocket_request(request):
        return True
    if spdysession.is_spdy_request(request):
        return False
    raise errors.InvalidRequestError(
        f"{kind} needs a connection upgrade to websocket (v4/v5.channel.k8s.io) or SPDY/3.1",
        code="BadRequest",
    )


async def _accept(
    request: web.Request,
    is_websocket: bool,
    options: channels.StreamOptions,
    kubelet: settings.KubeletSettings,
) -> websocket.WebSocketStreams | spdysession.SpdyStreams:
    if is_websocket:
        return await websocket.WebSocketStreams.accept(request, kubelet.websocket_max_message_bytes)
    return await spdysession.SpdyStreams.accept(request, options, SPDY_STREAM_TIMEOUT_SECONDS, kubelet)


async def serve(
    request: web.Request,
    target: targets.ContainerTarget,
    kind: Kind,
    command: Sequence[str],
    kubelet: settings.KubeletSettings,
) -> web.StreamResponse:
    """Run one exec (``command``) or attach session to its end; returns the upgraded response."""
    options = channels.stream_options_from_query(request.query)
    if kind == "attach" and options.stdin:
        raise errors.InvalidRequestError(
            f"cannot attach stdin to {target.pod_name}/{target.container}: ACI's attach streams the "
            "container's output only (attach without -i/--stdin, or use kubectl exec -i)",
            code="BadRequest",
        )
    _check_running(target, kind)
    is_websocket = _transport_check(request, kind)
    size: channels.TerminalSize | None = None
    session: api.ExecSession | None = None
    if kind == "attach":
        # Ask ACI first, so that its refusal (container not running…) is still an HTTP status.
        session = await target.aci.attach(target.group, target.aci_container)
    elif not options.tty:
        session = await target.aci.exec_command(
            target.group, target.aci_container, execbridge.command_string(command)
        )
    started = time.monotonic()
    streams = await _accept(request, is_websocket, options, kubelet)
    client: execbridge.ClientStreams = streams
    if session is None:
        size, pending, gone = await first_terminal_size(
            streams, wait_seconds=RESIZE_WAIT_SECONDS, max_pending_bytes=kubelet.websocket_max_message_bytes
        )
        if gone:
            await streams.abort()
            return streams.response
        client = _Replayed(streams, pending)
        chosen = size or channels.DEFAULT_TERMINAL_SIZE
        try:
            session = await target.aci.exec_command(
                target.group,
                target.aci_container,
                execbridge.command_string(command),
                rows=chosen.rows,
                cols=chosen.cols,
            )
        except errors.AcinodeError as err:
            await streams.finish(channels.ExitStatus(None, str(err)))
            _log_end(kind, target, None, started, str(err), size)
            return streams.response
    status = await execbridge.bridge(
        client,
        session,
        command,
        options,
        ssl_context=execbridge.ssl_context_for(target.aci.ca_bundle_path),
        timeout_seconds=kubelet.exec_timeout_seconds,
        max_message_bytes=kubelet.websocket_max_message_bytes,
    )
    _log_end(kind, target, status, started, None, size)
    return streams.response


def _check_running(target: targets.ContainerTarget, kind: Kind) -> None:
    """Refuse to exec into (or attach to) a container the pod's status shows not running, as a kubelet's runtime
    refuses it. ACI would hand out a session whose stream then closes at once (code 1011), which kubectl reports
    as a broken connection rather than the reason."""
    status = target.container_status()
    state: dict[str, Any] = dict((status or {}).get("state") or {})
    if status is None or not state or "running" in state:
        return  # unknown yet: ACI decides
    current = next(iter(state))
    reason = str((state.get(current) or {}).get("reason", ""))
    raise errors.InvalidRequestError(
        f"cannot {kind} in container {target.container} of pod {target.pod_name}: it is not running "
        f"({current}{': ' + reason if reason else ''})",
        code="BadRequest",
    )


def _log_end(
    kind: Kind,
    target: targets.ContainerTarget,
    status: channels.ExitStatus | None,
    started: float,
    refused: str | None,
    size: channels.TerminalSize | None,
) -> None:
    outcome = refused or json.dumps(status.to_status() if status else "client went away")
    logger.info(
        "%s ended: %s",
        kind,
        outcome,
        extra={
            "node": target.node_name,
            "namespace": target.namespace,
            "pod": target.pod_name,
            "container_group": target.group,
            "seconds": round(time.monotonic() - started, 3),
            **({"terminal_size": f"{size.rows}x{size.cols}"} if size else {}),
        },
    )
