"""The ARM transport reuses its TLS connections (azure-core's connection_verify=<path> does not) and takes the
environment's proxy once, as aiohttp's trust_env would on every request."""

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
    assert len(await source_ports(transport.ArmTransport(url, str(ca_file)), url, requests=5)) == 1


async def test_an_untrusted_server_is_refused(https_echo: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = https_echo
    other_ca = tls.ensure_certificates(tmp_path / "other", "127.0.0.1")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        await source_ports(transport.ArmTransport(url, str(other_ca)), url, requests=1)


def test_an_unreadable_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    for path in (tmp_path / "missing.pem", tmp_path / "garbage.pem"):
        with pytest.raises(errors.ConfigurationError, match="CA bundle"):
            transport.ArmTransport("https://arm.private.example", str(path))


def test_a_ca_bundle_cloud_gets_the_pooling_transport(tmp_path: Path) -> None:
    ca_file = tls.ensure_certificates(tmp_path, "127.0.0.1")
    cloud = target.custom_cloud("https://arm.private.example", ca_bundle_path=str(ca_file))
    aci = settings.AciSettings()
    options = azure._client_options(
        cloud, aci, ratelimit.ArmRateLimiter.from_settings(aci), counting.ArmRequestCounter()
    )
    assert isinstance(options["transport"], transport.ArmTransport)
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
                transport.ArmTransport(url, str(ca_file), timeout_seconds=0.3), url, requests=1
            )
        assert time.monotonic() - started < 1.5
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
async def recording_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A plain-HTTP forward proxy on loopback that answers every request itself and records its target URL."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.Response(text="via proxy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def answer_of(pipeline_transport: object, url: str) -> str:
    async with AsyncPipeline(pipeline_transport) as pipeline:  # type: ignore[arg-type]
        response = await pipeline.run(HttpRequest("GET", url))
        await response.http_response.read()
        return str(response.http_response.text())


async def test_the_environments_proxy_carries_the_requests(
    recording_proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, seen = recording_proxy
    endpoint = "http://arm.acinode.invalid"
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    arm = transport.ArmTransport(endpoint)
    assert await answer_of(arm, f"{endpoint}/subscriptions?api-version=1") == "via proxy"
    assert seen == [f"{endpoint}/subscriptions?api-version=1"]


async def test_no_proxy_sends_the_requests_directly(
    https_echo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = https_echo
    for name in ("HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # the discard port: nothing answers there
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert transport.env_proxy_for(url) == (None, None)
    assert len(await source_ports(transport.ArmTransport(url, str(ca_file)), url, requests=2)) == 1
