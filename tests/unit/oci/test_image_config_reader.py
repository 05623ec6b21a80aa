"""The registry client against a registry on loopback that asks for a Bearer token, as Docker Hub and ACR do."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from acinode import errors, settings
from acinode.mapping import imageconfig
from acinode.oci import client

pytestmark = pytest.mark.timeout(10)

CONFIG = json.dumps({"config": {"Entrypoint": ["/bin/serve", "--port=80"], "Cmd": ["--help"]}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": imageconfig.OCI_MANIFEST, "config": {"digest": CONFIG_DIGEST}}
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": imageconfig.OCI_INDEX,
        "manifests": [
            {"digest": "sha256:" + "0" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": MANIFEST_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
).encode()
USER = ("puller", "s3cret")


class Registry:
    """A registry that wants a Bearer token for ``team/app``, issued for the pull credentials in ``USER``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.port = 0
        self.config_body = CONFIG
        self.redirect_blobs_to: str | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self.token)
        app.router.add_get("/v2/team/app/manifests/{ref}", self.manifest)
        app.router.add_get("/v2/team/app/blobs/{digest}", self.blob)
        app.router.add_get("/elsewhere/{digest}", self.elsewhere)
        return app

    def _authorized(self, request: web.Request) -> bool:
        self.seen.append((request.path, request.headers.get("Authorization")))
        return request.headers.get("Authorization") == "Bearer good-token"

    def _challenge(self) -> web.Response:
        realm = f"http://127.0.0.1:{self.port}/token"
        header = f'Bearer realm="{realm}",service="test-registry",scope="repository:team/app:pull"'
        return web.Response(status=401, headers={"WWW-Authenticate": header})

    async def token(self, request: web.Request) -> web.Response:
        self.seen.append((request.path_qs, request.headers.get("Authorization")))
        expected = "Basic " + base64.b64encode(":".join(USER).encode()).decode()
        if (
            request.headers.get("Authorization") != expected
            or request.query.get("scope") != "repository:team/app:pull"
        ):
            return web.Response(status=401)
        return web.json_response({"token": "good-token", "expires_in": 300})

    async def manifest(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._challenge()
        ref = request.match_info["ref"]
        body, kind = (
            (MANIFEST, imageconfig.OCI_MANIFEST) if ref == MANIFEST_DIGEST else (INDEX, imageconfig.OCI_INDEX)
        )
        if ref not in (MANIFEST_DIGEST, "v1"):
            return web.Response(status=404)
        return web.Response(body=body, content_type=kind)

    async def blob(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._challenge()
        if self.redirect_blobs_to:
            raise web.HTTPTemporaryRedirect(
                f"{self.redirect_blobs_to}/elsewhere/{request.match_info['digest']}"
            )
        return web.Response(body=self.config_body, content_type="application/octet-stream")

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Authorization")))
        return web.Response(body=self.config_body)


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    served = Registry()
    runner = web.AppRunner(served.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield served
    await runner.cleanup()


def reader(registry: Registry, **more: Any) -> client.ImageConfigReader:
    hosts = f"127.0.0.1:{registry.port},localhost:{registry.port}"
    return client.ImageConfigReader(settings.RegistrySettings(insecure_hosts=hosts, **more))


async def test_the_entrypoint_is_read_through_a_bearer_token_and_then_cached(registry: Registry) -> None:
    images = reader(registry)
    image = f"127.0.0.1:{registry.port}/team/app:v1"
    try:
        credentials = {f"127.0.0.1:{registry.port}": USER}
        assert await images.entrypoint(image, "linux", credentials) == ("/bin/serve", "--port=80")
        paths = [path.split("?")[0] for path, _ in registry.seen]
        assert paths == [
            "/v2/team/app/manifests/v1",  # 401 with the challenge
            "/token",
            "/v2/team/app/manifests/v1",  # the index
            f"/v2/team/app/manifests/{MANIFEST_DIGEST}",  # linux/amd64
            f"/v2/team/app/blobs/{CONFIG_DIGEST}",
        ]
        sent = images.requests
        assert await images.entrypoint(image, "linux", credentials) == ("/bin/serve", "--port=80")
        assert images.requests == sent, "a tag read within tag_cache_seconds is not read again"
    finally:
        await images.close()


async def test_without_the_pull_secret_the_registry_refuses_and_the_pod_hears_why(registry: Registry) -> None:
    images = reader(registry)
    try:
        with pytest.raises(errors.ImageInaccessibleError, match="token service answered 401"):
            await images.entrypoint(f"127.0.0.1:{registry.port}/team/app:v1", "linux", {})
        # Another pod's credential does not make the image readable from the cache.
        await images.entrypoint(
            f"127.0.0.1:{registry.port}/team/app:v1", "linux", {f"127.0.0.1:{registry.port}": USER}
        )
        with pytest.raises(errors.ImageInaccessibleError):
            await images.entrypoint(f"127.0.0.1:{registry.port}/team/app:v1", "linux", {})
    finally:
        await images.close()


async def test_a_config_that_does_not_match_its_digest_is_refused(registry: Registry) -> None:
    registry.config_body = json.dumps({"config": {"Entrypoint": ["/bin/evil"]}}).encode()
    images = reader(registry)
    try:
        with pytest.raises(errors.ImageInaccessibleError, match="does not match its digest"):
            await images.entrypoint(
                f"127.0.0.1:{registry.port}/team/app:v1", "linux", {f"127.0.0.1:{registry.port}": USER}
            )
    finally:
        await images.close()


async def test_a_redirect_to_another_host_does_not_carry_the_token(registry: Registry) -> None:
    registry.redirect_blobs_to = f"http://localhost:{registry.port}"
    images = reader(registry)
    try:
        entry = await images.entrypoint(
            f"127.0.0.1:{registry.port}/team/app:v1", "linux", {f"127.0.0.1:{registry.port}": USER}
        )
        assert entry == ("/bin/serve", "--port=80")
        [(_, authorization)] = [seen for seen in registry.seen if seen[0].startswith("/elsewhere/")]
        assert authorization is None
    finally:
        await images.close()


async def test_documents_beyond_the_size_limit_are_refused(registry: Registry) -> None:
    images = reader(registry, max_document_bytes=64)
    try:
        with pytest.raises(errors.ImageInaccessibleError, match="larger than 64 bytes"):
            await images.entrypoint(
                f"127.0.0.1:{registry.port}/team/app:v1", "linux", {f"127.0.0.1:{registry.port}": USER}
            )
    finally:
        await images.close()


@pytest.mark.parametrize(
    ("image", "insecure", "why"),
    [
        ("169.254.169.254/team/app:v1", "169.254.169.254", "link-local"),
        ("UPPER/app", "", "not a repository name"),
    ],
)
async def test_what_no_kubelet_should_fetch_is_refused_before_any_request(
    image: str, insecure: str, why: str
) -> None:
    images = client.ImageConfigReader(settings.RegistrySettings(insecure_hosts=insecure))
    try:
        with pytest.raises(errors.ImageInaccessibleError, match=why):
            await images.entrypoint(image, "linux", {})
        assert images.requests == 0
    finally:
        await images.close()


async def test_plain_http_only_for_registries_named_insecure(registry: Registry) -> None:
    images = client.ImageConfigReader(settings.RegistrySettings())
    try:
        with pytest.raises(errors.ImageInaccessibleError):
            await images.entrypoint(f"127.0.0.1:{registry.port}/team/app:v1", "linux", {})
        assert registry.seen == [], "an HTTPS request to a plain-HTTP registry never reaches a handler"
    finally:
        await images.close()
