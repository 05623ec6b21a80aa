"""The service environment variables a kubelet injects: ``KUBERNETES_SERVICE_HOST`` for every pod (in-cluster
clients need it) and, with ``enableServiceLinks``, Docker-link style variables for each service of the pod's
namespace. Rules as in the kubelet's ``getServiceEnvVarMap`` and ``envvars.FromServices``.
"""

from __future__ import annotations

from collections.abc import Iterable

from acinode.mapping import objects

MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


def _variable_name(service_name: str) -> str:
    return service_name.replace("-", "_").upper()


def _has_cluster_ip(service: objects.Service) -> bool:
    return service.get("spec", {}).get("clusterIP", "") not in ("", "None")


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _service_variables(service: objects.Service) -> dict[str, str]:
    spec = service.get("spec", {})
    ports = spec.get("ports", [])
    if not ports:
        return {}
    prefix = _variable_name(service.get("metadata", {}).get("name", ""))
    ip = spec.get("clusterIP", "")
    variables = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0].get("port", 0))}
    for port in ports:
        if port.get("name"):
            variables[f"{prefix}_SERVICE_PORT_{_variable_name(port['name'])}"] = str(port.get("port", 0))
    for index, port in enumerate(ports):
        number = port.get("port", 0)
        protocol = port.get("protocol") or "TCP"
        url = f"{protocol.lower()}://{_host_port(ip, number)}"
        if index == 0:
            variables[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{number}_{protocol.upper()}"
        variables[port_prefix] = url
        variables[f"{port_prefix}_PROTO"] = protocol.lower()
        variables[f"{port_prefix}_PORT"] = str(number)
        variables[f"{port_prefix}_ADDR"] = ip
    return variables


def service_environment(
    services: Iterable[objects.Service], namespace: str, enable_service_links: bool
) -> dict[str, str]:
    """Variables for the pod's namespace; ``services`` may hold any namespaces (others are ignored)."""
    chosen: dict[str, objects.Service] = {}
    for service in services:
        metadata = service.get("metadata", {})
        name, service_namespace = metadata.get("name", ""), metadata.get("namespace", "")
        if not _has_cluster_ip(service):
            continue
        if service_namespace == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            chosen[name] = service
    variables: dict[str, str] = {}
    for name in sorted(chosen):
        variables.update(_service_variables(chosen[name]))
    return variables
