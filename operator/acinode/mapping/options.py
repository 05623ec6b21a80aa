"""Group options from the documented pod annotations, for ACI features Kubernetes has no field for.

Every key lives under ``aci.acinode.dev/``, a prefix acinode uses for nothing else, so an unknown key there is
a typo and is refused rather than ignored. virtual-kubelet's annotations are honoured as fallbacks, so pods
written for its provider keep working. AKS virtual nodes v2 (VN2) annotations, under
``microsoft.containerinstance.virtualnode.``, are honoured with VN2's meaning or refused with the reason; an
unknown key under that prefix is refused too (docs/mapping.md, "VN2 annotations").
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping

from acinode.mapping import problems

PREFIX = "aci.acinode.dev/"
GPU_SKU = PREFIX + "gpu-sku"
PRIORITY = PREFIX + "priority"
ZONES = PREFIX + "zones"
SKU = PREFIX + "sku"
CCE_POLICY = PREFIX + "cce-policy"
IDENTITIES = PREFIX + "identities"
ACR_IDENTITY = PREFIX + "acr-identity"
ACR_SERVERS = PREFIX + "acr-servers"
DNS_NAME_LABEL = PREFIX + "dns-name-label"
DNS_NAME_LABEL_SCOPE = PREFIX + "dns-name-label-scope"
IP_ADDRESS_TYPE = PREFIX + "ip-address-type"
IP_ADDRESS = PREFIX + "ip-address"
ENTRYPOINTS = PREFIX + "entrypoints"

KNOWN = frozenset(
    {
        GPU_SKU,
        PRIORITY,
        ZONES,
        SKU,
        CCE_POLICY,
        IDENTITIES,
        ACR_IDENTITY,
        ACR_SERVERS,
        DNS_NAME_LABEL,
        DNS_NAME_LABEL_SCOPE,
        IP_ADDRESS_TYPE,
        IP_ADDRESS,
        ENTRYPOINTS,
    }
)

# virtual-kubelet's azure-aci provider annotations, read when ours are absent.
VK_GPU_TYPE = "virtual-kubelet.io/gpu-type"
VK_DNS_NAME_LABEL = "virtualkubelet.io/dnsnamelabel"
VK_CCE_POLICY = "virtual-kubelet.io/confidential-compute-cce-policy"
VK_CONTAINER_SKU = "virtual-kubelet.io/container-sku"

# AKS virtual nodes v2 (microsoft/virtualnodesOnAzureContainerInstances, Docs/PodCustomizations.md,
# NodeCustomizations.md): same meaning where ACI allows it, else refused.
VN2_PREFIX = "microsoft.containerinstance.virtualnode."
VN2_CCE_POLICY = VN2_PREFIX + "ccepolicy"
VN2_IDENTITY = VN2_PREFIX + "identity"
VN2_ZONES = VN2_PREFIX + "zones"
VN2_SUBNET = VN2_PREFIX + "subnets.primary"
VN2_INJECT_KUBE_PROXY = VN2_PREFIX + "injectkubeproxy"
VN2_INJECT_DNS = VN2_PREFIX + "injectdns"
VN2_CUSTOM_TAGS = VN2_PREFIX + "customtags"
VN2_IMAGE_CACHE_POD = VN2_PREFIX + "imagecachepod"
#: Customer-managed key for the group's deployment data (ACI ``encryptionProperties``). VN2's public docs name
#: the feature (release notes, "CMK") but not the keys; these follow ACI's own field names.
VN2_CMK_PREFIX = VN2_PREFIX + "cmk."
VN2_CMK_VAULT_BASE_URL = VN2_CMK_PREFIX + "vaultbaseurl"
VN2_CMK_KEY_NAME = VN2_CMK_PREFIX + "keyname"
VN2_CMK_KEY_VERSION = VN2_CMK_PREFIX + "keyversion"
VN2_CMK_IDENTITY = VN2_CMK_PREFIX + "identity"

VN2_KNOWN = frozenset(
    {
        VN2_CCE_POLICY,
        VN2_IDENTITY,
        VN2_ZONES,
        VN2_SUBNET,
        VN2_INJECT_KUBE_PROXY,
        VN2_INJECT_DNS,
        VN2_CUSTOM_TAGS,
        VN2_IMAGE_CACHE_POD,
        VN2_CMK_VAULT_BASE_URL,
        VN2_CMK_KEY_NAME,
        VN2_CMK_KEY_VERSION,
        VN2_CMK_IDENTITY,
    }
)

GPU_SKUS = ("K80", "P100", "V100")
PRIORITIES = ("Regular", "Spot")
SKUS = ("Standard", "Confidential", "Dedicated")
DNS_NAME_LABEL_SCOPES = ("Unsecure", "TenantReuse", "SubscriptionReuse", "ResourceGroupReuse", "Noreuse")
IP_ADDRESS_TYPES = ("Public", "Private", "None")

_IDENTITY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/"
    r"userAssignedIdentities/[^/]+$",
    re.IGNORECASE,
)
_SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/"
    r"subnets/[^/]+$",
    re.IGNORECASE,
)
_VAULT_BASE_URL = re.compile(r"^https://[a-z0-9][a-z0-9.-]*[a-z0-9](:\d+)?/?$", re.IGNORECASE)
_KEY_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
_KEY_VERSION = re.compile(r"^[A-Za-z0-9]{1,64}$")
#: Go's strconv.ParseBool, which VN2 (a Go program) reads its true/false annotations with.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_REGISTRY_HOST = re.compile(r"^[a-z0-9.-]+(:\d+)?$")


@dataclasses.dataclass(frozen=True)
class GroupOptions:
    """Validated annotation values; None or empty when not set."""

    gpu_sku: str | None = None
    priority: str | None = None
    zones: tuple[str, ...] = ()
    sku: str | None = None
    cce_policy: str | None = None
    identities: tuple[str, ...] = ()
    """User-assigned managed identity resource ids attached to the group."""
    acr_identity: str | None = None
    """Identity resource id ACI pulls images from Azure Container Registry with."""
    acr_servers: tuple[str, ...] = ()
    """Registries pulled with ``acr_identity``; empty means every ``*.azurecr.*`` registry of the pod."""
    dns_name_label: str | None = None
    dns_name_label_scope: str | None = None
    ip_address_type: str | None = None
    ip_address: str | None = None
    entrypoints: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Container name → image ENTRYPOINT, so that ``args`` without ``command`` can be expressed."""
    identity_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Identity resource id → the annotation that asked for it (for a precise refusal)."""
    subnet_id: str | None = None
    """VN2's per-pod subnet (``subnets.primary``); the mapping honours it only where the node allows it."""
    inject_kube_proxy: bool | None = None
    """VN2 ``injectkubeproxy``: None when unset (the node decides)."""
    inject_dns: bool | None = None
    """VN2 ``injectdns``: False resolves through ACI's own DNS instead of the cluster's."""
    custom_tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """VN2 ``customtags``: ARM tags for the group, over the VirtualNode's extra tags."""
    encryption: Encryption | None = None
    """VN2 ``cmk.*``: the customer-managed key for the group's deployment data."""


