"""VirtualNode Azure settings → ACI client settings: what is refused before any call is made."""

from __future__ import annotations

import pytest

from acinode import backends, errors
from acinode.mapping import virtualnode


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
