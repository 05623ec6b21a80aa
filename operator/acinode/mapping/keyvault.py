"""Key Vault secrets for pods that mount them with the Secrets Store CSI driver's Azure provider.

On a kubelet, the driver (``secrets-store.csi.k8s.io``) reads a ``SecretProviderClass`` of the pod's namespace and
fetches each object from Key Vault with the identity the class names, then mounts the values as files. ACI has the
same thing built in (API version 2025-09-01): a group lists ``secretReferences`` (name, identity, Key Vault secret
URI) and a secret volume's ``secretReference`` maps file names to them; ACI fetches the values with that identity,
so they never pass through acinode or ARM.

The class names its identity by client id (``userAssignedIdentityID``, or ``clientID`` for workload identity); ACI
wants the identity's ARM resource id, which only the VirtualNode's ``allowedIdentities`` can tell (an entry with
that ``clientId``, granted to the pod's namespace): so the trust rule is the same as for every identity a pod
attaches. What ACI cannot do as the driver does is refused by field: other providers, key and certificate objects
(the driver converts them; ACI fetches secrets as they are stored), syncing to Kubernetes Secrets
(``secretObjects``), and object encodings or formats other than the stored value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import yaml

from acinode.mapping import names, objects, placement, problems

DRIVER = "secrets-store.csi.k8s.io"
GROUP = "secrets-store.csi.x-k8s.io"
VERSION = "v1"
PLURAL = "secretproviderclasses"
CLASS_ATTRIBUTE = "secretProviderClass"

#: cloudName (the provider's names, case-insensitive; empty is the public cloud) → Key Vault DNS suffix.
VAULT_SUFFIXES = {
    "": "vault.azure.net",
    "azurepubliccloud": "vault.azure.net",
    "azurechinacloud": "vault.azure.cn",
    "azureusgovernmentcloud": "vault.usgovcloudapi.net",
}
_VAULT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_OBJECT_NAME = re.compile(r"^[a-zA-Z0-9-]{1,127}$")
_OBJECT_VERSION = re.compile(r"^[a-f0-9]{32}$")
_FILE_NAME = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
#: Parameters the provider documents that ACI's references express (or that change nothing here).
_UNDERSTOOD = frozenset(
    {
        "keyvaultName",
        "tenantId",
        "cloudName",
        "objects",
        "usePodIdentity",
        "useVMManagedIdentity",
        "userAssignedIdentityID",
        "clientID",
        # Set by the driver itself on every mount request, not by the class's author.
        "csi.storage.k8s.io/pod.name",
        "csi.storage.k8s.io/pod.namespace",
        "csi.storage.k8s.io/pod.uid",
        "csi.storage.k8s.io/serviceAccount.name",
        "csi.storage.k8s.io/ephemeral",
    }
)


@dataclasses.dataclass(frozen=True)
class SecretReference:
    """One entry of the group's ``secretReferences``."""

    name: str
    identity: str
    uri: str

    def as_arm(self) -> dict[str, str]:
        return {"name": self.name, "identity": self.identity, "secretReferenceUri": self.uri}


@dataclasses.dataclass(frozen=True)
class KeyVaultVolume:
    """A CSI volume of the Azure provider as ACI carries it: file name → reference, and the references."""

    files: Mapping[str, str]
    references: tuple[SecretReference, ...]


def class_name(csi: Mapping[str, Any]) -> str:
    return str((csi.get("volumeAttributes") or {}).get(CLASS_ATTRIBUTE, ""))


def is_key_vault(volume: objects.Volume) -> bool:
    return "csi" in volume and volume["csi"].get("driver") == DRIVER


def _objects(text: object, path: str, found: problems.Problems) -> list[dict[str, Any]]:
    """The provider's ``objects`` parameter: YAML ``array:`` of YAML documents, one per object."""
    try:
        outer = yaml.safe_load(str(text or ""))
        items = outer.get("array") if isinstance(outer, dict) else None
        parsed = [yaml.safe_load(item) if isinstance(item, str) else item for item in items or []]
    except yaml.YAMLError as err:
        found.add(path, f"is not the provider's YAML list of objects ({str(err).splitlines()[0]})")
        return []
    if not parsed or not all(isinstance(item, dict) for item in parsed):
        found.add(path, "names no object (expected array: with objectName/objectType entries)")
        return []
    return parsed


def _identity(
    parameters: Mapping[str, Any],
    path: str,
    namespace: str,
    where: placement.GroupPlacement,
    found: problems.Problems,
) -> str | None:
    if str(parameters.get("usePodIdentity", "false")).lower() == "true":
        found.add(
            f"{path}.usePodIdentity",
            "AAD pod identity is retired and ACI has none; name a user-assigned identity",
        )
        return None
    client_id = str(parameters.get("clientID") or parameters.get("userAssignedIdentityID") or "")
    if not client_id:
        found.add(
            f"{path}.userAssignedIdentityID",
            "ACI fetches Key Vault secrets with a user-assigned identity; name its client id "
            "(userAssignedIdentityID or clientID)",
        )
        return None
    if not _GUID.match(client_id):
        found.add(f"{path}.userAssignedIdentityID", f"{client_id!r} is not a client id (a GUID)")
        return None
    resource_id = where.identity_for_client_id(client_id, namespace)
    if resource_id is None:
        found.add(
            f"{path}.userAssignedIdentityID",
            f"identity client id {client_id} is not among this VirtualNode's allowedIdentities (with its clientId) "
            f"for namespace {namespace!r}",
        )
    return resource_id