@dataclasses.dataclass(frozen=True)
class Encryption:
    """ACI ``encryptionProperties``: a Key Vault key, read by the group's user-assigned identity."""

    vault_base_url: str
    key_name: str
    key_version: str
    identity: str | None = None


def _path(key: str) -> str:
    return problems.key_path("metadata.annotations", key)


def _choice(
    annotations: Mapping[str, str], keys: tuple[str, ...], allowed: tuple[str, ...], found: problems.Problems
) -> str | None:
    for key in keys:
        if key in annotations:
            value = annotations[key].strip()
            for choice in allowed:
                if value.lower() == choice.lower():
                    return choice
            found.add(_path(key), f"{value!r} is not one of {', '.join(allowed)}")
            return None
    return None


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _identity(key: str, value: str, found: problems.Problems) -> str | None:
    if _IDENTITY_ID.match(value):
        return value
    found.add(_path(key), f"{value!r} is not a user-assigned managed identity resource id")
    return None


def _entrypoints(value: str, found: problems.Problems) -> dict[str, tuple[str, ...]]:
    reason = 'must be a JSON object of container name → list of strings, e.g. {"app": ["/entrypoint.sh"]}'
    try:
        parsed = json.loads(value)
    except ValueError:
        found.add(_path(ENTRYPOINTS), reason)
        return {}
    if not isinstance(parsed, dict) or not all(
        isinstance(argv, list) and all(isinstance(arg, str) for arg in argv) for argv in parsed.values()
    ):
        found.add(_path(ENTRYPOINTS), reason)
        return {}
    return {str(name): tuple(argv) for name, argv in parsed.items()}


