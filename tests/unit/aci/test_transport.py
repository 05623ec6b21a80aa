"""The transport for custom-CA clouds reuses its TLS connections (azure-core's connection_verify=<path> does not)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest

from acinode import errors, settings
from acinode.aci import azure, counting, ratelimit, target, transport
from acinode.emulator import tls


@pytest.fixture
async def https_echo(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS server on loopback answering each request with the client's source port."""
    ca_file = tls.ensure_certificates(tmp_path, "127.0.0.1")

    async def peer_port(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.Response(text=str(peer[1] if peer else -1))

    app = web.Application()
    app.router.add_get("/", peer_port)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(tmp_path))
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/", ca_file
    finally:
        await runner.cleanup()


async def source_ports(pipeline_transport: object, url: str, requests: int) -> set[str]:
    ports = set()
    async with AsyncPipeline(pipeline_transport) as pipeline:  # type: ignore[arg-type]
        for _ in range(requests):
            response = await pipeline.run(HttpRequest("GET", url))
            http = response.http_response
            await http.read()
            assert http.status_code == 200
            ports.add(http.text())
    return ports


async def test_requests_share_one_verified_connection(https_echo: tuple[str, Path]) -> None:
    url, ca_file = https_echo
    assert len(await source_ports(transport.CaBundleTransport(str(ca_file)), url, requests=5)) == 1


async def test_an_untrusted_server_is_refused(https_echo: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = https_echo
    other_ca = tls.ensure_certificates(tmp_path / "other", "127.0.0.1")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        await source_ports(transport.CaBundleTransport(str(other_ca)), url, requests=1)


def test_an_unreadable_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    for path in (tmp_path / "missing.pem", tmp_path / "garbage.pem"):
        with pytest.raises(errors.ConfigurationError, match="CA bundle"):
            transport.CaBundleTransport(str(path))


def test_a_ca_bundle_cloud_gets_the_pooling_transport(tmp_path: Path) -> None:
    ca_file = tls.ensure_certificates(tmp_path, "127.0.0.1")
    cloud = target.custom_cloud("https://arm.private.example", ca_bundle_path=str(ca_file))
    aci = settings.AciSettings()
    options = azure._client_options(
        cloud, aci, ratelimit.ArmRateLimiter.from_settings(aci), counting.ArmRequestCounter()
    )
    assert isinstance(options["transport"], transport.CaBundleTransport)
    config = options["transport"].connection_config
    assert (config.timeout, config.read_timeout) == (aci.request_timeout_seconds, aci.request_timeout_seconds)
    assert "connection_verify" not in options  # it would replace the pooled context on every request


async def test_a_hung_endpoint_times_out_after_the_request_timeout(tmp_path: Path) -> None:
    """A custom-CA transport honours the client's request timeout (azure-core's default would wait 300 s)."""
    ca_file = tls.ensure_certificates(tmp_path, "127.0.0.1")
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(tmp_path))
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        started = time.monotonic()
        with pytest.raises(ServiceResponseError):
            await source_ports(
                transport.CaBundleTransport(str(ca_file), timeout_seconds=0.3), url, requests=1
            )
        assert time.monotonic() - started < 1.5
    finally:
        release.set()
        await runner.cleanup()
