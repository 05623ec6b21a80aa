"""Where the ACI client sends its calls: an ARM target (subscription, resource group, region), the cloud it
lives in, and which credential to use. Plain data, no SDK: the operator builds these from a VirtualNode's spec
and the operator's flags, and ``credentials``/``azure`` turn them into SDK objects.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from acinode import types


@dataclasses.dataclass(frozen=True)
class AzureCloud:
    """An Azure cloud: where ARM lives, where tokens come from, and which CA to trust for both."""

    name: str
    arm_endpoint: str
    """Base URL of Azure Resource Manager, e.g. ``https://management.azure.com``."""
    authority_host: str
    """Microsoft Entra ID authority host, e.g. ``login.microsoftonline.com`` (a URL is accepted too)."""
    credential_scope: str
    """OAuth scope of ARM tokens, e.g. ``https://management.azure.com/.default``."""
    ca_bundle_path: str | None = None
    """PEM file of the CAs to trust instead of the system store (private clouds, the emulator). Used for the
    ARM endpoint and the authority alike, so it must hold every CA either needs."""
    disable_instance_discovery: bool = False
    """Skip Entra ID instance discovery: needed for authorities Entra ID does not know (Azure Stack, ADFS)."""


PUBLIC: Final = AzureCloud(
    name="AzurePublicCloud",
    arm_endpoint="https://management.azure.com",
    authority_host="login.microsoftonline.com",
    credential_scope="https://management.azure.com/.default",
)
US_GOVERNMENT: Final = AzureCloud(
    name="AzureUSGovernment",
    arm_endpoint="https://management.usgovcloudapi.net",
    authority_host="login.microsoftonline.us",
    credential_scope="https://management.usgovcloudapi.net/.default",
)
CHINA: Final = AzureCloud(
    name="AzureChinaCloud",
    arm_endpoint="https://management.chinacloudapi.cn",
    authority_host="login.chinacloudapi.cn",
    credential_scope="https://management.chinacloudapi.cn/.default",
)
KNOWN_CLOUDS: Final = {cloud.name.lower(): cloud for cloud in (PUBLIC, US_GOVERNMENT, CHINA)}
# The short names `az cloud list` and Terraform use, too.
KNOWN_CLOUDS.update({"public": PUBLIC, "usgovernment": US_GOVERNMENT, "china": CHINA})


def cloud_named(name: str) -> AzureCloud:
    """One of the well-known clouds by name (``AzurePublicCloud``/``public``, ``AzureUSGovernment``/
    ``usgovernment``, ``AzureChinaCloud``/``china``, any case). Raises ``ValueError`` for anything else."""
    try:
        return KNOWN_CLOUDS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted({c.name for c in KNOWN_CLOUDS.values()}))
        raise ValueError(f"unknown Azure cloud {name!r}; known: {known}, or give a custom endpoint") from None


def custom_cloud(
    arm_endpoint: str,
    *,
    authority_host: str | None = None,
    credential_scope: str | None = None,
    ca_bundle_path: str | None = None,
    name: str = "Custom",
) -> AzureCloud:
    """A private or sovereign cloud, or the emulator. The scope defaults to ``<arm_endpoint>/.default``; an
    authority host other than a public one turns instance discovery off."""
    endpoint = arm_endpoint.rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise ValueError(f"ARM endpoint must be an http(s) URL, got {arm_endpoint!r}")
    authority = authority_host or PUBLIC.authority_host
    well_known = {c.authority_host for c in (PUBLIC, US_GOVERNMENT, CHINA)}
    return AzureCloud(
        name=name,
        arm_endpoint=endpoint,
        authority_host=authority,
        credential_scope=credential_scope or f"{endpoint}/.default",
        ca_bundle_path=ca_bundle_path,
        disable_instance_discovery=_host_of(authority) not in well_known,
    )


def _host_of(authority: str) -> str:
    return authority.split("://", 1)[-1].split("/", 1)[0]


# --- Credential choices -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DefaultCredential:
    """azure-identity's DefaultAzureCredential chain: environment, workload identity, managed identity, then
    developer tools. What a pod with workload identity or a VM with managed identity uses."""

    managed_identity_client_id: str | None = None
    """Which user-assigned managed identity (or workload identity) to use, when there are several."""


@dataclasses.dataclass(frozen=True)
class WorkloadIdentity:
    """Microsoft Entra workload identity: the federated service-account token the webhook projects
    (``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_TENANT_ID``), exchanged for that identity's token. Nothing else."""

    client_id: str | None = None
    """The identity's client id; None: ``AZURE_CLIENT_ID`` (set by the webhook from the service account)."""


@dataclasses.dataclass(frozen=True)
class ManagedIdentity:
    """An explicit managed identity: system-assigned if ``client_id`` is None, else that user-assigned one."""

    client_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ServicePrincipal:
    """A service principal and its client secret, as the caller read them (e.g. from a Kubernetes Secret)."""

    tenant_id: str
    client_id: str
    client_secret: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class StaticToken:
    """A fixed bearer token, sent as is and never refreshed: for the emulator and short-lived trials."""

    token: str = dataclasses.field(repr=False)


CredentialChoice = DefaultCredential | WorkloadIdentity | ManagedIdentity | ServicePrincipal | StaticToken


@dataclasses.dataclass(frozen=True)
class AciTarget:
    """One ARM target of the ACI client: the container groups of one resource group, in one region."""

    subscription_id: types.SubscriptionId
    resource_group: types.ResourceGroup
    region: str
    """ARM location name, e.g. ``westeurope``: where groups are created and whose usage is checked."""
    cloud: AzureCloud = PUBLIC
    credential: CredentialChoice = dataclasses.field(default_factory=DefaultCredential)

    def __post_init__(self) -> None:
        for field in ("subscription_id", "resource_group", "region"):
            if not getattr(self, field):
                raise ValueError(f"AciTarget.{field} must not be empty")
