"""Image pull secrets to ACI registry credentials, identity-based ACR pull, and the group's identities."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mapping_builders import (
    ALLOW_IDENTITY,
    IDENTITY,
    b64,
    container,
    group,
    pod,
    problems,
    refs,
    secret,
    vnet_placement,
)

from acinode.mapping import options, registry

pytestmark = pytest.mark.timeout(2)


@pytest.mark.parametrize(
    ("image", "server"),
    [
        ("nginx", "index.docker.io"),
        ("microsoft/aci-helloworld", "index.docker.io"),
        ("docker.io/library/nginx:1.27", "index.docker.io"),
        ("mcr.microsoft.com/azuredocs/aci-helloworld", "mcr.microsoft.com"),
        ("shop.azurecr.io/web@sha256:abc", "shop.azurecr.io"),
        ("localhost:5000/web", "localhost:5000"),
        ("localhost/web", "localhost"),
    ],
)
def test_image_registry(image: str, server: str) -> None:
    assert registry.image_registry(image) == server


@pytest.mark.parametrize(
    ("key", "server"),
    [
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("docker.io", "index.docker.io"),
        ("Shop.AzureCR.io", "shop.azurecr.io"),
        ("http://registry.example:5000/v2/", "registry.example:5000"),
    ],
)
def test_registry_server(key: str, server: str) -> None:
    assert registry.registry_server(key) == server


def _docker_config(auths: dict[str, Any]) -> dict[str, Any]:
    return secret({".dockerconfigjson": json.dumps({"auths": auths})}, "kubernetes.io/dockerconfigjson")  # type: ignore[return-value]


SECRETS = {
    "acr": _docker_config({"shop.azurecr.io": {"username": "shop", "password": "pw1"}}),
    "hub": _docker_config({"https://index.docker.io/v1/": {"auth": b64("me:pw2")}}),
    "legacy": secret(
        {".dockercfg": json.dumps({"quay.io": {"username": "q", "password": "pw3"}})},
        "kubernetes.io/dockercfg",
    ),
    "token": _docker_config({"shop.azurecr.io": {"identitytoken": "refresh-token"}}),
    "opaque": secret({"x": "y"}),
}


@pytest.mark.parametrize(
    ("images", "pull_secrets", "expected"),
    [
        (
            ["shop.azurecr.io/web"],
            ["acr"],
            [{"server": "shop.azurecr.io", "username": "shop", "password": "pw1"}],
        ),
        (["nginx"], ["hub"], [{"server": "index.docker.io", "username": "me", "password": "pw2"}]),
        (["quay.io/x/y"], ["legacy"], [{"server": "quay.io", "username": "q", "password": "pw3"}]),
        (
            ["shop.azurecr.io/web"],
            ["token"],
            [{"server": "shop.azurecr.io", "username": registry.ACR_TOKEN_USER, "password": "refresh-token"}],
        ),
        # only registries the pod pulls from: ACI refuses more credentials than containers
        (["nginx"], ["acr"], None),
        # a missing pull secret is skipped, as a kubelet does (the image may be public)
        (["nginx"], ["absent"], None),
        (
            ["shop.azurecr.io/web", "nginx"],
            ["hub", "acr"],
            [
                {"server": "index.docker.io", "username": "me", "password": "pw2"},
                {"server": "shop.azurecr.io", "username": "shop", "password": "pw1"},
            ],
        ),
    ],
)
def test_pull_secrets(
    images: list[str], pull_secrets: list[str], expected: list[dict[str, str]] | None
) -> None:
    containers = [container(f"c{i}", image=image) for i, image in enumerate(images)]
    the_pod = pod(*containers, imagePullSecrets=[{"name": name} for name in pull_secrets])
    body = group(the_pod, resolved=refs(secrets=SECRETS))
    assert body["properties"].get("imageRegistryCredentials") == expected


def test_a_pull_secret_of_another_type_is_refused() -> None:
    the_pod = pod(imagePullSecrets=[{"name": "opaque"}])
    assert "dockerconfigjson" in problems(the_pod, resolved=refs(secrets=SECRETS))["spec.imagePullSecrets[0]"]


def test_acr_pull_with_a_managed_identity() -> None:
    the_pod = pod(container(image="shop.azurecr.io/web:1"), annotations={options.ACR_IDENTITY: IDENTITY})
    body = group(the_pod, vnet_placement(allowed_identities=ALLOW_IDENTITY))
    assert body["properties"]["imageRegistryCredentials"] == [
        {"server": "shop.azurecr.io", "identity": IDENTITY}
    ]
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}


def test_acr_identity_for_named_servers_and_other_identities() -> None:
    other = IDENTITY.replace("/app", "/metrics")
    the_pod = pod(
        container(image="registry.corp/web:1"),
        annotations={
            options.ACR_IDENTITY: IDENTITY,
            options.ACR_SERVERS: "registry.corp",
            options.IDENTITIES: other,
        },
    )
    body = group(the_pod, vnet_placement(allowed_identities=ALLOW_IDENTITY))
    assert body["properties"]["imageRegistryCredentials"] == [
        {"server": "registry.corp", "identity": IDENTITY}
    ]
    assert body["identity"]["userAssignedIdentities"] == {other: {}, IDENTITY: {}}


def test_pull_secrets_win_over_the_identity_for_their_registry() -> None:
    the_pod = pod(
        container(image="shop.azurecr.io/web"),
        imagePullSecrets=[{"name": "acr"}],
        annotations={options.ACR_IDENTITY: IDENTITY},
    )
    body = group(the_pod, vnet_placement(allowed_identities=ALLOW_IDENTITY), refs(secrets=SECRETS))
    assert body["properties"]["imageRegistryCredentials"] == [
        {"server": "shop.azurecr.io", "username": "shop", "password": "pw1"}
    ]
