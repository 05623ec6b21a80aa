"""Resolve, then map: fetch every Secret, ConfigMap, PersistentVolumeClaim and service-account token a pod refers
to, before mapping.

Every name the pod gives is checked first (``kube.names``, as the API server checks object names): one invalid
name and the pod is refused with the field that holds it, before anything is read. References resolve in the
pod's own namespace only; the one exception is the storage account Secret of an Azure Files PersistentVolume,
read where the volume's driver reads it, and only for a volume bound both ways to a claim of the pod's own
namespace (``persistent_volumes``). A reference that does not exist is simply absent from the result: the mapping reports it
(with the field path) unless the pod marked it optional. Tokens are minted last, and only for a pod the mapping
accepts (``mint_tokens``), with the audiences and expiry its projected volumes ask for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from acinode import errors
from acinode.kube import client, names
from acinode.kube import pods as kube_pods
from acinode.mapping import azurefiles, objects, references

logger = logging.getLogger(__name__)

#: Stands in for a token while the mapping decides whether it accepts the pod (nothing is minted before).
PLACEHOLDER_TOKEN = "token-not-yet-requested"


def reference_problems(needed: references.NeededReferences) -> list[errors.FieldProblem]:
    """A problem for every referenced name that is not a valid object name (and so never a path segment)."""
    found: list[errors.FieldProblem] = []
    for ref in needed.named:
        problem = names.name_problem(ref.name)
        if problem is not None:
            found.append(errors.FieldProblem(ref.path, f"not a valid {ref.kind} name: {problem}"))
    return found


async def resolve_references(kube: client.KubeClient, pod: objects.Pod) -> references.ResolvedReferences:
    """The Secrets, ConfigMaps and Services the pod needs, from its own namespace; tokens are placeholders (see
    ``mint_tokens``). Raises UnsupportedPodSpecError, having read nothing, if any referenced name is invalid."""
    metadata = pod.get("metadata", {})
    namespace = metadata.get("namespace", "default")
    needed = references.needed_references_from_pod(pod)
    problems = reference_problems(needed)
    if problems:
        raise errors.UnsupportedPodSpecError(problems)
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
    # Service environment variables, as a kubelet sets them: the `kubernetes` service always, and the
    # namespace's services with enableServiceLinks.
    claims, volumes, volume_secrets = await persistent_volumes(kube, namespace, sorted(needed.claim_names))
    class_names = sorted(needed.provider_class_names)
    classes = await asyncio.gather(
        *(kube_pods.get_secret_provider_class(kube, namespace, n) for n in class_names)
    )
    services = await kube_pods.list_services(kube, namespace) if needed.lists_services else []
    if namespace != "default" or not needed.lists_services:
        api_service = await kube_pods.get_service(kube, "default", "kubernetes")
        if api_service is not None:
            services.append(api_service)
    return references.ResolvedReferences(
        services=tuple(services),  # type: ignore[arg-type]
        secrets=secrets,  # type: ignore[arg-type]
        config_maps=config_maps,  # type: ignore[arg-type]
        service_account_tokens={r.audience: PLACEHOLDER_TOKEN for r in needed.token_requests},
        claims=claims,  # type: ignore[arg-type]
        persistent_volumes=volumes,  # type: ignore[arg-type]
        volume_secrets=volume_secrets,  # type: ignore[arg-type]
        secret_provider_classes={n: c for n, c in zip(class_names, classes, strict=True) if c is not None},
    )


def _bound_volume_name(claim: client.JsonObject) -> str | None:
    volume_name = claim.get("spec", {}).get("volumeName")
    if claim.get("status", {}).get("phase") != "Bound" or not volume_name:
        return None
    return str(volume_name)


def _bound_to(volume: client.JsonObject, claim: client.JsonObject, namespace: str) -> bool:
    """The PV's claimRef names this very claim (by namespace, name and, when both have one, uid)."""
    ref = volume.get("spec", {}).get("claimRef") or {}
    uid = claim.get("metadata", {}).get("uid")
    return (
        ref.get("namespace") == namespace
        and ref.get("name") == claim.get("metadata", {}).get("name")
        and not (ref.get("uid") and uid and ref.get("uid") != uid)
    )


