"""``/exec``: a command in a container, bridged between the client's streams and ACI's exec websocket.

What ACI's exec can do, and what follows for ``kubectl exec``:
- ACI takes **one command string**, not an argument vector. A one-element command is passed as it is; several
  elements are joined with shell quoting (``sh -c 'echo a; exit 3'``), which is how the command is split again
  by the emulator's interpreter. Real ACI documents that it does not pass arguments at all (only a program such
  as ``/bin/sh`` is reliable there): use an interactive shell and send the command on stdin.
- Output comes back on one stream: it is written to stdout (stderr is empty).
- The terminal size is fixed at the start (24×80); resize messages are read and ignored.
- The exit status is ACI's close code ``4000 + status`` where given (the emulator's convention); a plain close
  reports success, since then ACI says nothing about it.
- stdin is forwarded as text; when the client closes stdin (v5 close signal, SPDY FIN) of a bare shell, ``exit``
  is sent so the shell ends as it would at end of file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import ssl
from collections.abc import Sequence
from typing import Protocol

import aiohttp

from acinode.aci import api
from acinode.kubelet import channels

logger = logging.getLogger(__name__)

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})


class ClientStreams(Protocol):
    """The Kubernetes side of an exec session (websocket or SPDY)."""

    async def send(self, channel: int, data: bytes) -> None: ...

    async def receive(self) -> tuple[int, bytes] | None:
        """stdin data, a resize, or a stream close; None when the client has gone."""
        ...

    async def finish(self, status: channels.ExitStatus) -> None: ...

    async def abort(self) -> None: ...


def command_string(command: Sequence[str]) -> str:
    """The one command string ACI takes for a Kubernetes command vector."""
    if len(command) == 1:
        return command[0]
    return shlex.join(command)


def is_bare_shell(command: Sequence[str]) -> bool:
    return len(command) == 1 and command[0].rsplit("/", 1)[-1] in SHELLS


def ssl_context_for(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS for ACI's exec websocket: trusts what the ACI client trusts (``ContainerAccess.ca_bundle_path``: a
    private cloud's CA bundle, or the system's)."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


async def bridge(
    streams: ClientStreams,
    session: api.ExecSession,
    command: Sequence[str],
    options: channels.StreamOptions,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout_seconds: float,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> channels.ExitStatus | None:
    """Run the exec session to its end. Returns the exit status written to the client, or None if the client
    went away first. A message from ACI larger than ``max_message_bytes`` ends the session."""
    output_channel = channels.STDOUT if options.stdout or options.tty else channels.STDERR
    async with aiohttp.ClientSession() as http:
        try:
            aci_ws = await http.ws_connect(
                session.websocket_uri, ssl=ssl_context or True, heartbeat=None, max_msg_size=max_message_bytes
            )
        except (aiohttp.ClientError, OSError) as err:
            status = channels.ExitStatus(None, f"cannot connect to ACI's exec websocket: {err}")
            await streams.finish(status)
            return status
        async with aci_ws:
            await aci_ws.send_str(session.password)
            forward = asyncio.create_task(_forward_input(streams, aci_ws, is_bare_shell(command)))
            output = asyncio.create_task(_copy_output(aci_ws, streams, output_channel))
            try:
                async with asyncio.timeout(timeout_seconds):
                    done, _pending = await asyncio.wait(
                        {forward, output}, return_when=asyncio.FIRST_COMPLETED
                    )
            except TimeoutError:
                done = set()
            if output not in done:
                # The client went away (or the time is up): end the ACI session too.
                for task in (forward, output):
                    task.cancel()
                await asyncio.gather(forward, output, return_exceptions=True)
                if forward in done:
                    await streams.abort()
                    return None
                status = channels.ExitStatus(None, "exec session timed out")
                await streams.finish(status)
                return status
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            status = channels.exit_status_from_close(aci_ws.close_code)
    await streams.finish(status)
    return status


async def _copy_output(aci_ws: aiohttp.ClientWebSocketResponse, streams: ClientStreams, channel: int) -> None:
    async for message in aci_ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            await streams.send(channel, str(message.data).encode())
        elif message.type == aiohttp.WSMsgType.BINARY:
            await streams.send(channel, bytes(message.data))
        elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
            break


async def _forward_input(
    streams: ClientStreams, aci_ws: aiohttp.ClientWebSocketResponse, bare_shell: bool
) -> None:
    """Copy stdin to ACI until the client goes away (returns) — never returns otherwise."""
    while True:
        item = await streams.receive()
        if item is None:
            return
        channel, data = item
        if channel == channels.STDIN and not aci_ws.closed:
            await aci_ws.send_str(data.decode(errors="replace"))
        elif (
            channel == channels.CLOSE_SIGNAL
            and data == bytes([channels.STDIN])
            and bare_shell
            and not aci_ws.closed
        ):
            await aci_ws.send_str("exit\n")
