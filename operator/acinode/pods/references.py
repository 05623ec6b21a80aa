"""Resolve, then map: fetch every Secret, ConfigMap and service-account token a pod refers to, before mapping.

A reference that does not exist is simply absent from the result: the mapping reports it (with the field path)
unless the pod marked it optional.
"""

from __future__ import annotations

import asyncio

from acinode import errors
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import objects, references

# ACI cannot refresh a token inside a running group: ask for the longest expiry the API server grants.
TOKEN_EXPIRATION_SECONDS = 48 * 3600


async def resolve_references(kube: client.KubeClient, pod: objects.Pod) -> references.ResolvedReferences:
    metadata = pod.get("metadata", {})
    namespace = metadata.get("namespace", "default")
    needed = references.needed_references_from_pod(pod)
    secret_names = sorted(needed.secret_names)
    config_map_names = sorted(needed.config_map_names)
    fetched = await asyncio.gather(
        *(kube_pods.get_secret(kube, namespace, name) for name in secret_names),
        *(kube_pods.get_config_map(kube, namespace, name) for name in config_map_names),
    )
    secrets = {n: s for n, s in zip(secret_names, fetched[: len(secret_names)], strict=True) if s is not None}
    config_maps = {
        n: c for n, c in zip(config_map_names, fetched[len(secret_names) :], strict=True) if c is not None
    }
    tokens: dict[str, str] = {}
    for token_request in needed.token_requests:
        try:
            tokens[token_request.audience] = await kube_pods.request_token(
                kube,
                namespace,
                needed.service_account_name,
                audience=token_request.audience,
                expiration_seconds=max(token_request.expiration_seconds, TOKEN_EXPIRATION_SECONDS),
                pod_name=metadata.get("name", ""),
                pod_uid=metadata.get("uid", ""),
            )
        except errors.NotFoundError:
            continue  # no such service account: the mapping names the missing token
    # Service environment variables, as a kubelet sets them: the `kubernetes` service always, and the
    # namespace's services with enableServiceLinks.
    services = await kube_pods.list_services(kube, namespace) if needed.lists_services else []
    if namespace != "default" or not needed.lists_services:
        api_service = await kube_pods.get_service(kube, "default", "kubernetes")
        if api_service is not None:
            services.append(api_service)
    return references.ResolvedReferences(
        services=tuple(services),  # type: ignore[arg-type]
        secrets=secrets,  # type: ignore[arg-type]
        config_maps=config_maps,  # type: ignore[arg-type]
        service_account_tokens=tokens,
    )
