"""The group's network: its IP and ports, DNS for ClusterFirst pods, the subnet and the kube-proxy extension.

In VNet mode a group gets a private IP from the VirtualNode's delegated subnet; ClusterFirst pods then resolve
through the cluster DNS with the search path and ``ndots:5`` a kubelet writes, and the ``kube-proxy`` extension
(as virtual-kubelet's provider adds it) lets them reach ClusterIP services. Without a subnet, a pod with ports
gets a public IP, as with virtual-kubelet's provider.
"""

from __future__ import annotations

import base64
from typing import Any, cast

from azure.mgmt.containerinstance import models

from acinode.mapping import objects, options, placement, problems

#: ACI's hard limit on ports per IP address.
MAX_PORTS_PER_IP = 5
#: The kubelet's limits (k8s.io/kubernetes pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPaths,
#: MaxDNSSearchListChars).
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
#: What a kubelet puts in a ClusterFirst pod's resolv.conf options.
CLUSTER_FIRST_OPTIONS = {"ndots": "5"}
KUBE_PROXY_EXTENSION = "kube-proxy"
KUBE_PROXY_VERSION = "1.0"


def group_ports(
    containers: list[objects.Container], ports: list[list[models.ContainerPort]], found: problems.Problems
) -> list[models.Port]:
    """The ports the group's IP exposes: every container port, each (port, protocol) once per group, since the
    containers share one network namespace."""
    seen: dict[tuple[int, str], str] = {}
    exposed: list[models.Port] = []
    for index, (container, container_ports) in enumerate(zip(containers, ports, strict=True)):
        for port_index, port in enumerate(container_ports):
            key = (port.port, port.protocol or "TCP")
            if key in seen and seen[key] != container.get("name"):
                found.add(
                    f"spec.containers[{index}].ports[{port_index}]",
                    f"{key[0]}/{key[1]} is already exposed by container {seen[key]!r}; the containers of a "
                    "group share one IP",
                )
                continue
            if key not in seen:
                seen[key] = container.get("name", "")
                exposed.append(models.Port(port=key[0], protocol=key[1]))
    return exposed


def aci_ip_address_from_pod(
    ports: list[models.Port],
    where: placement.GroupPlacement,
    chosen: options.GroupOptions,
    found: problems.Problems,
) -> models.IpAddress | None:
    kind = chosen.ip_address_type or ("Private" if where.is_vnet else "Public")
    type_path = problems.key_path("metadata.annotations", options.IP_ADDRESS_TYPE)
    if chosen.dns_name_label and kind != "Public":
        found.add(
            problems.key_path("metadata.annotations", options.DNS_NAME_LABEL),
            "a DNS name label needs a public IP",
        )
    if chosen.ip_address and kind != "Private":
        found.add(
            problems.key_path("metadata.annotations", options.IP_ADDRESS),
            "ACI chooses public IPs itself; a fixed IP needs a private IP in the subnet",
        )
    if len(ports) > MAX_PORTS_PER_IP:
        found.add(
            "spec.containers[*].ports",
            f"ACI exposes at most {MAX_PORTS_PER_IP} ports per IP, not {len(ports)}",
        )
    if kind == "None":
        return None
    if kind == "Public":
        if where.is_vnet:
            found.add(type_path, "ACI gives container groups in a virtual network private IPs only")
            return None
        if not ports:
            # Without a port ACI has nothing to expose; the pod simply gets no IP, as on virtual-kubelet.
            if chosen.dns_name_label:
                found.add(problems.key_path("metadata.annotations", options.DNS_NAME_LABEL), "needs a port")
            return None
        public = models.IpAddress(ports=ports, type="Public", dns_name_label=chosen.dns_name_label)
        # The SDK fills in the service's default scope; send it only when the pod chose one.
        _set_label_scope(public, chosen.dns_name_label_scope if chosen.dns_name_label else None)
        return public
    if not where.is_vnet:
        found.add(type_path, "a private IP needs the virtual node's subnet (VNet mode)")
        return None
    if not ports and not chosen.ip_address:
        return None  # ACI assigns a private IP from the subnet anyway
    private = models.IpAddress(ports=ports, type="Private", ip=chosen.ip_address)
    _set_label_scope(private, None)
    return private


def _set_label_scope(address: models.IpAddress, scope: str | None) -> None:
    # The SDK types the scope as never None, but None is how to leave it out of the request.
    cast(Any, address).auto_generated_domain_name_label_scope = scope


def _merge_unique(base: list[str], more: list[str]) -> list[str]:
    merged = list(base)
    for item in more:
        if item not in merged:
            merged.append(item)
    return merged


