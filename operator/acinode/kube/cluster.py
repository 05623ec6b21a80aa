"""Facts about the cluster itself: its identity (the ``kube-system`` namespace's uid, stable and unique per
cluster) and the client CA it publishes for extension API servers and kubelets."""

from __future__ import annotations

from acinode import types
from acinode.kube import client, names

KUBE_SYSTEM = names.core_path("namespaces", "kube-system")
CLIENT_CA_CONFIGMAP = names.namespaced_core_path(
    "kube-system", "configmaps", "extension-apiserver-authentication"
)
"""Published by the API server: ``client-ca-file`` holds the CAs whose client certificates it trusts."""


async def cluster_id(kube: client.KubeClient) -> types.ClusterId:
    """The cluster's id: the uid of the ``kube-system`` namespace."""
    namespace = await kube.get(KUBE_SYSTEM)
    return types.ClusterId(str(namespace["metadata"]["uid"]))


async def client_ca_bundle(kube: client.KubeClient) -> str | None:
    """The PEM bundle of ``client-ca-file`` in the cluster's published authentication configmap, or None when it
    has none. Errors of the API server (e.g. no permission to read it) propagate."""
    configmap = await kube.get(CLIENT_CA_CONFIGMAP)
    bundle = (configmap.get("data") or {}).get("client-ca-file")
    return str(bundle) if bundle else None