def key_vault_volume(
    volume_name: str,
    csi: Mapping[str, Any],
    path: str,
    namespace: str,
    provider_class: Mapping[str, Any] | None,
    where: placement.GroupPlacement,
    found: problems.Problems,
) -> KeyVaultVolume | None:
    """The ACI secret volume and Key Vault references for one Secrets Store CSI volume, or None (with problems)."""
    name = class_name(csi)
    if not csi.get("readOnly", False):
        found.add(f"{path}.readOnly", "the Secrets Store CSI driver mounts read-only; set readOnly: true")
    if provider_class is None:
        found.add(
            f"{path}.volumeAttributes.{CLASS_ATTRIBUTE}",
            f"SecretProviderClass {name!r} not found in namespace {namespace!r}",
        )
        return None
    where_class = f"SecretProviderClass {namespace}/{name}"
    spec = provider_class.get("spec") or {}
    if spec.get("provider") != "azure":
        found.add(
            f"{where_class}.spec.provider", f"{spec.get('provider')!r}: only the azure provider maps to ACI"
        )
        return None
    if spec.get("secretObjects"):
        found.add(
            f"{where_class}.spec.secretObjects",
            "syncing to Kubernetes Secrets needs the driver on a kubelet; ACI fetches the values into the group only",
        )
    parameters: Mapping[str, Any] = spec.get("parameters") or {}
    params_path = f"{where_class}.spec.parameters"
    for key in sorted(set(parameters) - _UNDERSTOOD):
        found.add(f"{params_path}.{key}", "is a provider parameter ACI's Key Vault references cannot honour")
    vault = str(parameters.get("keyvaultName", ""))
    if not _VAULT_NAME.match(vault):
        found.add(f"{params_path}.keyvaultName", f"{vault!r} is not a Key Vault name")
    cloud = str(parameters.get("cloudName", "")).lower()
    suffix = VAULT_SUFFIXES.get(cloud)
    if suffix is None:
        found.add(
            f"{params_path}.cloudName", f"{parameters.get('cloudName')!r}: no Key Vault DNS suffix known"
        )
    if not _GUID.match(str(parameters.get("tenantId", ""))):
        found.add(f"{params_path}.tenantId", "is required (the vault's tenant, a GUID)")
    identity = _identity(parameters, params_path, namespace, where, found)
    files: dict[str, str] = {}
    references: list[SecretReference] = []
    for index, item in enumerate(_objects(parameters.get("objects"), f"{params_path}.objects", found)):
        item_path = f"{params_path}.objects[{index}]"
        object_name = str(item.get("objectName", ""))
        kind = str(item.get("objectType", "")).lower()
        version = str(item.get("objectVersion") or "")
        alias = str(item.get("objectAlias") or object_name)
        if kind != "secret":
            found.add(
                f"{item_path}.objectType",
                f"{kind or 'none'!r}: ACI fetches secrets as stored; keys and certificates would need the driver's "
                "conversion (a certificate's key and chain are its secret: objectType secret)",
            )
        if not _OBJECT_NAME.match(object_name):
            found.add(f"{item_path}.objectName", f"{object_name!r} is not a Key Vault object name")
        if version and not _OBJECT_VERSION.match(version):
            found.add(f"{item_path}.objectVersion", f"{version!r} is not a Key Vault object version")
        for field in ("objectEncoding", "objectFormat"):
            if item.get(field) not in (None, "", "utf-8", "pem"):
                found.add(f"{item_path}.{field}", "ACI mounts the stored value as it is; no conversion")
        if not _FILE_NAME.match(alias) or alias in files:
            found.add(f"{item_path}.objectAlias", f"{alias!r} is not a distinct file name")
            continue
        reference = f"{names.aci_volume_name(volume_name)}-{index}"
        files[alias] = reference
        uri = f"https://{vault}.{suffix}/secrets/{object_name}" + (f"/{version}" if version else "")
        references.append(SecretReference(reference, identity or "", uri))
    if identity is None or not references:
        return None
    return KeyVaultVolume(files=files, references=tuple(references))


def group_secret_references(
    pod: objects.Pod,
    provider_classes: Mapping[str, Mapping[str, Any]],
    where: placement.GroupPlacement,
) -> list[SecretReference]:
    """Every Key Vault reference of the pod's CSI volumes (what the volumes' mapping made, in the same order)."""
    namespace = pod.get("metadata", {}).get("namespace", "default")
    found: list[SecretReference] = []
    for index, volume in enumerate(pod.get("spec", {}).get("volumes", [])):
        if not is_key_vault(volume):
            continue
        mapped = key_vault_volume(
            volume.get("name", ""),
            volume["csi"],
            f"spec.volumes[{index}].csi",
            namespace,
            provider_classes.get(class_name(volume["csi"])),
            where,
            problems.Problems(),
        )
        if mapped is not None:
            found.extend(mapped.references)
    return found
