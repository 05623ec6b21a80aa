"""Exec and attach websockets, as ACI serves them behind ``webSocketUri`` + ``password``.

Protocol (docs/emulator.md): the client's first frame is the password. Exec then runs the request's command
string through the safe interpreter, sending its output as text frames (one per line, ending in ``\\n``), and
closes with code ``4000 + exit status`` (reason ``exit status N``). A bare shell (``/bin/sh``, ``bash``) is
interactive: each line the client sends runs in turn until ``exit``; the request's ``terminalSize`` is the
session's terminal (``LINES``/``COLUMNS``, ``stty size``; 24×80 when absent), fixed for its life as ACI's is.
Attach streams the container's log (output only: what the client sends is read and dropped) until the container
terminates or the client leaves. The last sessions started are kept for tests (``recent``, hook ``GET sessions``).
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from acinode.emulator import script, store, usage

SESSION_TTL_SECONDS = 300.0
EXIT_CLOSE_BASE = 4000
AUTH_FAILED_CLOSE = 4401
NOT_RUNNING_CLOSE = 1011
"""Exec into a container that is not running: the session was handed out, the stream ends at once (what real ACI
sends here is not recorded)."""
_FIRST_FRAME_TIMEOUT = 30.0
_RECENT_SESSIONS = 100
DEFAULT_TERMINAL = (24, 80)


@dataclass
class Session:
    id: str
    password: str
    kind: str
    key: store.Key
    container: str
    command: str
    expires: float
    rows: int = DEFAULT_TERMINAL[0]
    cols: int = DEFAULT_TERMINAL[1]


class ExecSessions:
    def __init__(self, state: store.Store, usage_book: usage.UsageBook | None = None) -> None:
        self.store = state
        self.usage = usage_book
        self._sessions: dict[str, Session] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=_RECENT_SESSIONS)
        """The last sessions started, oldest first: kind, group, container, command, terminalSize."""

    def create(
        self,
        group: store.GroupRecord,
        container: str,
        kind: str,
        command: str = "",
        terminal: tuple[int, int] | None = None,
    ) -> Session:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]
        session = Session(
            secrets.token_hex(16),
            secrets.token_urlsafe(24),
            kind,
            group.key,
            container,
            command,
            now + SESSION_TTL_SECONDS,
            *(terminal or DEFAULT_TERMINAL),
        )
        self._sessions[session.id] = session
        self.recent.append(
            {
                "kind": kind,
                "resourceGroup": group.resource_group,
                "containerGroup": group.name,
                "container": container,
                "command": command,
                "terminalSize": {"rows": session.rows, "cols": session.cols} if kind == "exec" else None,
            }
        )
        return session

    async def handle(self, request: web.Request) -> web.StreamResponse:
        session = self._sessions.pop(request.match_info["session"], None)
        if session is None or session.expires < time.time():
            return web.Response(status=404, text="unknown or expired session")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        try:
            first = await ws.receive(timeout=_FIRST_FRAME_TIMEOUT)
        except TimeoutError:
            await ws.close(code=AUTH_FAILED_CLOSE, message=b"no password")
            return ws
        given = first.data if first.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None
        if isinstance(given, bytes):
            given = given.decode(errors="replace")
        if not isinstance(given, str) or not secrets.compare_digest(given.strip(), session.password):
            await ws.close(code=AUTH_FAILED_CLOSE, message=b"authentication failed")
            return ws
        group = self.store.groups.get(session.key)
        runtime = group.containers.get(session.container) if group else None
        if group is None or runtime is None:
            await ws.close(code=1011, message=b"container gone")
            return ws
        if session.kind == "attach":
            await self._attach(ws, group, runtime)
        elif runtime.current is None or runtime.current.state != "Running":
            # Azure hands out the session, but there is no process to run the command in.
            await ws.close(code=NOT_RUNNING_CLOSE, message=b"container is not running")
        else:
            await self._exec(ws, group, session)
        return ws

    async def _exec(self, ws: web.WebSocketResponse, group: store.GroupRecord, session: Session) -> None:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        fallback: dict[str, Any] = {"properties": {}}
        spec = next((c for c in group.container_specs() if c["name"] == session.container), fallback)
        env = {
            str(e["name"]): str(e.get("value", e.get("secureValue", "")))
            for e in spec["properties"].get("environmentVariables") or []
        }
        env.update(LINES=str(session.rows), COLUMNS=str(session.cols))
        shell = script.Shell(write=lambda line: queue.put_nowait(line + "\n"), env=env, hostname=group.name)
        # `usage cpu=… memory=…` in an exec session sets the container's usage (busy loops of exec do not count).
        shell.load = self.usage.get(group.key, session.container) if self.usage is not None else None
        shell.track_busy = False
        sender = asyncio.create_task(_send_all(ws, queue))
        try:
            if _is_bare_shell(session.command):
                status = await _interactive(ws, shell)
            else:
                status = await _run_line(shell, session.command)
        finally:
            queue.put_nowait(None)
            await sender
        await ws.close(code=EXIT_CLOSE_BASE + (status & 0xFF), message=f"exit status {status}".encode())

    async def _attach(
        self, ws: web.WebSocketResponse, group: store.GroupRecord, runtime: store.ContainerRuntime
    ) -> None:
        sent = max(0, runtime.lines_written - len(runtime.logs))
        generation = group.generation
        reader = asyncio.create_task(_drain_input(ws))
        while not ws.closed and not reader.done():
            lines = list(runtime.logs)
            first_index = runtime.lines_written - len(lines)
            for index, (_ts, line) in enumerate(lines):
                if first_index + index >= sent:
                    await ws.send_str(line + "\n")
            sent = runtime.lines_written
            current = runtime.current
            if group.generation != generation or (current is not None and current.state == "Terminated"):
                break
            await asyncio.sleep(0.1)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()


async def _drain_input(ws: web.WebSocketResponse) -> None:
    """Read and drop what an attach client sends (ACI's attach takes no input); returns when it closes."""
    async for _msg in ws:
        pass


def _is_bare_shell(command: str) -> bool:
    words = command.split()
    return len(words) == 1 and words[0].rsplit("/", 1)[-1] in script.SHELLS


async def _run_line(shell: script.Shell, line: str) -> int:
    try:
        node = script.parse(line)
    except script.ScriptError as exc:
        shell.write(f"sh: {exc}")
        return 2
    return await shell.run(node)


async def _interactive(ws: web.WebSocketResponse, shell: script.Shell) -> int:
    buffer = ""
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            break
        data = msg.data if isinstance(msg.data, str) else msg.data.decode(errors="replace")
        buffer += data.replace("\r\n", "\n").replace("\r", "\n")
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            status = await _run_line(shell, line)
            if shell.exited:
                return status
    return shell.status


async def _send_all(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
    while (item := await queue.get()) is not None:
        if not ws.closed:
            await ws.send_str(item)
