"""Paths and typed verbs for the objects acinode maintains: Nodes (and their status), Leases, VirtualNodes (and
their status) and Events. Callers outside ``kube/`` use these functions and never build a path themselves.

Preconditions stay with the caller's intent: a Node status patch carries the Node's uid (immutable, so the API
server refuses the patch for a Node replaced under the same name); deletes carry a uid precondition; a patch whose
body names a ``resourceVersion`` is refused (409) when the object changed since it was read.
"""

from __future__ import annotations

import uuid
from typing import Any

from acinode import clock, errors
from acinode.kube import client, names
from acinode.mapping import timestamps

JsonObject = client.JsonObject
NODES = names.core_path("nodes")
VIRTUALNODES = names.group_path("acinode.dev/v1alpha1", "virtualnodes")


def node_path(name: str) -> str:
    return names.core_path("nodes", name)


def leases_path(namespace: str) -> str:
    return names.group_path("coordination.k8s.io/v1", "leases", namespace=namespace)


def lease_path(namespace: str, name: str) -> str:
    return names.group_path("coordination.k8s.io/v1", "leases", name, namespace=namespace)


def virtual_node_path(name: str) -> str:
    return names.group_path("acinode.dev/v1alpha1", "virtualnodes", name)


# --- Nodes ------------------------------------------------------------------------------------------------------


async def get_node(kube: client.KubeClient, name: str) -> JsonObject | None:
    """The Node named ``name``, or None if there is none."""
    return await get_or_none(kube, node_path(name))


async def create_node(kube: client.KubeClient, node: JsonObject) -> JsonObject:
    """POST a Node (ConflictError if one of that name exists)."""
    return await kube.create(NODES, node)


async def patch_node(kube: client.KubeClient, name: str, patch: JsonObject) -> JsonObject:
    """Merge-patch the Node's metadata/spec. Put ``metadata.resourceVersion`` in ``patch`` to guard it (409)."""
    return await kube.patch(node_path(name), patch, "merge")


async def patch_node_status(kube: client.KubeClient, name: str, uid: str, status: JsonObject) -> JsonObject:
    """Strategic-merge-patch ``nodes/<name>/status`` (conditions merge by type), for the Node with ``uid`` only:
    the patch carries the uid, which is immutable, so the API server refuses it for a Node of another uid."""
    body = {"metadata": {"uid": uid}, "status": status}
    return await kube.patch(names.core_path("nodes", name, subresource="status"), body, "strategic")


async def delete_node(kube: client.KubeClient, name: str, uid: str) -> bool:
    """Delete the Node while it is the one with ``uid``: True if deleted, False if already gone; ConflictError if
    a Node of another uid has that name (not ours: left alone)."""
    return await delete_if_present(kube, node_path(name), uid_precondition(uid))


# --- Leases -----------------------------------------------------------------------------------------------------


async def get_lease(kube: client.KubeClient, namespace: str, name: str) -> JsonObject | None:
    return await get_or_none(kube, lease_path(namespace, name))


async def create_lease(kube: client.KubeClient, namespace: str, lease: JsonObject) -> JsonObject:
    """POST a Lease into ``namespace`` (ConflictError if one of that name exists)."""
    return await kube.create(leases_path(namespace), lease)


async def patch_lease(kube: client.KubeClient, namespace: str, name: str, patch: JsonObject) -> JsonObject:
    """Merge-patch a Lease. Put ``metadata.resourceVersion`` in ``patch`` to guard it (409 when it changed)."""
    return await kube.patch(lease_path(namespace, name), patch, "merge")


async def delete_lease(kube: client.KubeClient, namespace: str, name: str, uid: str) -> bool:
    """Delete the Lease while it is the one with ``uid``: True if deleted, False if gone; ConflictError if
    replaced."""
    return await delete_if_present(kube, lease_path(namespace, name), uid_precondition(uid))


async def list_leases(kube: client.KubeClient, namespace: str, label_selector: str) -> list[JsonObject]:
    """The Leases in ``namespace`` carrying ``label_selector`` (e.g. acinode's ownership Leases)."""
    answer = await kube.get(leases_path(namespace), params={"labelSelector": label_selector})
    return list(answer.get("items") or [])


# --- VirtualNodes -----------------------------------------------------------------------------------------------


async def list_virtual_nodes(kube: client.KubeClient) -> list[JsonObject]:
    """Every VirtualNode (cluster-scoped, few: one per virtual node), e.g. to see who claims a nodeName."""
    answer = await kube.get(VIRTUALNODES)
    return list(answer.get("items") or [])


async def get_virtual_node(kube: client.KubeClient, name: str) -> JsonObject | None:
    """The VirtualNode named ``name``, or None if there is none."""
    return await get_or_none(kube, virtual_node_path(name))


async def patch_virtual_node_status(kube: client.KubeClient, name: str, status: JsonObject) -> JsonObject:
    """Merge-patch ``virtualnodes/<name>/status`` with ``status`` (fields not named stay as they are)."""
    path = names.group_path("acinode.dev/v1alpha1", "virtualnodes", name, subresource="status")
    return await kube.patch(path, {"status": status}, "merge")


# --- generic verbs with built-in idempotence --------------------------------------------------------------------


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


# --- Events -----------------------------------------------------------------------------------------------------


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
    now = timestamps.rfc3339(clock.utc_now())
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
