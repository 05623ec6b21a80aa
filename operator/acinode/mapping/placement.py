"""Where and how a pod's container group is placed: everything the mapping needs from the VirtualNode.

The reconciler builds one ``GroupPlacement`` per virtual node from its spec and the operator settings; the
mapping reads nothing else about the node, so a test states the whole environment in one value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from acinode import types

#: Per-group maxima for a standard Linux or Windows group (container-instances-resource-and-quota-limits.md).
#: Some regions allow more; VirtualNodes may raise them.
DEFAULT_MAX_CPU = 4.0
DEFAULT_MAX_MEMORY_GB = 16.0


@dataclasses.dataclass(frozen=True)
class ClusterDnsSettings:
    """The cluster DNS that ClusterFirst pods use (reachable from ACI only in VNet mode)."""

    nameserver: str
    """IP of the cluster DNS service (kube-dns), e.g. ``10.0.0.10``."""
    domain: str = "cluster.local"
    """The cluster domain, as the kubelet's ``--cluster-domain``."""


@dataclasses.dataclass(frozen=True)
class KubeProxySettings:
    """The ACI ``kube-proxy`` extension, so that pods in the subnet reach ClusterIP services (VNet mode)."""

    cluster_cidr: str
    """The cluster's pod CIDR, e.g. ``10.240.0.0/16``."""
    kubeconfig: str
    """A kubeconfig (YAML or JSON) for the extension; sent base64-encoded in ``protectedSettings``."""
    kube_version: str = "v1.9.10"
    """The extension's ``kubeVersion`` setting; virtual-kubelet's provider sends v1.9.10."""


@dataclasses.dataclass(frozen=True)
class LogAnalyticsSettings:
    """Where ACI ships container logs (``properties.diagnostics.logAnalytics``)."""

    workspace_id: str
    workspace_key: str
    """Secret: sent only in the group's diagnostics, which ACI never returns."""
    log_type: str | None = None
    """``ContainerInsights`` or ``ContainerInstanceLogs``; ACI's default when None."""
    workspace_resource_id: str | None = None
    cluster_resource_id: str | None = None
    """With ContainerInsights: the AKS/Arc cluster resource id, sent as metadata like virtual-kubelet does."""


@dataclasses.dataclass(frozen=True)
class AllowedIdentity:
    """A user-assigned managed identity (ARM resource id) that pods may attach, optionally per namespace."""

    resource_id: str
    namespaces: tuple[str, ...] = ()
    """Empty: pods of any namespace."""
    client_id: str = ""
    """The identity's client id (how a SecretProviderClass names it); empty: unknown."""

    def allows(self, resource_id: str, namespace: str) -> bool:
        # ARM resource ids are case-insensitive.
        return self.resource_id.lower() == resource_id.lower() and (
            not self.namespaces or namespace in self.namespaces
        )


@dataclasses.dataclass(frozen=True)
class GroupPlacement:
    """The target node and the Azure side of a pod's container group."""

    node_name: types.NodeName
    cluster_id: types.ClusterId
    region: str
    """Azure location of the group, e.g. ``westeurope``."""
    os_type: str = "Linux"
    """``Linux`` or ``Windows``: set per virtual node, since ACI has one OS per group."""
    subnet_id: str | None = None
    """Resource id of the delegated subnet (VNet mode); None puts groups on ACI's own network."""
    host_ip: str | None = None
    """The Node's InternalIP, reported as the pod's hostIP and offered to ``status.hostIP`` references."""
    cluster_dns: ClusterDnsSettings | None = None
    kube_proxy: KubeProxySettings | None = None
    """Only applied in VNet mode on Linux, as virtual-kubelet's provider does."""
    log_analytics: LogAnalyticsSettings | None = None
    extra_tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Tags added to every group (acinode's own tags win on a clash)."""
    copied_labels: tuple[str, ...] = ()
    """Pod label keys copied to tags; an entry ending in ``*`` is a prefix."""
    default_cpu: float = 1.0
    """CPU given to a container that requests none (ACI requires a request)."""
    default_memory_gb: float = 1.5
    """Memory in GB given to a container that requests none."""
    max_cpu: float = DEFAULT_MAX_CPU
    """Most CPU one non-GPU group may have in this region."""
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB
    """Most memory in GB one non-GPU group may have in this region."""
    gpu_skus: tuple[str, ...] = ()
    """GPU SKUs the region offers, preferred first; empty means no GPU pods."""
    allowed_identities: tuple[AllowedIdentity, ...] = ()
    """The user-assigned identities pods may attach (annotations ``identities``, ``acr-identity``): deny by
    default, so a pod creator cannot borrow an identity, the operator's own included, that nobody granted."""

    def identity_allowed(self, resource_id: str, namespace: str) -> bool:
        return any(allowed.allows(resource_id, namespace) for allowed in self.allowed_identities)

    def identity_for_client_id(self, client_id: str, namespace: str) -> str | None:
        """The resource id of the allowed identity with this client id, for this namespace (None: none is)."""
        for allowed in self.allowed_identities:
            same = bool(allowed.client_id) and allowed.client_id.lower() == client_id.lower()
            if same and allowed.allows(allowed.resource_id, namespace):
                return allowed.resource_id
        return None

    @property
    def is_vnet(self) -> bool:
        return self.subnet_id is not None

    @property
    def is_windows(self) -> bool:
        return self.os_type.lower() == "windows"
