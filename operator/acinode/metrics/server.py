"""``GET /metrics`` over plain HTTP on its own port, as Prometheus scrapes it.

A port that cannot be bound is logged and the operator runs on without metrics.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import exposition

from acinode.metrics import collector

logger = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, metrics: collector.OperatorMetrics, address: str, port: int) -> None:
        self.metrics = metrics
        self.address = address
        self.requested_port = port
        self.app = web.Application()
        self.app.router.add_get("/metrics", self.scrape)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        body = exposition.generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": exposition.CONTENT_TYPE_PLAIN_0_0_4})

    async def start(self) -> bool:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.address, self.requested_port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            logger.error(
                "metrics not served: cannot listen on %s:%s: %s", self.address, self.requested_port, err
            )
            return False
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.requested_port
        logger.info("metrics serving on http://%s:%s/metrics", self.address, self.port)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.port = None
