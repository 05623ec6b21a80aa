"""Resolve, then map: what a pod refers to, and the resolved objects handed to the mapping.

The reconciler calls ``needed_references_from_pod`` to learn which Secrets, ConfigMaps and service-account
tokens to fetch, fetches them (absent ones simply stay out of the maps), and passes a ``ResolvedReferences``
to ``pods.container_group_from_pod``. The mapping itself never does I/O.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping

from acinode.mapping import objects

#: Audience key for tokens requested without an audience (the API server's own audiences).
DEFAULT_AUDIENCE = ""
#: The API server's default when a projection gives no expirationSeconds.
DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class TokenRequestSpec:
    """One TokenRequest for the pod's service account."""

    audience: str
    """``DEFAULT_AUDIENCE`` when the projection names none."""
    expiration_seconds: int
    """The longest expiry any projection of this audience asks for. ACI cannot refresh a token in a running
    group, so the reconciler may ask for more (up to the API server's maximum)."""


@dataclasses.dataclass(frozen=True)
class NeededReferences:
    """Names in the pod's namespace that the mapping will look up."""

    secret_names: frozenset[str] = frozenset()
    config_map_names: frozenset[str] = frozenset()
    token_requests: tuple[TokenRequestSpec, ...] = ()
    service_account_name: str = "default"
    lists_services: bool = True
    """Whether the services of the pod's namespace are needed (``enableServiceLinks``). The ``kubernetes``
    service of ``default`` is needed always: every pod gets ``KUBERNETES_SERVICE_HOST``."""


@dataclasses.dataclass(frozen=True)
class ResolvedReferences:
    """The objects a pod refers to, as fetched from the API. A name absent from a map does not exist."""

    secrets: Mapping[str, objects.Secret] = dataclasses.field(default_factory=dict)
    config_maps: Mapping[str, objects.ConfigMap] = dataclasses.field(default_factory=dict)
    service_account_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Audience (``DEFAULT_AUDIENCE`` for none) → token from a TokenRequest bound to the pod."""
    image_entrypoints: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Image reference → its ENTRYPOINT, when known (for ``args`` without ``command``)."""
    services: tuple[objects.Service, ...] = ()
    """The ``kubernetes`` service of ``default`` and, with service links, those of the pod's namespace."""


def _env_references(container: objects.Container, secrets: set[str], config_maps: set[str]) -> None:
    for var in container.get("env", []):
        source = var.get("valueFrom", {})
        if "secretKeyRef" in source:
            secrets.add(source["secretKeyRef"].get("name", ""))
        if "configMapKeyRef" in source:
            config_maps.add(source["configMapKeyRef"].get("name", ""))
    for env_from in container.get("envFrom", []):
        if "secretRef" in env_from:
            secrets.add(env_from["secretRef"].get("name", ""))
        if "configMapRef" in env_from:
            config_maps.add(env_from["configMapRef"].get("name", ""))


def needed_references_from_pod(pod: objects.Pod) -> NeededReferences:
    """Every Secret, ConfigMap and token the mapping of ``pod`` will look for."""
    spec = pod.get("spec", {})
    secrets: set[str] = set()
    config_maps: set[str] = set()
    tokens: dict[str, int] = {}
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        _env_references(container, secrets, config_maps)
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            secrets.add(volume["secret"].get("secretName", ""))
        if "configMap" in volume:
            config_maps.add(volume["configMap"].get("name", ""))
        if "azureFile" in volume:
            secrets.add(volume["azureFile"].get("secretName", ""))
        if "csi" in volume:
            secret_name = volume["csi"].get("volumeAttributes", {}).get("secretName")
            if secret_name:
                secrets.add(secret_name)
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                secrets.add(source["secret"].get("name", ""))
            if "configMap" in source:
                config_maps.add(source["configMap"].get("name", ""))
            if "serviceAccountToken" in source:
                projection = source["serviceAccountToken"]
                audience = projection.get("audience", DEFAULT_AUDIENCE)
                seconds = projection.get("expirationSeconds", DEFAULT_TOKEN_EXPIRATION_SECONDS)
                tokens[audience] = max(tokens.get(audience, 0), seconds)
    for pull_secret in spec.get("imagePullSecrets", []):
        secrets.add(pull_secret.get("name", ""))
    return NeededReferences(
        secret_names=frozenset(secrets - {""}),
        config_map_names=frozenset(config_maps - {""}),
        token_requests=tuple(TokenRequestSpec(a, s) for a, s in sorted(tokens.items())),
        service_account_name=spec.get("serviceAccountName") or "default",
        lists_services=spec.get("enableServiceLinks", True),
    )


def secret_data(secret: objects.Secret) -> dict[str, bytes]:
    """A Secret's values, decoded from the API's base64. Undecodable values are left out."""
    return _decoded(secret.get("data", {}))


def config_map_data(config_map: objects.ConfigMap) -> dict[str, bytes]:
    """A ConfigMap's ``data`` (UTF-8) and ``binaryData`` (decoded), as bytes."""
    values = {key: value.encode() for key, value in config_map.get("data", {}).items()}
    values.update(_decoded(config_map.get("binaryData", {})))
    return values


def _decoded(values: Mapping[str, str]) -> dict[str, bytes]:
    decoded: dict[str, bytes] = {}
    for key, value in values.items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
    return decoded
