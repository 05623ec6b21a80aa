"""The downward API: pod fields and container resources as env values and files, resolved at create time.

ACI cannot update a running group's environment or secret volumes, so every value is fixed when the group is
created: labels or annotations changed later are not reflected (a kubelet would update the files).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

from acinode.mapping import objects, placement, problems, quantities, resources

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def _ip_reason(field: str) -> str:
    return (
        f"ACI assigns the IP when the group starts and cannot pass {field} in; pin the IP with the "
        "aci.acinode.dev/ip-address annotation (VNet mode) or read it in the container (hostname -i)"
    )


def field_value(
    pod: objects.Pod,
    field_path: str,
    path: str,
    where: placement.GroupPlacement,
    *,
    pod_ip: str | None,
    found: problems.Problems,
    for_volume: bool = False,
) -> str | None:
    """The value of a ``fieldRef`` (for an env var, or a downwardAPI file when ``for_volume``)."""
    metadata = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", "default"),
        "metadata.uid": metadata.get("uid", ""),
    }
    if field_path in simple:
        return simple[field_path]
    labels, annotations = metadata.get("labels", {}), metadata.get("annotations", {})
    if match := _SUBSCRIPT.match(field_path):
        return (labels if match[1] == "labels" else annotations).get(match[2], "")
    if for_volume:
        if field_path == "metadata.labels":
            return format_map_file(labels)
        if field_path == "metadata.annotations":
            return format_map_file(annotations)
    else:
        if field_path == "spec.nodeName":
            return spec.get("nodeName") or where.node_name
        if field_path == "spec.serviceAccountName":
            return spec.get("serviceAccountName", "default")
        if field_path in ("status.podIP", "status.podIPs"):
            if pod_ip:
                return pod_ip
            found.add(path, _ip_reason(field_path))
            return None
        if field_path in ("status.hostIP", "status.hostIPs"):
            if where.host_ip:
                return where.host_ip
            found.add(path, "the virtual node has no host IP configured")
            return None
    found.add(path, f"field {field_path!r} is not available through the downward API here")
    return None


def format_map_file(values: dict[str, str]) -> str:
    """Labels or annotations as a kubelet writes them to a downwardAPI file: sorted ``key="value"`` lines."""
    return "\n".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in sorted(values.items())
    )


def resource_value(
    selector: objects.ResourceFieldSelector,
    path: str,
    container: resources.ContainerResources | None,
    found: problems.Problems,
) -> str | None:
    """The value of a ``resourceFieldRef``: what ACI actually gives the container, divided and rounded up."""
    resource = selector.get("resource", "")
    if container is None:
        found.add(f"{path}.containerName", "names no container of this pod")
        return None
    try:
        divisor = quantities.fraction_from_quantity(selector.get("divisor", "1"))
    except ValueError:
        found.add(f"{path}.divisor", "is not a Kubernetes quantity")
        return None
    if divisor <= 0:
        found.add(f"{path}.divisor", "must be positive")
        return None
    value: Fraction
    if resource == "requests.cpu":
        value = Fraction(resources.millicores_from_steps(container.request_cpu), 1000)
    elif resource == "limits.cpu":
        value = Fraction(resources.millicores_from_steps(container.effective_limit_cpu), 1000)
    elif resource == "requests.memory":
        value = Fraction(resources.bytes_from_memory_steps(container.request_memory))
    elif resource == "limits.memory":
        value = Fraction(resources.bytes_from_memory_steps(container.effective_limit_memory))
    else:
        found.add(f"{path}.resource", f"{resource!r}: ACI reports only requests/limits of cpu and memory")
        return None
    return str(math.ceil(value / divisor))
