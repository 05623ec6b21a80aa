"""VirtualNode Azure settings → ACI client settings: what is refused before any call is made."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import backends, errors, settings
from acinode.aci import target
from acinode.mapping import virtualnode
from fakes.fake_kube import FakeKube


def test_a_ca_bundle_without_a_certificate_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="caBundle"):
        backends.cloud_for(
            virtualnode.CloudConfig(
                name="Custom", resource_manager_endpoint="https://127.0.0.1:1", ca_bundle="x"
            )
        )


def test_a_custom_cloud_needs_an_endpoint() -> None:
    with pytest.raises(errors.ConfigurationError, match="resourceManagerEndpoint"):
        backends.cloud_for(virtualnode.CloudConfig(name="Custom"))


def test_a_sovereign_cloud_by_name() -> None:
    cloud = backends.cloud_for(virtualnode.CloudConfig(name="AzureUSGovernment"))
    assert cloud.arm_endpoint == "https://management.usgovcloudapi.net"


def _settings(allow: bool = False) -> settings.Settings:
    return settings.Settings(aci=settings.AciSettings(allow_custom_cloud_credentials=allow))


def _virtual_node(azure_extra: dict[str, Any]) -> virtualnode.VirtualNodeConfig:
    azure = {
        "subscriptionId": "00000000-0000-0000-0000-000000000001",
        "resourceGroup": "rg",
        "region": "westeurope",
    }
    return virtualnode.virtual_node_config_from_resource(
        {"metadata": {"name": "vn"}, "spec": {"azure": {**azure, **azure_extra}}}
    )


async def test_a_foreign_secret_ref_is_refused_before_it_is_read() -> None:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/kube-system/secrets", {"metadata": {"name": "t"}, "data": {"token": "eA=="}})
    config = _virtual_node(
        {
            "cloud": {"name": "Custom", "resourceManagerEndpoint": "https://127.0.0.1:1"},
            "credentials": {"type": "StaticToken", "secretRef": {"name": "t", "namespace": "kube-system"}},
        }
    )
    with pytest.raises(errors.ConfigurationError, match="operator's namespace"):
        await backends.open_backend(kube, config, _settings(), "acinode-system")
    with pytest.raises(errors.ConfigurationError, match="operator's namespace"):
        await backends.placement_secrets(kube, config, _settings(), "acinode-system")
    assert kube.calls == []


async def test_a_custom_endpoint_with_real_credentials_reads_nothing() -> None:
    kube = FakeKube()
    config = _virtual_node(
        {
            "cloud": {"name": "Custom", "resourceManagerEndpoint": "https://arm.attacker.example"},
            "credentials": {"type": "ServicePrincipal", "secretRef": {"name": "sp"}},
        }
    )
    with pytest.raises(errors.ConfigurationError, match="ALLOW_CUSTOM_CLOUD_CREDENTIALS"):
        await backends.open_backend(kube, config, _settings(), "acinode-system")
    assert kube.calls == []


async def test_service_account_token_secrets_are_never_credentials() -> None:
    kube = FakeKube()
    kube.put(
        "/api/v1/namespaces/acinode-system/secrets",
        {
            "metadata": {"name": "sa-token"},
            "type": "kubernetes.io/service-account-token",
            "data": {"token": "eA=="},
        },
    )
    with pytest.raises(errors.ConfigurationError, match="service-account-token"):
        await backends.read_secret(kube, "acinode-system", "sa-token")


async def test_workload_identity_is_only_workload_identity() -> None:
    choice = await backends.credential_for(
        FakeKube(), virtualnode.CredentialsConfig(type="WorkloadIdentity", client_id="c-1"), "acinode-system"
    )
    assert choice == target.WorkloadIdentity(client_id="c-1")
