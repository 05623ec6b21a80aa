"""A VirtualNode custom resource, parsed into typed, immutable configuration (pure: no I/O).

The API server already validated the object against the CRD's schema and CEL rules and applied its defaults;
this module only gives the rest of acinode typed access, with the same defaults for objects written before a
default existed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Literal

from acinode import types
from acinode.mapping import placement, quantities

CredentialType = Literal["Default", "WorkloadIdentity", "ManagedIdentity", "ServicePrincipal", "StaticToken"]
CloudName = Literal["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud", "Custom"]


@dataclasses.dataclass(frozen=True)
class SecretReference:
    name: str
    namespace: str | None = None
    """None: the operator's own namespace."""


@dataclasses.dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str | None = None


@dataclasses.dataclass(frozen=True)
class CloudConfig:
    name: CloudName = "AzurePublicCloud"
    resource_manager_endpoint: str | None = None
    authority_host: str | None = None
    credential_scope: str | None = None
    ca_bundle: str | None = None
    """PEM certificates to trust for the ARM endpoint."""


@dataclasses.dataclass(frozen=True)
class CredentialsConfig:
    type: CredentialType = "Default"
    client_id: str | None = None
    secret_ref: SecretReference | None = None


@dataclasses.dataclass(frozen=True)
class AllowedIdentity:
    """A user-assigned managed identity the pods of this node may attach to their container groups."""

    resource_id: str
    namespaces: tuple[str, ...] = ()
    """Only pods of these namespaces; empty: any namespace."""
    client_id: str = ""
    """Its client id, for SecretProviderClasses (which name identities so); empty: none may use it so."""


@dataclasses.dataclass(frozen=True)
class AzureConfig:
    subscription_id: types.SubscriptionId
    resource_group: types.ResourceGroup
    region: str
    subnet_id: str | None = None
    cloud: CloudConfig = dataclasses.field(default_factory=CloudConfig)
    credentials: CredentialsConfig = dataclasses.field(default_factory=CredentialsConfig)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    allowed_identities: tuple[AllowedIdentity, ...] = ()
    """Deny by default: the only identities a pod's annotations may attach (``spec.azure.allowedIdentities``)."""


@dataclasses.dataclass(frozen=True)
class DnsConfig:
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"


@dataclasses.dataclass(frozen=True)
class LogAnalyticsConfig:
    workspace_id: str
    workspace_key_secret: SecretReference
    log_type: str | None = None
    workspace_resource_id: str | None = None
    cluster_resource_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ContainerGroupsConfig:
    """``spec.containerGroups``: what ACI offers in the region and what a container without requests gets."""

    gpu_skus: tuple[str, ...] = ()
    default_cpu: float = 1.0
    default_memory_gb: float = 1.5
    max_cpu: float = placement.DEFAULT_MAX_CPU
    max_memory_gb: float = placement.DEFAULT_MAX_MEMORY_GB
    tag_labels: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class KubeProxyConfig:
    cluster_cidr: str
    kubeconfig_secret: SecretReference


@dataclasses.dataclass(frozen=True)
class VirtualNodeConfig:
    name: str
    """The VirtualNode's own name."""
    node_name: types.NodeName
    azure: AzureConfig
    operating_system: str = "linux"
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    disable_default_taint: bool = False
    capacity: Mapping[str, str] = dataclasses.field(default_factory=dict)
    dns: DnsConfig = dataclasses.field(default_factory=DnsConfig)
    kube_proxy: KubeProxyConfig | None = None
    """Set when ``spec.kubeProxy.enabled``."""
    log_analytics: LogAnalyticsConfig | None = None
    container_groups: ContainerGroupsConfig = dataclasses.field(default_factory=ContainerGroupsConfig)
    generation: int = 0


DEFAULT_CAPACITY: Mapping[str, str] = {"cpu": "800", "memory": "4Ti", "pods": "1000"}
GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_GPU_CAPACITY = "100"
"""Advertised when ``containerGroups.gpuSkus`` is set and ``capacity`` names no GPU count (ACI's quota decides)."""


def _secret_ref(raw: Mapping[str, Any] | None) -> SecretReference | None:
    if not raw:
        return None
    return SecretReference(name=str(raw["name"]), namespace=raw.get("namespace"))


