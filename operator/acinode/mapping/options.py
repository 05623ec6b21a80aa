"""Group options from the documented pod annotations, for ACI features Kubernetes has no field for.

Every key lives under ``aci.acinode.dev/``, a prefix acinode uses for nothing else, so an unknown key there is
a typo and is refused rather than ignored. virtual-kubelet's annotations are honoured as fallbacks, so pods
written for its provider keep working.
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
    for key in (CCE_POLICY, VK_CCE_POLICY):
        if key in annotations:
            value = annotations[key].strip()
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                found.add(_path(key), "must be the base64 confidential computing enforcement policy")
                return None
            return value
    return None


def group_options_from_annotations(annotations: Mapping[str, str], found: problems.Problems) -> GroupOptions:
    """Validate the pod's ACI annotations, adding one problem per bad value or unknown key."""
    for key in sorted(annotations):
        if key.startswith(PREFIX) and key not in KNOWN:
            found.add(_path(key), f"unknown acinode annotation; known: {', '.join(sorted(KNOWN))}")

    zones = _list(annotations.get(ZONES, ""))
    for zone in zones:
        if zone not in ("1", "2", "3"):
            found.add(_path(ZONES), f"zone {zone!r} is not 1, 2 or 3")
    if len(zones) > 1:
        found.add(_path(ZONES), "ACI places a container group in one availability zone")

    identities = tuple(
        identity
        for value in _list(annotations.get(IDENTITIES, ""))
        if (identity := _identity(IDENTITIES, value, found))
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
    )
