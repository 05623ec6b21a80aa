"""Credential choices and clouds become the right azure-identity credential and ARM endpoint; no network."""

from __future__ import annotations

from typing import Any

import certifi
import pytest
from azure.identity import aio as identity

from acinode import errors, settings, types
from acinode.aci import azure, credentials, pipeline, target

SUBSCRIPTION = types.SubscriptionId("00000000-0000-0000-0000-000000000001")
RESOURCE_GROUP = types.ResourceGroup("rg-acinode")


class RecordingIdentity:
    """Stands in for ``azure.identity.aio``: records which credential was built, with which options."""

    def __init__(self) -> None:
        self.built: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def build(**kwargs: Any) -> tuple[str, dict[str, Any]]:
            self.built.append((name, kwargs))
            return name, kwargs

        return build


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> RecordingIdentity:
    fake = RecordingIdentity()
    monkeypatch.setattr(credentials, "identity", fake)
    return fake


@pytest.mark.parametrize(
    ("name", "cloud"),
    [
        ("AzurePublicCloud", target.PUBLIC),
        ("public", target.PUBLIC),
        ("AzureUSGovernment", target.US_GOVERNMENT),
        ("usgovernment", target.US_GOVERNMENT),
        ("azurechinacloud", target.CHINA),
        (" China ", target.CHINA),
    ],
)
def test_well_known_clouds_by_name(name: str, cloud: target.AzureCloud) -> None:
    assert target.cloud_named(name) is cloud


def test_sovereign_clouds_have_their_own_endpoints_authorities_and_scopes() -> None:
    assert target.US_GOVERNMENT.arm_endpoint == "https://management.usgovcloudapi.net"
    assert target.US_GOVERNMENT.authority_host == "login.microsoftonline.us"
    assert target.US_GOVERNMENT.credential_scope == "https://management.usgovcloudapi.net/.default"
    assert target.CHINA.arm_endpoint == "https://management.chinacloudapi.cn"
    assert target.CHINA.authority_host == "login.chinacloudapi.cn"
    assert target.CHINA.credential_scope == "https://management.chinacloudapi.cn/.default"


def test_an_unknown_cloud_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Azure cloud"):
        target.cloud_named("AzureGermanCloud")


def test_a_custom_cloud_derives_its_scope_and_turns_discovery_off_for_private_authorities() -> None:
    cloud = target.custom_cloud(
        "https://management.local.azurestack.external/",
        authority_host="https://adfs.local.azurestack.external/adfs",
        ca_bundle_path="/etc/ssl/stack-ca.pem",
    )
    assert cloud.arm_endpoint == "https://management.local.azurestack.external"
    assert cloud.credential_scope == "https://management.local.azurestack.external/.default"
    assert cloud.disable_instance_discovery
    assert cloud.ca_bundle_path == "/etc/ssl/stack-ca.pem"


def test_a_custom_endpoint_with_a_public_authority_keeps_discovery() -> None:
    cloud = target.custom_cloud(
        "https://127.0.0.1:8443", credential_scope="https://management.azure.com/.default"
    )
    assert not cloud.disable_instance_discovery
    assert cloud.credential_scope == "https://management.azure.com/.default"
    assert cloud.authority_host == target.PUBLIC.authority_host


def test_a_custom_endpoint_must_be_a_url() -> None:
    with pytest.raises(ValueError):
        target.custom_cloud("management.example")


def test_a_target_needs_subscription_resource_group_and_region() -> None:
    with pytest.raises(ValueError, match="region"):
        target.AciTarget(SUBSCRIPTION, RESOURCE_GROUP, "")


def test_secrets_never_show_in_reprs() -> None:
    principal = target.ServicePrincipal("tenant", "client", "s3cret-value")
    token = target.StaticToken("bearer-value")
    assert "s3cret-value" not in repr(principal)
    assert "bearer-value" not in repr(token)
    assert "bearer-value" not in repr(credentials.StaticTokenCredential("bearer-value"))
    aci_target = target.AciTarget(SUBSCRIPTION, RESOURCE_GROUP, "westeurope", credential=principal)
    assert "s3cret-value" not in repr(aci_target)


def test_the_default_chain_asks_the_clouds_authority(recorded: RecordingIdentity) -> None:
    credentials.credential_for(
        target.DefaultCredential(managed_identity_client_id="mi-1"), target.US_GOVERNMENT
    )
    [(kind, options)] = recorded.built
    assert kind == "DefaultAzureCredential"
    assert options["authority"] == "login.microsoftonline.us"
    assert options["managed_identity_client_id"] == "mi-1"
    assert "connection_verify" not in options


