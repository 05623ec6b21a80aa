"""The HTTP transport for an ARM endpoint whose certificate chains to a custom CA bundle (sovereign and private
clouds, the emulator).

azure-core's ``AioHttpTransport`` given ``connection_verify=<path>`` builds a new ``ssl.SSLContext`` for every
request, and aiohttp keys its connection pool by SSL context: no connection was ever reused. Each request paid a
TLS handshake and left an idle connection behind with OpenSSL's buffers; a burst of 1,000 pods grew the
operator to 574 MiB. Here one context, built once, sits on the session's connector, so connections are pooled
exactly as they are for the public cloud.
"""

from __future__ import annotations

import ssl

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport

from acinode import errors


def ssl_context_for(ca_bundle_path: str) -> ssl.SSLContext:
    """Verify server certificates against the bundle only (as ``connection_verify=<path>`` does)."""
    try:
        return ssl.create_default_context(cafile=ca_bundle_path)
    except (OSError, ssl.SSLError) as err:
        raise errors.ConfigurationError(
            f"the ARM endpoint's CA bundle {ca_bundle_path} cannot be used: {err}"
        ) from err


class CaBundleTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core leaves aiohttp's classes untyped
    """``AioHttpTransport`` with one SSL context for the client's lifetime. The client keeps
    ``connection_verify`` at its default (True), so no per-request context replaces the connector's."""

    session: aiohttp.ClientSession | None

    def __init__(
        self, ca_bundle_path: str, *, connection_limit: int = 100, timeout_seconds: float = 300.0
    ) -> None:
        # The client's connection_timeout/read_timeout options configure only a transport the client builds: one
        # passed in keeps azure-core's 300 s unless told, and a call to a hung endpoint would hang that long.
        super().__init__(connection_timeout=timeout_seconds, read_timeout=timeout_seconds)
        self.ssl_context = ssl_context_for(ca_bundle_path)
        self._connection_limit = connection_limit

    async def open(self) -> None:
        if self.session is None:
            # The session the base class would create (proxy settings from the environment, no cookies, no
            # transparent decompression), with our connector.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=self._connection_limit),
                trust_env=True,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()
