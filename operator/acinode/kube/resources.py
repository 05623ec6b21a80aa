"""Paths and typed verbs for the objects acinode maintains: Nodes, Leases, VirtualNodes and Events."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from acinode import errors
from acinode.kube import client, names

JsonObject = client.JsonObject
VIRTUALNODES = "/apis/acinode.dev/v1alpha1/virtualnodes"


def node_path(name: str) -> str:
    return names.core_path("nodes", name)


def lease_path(namespace: str, name: str) -> str:
    return names.group_path("coordination.k8s.io/v1", "leases", name, namespace=namespace)


def virtual_node_path(name: str) -> str:
    return names.group_path("acinode.dev/v1alpha1", "virtualnodes", name)


async def list_virtual_nodes(kube: client.KubeClient) -> list[JsonObject]:
    """Every VirtualNode (cluster-scoped, few: one per virtual node), e.g. to see who claims a nodeName."""
    answer = await kube.get(VIRTUALNODES)
    return list(answer.get("items") or [])


def uid_precondition(uid: str) -> JsonObject:
    """DeleteOptions that delete the object only while it is the one with ``uid`` (409 otherwise)."""
    return {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}


async def get_or_none(kube: client.KubeClient, path: str) -> JsonObject | None:
    try:
        return await kube.get(path)
    except errors.NotFoundError:
        return None


async def delete_if_present(kube: client.KubeClient, path: str, body: JsonObject | None = None) -> bool:
    """Delete; True if it was there. NotFound counts as done (deletes may repeat)."""
    try:
        await kube.delete(path, body)
    except errors.NotFoundError:
        return False
    return True


async def post_event(
    kube: client.KubeClient,
    *,
    involved: JsonObject,
    reason: str,
    message: str,
    event_type: str = "Normal",
    namespace: str = "default",
    component: str = "acinode",
    host: str | None = None,
) -> None:
    """Post a core/v1 Event about ``involved`` (a minimal object reference)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = f"{involved.get('name', 'object')}.{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:1024],
        "type": event_type,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
    }
    await kube.create(names.namespaced_core_path(namespace, "events"), body)
