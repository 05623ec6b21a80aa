"""Container operations: logs (tail, timestamps), exec and attach (answered with a websocket URI)."""

from __future__ import annotations

from aiohttp import web

from acinode.emulator import context, store, validation, wire


def _container(ctx: context.Context) -> tuple[store.GroupRecord, store.ContainerRuntime]:
    group = ctx.group()
    runtime = group.containers.get(ctx.params["container"])
    if runtime is None:
        raise wire.container_not_found(ctx.params["container"], group.name)
    return group, runtime


async def container_logs(ctx: context.Context) -> web.StreamResponse:
    _group, runtime = _container(ctx)
    lines = list(runtime.logs)
    tail = ctx.request.query.get("tail")
    if tail is not None:
        try:
            count = int(tail)
        except ValueError as exc:
            raise wire.ArmError(
                400, "InvalidParameter", f"The tail value '{tail}' is not an integer."
            ) from exc
        lines = lines[-count:] if count > 0 else []
    stamps = ctx.request.query.get("timestamps", "false").lower() == "true"
    content = "".join(f"{wire.iso(ts)} {line}\n" if stamps else f"{line}\n" for ts, line in lines)
    return context.json_response(ctx, {"content": content})


def _socket_response(ctx: context.Context, session_id: str, password: str) -> web.Response:
    scheme = "wss" if ctx.base_url.startswith("https") else "ws"
    uri = f"{scheme}://{ctx.base_url.split('://', 1)[1]}/_exec/{session_id}"
    return context.json_response(ctx, {"webSocketUri": uri, "password": password})


async def exec_command(ctx: context.Context) -> web.StreamResponse:
    group, runtime = _container(ctx)
    raw = await ctx.json()
    validation.check_schema(raw, group.name, "ContainerExecRequest")
    if group.state == "Pending":
        raise wire.transitioning(group.name)
    # A container that is not running (ended, or waiting in a crash loop) still gets a session, as Azure answers
    # (Azure/azure-cli's recording test_container_exec: 200 for a Terminated container); the websocket then
    # closes without running anything (``execsocket``).
    size = raw.get("terminalSize") if isinstance(raw.get("terminalSize"), dict) else {}
    rows, cols = size.get("rows"), size.get("cols")
    terminal = (
        (rows, cols) if isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0 else None
    )
    session = ctx.emulator.sessions.create(
        group, runtime.name, "exec", str(raw.get("command") or "/bin/sh"), terminal
    )
    return _socket_response(ctx, session.id, session.password)


async def attach_container(ctx: context.Context) -> web.StreamResponse:
    group, runtime = _container(ctx)
    if runtime.current is None:
        raise wire.transitioning(group.name)
    session = ctx.emulator.sessions.create(group, runtime.name, "attach")
    return _socket_response(ctx, session.id, session.password)


# -- locations and provider --