def test_a_service_principal_uses_the_values_it_was_given(recorded: RecordingIdentity) -> None:
    cloud = target.custom_cloud(
        "https://arm.private.example", authority_host="login.private.example", ca_bundle_path="/ca.pem"
    )
    credentials.credential_for(target.ServicePrincipal("tenant-1", "client-1", "secret-1"), cloud)
    [(kind, options)] = recorded.built
    assert kind == "ClientSecretCredential"
    assert (options["tenant_id"], options["client_id"], options["client_secret"]) == (
        "tenant-1",
        "client-1",
        "secret-1",
    )
    assert options["authority"] == "login.private.example"
    assert options["disable_instance_discovery"] is True
    assert options["connection_verify"] == "/ca.pem"


def test_workload_identity_uses_only_the_federated_credential(recorded: RecordingIdentity) -> None:
    credentials.credential_for(target.WorkloadIdentity(client_id="wi-1"), target.PUBLIC)
    [(kind, options)] = recorded.built
    assert kind == "WorkloadIdentityCredential"
    assert options["client_id"] == "wi-1"


def test_an_explicit_managed_identity_names_its_client_id(recorded: RecordingIdentity) -> None:
    credentials.credential_for(target.ManagedIdentity(client_id="mi-2"), target.CHINA)
    [(kind, options)] = recorded.built
    assert kind == "ManagedIdentityCredential"
    assert options["client_id"] == "mi-2"
    assert "authority" not in options  # IMDS, not the authority, hands out managed identity tokens


async def test_a_static_token_is_handed_out_as_is(recorded: RecordingIdentity) -> None:
    credential = credentials.credential_for(target.StaticToken("emulator-token"), target.PUBLIC)
    token = await credential.get_token("https://management.azure.com/.default")
    assert token.token == "emulator-token"
    assert recorded.built == []
    await credential.close()


@pytest.mark.parametrize(
    ("choice", "expected_type"),
    [
        (target.DefaultCredential(), identity.DefaultAzureCredential),
        (target.ManagedIdentity("mi-3"), identity.ManagedIdentityCredential),
        (target.ServicePrincipal("tenant", "client", "secret"), identity.ClientSecretCredential),
    ],
)
async def test_real_credentials_accept_the_options_for_every_cloud(choice: Any, expected_type: type) -> None:
    private = target.custom_cloud(
        "https://arm.private.example", authority_host="login.private.example", ca_bundle_path="/ca.pem"
    )
    for cloud in (target.PUBLIC, target.US_GOVERNMENT, target.CHINA, private):
        credential = credentials.credential_for(choice, cloud)
        assert isinstance(credential, expected_type)
        await credential.close()


def emulator_target(endpoint: str) -> target.AciTarget:
    return target.AciTarget(
        SUBSCRIPTION,
        RESOURCE_GROUP,
        "westeurope",
        cloud=target.custom_cloud(endpoint, ca_bundle_path=certifi.where()),
        credential=target.StaticToken("t"),
    )


def policy_names(api: azure.AzureAciApi) -> list[str]:
    """The SDK pipeline's policies in order (SansIO ones are wrapped in a runner)."""
    impl = api._client._client._pipeline._impl_policies
    return [type(getattr(policy, "_policy", policy)).__name__ for policy in impl]


async def test_the_client_is_built_for_the_targets_endpoint_with_our_policies() -> None:
    api = azure.AzureAciApi(emulator_target("https://127.0.0.1:9443"), settings=settings.AciSettings())
    try:
        policies = policy_names(api)
        assert "ThrottlingPolicy" in policies
        assert "TransientRetryPolicy" in policies
        assert policies.index("TransientRetryPolicy") < policies.index("ThrottlingPolicy")
        assert "AllowLoopbackHttpPolicy" not in policies
        assert api._client._client._base_url == "https://127.0.0.1:9443"
    finally:
        await api.close()


async def test_plain_http_is_allowed_only_on_loopback() -> None:
    api = azure.AzureAciApi(emulator_target("http://127.0.0.1:9080"), settings=settings.AciSettings())
    policies = policy_names(api)
    assert "AllowLoopbackHttpPolicy" in policies
    await api.close()
    with pytest.raises(errors.ConfigurationError, match="HTTPS"):
        azure.AzureAciApi(emulator_target("http://arm.example"), settings=settings.AciSettings())
    assert pipeline.is_loopback_http("http://127.0.0.1:9080")
