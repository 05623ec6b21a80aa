"""``/runningpods/``: the pods whose containers run, in the kubelet's format.

A kubelet answers ``/pods`` from the pods it was given (the API server's view) and ``/runningpods/`` from what its
container runtime runs (``pkg/kubelet/server/server.go`` ``getRunningPods``, through ``kubecontainer.Pod.ToAPIPod``):
a ``PodList`` whose items carry only ``metadata.name``, ``namespace`` and ``uid``, and ``spec.containers`` with each
running container's ``name`` and ``image``, nothing else. Here the runtime is ACI, as last read by the status sync:
a container runs when its status says ``running``; a pod is listed when at least one of its containers runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from acinode.mapping import objects

JsonObject = dict[str, Any]


def running_pod(pod: objects.Pod) -> JsonObject | None:
    """The kubelet's ``ToAPIPod`` of ``pod``'s running containers, or None when none runs."""
    metadata = pod.get("metadata", {})
    status = pod.get("status", {})
    images = {
        str(c.get("name", "")): str(c.get("image", ""))
        for c in [*pod.get("spec", {}).get("initContainers", []), *pod.get("spec", {}).get("containers", [])]
    }
    containers: list[JsonObject] = []
    for entry in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        if "running" not in (entry.get("state") or {}):
            continue
        name = str(entry.get("name", ""))
        containers.append(
            {"name": name, "image": str(entry.get("image") or images.get(name, "")), "resources": {}}
        )
    if not containers:
        return None
    return {
        "metadata": {
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""),
            "uid": metadata.get("uid", ""),
            "creationTimestamp": None,
        },
        "spec": {"containers": containers},
        "status": {},
    }


def running_pod_list(pods: Iterable[objects.Pod]) -> JsonObject:
    """The ``PodList`` of ``/runningpods/`` (items sorted by namespace and name, for stable output)."""
    items: Sequence[JsonObject] = [p for p in (running_pod(pod) for pod in pods) if p is not None]
    ordered = sorted(items, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": ordered}