def virtual_node_config_from_resource(resource: Mapping[str, Any]) -> VirtualNodeConfig:
    """Parse a VirtualNode object (as the API server returns it) into typed configuration."""
    metadata = resource.get("metadata", {})
    spec = resource.get("spec", {})
    azure = spec.get("azure", {})
    cloud = azure.get("cloud") or {}
    credentials = azure.get("credentials") or {}
    capacity = {**DEFAULT_CAPACITY, **{k: str(v) for k, v in (spec.get("capacity") or {}).items()}}
    if (spec.get("containerGroups") or {}).get("gpuSkus"):
        # A node that offers GPUs advertises them, or the scheduler never places a GPU pod here.
        capacity.setdefault(GPU_RESOURCE, DEFAULT_GPU_CAPACITY)
    dns = spec.get("dns") or {}
    return VirtualNodeConfig(
        name=str(metadata["name"]),
        node_name=types.NodeName(str(spec.get("nodeName") or metadata["name"])),
        generation=int(metadata.get("generation", 0)),
        operating_system=str(spec.get("operatingSystem", "linux")),
        labels=dict(spec.get("labels") or {}),
        taints=tuple(
            Taint(key=str(t["key"]), effect=str(t["effect"]), value=t.get("value"))
            for t in spec.get("taints") or []
        ),
        disable_default_taint=bool(spec.get("disableDefaultTaint", False)),
        capacity=capacity,
        azure=AzureConfig(
            subscription_id=types.SubscriptionId(str(azure.get("subscriptionId", ""))),
            resource_group=types.ResourceGroup(str(azure.get("resourceGroup", ""))),
            region=str(azure.get("region", "")),
            subnet_id=azure.get("subnetId"),
            cloud=CloudConfig(
                name=cloud.get("name", "AzurePublicCloud"),
                resource_manager_endpoint=cloud.get("resourceManagerEndpoint"),
                authority_host=cloud.get("authorityHost"),
                credential_scope=cloud.get("credentialScope"),
                ca_bundle=cloud.get("caBundle"),
            ),
            credentials=CredentialsConfig(
                type=credentials.get("type", "Default"),
                client_id=credentials.get("clientId"),
                secret_ref=_secret_ref(credentials.get("secretRef")),
            ),
            tags=dict(azure.get("tags") or {}),
            allowed_identities=tuple(
                AllowedIdentity(
                    resource_id=str(entry.get("resourceId", "")),
                    namespaces=tuple(str(n) for n in entry.get("namespaces") or ()),
                    client_id=str(entry.get("clientId", "")),
                )
                for entry in azure.get("allowedIdentities") or ()
            ),
        ),
        dns=DnsConfig(
            cluster_dns=tuple(dns.get("clusterDNS") or ()),
            cluster_domain=str(dns.get("clusterDomain", "cluster.local")),
        ),
        kube_proxy=_kube_proxy(spec.get("kubeProxy") or {}),
        log_analytics=_log_analytics(azure.get("logAnalytics") or {}),
        container_groups=_container_groups(spec.get("containerGroups") or {}),
    )


def _cpu(raw: Any, default: float) -> float:
    return default if raw is None else float(quantities.fraction_from_quantity(raw))


def _memory_gb(raw: Any, default: float) -> float:
    # ACI's "GB" is the mapping's GiB (its memory steps are binary).
    return default if raw is None else float(quantities.fraction_from_quantity(raw) / quantities.GIB)


def _container_groups(raw: Mapping[str, Any]) -> ContainerGroupsConfig:
    defaults = ContainerGroupsConfig()
    return ContainerGroupsConfig(
        gpu_skus=tuple(str(sku) for sku in raw.get("gpuSkus") or ()),
        default_cpu=_cpu(raw.get("defaultCPU"), defaults.default_cpu),
        default_memory_gb=_memory_gb(raw.get("defaultMemory"), defaults.default_memory_gb),
        max_cpu=_cpu(raw.get("maxCPU"), defaults.max_cpu),
        max_memory_gb=_memory_gb(raw.get("maxMemory"), defaults.max_memory_gb),
        tag_labels=tuple(str(label) for label in raw.get("tagLabels") or ()),
    )


def _kube_proxy(raw: Mapping[str, Any]) -> KubeProxyConfig | None:
    secret = _secret_ref(raw.get("kubeconfigSecretRef"))
    if not raw.get("enabled") or secret is None or not raw.get("clusterCIDR"):
        return None
    return KubeProxyConfig(cluster_cidr=str(raw["clusterCIDR"]), kubeconfig_secret=secret)


