"""Which virtual node, pod and container group a kubelet API request is about.

Every virtual node of the operator advertises the same IP and port, so the request alone does not name its node:
- container requests (``/containerLogs``, ``/exec``) name a pod, and the pod is bound to exactly one node;
- node-wide requests (``/stats/summary``, ``/metrics/resource``, ``/pods``) proxied by the API server carry the
  node in ``X-Forwarded-Uri`` (``/api/v1/nodes/<node>/proxy/stats/summary``); a direct scrape (metrics-server)
  does not, and is answered for every virtual node of the operator (see docs/kubelet-api.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence

from acinode import errors, types
from acinode.mapping import names, objects
from acinode.mapping import pods as pod_mapping
from acinode.pods import protocols

Directory = Callable[[], Iterable[protocols.ServedNode]]
"""The served virtual nodes, one per running pod controller (``Services.reconcilers.values()``)."""

_FORWARDED_NODE = re.compile(r"^/api/v1/nodes/([^/]+)/proxy(?:/|$)")


@dataclasses.dataclass(frozen=True)
class ContainerTarget:
    node_name: str
    pod: objects.Pod
    container: str
    """The Kubernetes container name."""
    aci: protocols.ContainerAccess
    group: types.ContainerGroupName
    aci_container: str

    @property
    def namespace(self) -> str:
        return str(self.pod.get("metadata", {}).get("namespace", ""))

    @property
    def pod_name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name", ""))

    def container_status(self) -> objects.ContainerStatus | None:
        status = self.pod.get("status", {})
        for entry in [*status.get("containerStatuses", []), *status.get("initContainerStatuses", [])]:
            if entry.get("name") == self.container:
                return entry
        return None


def node_from_forwarded_uri(forwarded_uri: str | None) -> str | None:
    """The node named by the API server's node proxy path, if the request came through it."""
    if not forwarded_uri:
        return None
    match = _FORWARDED_NODE.match(forwarded_uri)
    if match is None:
        return None
    return match.group(1).split(":", 1)[0] or None


def find_pod(directory: Directory, namespace: str, name: str) -> tuple[protocols.ServedNode, objects.Pod]:
    """The node and the pod named ``namespace/name`` on one of the virtual nodes. Raises NotFoundError."""
    for node in directory():
        pod = node.find_pod(namespace, name)
        if pod is not None:
            return node, pod
    raise errors.NotFoundError(f"pod {namespace}/{name} is not on a virtual node of this operator")


def container_target(directory: Directory, namespace: str, pod_name: str, container: str) -> ContainerTarget:
    """Resolve a container request. Raises NotFoundError for an unknown pod or container."""
    node, pod = find_pod(directory, namespace, pod_name)
    spec = pod.get("spec", {})
    known = [c.get("name") for c in [*spec.get("containers", []), *spec.get("initContainers", [])]]
    if not container:
        if len(spec.get("containers", [])) != 1:
            raise errors.InvalidRequestError(
                f"a container name must be specified for pod {pod_name}, choose one of: {known}",
                code="BadRequest",
            )
        container = str(spec["containers"][0].get("name", ""))
    if container not in known:
        raise errors.NotFoundError(f"container {container} is not valid for pod {pod_name}")
    return ContainerTarget(
        node_name=str(node.node_name),
        pod=pod,
        container=container,
        aci=node.containers,
        group=pod_mapping.container_group_name_from_pod(pod),
        aci_container=names.aci_container_name(container),
    )


def nodes_for(directory: Directory, node_hint: str | None) -> Sequence[protocols.ServedNode]:
    """The virtual nodes a node-wide request is about: the hinted one, else all. Raises NotFoundError."""
    nodes = list(directory())
    if node_hint is None:
        return nodes
    chosen = [n for n in nodes if n.node_name == node_hint]
    if not chosen:
        raise errors.NotFoundError(f"node {node_hint} is not served by this operator")
    return chosen
