"""Turn a credential choice and a cloud into an async azure-identity credential.

One of the few modules that import ``azure.*`` (with ``azure``, ``pipeline`` and ``translate``). Building a
credential does no I/O: tokens are fetched on the first ARM call. Secrets arrive as values (the caller read
them) and are never logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity import aio as identity

from acinode.aci import target

logger = logging.getLogger(__name__)

# A static token never expires as far as the SDK is concerned: it must not try to refresh it.
_STATIC_TOKEN_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


class StaticTokenCredential:
    """Always hands out the same bearer token (the emulator checks a fixed token; it cannot be refreshed)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a static bearer token must not be empty")
        self._token = AccessToken(token, int(time.time()) + _STATIC_TOKEN_LIFETIME_SECONDS)

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._token

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=<redacted>)"


def credential_for(choice: target.CredentialChoice, cloud: target.AzureCloud) -> AsyncTokenCredential:
    """A credential for ``choice`` that asks ``cloud``'s authority for tokens. The caller closes it."""
    if isinstance(choice, target.StaticToken):
        logger.info("using a static bearer token", extra={"cloud": cloud.name})
        return StaticTokenCredential(choice.token)
    options = _identity_options(cloud)
    if isinstance(choice, target.ServicePrincipal):
        logger.info("using a service principal", extra={"cloud": cloud.name, "client_id": choice.client_id})
        return identity.ClientSecretCredential(
            tenant_id=choice.tenant_id,
            client_id=choice.client_id,
            client_secret=choice.client_secret,
            **options,
        )
    if isinstance(choice, target.ManagedIdentity):
        logger.info("using a managed identity", extra={"cloud": cloud.name, "client_id": choice.client_id})
        # Managed identity talks to the local IMDS endpoint, not to the authority.
        options.pop("authority")
        options.pop("disable_instance_discovery", None)
        return identity.ManagedIdentityCredential(client_id=choice.client_id, **options)
    if isinstance(choice, target.WorkloadIdentity):
        logger.info("using workload identity", extra={"cloud": cloud.name, "client_id": choice.client_id})
        if choice.client_id:
            options["client_id"] = choice.client_id
        # Reads AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE; fails clearly without them.
        return identity.WorkloadIdentityCredential(**options)
    logger.info(
        "using the default Azure credential chain",
        extra={"cloud": cloud.name, "client_id": choice.managed_identity_client_id},
    )
    if choice.managed_identity_client_id:
        # Only when set: an explicit None would hide AZURE_CLIENT_ID (set by the workload-identity webhook or
        # the chart) from the credential chain.
        options["managed_identity_client_id"] = choice.managed_identity_client_id
        options["workload_identity_client_id"] = choice.managed_identity_client_id
    return identity.DefaultAzureCredential(
        # Caches and IDE sign-ins make no sense for an operator and only slow the chain down.
        exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True,
        **options,
    )


def _identity_options(cloud: target.AzureCloud) -> dict[str, Any]:
    options: dict[str, Any] = {"authority": cloud.authority_host}
    if cloud.disable_instance_discovery:
        options["disable_instance_discovery"] = True
    if cloud.ca_bundle_path:
        options["connection_verify"] = cloud.ca_bundle_path
    return options
