"""KubeClient against a loopback HTTP server: verbs, headers, patch content types, errors and watch streams."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from acinode import errors
from acinode.kube import client, connection

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "vn-1", "uid": "u-1"}}


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class FakeApiServer:
    """Answers from ``routes`` (method, path) → (status, JSON or bytes); records every request."""

    server: TestServer
    routes: dict[tuple[str, str], tuple[int, Any]]
    seen: list[Seen]
    hang: asyncio.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


def status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


@pytest.fixture
async def api_server() -> AsyncIterator[FakeApiServer]:
    routes: dict[tuple[str, str], tuple[int, Any]] = {}
    seen: list[Seen] = []
    hang = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(
            Seen(
                request.method, request.path, dict(request.query), dict(request.headers), await request.read()
            )
        )
        if request.path == "/slow":
            await hang.wait()
        if request.path == "/watch" and request.query.get("watch") == "true":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for kind in ("ADDED", "MODIFIED"):
                await response.write(json.dumps({"type": kind, "object": NODE}).encode() + b"\n\n")
            return response
        code, payload = routes.get(
            (request.method, request.path), (404, status(404, f"{request.path} not found"))
        )
        if isinstance(payload, bytes):
            return web.Response(status=code, body=payload)
        return web.json_response(payload, status=code)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield FakeApiServer(server, routes, seen, hang)
    finally:
        hang.set()
        await server.close()


@pytest.fixture
async def kube(api_server: FakeApiServer) -> AsyncIterator[client.KubeClient]:
    kube = client.KubeClient(
        connection.KubeConnection(server=api_server.url, token="s3cret"), timeout_seconds=1.0
    )
    yield kube
    await kube.close()


async def test_get_returns_the_object_and_sends_the_bearer_token(
    api_server: FakeApiServer, kube: client.KubeClient
) -> None:
    api_server.routes["GET", "/api/v1/nodes/vn-1"] = (200, NODE)
    assert await kube.get("/api/v1/nodes/vn-1", params={"resourceVersion": "0"}) == NODE
    (request,) = api_server.seen
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == "acinode"
    assert request.query == {"resourceVersion": "0"}
    assert request.body == b""
    assert "Content-Type" not in request.headers


async def test_without_a_token_no_authorization_header_is_sent(api_server: FakeApiServer) -> None:
    api_server.routes["GET", "/api/v1/nodes/vn-1"] = (200, NODE)
    kube = client.KubeClient(connection.KubeConnection(server=api_server.url))
    try:
        await kube.get("/api/v1/nodes/vn-1")
    finally:
        await kube.close()
    assert "Authorization" not in api_server.seen[0].headers


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (403, errors.PermissionDeniedError),
        (401, errors.AuthenticationError),
        (422, errors.InvalidRequestError),
        (429, errors.ThrottledError),
        (500, errors.TransientError),
    ],
)
async def test_error_responses_raise_the_taxonomy(
    api_server: FakeApiServer, kube: client.KubeClient, code: int, error_type: type[errors.AcinodeError]
) -> None:
    api_server.routes["POST", "/api/v1/nodes"] = (code, status(code, "refused for a reason"))
    with pytest.raises(error_type) as caught:
        await kube.create("/api/v1/nodes", NODE)
    assert type(caught.value) is error_type
    assert str(caught.value) == f"POST /api/v1/nodes: {code} refused for a reason"


async def test_create_posts_json(api_server: FakeApiServer, kube: client.KubeClient) -> None:
    api_server.routes["POST", "/api/v1/nodes"] = (201, NODE)
    assert await kube.create("/api/v1/nodes", NODE) == NODE
    (request,) = api_server.seen
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    assert json.loads(request.body) == NODE


@pytest.mark.parametrize(
    ("patch_type", "content_type"),
    [
        ("merge", "application/merge-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
        ("json", "application/json-patch+json"),
    ],
)
async def test_patches_send_their_content_type(
    api_server: FakeApiServer, kube: client.KubeClient, patch_type: client.PatchType, content_type: str
) -> None:
    api_server.routes["PATCH", "/api/v1/nodes/vn-1/status"] = (200, NODE)
    body: Any = [{"op": "add", "path": "/a", "value": 1}] if patch_type == "json" else {"status": {}}
    await kube.patch("/api/v1/nodes/vn-1/status", body, patch_type)
    (request,) = api_server.seen
    assert (request.method, request.headers["Content-Type"]) == ("PATCH", content_type)
    assert json.loads(request.body) == body


async def test_patch_defaults_to_a_merge_patch(api_server: FakeApiServer, kube: client.KubeClient) -> None:
    api_server.routes["PATCH", "/api/v1/nodes/vn-1"] = (200, NODE)
    await kube.patch("/api/v1/nodes/vn-1", {"metadata": {"labels": {"a": "b"}}})
    assert api_server.seen[0].headers["Content-Type"] == "application/merge-patch+json"


async def test_replace_and_delete(api_server: FakeApiServer, kube: client.KubeClient) -> None:
    api_server.routes["PUT", "/api/v1/nodes/vn-1"] = (200, NODE)
    api_server.routes["DELETE", "/api/v1/nodes/vn-1"] = (200, b"")
    assert await kube.replace("/api/v1/nodes/vn-1", NODE) == NODE
    assert await kube.delete("/api/v1/nodes/vn-1", {"preconditions": {"uid": "u-1"}}) == {}
    assert [(r.method, json.loads(r.body)) for r in api_server.seen] == [
        ("PUT", NODE),
        ("DELETE", {"preconditions": {"uid": "u-1"}}),
    ]


async def test_an_unreachable_server_is_a_transient_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube = client.KubeClient(connection.KubeConnection(server=f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(errors.TransientError, match="GET /api/v1/nodes: ClientConnectorError"):
            await kube.get("/api/v1/nodes")
    finally:
        await kube.close()


async def test_a_slow_server_is_a_transient_error(api_server: FakeApiServer) -> None:
    kube = client.KubeClient(connection.KubeConnection(server=api_server.url), timeout_seconds=0.1)
    try:
        with pytest.raises(errors.TransientError, match="GET /slow"):
            await kube.get("/slow")
    finally:
        await kube.close()


async def test_watch_yields_events_until_the_stream_ends(
    api_server: FakeApiServer, kube: client.KubeClient
) -> None:
    events = [event async for event in kube.watch("/watch", {"labelSelector": "a=b"}, timeout_seconds=5)]
    assert events == [{"type": "ADDED", "object": NODE}, {"type": "MODIFIED", "object": NODE}]
    assert api_server.seen[0].query == {
        "labelSelector": "a=b",
        "watch": "true",
        "timeoutSeconds": "5",
        "allowWatchBookmarks": "true",
    }


async def test_a_refused_watch_raises_the_taxonomy(
    api_server: FakeApiServer, kube: client.KubeClient
) -> None:
    api_server.routes["GET", "/forbidden"] = (403, status(403, "nodes is forbidden"))
    with pytest.raises(errors.PermissionDeniedError, match="WATCH /forbidden: 403 nodes is forbidden"):
        async for _ in kube.watch("/forbidden", {}):
            pass


async def test_the_session_is_reopened_after_close(
    api_server: FakeApiServer, kube: client.KubeClient
) -> None:
    api_server.routes["GET", "/api/v1/nodes/vn-1"] = (200, NODE)
    await kube.get("/api/v1/nodes/vn-1")
    await kube.close()
    assert await kube.get("/api/v1/nodes/vn-1") == NODE