def _log_analytics(raw: Mapping[str, Any]) -> LogAnalyticsConfig | None:
    secret = _secret_ref(raw.get("workspaceKeySecretRef"))
    if not raw.get("workspaceId") or secret is None:
        return None
    return LogAnalyticsConfig(
        workspace_id=str(raw["workspaceId"]),
        workspace_key_secret=secret,
        log_type=raw.get("logType"),
        workspace_resource_id=raw.get("workspaceResourceId"),
        cluster_resource_id=raw.get("clusterResourceId"),
    )


def group_placement_from_config(
    config: VirtualNodeConfig,
    cluster_id: types.ClusterId,
    host_ip: str | None,
    secrets: PlacementSecrets | None = None,
) -> placement.GroupPlacement:
    """Where the pods of this virtual node run, as the pod mapping needs it. ``secrets``: the values read from
    the Secrets the spec references (the Log Analytics key, the kube-proxy kubeconfig)."""
    secrets = secrets or PlacementSecrets()
    groups = config.container_groups
    log_analytics = (
        placement.LogAnalyticsSettings(
            workspace_id=config.log_analytics.workspace_id,
            workspace_key=secrets.workspace_key,
            log_type=config.log_analytics.log_type,
            workspace_resource_id=config.log_analytics.workspace_resource_id,
            cluster_resource_id=config.log_analytics.cluster_resource_id,
        )
        if config.log_analytics is not None and secrets.workspace_key
        else None
    )
    kube_proxy = (
        placement.KubeProxySettings(
            cluster_cidr=config.kube_proxy.cluster_cidr, kubeconfig=secrets.kube_proxy_kubeconfig
        )
        if config.kube_proxy is not None and secrets.kube_proxy_kubeconfig
        else None
    )
    dns = (
        placement.ClusterDnsSettings(nameserver=config.dns.cluster_dns[0], domain=config.dns.cluster_domain)
        if config.dns.cluster_dns
        else None
    )
    return placement.GroupPlacement(
        node_name=config.node_name,
        cluster_id=cluster_id,
        region=config.azure.region,
        os_type="Windows" if config.operating_system == "windows" else "Linux",
        subnet_id=config.azure.subnet_id,
        host_ip=host_ip,
        cluster_dns=dns,
        kube_proxy=kube_proxy,
        log_analytics=log_analytics,
        extra_tags=dict(config.azure.tags),
        copied_labels=groups.tag_labels,
        default_cpu=groups.default_cpu,
        default_memory_gb=groups.default_memory_gb,
        max_cpu=groups.max_cpu,
        max_memory_gb=groups.max_memory_gb,
        gpu_skus=groups.gpu_skus,
        allowed_identities=tuple(
            placement.AllowedIdentity(
                resource_id=i.resource_id, namespaces=i.namespaces, client_id=i.client_id
            )
            for i in config.azure.allowed_identities
        ),
    )


@dataclasses.dataclass(frozen=True)
class PlacementSecrets:
    """Secret values a VirtualNode's placement needs, read by the caller (mapping does no I/O)."""

    workspace_key: str = dataclasses.field(default="", repr=False)
    kube_proxy_kubeconfig: str = dataclasses.field(default="", repr=False)


def _secret_references(config: VirtualNodeConfig) -> list[tuple[str, SecretReference]]:
    refs: list[tuple[str, SecretReference | None]] = [
        ("spec.azure.credentials.secretRef", config.azure.credentials.secret_ref),
        (
            "spec.azure.logAnalytics.workspaceKeySecretRef",
            config.log_analytics.workspace_key_secret if config.log_analytics else None,
        ),
        (
            "spec.kubeProxy.kubeconfigSecretRef",
            config.kube_proxy.kubeconfig_secret if config.kube_proxy else None,
        ),
    ]
    return [(path, ref) for path, ref in refs if ref is not None]


def custom_cloud_fields(cloud: CloudConfig) -> list[str]:
    """The cloud settings that send tokens somewhere, or trust something, the VirtualNode chose."""
    chosen = {
        "resourceManagerEndpoint": cloud.resource_manager_endpoint,
        "authorityHost": cloud.authority_host,
        "credentialScope": cloud.credential_scope,
        "caBundle": cloud.ca_bundle,
    }
    return [f"spec.azure.cloud.{name}" for name, value in chosen.items() if value]


