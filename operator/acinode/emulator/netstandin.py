"""The networking stand-in: loopback IPs for container groups, and real HTTP listeners on them.

A group exposing ports gets the next free address of the configured range (always inside 127.0.0.0/8, which
Linux routes to ``lo`` without any set-up), and the emulator answers HTTP GET on each TCP port with a small
page naming the group, so ``curl http://<pod IP>`` works locally. Listeners close when the group stops,
finishes or is deleted, and on shutdown; the address stays reserved until the group is deleted.
"""

from __future__ import annotations

import html
import ipaddress
import logging
from collections.abc import Iterable

from aiohttp import web

from acinode.emulator import config

logger = logging.getLogger(__name__)

_HELLOWORLD_PAGE = """<html>
<head><title>Welcome to Azure Container Instances!</title></head>
<body>
<h1>Welcome to Azure Container Instances!</h1>
<p>Container group: {group}</p>
<p>Served by the acinode ACI emulator.</p>
</body>
</html>
"""
_DEFAULT_PAGE = """<html>
<head><title>{group}</title></head>
<body>
<h1>Container group {group}</h1>
<p>Image: {image}</p>
<p>Served by the acinode ACI emulator.</p>
</body>
</html>
"""


class AddressPool:
    """Hands out addresses of a loopback range in order, skipping those in use, wrapping at the end."""

    def __init__(self, cidr: str) -> None:
        net = config.check_loopback_range(cidr)
        hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
        self._hosts = [str(h) for h in hosts if h.packed[-1] not in (0, 255)]
        self._next = 0
        self._used: set[str] = set()

    def reserve(self, address: str) -> None:
        """Mark an address in use (restored groups keep theirs)."""
        self._used.add(address)

    def allocate(self) -> str:
        for _ in range(len(self._hosts)):
            candidate = self._hosts[self._next]
            self._next = (self._next + 1) % len(self._hosts)
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate
        raise RuntimeError("the emulator's IP range is exhausted")

    def release(self, address: str | None) -> None:
        if address is not None:
            self._used.discard(address)


def page(group: str, images: Iterable[str]) -> str:
    images = list(images)
    if any("helloworld" in image for image in images):
        return _HELLOWORLD_PAGE.format(group=html.escape(group))
    return _DEFAULT_PAGE.format(group=html.escape(group), image=html.escape(", ".join(images)))


class Listeners:
    """One aiohttp runner per group, with a site per exposed TCP port."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._runners: dict[str, web.AppRunner] = {}

    def is_open(self, key: str) -> bool:
        return key in self._runners

    async def open(self, key: str, address: str, ports: list[int], group: str, images: list[str]) -> None:
        if not self.enabled or key in self._runners or not ports:
            return
        if not ipaddress.ip_address(address).is_loopback:  # belt and braces: never bind anything else
            raise ValueError(f"refusing to listen on non-loopback address {address}")
        body = page(group, images)

        async def answer(request: web.Request) -> web.Response:
            return web.Response(text=body, content_type="text/html")

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners[key] = runner
        for port in ports:
            try:
                await web.TCPSite(runner, address, port, reuse_address=True).start()
            except OSError as exc:
                logger.warning(
                    "stand-in cannot listen", extra={"address": address, "port": port, "error": str(exc)}
                )

    async def close(self, key: str) -> None:
        runner = self._runners.pop(key, None)
        if runner is not None:
            await runner.cleanup()

    async def close_all(self) -> None:
        for key in list(self._runners):
            await self.close(key)
