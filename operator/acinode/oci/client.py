"""Reads an image's ENTRYPOINT from its registry (OCI distribution API), as a kubelet's runtime knows it.

The image name comes from a pod spec, so the registry is as untrusted as the pod: HTTPS only (plain HTTP only for
hosts the operator's settings name, as containerd's insecure registries), no link-local addresses (cloud instance
metadata), documents of bounded size, every blob checked against its digest, redirects followed at most three
times and never with the credentials to another host, the whole look-up under one timeout. Credentials are only
the pod's own pull secrets for that registry (a kubelet pulls with those), sent as a registry asks: Basic, or a
Bearer token fetched from the realm its challenge names with the ``repository:<name>:pull`` scope.

Caches: a tag's resolution per (image, platform, credential) for ``tag_cache_seconds``; configs by digest (their
content cannot change) for the most recent ``config_cache_entries``; Bearer tokens per (registry, repository,
credential) until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import abc as aiohttp_abc

from acinode import errors, settings
from acinode.mapping import imageconfig

logger = logging.getLogger(__name__)

ARCHITECTURE = "amd64"
"""ACI runs amd64 container groups."""
MAX_REDIRECTS = 3
TOKEN_MARGIN_SECONDS = 30.0
DEFAULT_TOKEN_SECONDS = 60.0
"""A token response without ``expires_in`` is good for 60 s (the distribution token spec's default)."""

Credential = tuple[str, str] | None


class _NoLinkLocalResolver(aiohttp_abc.AbstractResolver):
    """Resolves as usual but drops link-local addresses (169.254.169.254 is the cloud's instance metadata)."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        found = [a for a in await self._inner.resolve(host, port, family) if not _link_local(a["host"])]
        if not found:
            raise OSError(f"{host} resolves to no address a registry may have")
        return found

    async def close(self) -> None:
        await self._inner.close()


def _link_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_link_local
    except ValueError:
        return False


def _fingerprint(credential: Credential) -> str:
    if credential is None:
        return ""
    return hashlib.sha256("\0".join(credential).encode()).hexdigest()


def _basic(credential: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credential).encode()).decode()


class ImageConfigReader:
    """``entrypoint(image, os, credentials)``: the image's ENTRYPOINT for that platform, or ImageInaccessibleError
    saying why not (retried by the pod controller like a kubelet's ImagePullBackOff)."""

    def __init__(
        self,
        config: settings.RegistrySettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self.config = config
        self._insecure = config.insecure()
        self._monotonic = monotonic
        self._session_factory = session_factory or self._new_session
        self._session: aiohttp.ClientSession | None = None
        self._tags: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._configs: collections.OrderedDict[str, tuple[str, ...]] = collections.OrderedDict()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.requests = 0
        """Registry requests sent (tokens and redirects included)."""

    @staticmethod
    def _new_session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=_NoLinkLocalResolver(), limit=16)
        return aiohttp.ClientSession(connector=connector, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def entrypoint(
        self, image: str, os_name: str, credentials: Mapping[str, tuple[str, str]]
    ) -> tuple[str, ...]:
        try:
            ref = imageconfig.parse_image_reference(image)
        except ValueError as err:
            raise errors.ImageInaccessibleError(str(err), image=image) from None
        credential = credentials.get(ref.registry)
        tag_key = (image, os_name, _fingerprint(credential))
        cached = self._tags.get(tag_key)
        if cached is not None and cached[1] > self._monotonic() and cached[0] in self._configs:
            self._configs.move_to_end(cached[0])
            return self._configs[cached[0]]
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                digest, entrypoint = await self._look_up(ref, os_name, credential)
        except TimeoutError:
            raise errors.ImageInaccessibleError(
                f"image {image!r}: registry {ref.api_host} did not answer within {self.config.timeout_seconds}s",
                image=image,
            ) from None
        except (aiohttp.ClientError, OSError, ValueError) as err:
            raise errors.ImageInaccessibleError(
                f"image {image!r}: reading its config from {ref.api_host} failed: {err}", image=image
            ) from None
        if not ref.is_digest:
            self._tags[tag_key] = (digest, self._monotonic() + self.config.tag_cache_seconds)
        return entrypoint

    async def _look_up(
        self, ref: imageconfig.ImageReference, os_name: str, credential: Credential
    ) -> tuple[str, tuple[str, ...]]:
        body, media_type = await self._get(
            ref, f"manifests/{ref.reference}", credential, accept=imageconfig.MANIFEST_ACCEPT
        )
        if ref.is_digest:
            _check_digest(body, ref.reference, "manifest")
        document = _json(body, "manifest")
        media_type = str(document.get("mediaType") or media_type)
        if media_type in imageconfig.INDEX_TYPES or "manifests" in document:
            chosen = imageconfig.platform_manifest(document, os_name, ARCHITECTURE)
            if chosen is None:
                raise ValueError(f"the image has no {os_name}/{ARCHITECTURE} manifest")
            body, _ = await self._get(
                ref, f"manifests/{chosen}", credential, accept=imageconfig.MANIFEST_ACCEPT
            )
            _check_digest(body, chosen, "manifest")
            document = _json(body, "manifest")
        config_digest = imageconfig.config_digest(document)
        known = self._configs.get(config_digest)
        if known is None:
            blob, _ = await self._get(ref, f"blobs/{config_digest}", credential, accept="*/*")
            _check_digest(blob, config_digest, "config")
            known = imageconfig.entrypoint_from_config(_json(blob, "config"))
            self._configs[config_digest] = known
            while len(self._configs) > self.config.config_cache_entries:
                self._configs.popitem(last=False)
        self._configs.move_to_end(config_digest)
        return config_digest, known

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def _scheme(self, host: str) -> str:
        return "http" if host.lower() in self._insecure else "https"

    def _check_url(self, url: str) -> urllib.parse.SplitResult:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.lower()
        if parts.scheme not in ("https", "http") or (parts.scheme == "http" and netloc not in self._insecure):
            raise ValueError(
                f"{url!r} is neither HTTPS nor a registry named insecure (ACINODE_REGISTRY_INSECURE_HOSTS)"
            )
        if _link_local(parts.hostname or ""):
            raise ValueError(f"{parts.hostname} is a link-local address")
        return parts

    async def _get(
        self, ref: imageconfig.ImageReference, path: str, credential: Credential, *, accept: str
    ) -> tuple[bytes, str]:
        url = f"{self._scheme(ref.api_host)}://{ref.api_host}/v2/{ref.repository}/{path}"
        token_key = (ref.api_host, ref.repository, _fingerprint(credential))
        token = self._tokens.get(token_key)
        authorization = token[0] if token and token[1] > self._monotonic() else None
        status, body, media_type, challenge = await self._fetch(url, accept, authorization)
        if status == 401 and challenge:
            authorization = await self._authorize(challenge, ref, credential, token_key)
            status, body, media_type, _ = await self._fetch(url, accept, authorization)
        if status == 200:
            return body, media_type
        if status in (401, 403):
            why = (
                "refused the pod's pull credentials"
                if credential
                else "needs credentials (no pull secret for it)"
            )
            raise ValueError(f"the registry {why} ({status})")
        if status == 404:
            raise ValueError(f"{ref.repository}:{ref.reference} not found ({path.partition('/')[0]})")
        raise ValueError(f"the registry answered {status}")

    async def _authorize(
        self,
        challenge: str,
        ref: imageconfig.ImageReference,
        credential: Credential,
        token_key: tuple[str, str, str],
    ) -> str | None:
        bearer = imageconfig.bearer_challenge(challenge)
        if bearer is None:
            return _basic(credential) if credential and challenge.lower().startswith("basic") else None
        query = {"scope": f"repository:{ref.repository}:pull"}
        if bearer.get("service"):
            query["service"] = bearer["service"]
        realm = bearer["realm"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        status, body, _, _ = await self._fetch(
            url, "application/json", _basic(credential) if credential else None
        )
        if status != 200:
            raise ValueError(f"the registry's token service answered {status}")
        answer = _json(body, "token response")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("the registry's token service gave no token")
        lifetime = answer.get("expires_in")
        seconds = (
            float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_TOKEN_SECONDS
        )
        authorization = f"Bearer {token}"
        self._tokens[token_key] = (
            authorization,
            self._monotonic() + max(seconds - TOKEN_MARGIN_SECONDS, 1.0),
        )
        return authorization

    async def _fetch(self, url: str, accept: str, authorization: str | None) -> tuple[int, bytes, str, str]:
        """(status, body, content type, WWW-Authenticate) of a GET, following redirects; the Authorization
        header goes only to the host it was meant for."""
        if self._session is None:
            self._session = self._session_factory()
        origin = self._check_url(url).netloc.lower()
        for _ in range(MAX_REDIRECTS + 1):
            parts = self._check_url(url)
            headers = {"Accept": accept}
            if authorization and parts.netloc.lower() == origin:
                headers["Authorization"] = authorization
            self.requests += 1
            async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url = urllib.parse.urljoin(url, response.headers["Location"])
                    continue
                body = await _bounded(response, self.config.max_document_bytes)
                return (
                    response.status,
                    body,
                    response.headers.get("Content-Type", "").split(";")[0].strip(),
                    response.headers.get("WWW-Authenticate", ""),
                )
        raise ValueError(f"more than {MAX_REDIRECTS} redirects")


async def _bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"a registry document larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_digest(body: bytes, digest: str, what: str) -> None:
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise ValueError(f"the {what} does not match its digest {digest}")


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError(f"the {what} is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return document
