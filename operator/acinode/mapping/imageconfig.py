"""What a kubelet knows of an image before it runs it: the ENTRYPOINT in the image's config.

ACI has one command line per container, which replaces the image's ENTRYPOINT and CMD together. A container with
``args`` but no ``command`` means "the image's ENTRYPOINT with these arguments" (the kubelet's rule), so the
group's command is ENTRYPOINT + args, and the ENTRYPOINT has to be read from the registry (OCI distribution API:
manifest or index → the platform's manifest → its config blob). This module is the pure part: image references
as Docker parses them, which images need a look-up, the registry's documents and its auth challenge. The I/O is in
``acinode.oci``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from acinode.mapping import objects, options, registry

DOCKER_HUB_API = "registry-1.docker.io"
"""Where Docker Hub's registry API answers (``docker.io``/``index.docker.io`` names are its aliases)."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

# Docker's reference grammar (distribution/reference), reduced to what a pod's image field may hold.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::\d{{1,5}})?$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclasses.dataclass(frozen=True)
class ImageReference:
    """An image reference resolved as Docker does (``nginx`` → ``registry-1.docker.io``, ``library/nginx``,
    ``latest``)."""

    registry: str
    """The host that pull secrets are keyed by (``index.docker.io`` for Docker Hub)."""
    api_host: str
    """The host:port the registry API answers on."""
    repository: str
    reference: str
    """A tag, or a digest (``sha256:…``)."""

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")


def parse_image_reference(image: str) -> ImageReference:
    """Docker's reading of ``image``; ValueError for what no registry would accept."""
    rest, at, digest = image.partition("@")
    if at and not _DIGEST.match(digest):
        raise ValueError(f"image {image!r}: the digest is not sha256:<64 hex digits>")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = registry.registry_server(first), remainder
        if host != registry.DOCKER_HUB and not _HOST.match(host):
            raise ValueError(f"image {image!r}: {first!r} is not a registry host")
    else:
        host, path = registry.DOCKER_HUB, rest
    tag = "latest"
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ValueError(f"image {image!r}: {tag!r} is not a tag")
    if host == registry.DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _REPOSITORY.match(path):
        raise ValueError(f"image {image!r}: {path!r} is not a repository name")
    api_host = DOCKER_HUB_API if host == registry.DOCKER_HUB else host
    return ImageReference(host, api_host, path, digest if at else tag)


def args_only_images(pod: objects.Pod) -> dict[str, str]:
    """Container name → image, for the containers with args but no command (cheap: no annotation parsing)."""
    spec = pod.get("spec", {})
    return {
        container.get("name", ""): container["image"]
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]
        if container.get("args") and not container.get("command") and container.get("image")
    }


def images_needing_entrypoints(pod: objects.Pod, chosen: options.GroupOptions) -> tuple[str, ...]:
    """The images whose ENTRYPOINT the group's command needs: containers with args and no command, unless the
    pod's entrypoints annotation names it for that container."""
    found = args_only_images(pod)
    return tuple(dict.fromkeys(image for name, image in found.items() if name not in chosen.entrypoints))


def platform_manifest(index: Mapping[str, Any], os_name: str, architecture: str) -> str | None:
    """The digest of the manifest for this platform in an image index, or None when it has none."""
    for entry in index.get("manifests", []) or []:
        platform = entry.get("platform") or {}
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            digest = entry.get("digest", "")
            return digest if _DIGEST.match(digest) else None
    return None


def config_digest(manifest: Mapping[str, Any]) -> str:
    digest = (manifest.get("config") or {}).get("digest", "")
    if not _DIGEST.match(digest):
        raise ValueError("the manifest names no sha256 config blob")
    return str(digest)


def entrypoint_from_config(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The image's ENTRYPOINT (empty when it has none: then the args alone are the command line)."""
    entrypoint = (config.get("config") or {}).get("Entrypoint") or []
    if not isinstance(entrypoint, list) or not all(isinstance(part, str) for part in entrypoint):
        raise ValueError("the image config's Entrypoint is not a list of strings")
    return tuple(entrypoint)


def bearer_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` challenge (None: not Bearer)."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    found = dict(_CHALLENGE_PARAM.findall(params))
    return found if found.get("realm") else None


def pull_credentials(
    spec: objects.PodSpec, refs_secrets: Mapping[str, objects.Secret]
) -> dict[str, tuple[str, str]]:
    """Registry host → (username, password) from the pod's own pull secrets, as a kubelet pulls with them."""
    credentials: dict[str, tuple[str, str]] = {}
    for pull_secret in spec.get("imagePullSecrets", []):
        secret = refs_secrets.get(pull_secret.get("name", ""))
        if secret is None:
            continue
        for server, (username, password) in registry.basic_credentials(secret).items():
            credentials.setdefault(server, (username, password))
    return credentials
