"""Pods bound to one node, and what acinode does to them: status patches, force deletion, TokenRequests, and the
Secrets and ConfigMaps their specs refer to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from acinode import errors
from acinode.kube import client, names

JsonObject = client.JsonObject
PODS = names.core_path("pods")
"""Pods in every namespace (listed and watched with a ``spec.nodeName`` field selector)."""


def pod_path(namespace: str, name: str) -> str:
    return names.namespaced_core_path(namespace, "pods", name)


def node_selector(node_name: str) -> dict[str, str]:
    """Server-side filter: only pods bound to this node ever reach the operator."""
    names.segment(node_name, what="node name")  # a selector value with ',' or '=' would widen the selection
    return {"fieldSelector": f"spec.nodeName={node_name}"}


async def list_pods_on_node(
    kube: client.KubeClient, node_name: str, limit: int = 500
) -> tuple[list[JsonObject], str]:
    """Every pod bound to ``node_name`` (paged), and the list's resourceVersion to watch from."""
    items: list[JsonObject] = []
    params = {**node_selector(node_name), "limit": str(limit)}
    while True:
        page = await kube.get(PODS, params)
        items.extend(page.get("items", []))
        continue_token = page.get("metadata", {}).get("continue")
        if not continue_token:
            return items, str(page.get("metadata", {}).get("resourceVersion", ""))
        params = {**params, "continue": continue_token}


def watch_pods_on_node(
    kube: client.KubeClient, node_name: str, resource_version: str, timeout_seconds: int = 300
) -> AsyncIterator[JsonObject]:
    params = {**node_selector(node_name), "resourceVersion": resource_version}
    return kube.watch(PODS, params, timeout_seconds=timeout_seconds)


async def patch_status(
    kube: client.KubeClient, namespace: str, name: str, uid: str, status: Any
) -> JsonObject:
    """Replace the pod's status fields we own (merge patch on pods/status), for this pod uid only."""
    body = {"metadata": {"uid": uid}, "status": status}
    path = names.namespaced_core_path(namespace, "pods", name, subresource="status")
    return await kube.patch(path, body, "merge")


async def force_delete(kube: client.KubeClient, namespace: str, name: str, uid: str) -> bool:
    """Delete the pod object now (grace 0), only if it is still the pod with ``uid``. True if it was deleted."""
    body = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": uid},
    }
    try:
        await kube.delete(pod_path(namespace, name), body)
    except (errors.NotFoundError, errors.ConflictError):
        return False  # gone already, or a new pod with the same name: not ours to delete
    return True


async def _get_named(
    kube: client.KubeClient, namespace: str, resource: str, kind: str, name: str
) -> JsonObject | None:
    """One object by namespace and name (validated, one path segment each), checked to be the one asked for."""
    try:
        answer = await kube.get(names.namespaced_core_path(namespace, resource, name))
    except errors.NotFoundError:
        return None
    names.check_identity(answer, kind=kind, namespace=namespace, name=name)
    return answer


async def get_secret(kube: client.KubeClient, namespace: str, name: str) -> JsonObject | None:
    return await _get_named(kube, namespace, "secrets", "Secret", name)


async def get_config_map(kube: client.KubeClient, namespace: str, name: str) -> JsonObject | None:
    return await _get_named(kube, namespace, "configmaps", "ConfigMap", name)


async def get_secret_provider_class(kube: client.KubeClient, namespace: str, name: str) -> JsonObject | None:
    """A Secrets Store CSI driver SecretProviderClass of the pod's namespace (None: absent, or no such CRD)."""
    path = names.group_path(
        "secrets-store.csi.x-k8s.io/v1", "secretproviderclasses", name, namespace=namespace
    )
    try:
        answer = await kube.get(path)
    except errors.NotFoundError:
        return None
    names.check_identity(answer, kind="SecretProviderClass", namespace=namespace, name=name)
    return answer


async def get_persistent_volume_claim(
    kube: client.KubeClient, namespace: str, name: str
) -> JsonObject | None:
    return await _get_named(kube, namespace, "persistentvolumeclaims", "PersistentVolumeClaim", name)


async def get_persistent_volume(kube: client.KubeClient, name: str) -> JsonObject | None:
    """A PersistentVolume (cluster-scoped) by validated name, checked to be the one asked for."""
    try:
        answer = await kube.get(names.core_path("persistentvolumes", name))
    except errors.NotFoundError:
        return None
    names.check_identity(answer, kind="PersistentVolume", namespace=None, name=name)
    return answer


async def list_services(kube: client.KubeClient, namespace: str) -> list[JsonObject]:
    answer = await kube.get(names.namespaced_core_path(namespace, "services"))
    return [
        item for item in answer.get("items", []) if item.get("metadata", {}).get("namespace") == namespace
    ]


async def get_service(kube: client.KubeClient, namespace: str, name: str) -> JsonObject | None:
    return await _get_named(kube, namespace, "services", "Service", name)


async def request_token(
    kube: client.KubeClient,
    namespace: str,
    service_account: str,
    *,
    audience: str,
    expiration_seconds: int,
    pod_name: str,
    pod_uid: str,
) -> str:
    """A service-account token bound to the pod (TokenRequest API), as a kubelet would mount it."""
    body: JsonObject = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": expiration_seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
        },
    }
    if audience:
        body["spec"]["audiences"] = [audience]
    path = names.namespaced_core_path(namespace, "serviceaccounts", service_account, subresource="token")
    answer = await kube.create(path, body)
    return str(answer["status"]["token"])


async def post_event(kube: client.KubeClient, namespace: str, event: JsonObject) -> None:
    """Create an Event; if one of that name exists (the same ACI event seen again), update its count."""
    try:
        await kube.create(names.namespaced_core_path(namespace, "events"), event)
    except errors.ConflictError:
        name = event["metadata"]["name"]
        await kube.patch(
            names.namespaced_core_path(namespace, "events", name),
            {"count": event.get("count", 1), "lastTimestamp": event.get("lastTimestamp")},
            "merge",
        )
