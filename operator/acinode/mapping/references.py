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
from typing import Any

from acinode.mapping import keyvault, objects

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
class NamedReference:
    """One object name the pod spec gives, and where: untrusted until checked (see ``kube.names``)."""

    kind: str
    """``Secret``, ``ConfigMap``, ``ServiceAccount`` or ``PersistentVolumeClaim``."""
    name: str
    path: str
    """The field that names it, e.g. ``spec.volumes[2].secret.secretName``."""


@dataclasses.dataclass(frozen=True)
class NeededReferences:
    """Names in the pod's namespace that the mapping will look up."""

    secret_names: frozenset[str] = frozenset()
    config_map_names: frozenset[str] = frozenset()
    claim_names: frozenset[str] = frozenset()
    """PersistentVolumeClaims; their PersistentVolumes and those volumes' Secrets are read after them."""
    provider_class_names: frozenset[str] = frozenset()
    """SecretProviderClasses (Secrets Store CSI driver) of the pod's namespace."""
    token_requests: tuple[TokenRequestSpec, ...] = ()
    service_account_name: str = "default"
    lists_services: bool = True
    """Whether the services of the pod's namespace are needed (``enableServiceLinks``). The ``kubernetes``
    service of ``default`` is needed always: every pod gets ``KUBERNETES_SERVICE_HOST``."""
    named: tuple[NamedReference, ...] = ()
    """Every name above with the field it came from, in spec order (for precise refusals)."""


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
    claims: Mapping[str, objects.PersistentVolumeClaim] = dataclasses.field(default_factory=dict)
    """The pod's namespace's PersistentVolumeClaims the pod names."""
    persistent_volumes: Mapping[str, objects.PersistentVolume] = dataclasses.field(default_factory=dict)
    """PV name → the PersistentVolume a claim above is bound to."""
    volume_secrets: Mapping[tuple[str, str], objects.Secret] = dataclasses.field(default_factory=dict)
    secret_provider_classes: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Name → SecretProviderClass of the pod's namespace that a Secrets Store CSI volume names."""
    """(namespace, name) → a storage account Secret that one of those PersistentVolumes names."""


def _env_references(container: objects.Container, path: str, named: list[NamedReference]) -> None:
    for index, var in enumerate(container.get("env", [])):
        source = var.get("valueFrom", {})
        where = f"{path}.env[{index}].valueFrom"
        if "secretKeyRef" in source:
            named.append(
                NamedReference("Secret", source["secretKeyRef"].get("name", ""), f"{where}.secretKeyRef.name")
            )
        if "configMapKeyRef" in source:
            named.append(
                NamedReference(
                    "ConfigMap", source["configMapKeyRef"].get("name", ""), f"{where}.configMapKeyRef.name"
                )
            )
    for index, env_from in enumerate(container.get("envFrom", [])):
        where = f"{path}.envFrom[{index}]"
        if "secretRef" in env_from:
            named.append(
                NamedReference("Secret", env_from["secretRef"].get("name", ""), f"{where}.secretRef.name")
            )
        if "configMapRef" in env_from:
            named.append(
                NamedReference(
                    "ConfigMap", env_from["configMapRef"].get("name", ""), f"{where}.configMapRef.name"
                )
            )


def _volume_references(volume: objects.Volume, path: str, named: list[NamedReference]) -> None:
    if "secret" in volume:
        named.append(
            NamedReference("Secret", volume["secret"].get("secretName", ""), f"{path}.secret.secretName")
        )
    if "configMap" in volume:
        named.append(
            NamedReference("ConfigMap", volume["configMap"].get("name", ""), f"{path}.configMap.name")
        )
    if "azureFile" in volume:
        named.append(
            NamedReference(
                "Secret", volume["azureFile"].get("secretName", ""), f"{path}.azureFile.secretName"
            )
        )
    if "persistentVolumeClaim" in volume:
        named.append(
            NamedReference(
                "PersistentVolumeClaim",
                volume["persistentVolumeClaim"].get("claimName", ""),
                f"{path}.persistentVolumeClaim.claimName",
            )
        )
    if keyvault.is_key_vault(volume):
        named.append(
            NamedReference(
                "SecretProviderClass",
                keyvault.class_name(volume["csi"]),
                f"{path}.csi.volumeAttributes['{keyvault.CLASS_ATTRIBUTE}']",
            )
        )
    elif "csi" in volume:
        secret_name = volume["csi"].get("volumeAttributes", {}).get("secretName")
        if secret_name is not None:
            named.append(NamedReference("Secret", secret_name, f"{path}.csi.volumeAttributes['secretName']"))
    for index, source in enumerate(volume.get("projected", {}).get("sources", [])):
        where = f"{path}.projected.sources[{index}]"
        if "secret" in source:
            named.append(NamedReference("Secret", source["secret"].get("name", ""), f"{where}.secret.name"))
        if "configMap" in source:
            named.append(
                NamedReference("ConfigMap", source["configMap"].get("name", ""), f"{where}.configMap.name")
            )


def needed_references_from_pod(pod: objects.Pod) -> NeededReferences:
    """Every Secret, ConfigMap and token the mapping of ``pod`` will look for."""
    spec = pod.get("spec", {})
    named: list[NamedReference] = []
    tokens: dict[str, int] = {}
    for index, container in enumerate(spec.get("initContainers", [])):
        _env_references(container, f"spec.initContainers[{index}]", named)
    for index, container in enumerate(spec.get("containers", [])):
        _env_references(container, f"spec.containers[{index}]", named)
    for index, volume in enumerate(spec.get("volumes", [])):
        _volume_references(volume, f"spec.volumes[{index}]", named)
        for source in volume.get("projected", {}).get("sources", []):
            if "serviceAccountToken" in source:
                projection = source["serviceAccountToken"]
                audience = projection.get("audience", DEFAULT_AUDIENCE)
                seconds = projection.get("expirationSeconds", DEFAULT_TOKEN_EXPIRATION_SECONDS)
                tokens[audience] = max(tokens.get(audience, 0), seconds)
    for index, pull_secret in enumerate(spec.get("imagePullSecrets", [])):
        named.append(
            NamedReference("Secret", pull_secret.get("name", ""), f"spec.imagePullSecrets[{index}].name")
        )
    service_account = spec.get("serviceAccountName") or "default"
    if tokens:
        named.append(NamedReference("ServiceAccount", service_account, "spec.serviceAccountName"))
    # An empty name asks for nothing here: the mapping reports it where it is required.
    named = [ref for ref in named if ref.name != ""]
    return NeededReferences(
        secret_names=frozenset(ref.name for ref in named if ref.kind == "Secret"),
        config_map_names=frozenset(ref.name for ref in named if ref.kind == "ConfigMap"),
        claim_names=frozenset(ref.name for ref in named if ref.kind == "PersistentVolumeClaim"),
        provider_class_names=frozenset(ref.name for ref in named if ref.kind == "SecretProviderClass"),
        token_requests=tuple(TokenRequestSpec(a, s) for a, s in sorted(tokens.items())),
        service_account_name=service_account,
        lists_services=spec.get("enableServiceLinks", True),
        named=tuple(named),
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