async def persistent_volumes(
    kube: client.KubeClient, namespace: str, claim_names: list[str]
) -> tuple[
    dict[str, client.JsonObject], dict[str, client.JsonObject], dict[tuple[str, str], client.JsonObject]
]:
    """The claims (pod's namespace), the PVs bound both ways to them, and the Secrets those PVs name. A PV not
    bound back to its claim is not read further: a pod never reaches a volume (or its Secret) through a claim
    the volume does not belong to. Names from the claim or PV are validated like any other name: an invalid one
    refuses the pod (UnsupportedPodSpecError) and is never read."""
    fetched = await asyncio.gather(
        *(kube_pods.get_persistent_volume_claim(kube, namespace, n) for n in claim_names)
    )
    claims = {n: c for n, c in zip(claim_names, fetched, strict=True) if c is not None}
    volumes: dict[str, client.JsonObject] = {}
    bad: list[errors.FieldProblem] = []
    for name, claim in claims.items():
        volume_name = _bound_volume_name(claim)
        if volume_name is None:
            continue
        if (problem := names.name_problem(volume_name)) is not None:
            bad.append(
                errors.FieldProblem("spec.volumes", f"claim {name!r} names an invalid volume: {problem}")
            )
            continue
        volume = await kube_pods.get_persistent_volume(kube, volume_name)
        if volume is not None and _bound_to(volume, claim, namespace):
            volumes[volume_name] = volume
        else:
            logger.info("claim %s/%s: volume %s is not bound back to it", namespace, name, volume_name)
    secrets: dict[tuple[str, str], client.JsonObject] = {}
    for volume in volumes.values():
        where = azurefiles.persistent_volume_secret(volume, namespace)  # type: ignore[arg-type]
        if where is None or where in secrets:
            continue
        secret_namespace, secret_name = where
        problem = names.name_problem(secret_namespace, "label") or names.name_problem(secret_name)
        if problem is not None:
            bad.append(
                errors.FieldProblem("spec.volumes", f"a PersistentVolume names an invalid Secret: {problem}")
            )
            continue
        secret = await kube_pods.get_secret(kube, secret_namespace, secret_name)
        if secret is not None:
            secrets[where] = secret
    if bad:
        raise errors.UnsupportedPodSpecError(bad)
    return claims, volumes, secrets


def needs_tokens(pod: objects.Pod) -> bool:
    return bool(references.needed_references_from_pod(pod).token_requests)


async def mint_tokens(
    kube: client.KubeClient, pod: objects.Pod, refs: references.ResolvedReferences
) -> references.ResolvedReferences:
    """``refs`` with real tokens: one TokenRequest per audience, bound to the pod, for the expiry the pod's
    projections ask for (the API server itself extends the 3607 s default token, as for a kubelet). A missing
    service account leaves the token out: the mapping names it, and the pod waits for it."""
    metadata = pod.get("metadata", {})
    needed = references.needed_references_from_pod(pod)
    tokens: dict[str, str] = {}
    for token_request in needed.token_requests:
        try:
            tokens[token_request.audience] = await kube_pods.request_token(
                kube,
                metadata.get("namespace", "default"),
                needed.service_account_name,
                audience=token_request.audience,
                expiration_seconds=token_request.expiration_seconds,
                pod_name=metadata.get("name", ""),
                pod_uid=metadata.get("uid", ""),
            )
        except errors.NotFoundError:
            continue
        except errors.PermissionDeniedError as err:
            # The chart's token guard (or RBAC) refuses this audience or expiry: a refusal, not a retry loop.
            audience = token_request.audience or "the API server's own audiences"
            raise errors.UnsupportedPodSpecError(
                [
                    errors.FieldProblem(
                        "spec.volumes",
                        f"the API server refused a service-account token for {audience} "
                        f"({token_request.expiration_seconds} s): {err}",
                    )
                ]
            ) from err
    return dataclasses.replace(refs, service_account_tokens=tokens)
