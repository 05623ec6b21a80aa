"""The emulator's HTTP(S) server: the request pipeline around the ARM routes, and its start/stop.

Pipeline per request: exec websockets (password-authenticated) → bearer auth → test hooks → route →
injected faults → api-version → subscription/resource-group scope → throttling → handler. Every error leaves
as an ARM CloudError body. ``EmulatorServer`` is also the in-process API for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from acinode.emulator import config, context, core, hooks, routes, store, tls, wire

logger = logging.getLogger(__name__)
STATE_FILE = "state.json"
_PERSIST_INTERVAL = 0.5


class EmulatorServer:
    def __init__(self, cfg: config.EmulatorConfig) -> None:
        self.cfg = cfg
        self.url = ""
        self.ca_file: Path | None = None
        self.token = cfg.token or secrets.token_urlsafe(24)
        self.emulator = core.Emulator(cfg)
        self._runner: web.AppRunner | None = None
        self._persister: asyncio.Task[None] | None = None
        self._saved_version = -1

    @property
    def state_file(self) -> Path:
        return self.cfg.state_dir / STATE_FILE

    async def start(self) -> None:
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        if self.cfg.persist and self.state_file.exists():
            self.emulator = core.Emulator(self.cfg, store.Store.load(self.state_file))
        ssl_context = None
        if self.cfg.tls:
            self.ca_file = tls.ensure_certificates(self.cfg.state_dir, self.cfg.host)
            ssl_context = tls.server_context(self.cfg.state_dir)
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, ssl_context=ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
        self.url = f"{'https' if self.cfg.tls else 'http'}://{host}:{port}"
        self.emulator.resume_all()
        if self.cfg.persist:
            self._persister = asyncio.create_task(self._persist_loop())
        logger.info("emulator listening", extra={"url": self.url, "groups": len(self.emulator.store.groups)})

    async def stop(self) -> None:
        if self._persister is not None:
            self._persister.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._persister
            self._persister = None
        if self.cfg.persist:
            self._save()
        await self.emulator.lifecycle.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        logger.info("emulator stopped")

    def endpoint(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "token": self.token,
            "pid": __import__("os").getpid(),
            "subscription_id": self.cfg.subscription_id,
        }

    def _save(self) -> None:
        state = self.emulator.store
        if state.version != self._saved_version:
            state.save(self.state_file)
            self._saved_version = state.version

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(_PERSIST_INTERVAL)
            try:
                self._save()
            except OSError:
                logger.exception("cannot persist the emulator state")

    # -- the pipeline --

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise wire.ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if self.cfg.token is not None and not secrets.compare_digest(token.strip(), self.cfg.token):
            raise wire.ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        operation = "Unknown"
        request_id = str(uuid.uuid4())
        headers = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}
        response: web.StreamResponse
        try:
            if request.path.startswith("/_exec/"):
                request.match_info["session"] = request.path[len("/_exec/") :]
                return await self.emulator.sessions.handle(request)
            self._check_auth(request)
            if request.path.startswith(hooks.PREFIX):
                return await hooks.dispatch(self.emulator, request)
            found = routes.match(request.method, request.path)
            if found is None:
                raise wire.ArmError(
                    404,
                    "InvalidResourceType",
                    f"The resource type could not be found for path '{request.path}'.",
                )
            route, params = found
            operation = route.operation
            response = await self._route(request, route, params, headers)
        except wire.ArmError as exc:
            response = web.json_response(exc.body(), status=exc.status, headers={**headers, **exc.headers})
        except _DroppedError:
            # The transport is already aborted: aiohttp silently discards this answer.
            self.emulator.stats.record(operation, 0)
            return web.Response(status=500)
        self.emulator.stats.record(operation, response.status, request.query.get("api-version", ""))
        logger.debug(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "operation": operation,
                "status": response.status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response

    async def _route(
        self, request: web.Request, route: routes.Route, params: dict[str, str], headers: dict[str, str]
    ) -> web.StreamResponse:
        emu = self.emulator
        fault = emu.faults.match(route.operation)
        if fault is not None:
            if fault.latency_seconds > 0:
                await asyncio.sleep(fault.latency_seconds)
            if fault.drop:
                if request.transport is not None:
                    request.transport.abort()
                raise _DroppedError()
            if fault.status is not None:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise wire.ArmError(fault.status, fault.code, fault.message, headers=extra)
        version = request.query.get("api-version")
        if not version:
            raise wire.ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not route.any_api_version and version not in route.api_versions:
            kind = "metrics" if route.operation == "Metrics_List" else "containerGroups"
            raise wire.ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version '{version}' "
                "for type "
                f"'{kind}'. The supported api-versions are "
                f"'{', '.join(sorted(route.api_versions))}'.",
            )
        if "sub" in params:
            emu.check_scope(params["sub"], params.get("rg"))
            headers.update(emu.throttle.admit(params["sub"], request.method, route.aci_kind))
        base_url = f"{request.scheme}://{request.host}"
        ctx = context.Context(request, params, emu, base_url, headers)
        return await route.handler(ctx)


class _DroppedError(Exception):
    """The connection was cut on purpose (fault injection)."""