def trust_problems(
    config: VirtualNodeConfig, *, operator_namespace: str, allow_custom_cloud_credentials: bool
) -> list[str]:
    """Why this VirtualNode asks for more than the operator lets a VirtualNode have (empty: nothing).

    - Secrets are read only from the operator's namespace: a VirtualNode cannot make the operator read, and send
      to Azure, a Secret of another namespace.
    - A custom endpoint, authority, scope or CA bundle is used only with a static token (a value the VirtualNode's
      author already holds), unless the operator allows more: otherwise the operator's own Azure tokens, or a
      service principal's secret, would go to a host of the VirtualNode's choosing.
    """
    problems = [
        f"{path}.namespace: Secrets are read only from the operator's namespace {operator_namespace!r}, "
        f"not {ref.namespace!r}"
        for path, ref in _secret_references(config)
        if ref.namespace not in (None, operator_namespace)
    ]
    custom = custom_cloud_fields(config.azure.cloud)
    kind = config.azure.credentials.type
    if custom and kind != "StaticToken" and not allow_custom_cloud_credentials:
        problems.append(
            f"{', '.join(custom)}: a custom cloud with credentials of type {kind} would send the operator's Azure "
            "credentials where this VirtualNode chose; use StaticToken, or run the operator with "
            "ACINODE_ACI_ALLOW_CUSTOM_CLOUD_CREDENTIALS=true (Helm: azure.allowCustomCloudCredentials)"
        )
    return problems


class Effect(enum.Flag):
    """What a VirtualNode spec change needs of the running node (see docs/architecture.md, "Spec edits")."""

    NONE = 0
    NODE = enum.auto()
    """The Node's labels, taints or capacity: patched in place by the keeper."""
    PLACEMENT = enum.auto()
    """How the next pods' groups are made: the pod controller's placement, replaced in place (running groups
    are untouched: ACI cannot change a running group without restarting it)."""
    PLACEMENT_SECRETS = enum.auto()
    """The Secrets the placement reads (Log Analytics key, kube-proxy kubeconfig): read again, then PLACEMENT."""
    BACKEND = enum.auto()
    """How ARM is reached (cloud, credentials): the ACI client and the pod controller are rebuilt; running
    groups are found again by their tags."""


_AZURE_FIELD_EFFECTS: Mapping[str, Effect] = {
    "subscription_id": Effect.BACKEND,  # immutable in the CRD; a stored object from before the rule rebuilds
    "resource_group": Effect.BACKEND,
    "region": Effect.BACKEND | Effect.PLACEMENT | Effect.NODE,
    "subnet_id": Effect.PLACEMENT,
    "cloud": Effect.BACKEND,
    "credentials": Effect.BACKEND,
    "tags": Effect.PLACEMENT,
    "allowed_identities": Effect.PLACEMENT,
}
_FIELD_EFFECTS: Mapping[str, Effect] = {
    "name": Effect.NONE,
    "generation": Effect.NONE,
    "node_name": Effect.BACKEND | Effect.NODE,  # immutable in the CRD
    "operating_system": Effect.NODE | Effect.PLACEMENT,
    "labels": Effect.NODE,
    "taints": Effect.NODE,
    "disable_default_taint": Effect.NODE,
    "capacity": Effect.NODE,
    "dns": Effect.PLACEMENT,
    "kube_proxy": Effect.PLACEMENT_SECRETS | Effect.PLACEMENT,
    "log_analytics": Effect.PLACEMENT_SECRETS | Effect.PLACEMENT,
    "container_groups": Effect.PLACEMENT,
}


def change_effects(old: VirtualNodeConfig, new: VirtualNodeConfig) -> Effect:
    """What must happen for ``new`` to take effect on a node running ``old``: the union over changed fields."""
    effect = Effect.NONE
    for field in dataclasses.fields(VirtualNodeConfig):
        if field.name == "azure":
            for azure_field in dataclasses.fields(AzureConfig):
                if getattr(old.azure, azure_field.name) != getattr(new.azure, azure_field.name):
                    effect |= _AZURE_FIELD_EFFECTS[azure_field.name]
        elif getattr(old, field.name) != getattr(new, field.name):
            effect |= _FIELD_EFFECTS[field.name]
    return effect
