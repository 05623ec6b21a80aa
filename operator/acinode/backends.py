"""Connecting a VirtualNode to its ACI backend: its ARM target, cloud and credential, read from the spec and
the Secrets it references. The one place where Kubernetes configuration becomes an ACI client."""

from __future__ import annotations

import base64
import hashlib
import ssl
import tempfile
from pathlib import Path

from acinode import errors, settings
from acinode.aci import api, azure, ratelimit, target
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import virtualnode

#: Secrets a VirtualNode may never name: their values are credentials of the cluster, not of Azure.
REFUSED_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})


def check_trust(
    config: virtualnode.VirtualNodeConfig, operator_settings: settings.Settings, operator_namespace: str
) -> None:
    """Refuse, before anything is read or sent, a VirtualNode that reaches beyond what the operator allows:
    Secrets of other namespaces, or the operator's Azure credentials sent to an endpoint the VirtualNode chose."""
    problems = virtualnode.trust_problems(
        config,
        operator_namespace=operator_namespace,
        allow_custom_cloud_credentials=operator_settings.aci.allow_custom_cloud_credentials,
    )
    if problems:
        raise errors.ConfigurationError("; ".join(problems))


async def read_secret(kube: client.KubeClient, namespace: str, name: str) -> dict[str, str]:
    """The values of a Secret a VirtualNode names (in the operator's namespace: see ``check_trust``)."""
    try:
        secret = await kube_pods.get_secret(kube, namespace, name)
    except errors.InvalidRequestError as err:
        raise errors.ConfigurationError(f"Secret name {name!r}: {err}") from err
    if secret is None:
        raise errors.ConfigurationError(f"Secret {namespace}/{name} not found")
    if secret.get("type") in REFUSED_SECRET_TYPES:
        raise errors.ConfigurationError(
            f"Secret {namespace}/{name} is of type {secret['type']}: a VirtualNode may not use cluster credentials"
        )
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def _secret_key(data: dict[str, str], key: str, where: str) -> str:
    if not data.get(key):
        raise errors.ConfigurationError(f"Secret {where} has no key {key!r}")
    return data[key]


def _ca_bundle_file(pem: str) -> str:
    """Write an inline CA bundle to a file (the SDK and azure-identity take a path); one file per content.
    Raises ConfigurationError when it holds no usable certificate, so the VirtualNode says why."""
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as err:
        raise errors.ConfigurationError(f"cloud.caBundle holds no usable PEM certificate: {err}") from err
    folder = Path(tempfile.gettempdir()) / "acinode-ca"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def cloud_for(config: virtualnode.CloudConfig) -> target.AzureCloud:
    ca_path = _ca_bundle_file(config.ca_bundle) if config.ca_bundle else None
    if config.name == "Custom":
        if not config.resource_manager_endpoint:
            raise errors.ConfigurationError("cloud Custom needs resourceManagerEndpoint")
        return target.custom_cloud(
            config.resource_manager_endpoint,
            authority_host=config.authority_host,
            credential_scope=config.credential_scope,
            ca_bundle_path=ca_path,
        )
    cloud = target.cloud_named(config.name)
    if ca_path:
        return target.AzureCloud(**{**cloud.__dict__, "ca_bundle_path": ca_path})
    return cloud


async def credential_for(
    kube: client.KubeClient, config: virtualnode.CredentialsConfig, operator_namespace: str
) -> target.CredentialChoice:
    """Exactly the credential the type names: WorkloadIdentity is the federated token and nothing else (never an
    environment service principal or the host's managed identity picked up by a chain)."""
    if config.type == "Default":
        return target.DefaultCredential(managed_identity_client_id=config.client_id)
    if config.type == "WorkloadIdentity":
        return target.WorkloadIdentity(client_id=config.client_id)
    if config.type == "ManagedIdentity":
        return target.ManagedIdentity(client_id=config.client_id)
    if config.secret_ref is None:
        raise errors.ConfigurationError(f"credentials of type {config.type} need secretRef")
    namespace = config.secret_ref.namespace or operator_namespace
    where = f"{namespace}/{config.secret_ref.name}"
    data = await read_secret(kube, namespace, config.secret_ref.name)
    if config.type == "StaticToken":
        return target.StaticToken(token=_secret_key(data, "token", where))
    return target.ServicePrincipal(
        tenant_id=_secret_key(data, "tenantId", where),
        client_id=_secret_key(data, "clientId", where),
        client_secret=_secret_key(data, "clientSecret", where),
    )


async def open_backend(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    operator_settings: settings.Settings,
    operator_namespace: str,
    limiter: ratelimit.ArmRateLimiter | None = None,
) -> api.AciApi:
    """An ACI client for the VirtualNode's resource group. Raises ConfigurationError for unusable settings.

    ``limiter``: the budget of the node's subscription, shared by every client of that subscription (ARM's
    limits are per subscription)."""
    check_trust(config, operator_settings, operator_namespace)
    azure_config = config.azure
    try:
        aci_target = target.AciTarget(
            subscription_id=azure_config.subscription_id,
            resource_group=azure_config.resource_group,
            region=azure_config.region,
            cloud=cloud_for(azure_config.cloud),
            credential=await credential_for(kube, azure_config.credentials, operator_namespace),
        )
    except ValueError as err:
        raise errors.ConfigurationError(str(err)) from err
    return azure.AzureAciApi(aci_target, settings=operator_settings.aci, limiter=limiter)


async def placement_secrets(
    kube: client.KubeClient,
    config: virtualnode.VirtualNodeConfig,
    operator_settings: settings.Settings,
    operator_namespace: str,
) -> virtualnode.PlacementSecrets:
    """The secret values the node's placement needs: the Log Analytics key and the kube-proxy kubeconfig.
    Raises ConfigurationError when a referenced Secret or key is missing, or may not be read."""
    check_trust(config, operator_settings, operator_namespace)
    workspace_key = kubeconfig = ""
    if config.log_analytics is not None:
        ref = config.log_analytics.workspace_key_secret
        namespace = ref.namespace or operator_namespace
        data = await read_secret(kube, namespace, ref.name)
        workspace_key = _secret_key(data, "workspaceKey", f"{namespace}/{ref.name}")
    if config.kube_proxy is not None:
        ref = config.kube_proxy.kubeconfig_secret
        namespace = ref.namespace or operator_namespace
        data = await read_secret(kube, namespace, ref.name)
        kubeconfig = _secret_key(data, "kubeconfig", f"{namespace}/{ref.name}")
    return virtualnode.PlacementSecrets(workspace_key=workspace_key, kube_proxy_kubeconfig=kubeconfig)
