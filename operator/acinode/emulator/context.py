"""What a route handler gets (the request, its path parameters, the emulator) and how it answers JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from acinode.emulator import core, store, wire


@dataclass
class Context:
    request: web.Request
    params: dict[str, str]
    emulator: core.Emulator
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)

    async def json(self) -> Any:
        raw = await self.request.read()
        if not raw:
            raise wire.invalid_content("The request body is empty")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise wire.invalid_content(
                f"Unexpected character encountered while parsing value: {exc}"
            ) from exc

    @property
    def sub(self) -> str:
        return self.params["sub"]

    def group(self) -> store.GroupRecord:
        return self.emulator.group_or_404(self.sub, self.params["rg"], self.params["name"])


Handler = Callable[[Context], Awaitable[web.StreamResponse]]


def json_response(ctx: Context, body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=ctx.headers,
    )


def empty(ctx: Context, status: int) -> web.Response:
    return web.Response(status=status, headers=ctx.headers)


# -- container groups --
