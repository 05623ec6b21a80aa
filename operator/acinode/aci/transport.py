"""The HTTP transport of every ARM client: pooled TLS connections, and the environment's proxy read once.

- azure-core's ``AioHttpTransport`` given ``connection_verify=<path>`` (a sovereign or private cloud's CA bundle,
  the emulator's) builds a new ``ssl.SSLContext`` for every request, and aiohttp keys its connection pool by SSL
  context: no connection was ever reused. Each request paid a TLS handshake and left an idle connection behind
  with OpenSSL's buffers; a burst of 1,000 pods grew the operator to 574 MiB. Here one context, built once, sits on
  the session's connector, so connections are pooled whatever the cloud.
- azure-core's session trusts the environment (``trust_env``), so aiohttp looks for a proxy (``HTTPS_PROXY``,
  ``NO_PROXY``) and for ``~/.netrc`` credentials on every request, each in a worker thread: about a tenth of the
  operator's CPU in a 1,000-pod burst. Every request of a client goes to one endpoint, so the proxy for it is
  looked up once, when the session opens, with the same rules (aiohttp's own lookup, ``NO_PROXY`` honoured).
  netrc credentials are never sent: ARM takes bearer tokens only.
"""

from __future__ import annotations

import contextlib
import ssl

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from azure.core.pipeline.transport import AioHttpTransport
from yarl import URL

from acinode import errors


def ssl_context_for(ca_bundle_path: str | None) -> ssl.SSLContext:
    """Verify server certificates against the bundle only (as ``connection_verify=<path>`` does), or against the
    system's trust store without one."""
    try:
        return ssl.create_default_context(cafile=ca_bundle_path)
    except (OSError, ssl.SSLError) as err:
        raise errors.ConfigurationError(
            f"the ARM endpoint's CA bundle {ca_bundle_path} cannot be used: {err}"
        ) from err


def env_proxy_for(endpoint: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for ``endpoint`` (None when there is none or ``NO_PROXY`` excludes it)."""
    with contextlib.suppress(LookupError):
        return get_env_proxy_for_url(URL(endpoint))
    return None, None


class ArmTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core leaves aiohttp's classes untyped
    """``AioHttpTransport`` with one SSL context for the client's lifetime, and the proxy for ``endpoint`` looked up
    once. The client keeps ``connection_verify`` at its default (True), so no per-request context replaces the
    connector's."""

    session: aiohttp.ClientSession | None

    def __init__(
        self,
        endpoint: str,
        ca_bundle_path: str | None = None,
        *,
        connection_limit: int = 100,
        timeout_seconds: float = 300.0,
    ) -> None:
        # The client's connection_timeout/read_timeout options configure only a transport the client builds: one
        # passed in keeps azure-core's 300 s unless told, and a call to a hung endpoint would hang that long.
        super().__init__(connection_timeout=timeout_seconds, read_timeout=timeout_seconds)
        self.endpoint = endpoint
        self.ssl_context = ssl_context_for(ca_bundle_path)
        self._connection_limit = connection_limit

    async def open(self) -> None:
        if self.session is None:
            # The session the base class would create (no cookies, no transparent decompression), with our
            # connector and the proxy looked up once instead of trust_env's lookups per request.
            proxy, proxy_auth = env_proxy_for(self.endpoint)
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=self._connection_limit),
                trust_env=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()