def aci_dns_config_from_pod(
    pod: objects.Pod, where: placement.GroupPlacement, found: problems.Problems, *, inject_dns: bool = True
) -> models.DnsConfiguration | None:
    """resolv.conf settings as a kubelet composes them for the pod's dnsPolicy and dnsConfig.

    ``inject_dns=False`` (VN2's ``injectdns: "false"``) leaves the cluster DNS out, so ClusterFirst resolves
    through ACI's own resolver, as policy Default does; the pod's own dnsConfig still applies."""
    spec = pod.get("spec", {})
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if not inject_dns and policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        policy = "Default"
    pod_dns = spec.get("dnsConfig", {})
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        # Without a cluster DNS the kubelet, too, falls back to the host's resolver (policy Default).
        if where.cluster_dns is not None and not where.is_windows:
            namespace = pod.get("metadata", {}).get("namespace", "default")
            domain = where.cluster_dns.domain
            nameservers = [where.cluster_dns.nameserver]
            searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
            options = dict(CLUSTER_FIRST_OPTIONS)
    elif policy not in ("Default", "None"):
        found.add("spec.dnsPolicy", f"unknown DNS policy {policy!r}")
        return None
    nameservers = _merge_unique(nameservers, pod_dns.get("nameservers", []))
    searches = _merge_unique(searches, pod_dns.get("searches", []))
    for option in pod_dns.get("options", []):
        options[option.get("name", "")] = option.get("value")
    if not nameservers:
        if pod_dns:
            found.add(
                "spec.dnsConfig",
                "ACI applies DNS settings only with a nameserver, and ACI's own resolver cannot be named; "
                "add nameservers (or use ClusterFirst on a virtual node with cluster DNS)",
            )
        return None
    if where.is_windows:
        found.add("spec.dnsConfig", "ACI applies DNS settings to Linux container groups only")
        return None
    if len(nameservers) > MAX_NAMESERVERS:
        found.add(
            "spec.dnsConfig.nameservers",
            f"a resolver takes {MAX_NAMESERVERS} nameservers, here {len(nameservers)}",
        )
    search_line = " ".join(searches)
    if len(searches) > MAX_SEARCH_PATHS or len(search_line) > MAX_SEARCH_CHARS:
        found.add(
            "spec.dnsConfig.searches",
            f"the search path may have {MAX_SEARCH_PATHS} domains and {MAX_SEARCH_CHARS} characters, "
            f"here {len(searches)} and {len(search_line)}",
        )
    option_line = " ".join(name if value is None else f"{name}:{value}" for name, value in options.items())
    return models.DnsConfiguration(
        name_servers=nameservers, search_domains=search_line or None, options=option_line or None
    )


def aci_subnet_ids_from_placement(
    where: placement.GroupPlacement,
) -> list[models.ContainerGroupSubnetId] | None:
    return [models.ContainerGroupSubnetId(id=where.subnet_id)] if where.subnet_id else None


def aci_subnet_ids_from_pod(
    where: placement.GroupPlacement, chosen: options.GroupOptions, found: problems.Problems
) -> list[models.ContainerGroupSubnetId] | None:
    """The node's subnet. VN2's per-pod ``subnets.primary`` is honoured when it names that subnet; any other
    subnet is refused: which subnets a pod may join is the VirtualNode's decision (deny by default, as for
    identities), and a VirtualNode names one subnet."""
    if chosen.subnet_id is not None:
        path = problems.key_path("metadata.annotations", options.VN2_SUBNET)
        if where.subnet_id is None:
            found.add(
                path, f"node {where.node_name} is not in a virtual network (its VirtualNode names no subnet)"
            )
        elif chosen.subnet_id.lower() != where.subnet_id.lower():
            found.add(
                path,
                f"node {where.node_name} places groups only in its VirtualNode's subnet {where.subnet_id}; "
                "another subnet needs a VirtualNode of its own",
            )
    return aci_subnet_ids_from_placement(where)


def aci_extensions_from_pod(
    where: placement.GroupPlacement, chosen: options.GroupOptions, found: problems.Problems
) -> list[models.DeploymentExtensionSpec] | None:
    """The kube-proxy extension of the node, unless the pod opts out (VN2 ``injectkubeproxy: "false"``) or the
    group is confidential: a confidential group never gets it (VN2: it breaks the confidential guarantees), and
    a pod that explicitly asks for it there is refused rather than silently run without it."""
    confidential = chosen.sku == "Confidential"
    path = problems.key_path("metadata.annotations", options.VN2_INJECT_KUBE_PROXY)
    available = aci_extensions_from_placement(where)
    if chosen.inject_kube_proxy:
        if confidential:
            found.add(path, "a confidential container group never gets the kube-proxy extension")
        elif available is None:
            found.add(
                path,
                f"node {where.node_name} has no kube-proxy extension to inject (it needs a subnet, Linux and the "
                "operator's kube-proxy settings)",
            )
    if confidential or chosen.inject_kube_proxy is False:
        return None
    return available


def aci_extensions_from_placement(
    where: placement.GroupPlacement,
) -> list[models.DeploymentExtensionSpec] | None:
    proxy = where.kube_proxy
    if proxy is None or not where.is_vnet or where.is_windows:
        return None
    return [
        models.DeploymentExtensionSpec(
            name=KUBE_PROXY_EXTENSION,
            extension_type=KUBE_PROXY_EXTENSION,
            version=KUBE_PROXY_VERSION,
            settings={"clusterCidr": proxy.cluster_cidr, "kubeVersion": proxy.kube_version},
            protected_settings={"kubeConfig": base64.b64encode(proxy.kubeconfig.encode()).decode()},
        )
    ]
