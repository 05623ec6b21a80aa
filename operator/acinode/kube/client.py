"""A small async client for the Kubernetes REST API (aiohttp), translating HTTP failures into acinode errors.

acinode needs a handful of verbs on a handful of resources; a thin client keeps the operator's memory small (the
generated ``kubernetes`` client costs tens of MB when imported) and fully async.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import aiohttp

from acinode import errors
from acinode.kube import connection, credentials

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]
_PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class KubeClient:
    """One connection pool to the API server. Create once, close at shutdown.

    Each request carries the credential source's current credential (a bearer token, and a client certificate when
    an exec plugin returns one). On a 401 the source is told the credential was refused and the request is sent
    once more with a fresh one, when the source has a different one to give (client-go's behaviour for rotating
    token files and exec plugins). A fixed ``KubeConnection`` is a source whose credential never changes.
    """

    def __init__(
        self,
        conn: connection.KubeConnection | credentials.CredentialSource,
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._source: credentials.CredentialSource = (
            credentials.StaticCredentials(conn) if isinstance(conn, connection.KubeConnection) else conn
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._session_identity: tuple[bytes, bytes] | None = None
        self._retired: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def credential_source(self) -> credentials.CredentialSource:
        return self._source

    def _session_or_new(self, identity: tuple[bytes, bytes] | None = None) -> aiohttp.ClientSession:
        """The session presenting ``identity`` in TLS (a new one when the identity changed). The session it
        replaces is closed only when it is replaced in turn, so that its watches run to their end meanwhile."""
        if self._session is not None and not self._session.closed and identity == self._session_identity:
            return self._session
        endpoint = self._source.endpoint.with_identity(identity)
        try:
            ssl_context = endpoint.ssl_context()
        except (OSError, ssl.SSLError, ValueError) as err:
            raise errors.ConfigurationError(
                f"cannot set up TLS to {endpoint.server}: {err.__class__.__name__}: {err}"
            ) from err
        if self._session is not None and not self._session.closed:
            if self._retired is not None and not self._retired.closed:
                task = asyncio.get_running_loop().create_task(self._retired.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            self._retired = self._session
        self._session = aiohttp.ClientSession(
            base_url=endpoint.server,
            headers={"Accept": "application/json", "User-Agent": "acinode"},
            connector=aiohttp.TCPConnector(ssl=ssl_context, limit=64),
            timeout=self._timeout,
        )
        self._session_identity = identity
        return self._session

    async def close(self) -> None:
        for session in (self._session, self._retired):
            if session is not None:
                await session.close()
        if self._closing:
            await asyncio.gather(*self._closing)

    async def _refreshed(self, refused: credentials.Credential, what: str) -> credentials.Credential | None:
        """After a 401 with ``refused``: a different credential to retry with, or None if there is none."""
        self._source.invalidate(refused)
        fresh = await self._source.current()
        if fresh.is_same_secret(refused):
            return None
        logger.info("%s: 401, retrying with new credentials from %s", what, self._source.description)
        return fresh

    @staticmethod
    def _auth_headers(credential: credentials.Credential) -> dict[str, str]:
        authorization = credential.authorization
        return {"Authorization": authorization} if authorization else {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        what = f"{method} {path}"
        data = None if body is None else json.dumps(body)
        credential = await self._source.current()
        for attempt in (1, 2):
            session = self._session_or_new(credential.identity)
            headers = self._auth_headers(credential)
            if data is not None:
                headers["Content-Type"] = content_type
            try:
                async with session.request(
                    method, path, params=params, data=data, headers=headers
                ) as response:
                    payload = await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError) as err:
                raise errors.TransientError(f"{what}: {err.__class__.__name__}: {err}") from err
            if status == 401 and attempt == 1 and (fresh := await self._refreshed(credential, what)):
                credential = fresh
                continue
            if status >= 400:
                raise error_from_response(status, payload, what)
            return json.loads(payload) if payload else {}
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonObject:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: JsonObject) -> JsonObject:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: JsonObject) -> JsonObject:
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Any, patch_type: PatchType = "merge") -> JsonObject:
        return await self.request("PATCH", path, body=body, content_type=_PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, path: str, body: JsonObject | None = None) -> JsonObject:
        return await self.request("DELETE", path, body=body)

    async def watch(
        self, path: str, params: Mapping[str, str], *, timeout_seconds: int = 300
    ) -> AsyncIterator[JsonObject]:
        """Yield watch events (``{"type", "object"}``) until the server ends the stream."""
        what = f"WATCH {path}"
        query = {
            **params,
            "watch": "true",
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        credential = await self._source.current()
        for attempt in (1, 2):
            session = self._session_or_new(credential.identity)
            refused = False
            try:
                async with session.get(
                    path, params=query, timeout=timeout, headers=self._auth_headers(credential)
                ) as response:
                    if response.status == 401 and attempt == 1:
                        refused = True
                    elif response.status >= 400:
                        raise error_from_response(response.status, await response.read(), what)
                    else:
                        async for line in response.content:
                            if line.strip():
                                yield json.loads(line)
                        return
                    payload = await response.read()
            except (TimeoutError, aiohttp.ClientError) as err:
                raise errors.TransientError(f"{what}: {err.__class__.__name__}: {err}") from err
            fresh = await self._refreshed(credential, what) if refused else None
            if fresh is None:
                raise error_from_response(401, payload, what)
            credential = fresh


def error_from_response(status: int, payload: bytes, what: str) -> errors.AcinodeError:
    """Translate an API server error response (a ``Status`` object) into the acinode taxonomy."""
    try:
        message = str(json.loads(payload).get("message", ""))
    except (ValueError, AttributeError):
        message = payload[:200].decode(errors="replace")
    text = f"{what}: {status} {message}".strip()
    if status == 404:
        return errors.NotFoundError(text)
    if status in (409, 410):
        # 410 Gone: a watch's resourceVersion is too old (etcd compacted): like a conflict, start from a fresh list.
        return errors.ConflictError(text)
    if status == 401:
        return errors.AuthenticationError(text)
    if status == 403:
        return errors.PermissionDeniedError(text)
    if status in (400, 422):
        return errors.InvalidRequestError(text, code="Invalid")
    if status == 429:
        return errors.ThrottledError(text, retry_after_seconds=1.0)
    return errors.TransientError(text)