def _cce_policy(annotations: Mapping[str, str], found: problems.Problems) -> str | None:
    given = [key for key in (CCE_POLICY, VN2_CCE_POLICY, VK_CCE_POLICY) if key in annotations]
    for key in given:
        value = annotations[key].strip()
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            found.add(_path(key), "must be the base64 confidential computing enforcement policy")
            return None
        if not value:
            found.add(_path(key), "must not be empty: a confidential group needs its policy")
            return None
    values = {annotations[key].strip() for key in given}
    if len(values) > 1:
        found.add(_path(given[1]), f"differs from {given[0]}: which policy should the group enforce?")
        return None
    return values.pop() if values else None


def _bool(annotations: Mapping[str, str], key: str, found: problems.Problems) -> bool | None:
    if key not in annotations:
        return None
    value = annotations[key].strip()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    found.add(_path(key), f"{value!r} is not true or false")
    return None


def _zones(annotations: Mapping[str, str], found: problems.Problems) -> tuple[str, ...]:
    ours = _list(annotations.get(ZONES, ""))
    # VN2 separates zones with semicolons (PodCustomizations.md, "Zones").
    vn2 = tuple(zone.strip() for zone in annotations.get(VN2_ZONES, "").split(";") if zone.strip())
    for key, zones in ((ZONES, ours), (VN2_ZONES, vn2)):
        for zone in zones:
            if zone not in ("1", "2", "3"):
                found.add(_path(key), f"zone {zone!r} is not 1, 2 or 3")
        if len(zones) > 1:
            found.add(_path(key), "ACI places a container group in one availability zone")
    if ours and vn2 and set(ours) != set(vn2):
        found.add(_path(VN2_ZONES), f"differs from {ZONES}: which zone should the group run in?")
    return ours or vn2


