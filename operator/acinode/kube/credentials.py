"""Where the Kubernetes credentials come from, and when they are fetched again: as client-go does it.

A ``CredentialSource`` pairs the API server's endpoint (address and trust) with a way to obtain the current
credential. The client asks it before every request and tells it when the API server refused one (401), so a
rotated token file, an expired exec-plugin token or a revoked token is replaced without a restart:

- ``StaticCredentials``: a token (or none) and a client certificate fixed at start-up;
- ``TokenFileCredentials``: a bearer token read from a file (a projected service-account token, a kubeconfig's
  ``tokenFile``), read again every minute and after a 401, as client-go's cached file token source does;
- ``execplugin.ExecPluginCredentials``: a kubeconfig ``exec`` plugin (kubelogin, aws-iam-authenticator…).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from acinode import clock, errors
from acinode.kube import connection

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
"""The wall clock (tz-aware, UTC): expiry times come from credential issuers as wall-clock times."""

TOKEN_FILE_REREAD_SECONDS = 60.0
"""How long a token read from a file is used before the file is read again (client-go: one minute)."""


utc_now = clock.utc_now


@dataclasses.dataclass(frozen=True)
class Credential:
    """What authenticates one request: a bearer token, a client certificate (PEM), or both; never logged."""

    token: str | None = dataclasses.field(default=None, repr=False)
    certificate_data: bytes | None = dataclasses.field(default=None, repr=False)
    private_key_data: bytes | None = dataclasses.field(default=None, repr=False)
    expires_at: datetime.datetime | None = None
    """When the issuer says it stops working (an exec plugin's ``expirationTimestamp``); None: unknown."""
    refresh_at: datetime.datetime | None = None
    """When a new one is fetched, ahead of ``expires_at``; None: only after a 401."""

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None to send none."""
        return f"Bearer {self.token}" if self.token else None

    @property
    def identity(self) -> tuple[bytes, bytes] | None:
        """The client certificate and key presented in the TLS handshake, when the credential carries one."""
        if self.certificate_data and self.private_key_data:
            return self.certificate_data, self.private_key_data
        return None

    def is_due(self, now: datetime.datetime) -> bool:
        """Whether it is time to fetch a new one."""
        return self.refresh_at is not None and now >= self.refresh_at

    def is_same_secret(self, other: Credential) -> bool:
        """Whether both authenticate the same way (same token, same certificate), whatever their expiry."""
        return (self.token, self.identity) == (other.token, other.identity)


def refresh_time(
    fetched_at: datetime.datetime, expires_at: datetime.datetime | None, margin_seconds: float
) -> datetime.datetime | None:
    """When to fetch a credential again: ``margin_seconds`` before it expires, or after three quarters of its
    lifetime when that is shorter (a 20 s token is refreshed after 15 s, not at once). None: no known expiry."""
    if expires_at is None:
        return None
    lifetime = max(0.0, (expires_at - fetched_at).total_seconds())
    return expires_at - datetime.timedelta(seconds=min(margin_seconds, lifetime / 4))


class CredentialSource(Protocol):
    """The credentials of one API server. Contract:

    - ``current`` is cheap while the cached credential is fresh; it may block (read a file, run a plugin) when
      one must be fetched, and concurrent callers then wait for the same fetch. It raises
      ``errors.AuthenticationError`` when no credential can be obtained (the message names the source, never a
      secret) and ``errors.ConfigurationError`` when the configuration cannot work.
    - ``invalidate`` says the API server refused ``stale`` (401): the next ``current`` fetches anew. It is a no-op
      when ``stale`` is no longer the cached credential (another request already replaced it).
    """

    @property
    def endpoint(self) -> connection.KubeConnection:
        """The API server's address and trust (CA, insecure), and a fixed client certificate if configured."""
        ...

    @property
    def description(self) -> str:
        """Where the credentials come from, for messages (a file, a kubeconfig context, a command); no secret."""
        ...

    async def current(self) -> Credential: ...

    def invalidate(self, stale: Credential) -> None: ...


class SourceOf:
    """Where a credential source sends its credentials and how logs name it: the part every source shares."""

    def __init__(self, endpoint: connection.KubeConnection, description: str) -> None:
        self._endpoint = endpoint
        self._description = description

    @property
    def endpoint(self) -> connection.KubeConnection:
        return self._endpoint

    @property
    def description(self) -> str:
        return self._description


class StaticCredentials(SourceOf):
    """A fixed credential: the token and client certificate of a ``KubeConnection`` (or none at all)."""

    def __init__(self, endpoint: connection.KubeConnection, description: str = "static credentials") -> None:
        super().__init__(endpoint, description)
        self._credential = Credential(token=endpoint.token)

    async def current(self) -> Credential:
        return self._credential

    def invalidate(self, stale: Credential) -> None:
        """Nothing to fetch again: a refused static token stays refused."""


class TokenFileCredentials(SourceOf):
    """A bearer token read from a file, read again when the cached value is older than ``reread_seconds`` and
    after a 401. If a later read fails (the file is being replaced), the last value read stays in use."""

    def __init__(
        self,
        endpoint: connection.KubeConnection,
        token_file: Path,
        *,
        description: str,
        reread_seconds: float = TOKEN_FILE_REREAD_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(endpoint, description)
        self._token_file = token_file
        self._reread_seconds = reread_seconds
        self._monotonic = monotonic
        self._cached: Credential | None = None
        self._read_at = 0.0

    async def current(self) -> Credential:
        cached = self._cached
        if cached is not None and self._monotonic() - self._read_at < self._reread_seconds:
            return cached
        try:
            token = read_token_file(self._token_file)
        except errors.AuthenticationError as err:
            if cached is None:
                raise
            logger.warning("%s; still using the token read before", err)
            self._read_at = self._monotonic()
            return cached
        if cached is None or cached.token != token:
            cached = self._cached = Credential(token=token)
            logger.debug("read a new bearer token from %s", self._token_file)
        self._read_at = self._monotonic()
        return cached

    def invalidate(self, stale: Credential) -> None:
        if self._cached is stale:
            self._read_at = float("-inf")  # read the file again on the next request


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace removed); ``AuthenticationError`` if unreadable or empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err.__class__.__name__
        raise errors.AuthenticationError(f"cannot read the token file {path}: {reason}") from err
    if not token:
        raise errors.AuthenticationError(f"the token file {path} is empty")
    return token
