"""A small async client for the Kubernetes REST API (aiohttp), translating HTTP failures into acinode errors.

acinode needs a handful of verbs on a handful of resources; a thin client keeps the operator's memory small (the
generated ``kubernetes`` client costs tens of MB when imported) and fully async.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import aiohttp

from acinode import errors
from acinode.kube import connection

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]
_PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class KubeClient:
    """One connection pool to the API server. Create once, close at shutdown."""

    def __init__(self, conn: connection.KubeConnection, *, timeout_seconds: float = 30.0) -> None:
        self._conn = conn
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "acinode"}
            if self._conn.token:
                headers["Authorization"] = f"Bearer {self._conn.token}"
            self._session = aiohttp.ClientSession(
                base_url=self._conn.server,
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self._conn.ssl_context(), limit=64),
                timeout=self._timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        session = self._session_or_new()
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with session.request(method, path, params=params, data=data, headers=headers) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise error_from_response(response.status, payload, f"{method} {path}")
                return json.loads(payload) if payload else {}
        except (TimeoutError, aiohttp.ClientError) as err:
            raise errors.TransientError(f"{method} {path}: {err.__class__.__name__}: {err}") from err

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
        session = self._session_or_new()
        query = {
            **params,
            "watch": "true",
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        try:
            async with session.get(path, params=query, timeout=timeout) as response:
                if response.status >= 400:
                    raise error_from_response(response.status, await response.read(), f"WATCH {path}")
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except (TimeoutError, aiohttp.ClientError) as err:
            raise errors.TransientError(f"WATCH {path}: {err.__class__.__name__}: {err}") from err


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