def _custom_tags(annotations: Mapping[str, str], found: problems.Problems) -> dict[str, str]:
    """VN2's ``key1=value1;key2=value2`` (NodeCustomizations.md, "Using Custom ARM Tags")."""
    tags: dict[str, str] = {}
    for item in annotations.get(VN2_CUSTOM_TAGS, "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            found.add(_path(VN2_CUSTOM_TAGS), f"{item.strip()!r} is not key=value")
        elif key in tags:
            found.add(_path(VN2_CUSTOM_TAGS), f"tag {key!r} is given twice")
        else:
            tags[key] = value
    return tags


def _encryption(annotations: Mapping[str, str], found: problems.Problems) -> Encryption | None:
    cmk = {key: annotations[key].strip() for key in annotations if key.startswith(VN2_CMK_PREFIX)}
    if not cmk:
        return None
    url, name, version = (
        cmk.get(VN2_CMK_VAULT_BASE_URL, ""),
        cmk.get(VN2_CMK_KEY_NAME, ""),
        cmk.get(VN2_CMK_KEY_VERSION, ""),
    )
    ok = True
    for key, value, pattern, what in (
        (
            VN2_CMK_VAULT_BASE_URL,
            url,
            _VAULT_BASE_URL,
            "an https Key Vault URL, e.g. https://myvault.vault.azure.net",
        ),
        (VN2_CMK_KEY_NAME, name, _KEY_NAME, "a Key Vault key name (letters, digits, hyphens)"),
        (
            VN2_CMK_KEY_VERSION,
            version,
            _KEY_VERSION,
            "a Key Vault key version (ACI needs an explicit version)",
        ),
    ):
        if not value:
            found.add(_path(key), "is required with any cmk annotation: ACI needs the vault, key and version")
            ok = False
        elif not pattern.match(value):
            found.add(_path(key), f"{value!r} is not {what}")
            ok = False
    identity = cmk.get(VN2_CMK_IDENTITY) or None
    if identity is not None:
        identity = _identity(VN2_CMK_IDENTITY, identity, found)
        ok = ok and identity is not None
    return Encryption(url, name, version, identity) if ok else None


def group_options_from_annotations(annotations: Mapping[str, str], found: problems.Problems) -> GroupOptions:
    """Validate the pod's ACI annotations, adding one problem per bad value or unknown key."""
    for key in sorted(annotations):
        if key.startswith(PREFIX) and key not in KNOWN:
            found.add(_path(key), f"unknown acinode annotation; known: {', '.join(sorted(KNOWN))}")
        if key.startswith(VN2_PREFIX) and key not in VN2_KNOWN:
            found.add(
                _path(key),
                f"unknown or unsupported virtual nodes v2 annotation; known: {', '.join(sorted(VN2_KNOWN))}",
            )

    zones = _zones(annotations, found)

    identity_keys: dict[str, str] = {}
    for value in _list(annotations.get(IDENTITIES, "")):
        if identity := _identity(IDENTITIES, value, found):
            identity_keys.setdefault(identity, IDENTITIES)
    vn2_identity = annotations.get(VN2_IDENTITY, "").strip()
    if VN2_IDENTITY in annotations and (identity := _identity(VN2_IDENTITY, vn2_identity, found)):
        identity_keys.setdefault(identity, VN2_IDENTITY)
    encryption = _encryption(annotations, found)
    if encryption is not None and encryption.identity is not None:
        identity_keys.setdefault(encryption.identity, VN2_CMK_IDENTITY)
    identities = tuple(identity_keys)

    subnet_id = annotations.get(VN2_SUBNET, "").strip() or None
    if VN2_SUBNET in annotations and (subnet_id is None or not _SUBNET_ID.match(subnet_id)):
        found.add(_path(VN2_SUBNET), f"{subnet_id or ''!r} is not a subnet resource id")
        subnet_id = None

    if _bool(annotations, VN2_IMAGE_CACHE_POD, found):
        found.add(
            _path(VN2_IMAGE_CACHE_POD),
            "an image cache pod only pre-pulls images into VN2's standby pools and never runs; acinode has "
            "no standby pools (ACI caches images itself), so there is nothing to do with it",
        )
    acr_identity = annotations.get(ACR_IDENTITY, "").strip() or None
    if acr_identity is not None:
        acr_identity = _identity(ACR_IDENTITY, acr_identity, found)
    acr_servers = tuple(server.lower() for server in _list(annotations.get(ACR_SERVERS, "")))
    for server in acr_servers:
        if not _REGISTRY_HOST.match(server):
            found.add(_path(ACR_SERVERS), f"{server!r} is not a registry host name")
    if acr_servers and acr_identity is None and ACR_IDENTITY not in annotations:
        found.add(_path(ACR_SERVERS), f"needs {ACR_IDENTITY} to name the identity that pulls")

    dns_name_label = (
        annotations.get(DNS_NAME_LABEL) or annotations.get(VK_DNS_NAME_LABEL) or ""
    ).strip() or None
    if dns_name_label is not None and not _DNS_LABEL.match(dns_name_label):
        key = DNS_NAME_LABEL if DNS_NAME_LABEL in annotations else VK_DNS_NAME_LABEL
        found.add(_path(key), "must be 3–63 lowercase letters, digits and hyphens, starting with a letter")
        dns_name_label = None

    ip_address = annotations.get(IP_ADDRESS, "").strip() or None
    if ip_address is not None:
        try:
            ipaddress.IPv4Address(ip_address)
        except ValueError:
            found.add(_path(IP_ADDRESS), f"{ip_address!r} is not an IPv4 address (ACI has no IPv6)")
            ip_address = None

    cce_policy = _cce_policy(annotations, found)
    sku = _choice(annotations, (SKU, VK_CONTAINER_SKU), SKUS, found)
    if cce_policy is not None and sku not in (None, "Confidential"):
        found.add(_path(SKU), "a confidential computing policy needs the Confidential SKU")

    return GroupOptions(
        gpu_sku=_choice(annotations, (GPU_SKU, VK_GPU_TYPE), GPU_SKUS, found),
        priority=_choice(annotations, (PRIORITY,), PRIORITIES, found),
        zones=zones,
        sku="Confidential" if cce_policy is not None else sku,
        cce_policy=cce_policy,
        identities=identities,
        acr_identity=acr_identity,
        acr_servers=acr_servers,
        dns_name_label=dns_name_label,
        dns_name_label_scope=_choice(annotations, (DNS_NAME_LABEL_SCOPE,), DNS_NAME_LABEL_SCOPES, found),
        ip_address_type=_choice(annotations, (IP_ADDRESS_TYPE,), IP_ADDRESS_TYPES, found),
        ip_address=ip_address,
        entrypoints=_entrypoints(annotations[ENTRYPOINTS], found) if ENTRYPOINTS in annotations else {},
        identity_keys=identity_keys,
        subnet_id=subnet_id,
        inject_kube_proxy=_bool(annotations, VN2_INJECT_KUBE_PROXY, found),
        inject_dns=_bool(annotations, VN2_INJECT_DNS, found),
        custom_tags=_custom_tags(annotations, found),
        encryption=encryption,
    )
