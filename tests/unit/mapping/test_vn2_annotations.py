"""AKS virtual nodes v2 pod annotations: honoured with VN2's meaning, or refused naming the annotation."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import (
    ALLOW_IDENTITY,
    IDENTITY,
    SUBNET,
    group,
    pod,
    problems,
    public_placement,
    schema_errors,
    vnet_placement,
)

from acinode.mapping import options, placement, tags
from acinode.mapping import problems as problem_list

pytestmark = pytest.mark.timeout(2)

PROXY = placement.KubeProxySettings(cluster_cidr="10.240.0.0/16", kubeconfig="apiVersion: v1")
NODE = vnet_placement(kube_proxy=PROXY, allowed_identities=ALLOW_IDENTITY)
POLICY = "cG9saWN5"
OTHER_SUBNET = SUBNET.replace("/subnets/aci", "/subnets/other")
VAULT = "https://myvault.vault.azure.net"
CMK = {
    options.VN2_CMK_VAULT_BASE_URL: VAULT,
    options.VN2_CMK_KEY_NAME: "group-key",
    options.VN2_CMK_KEY_VERSION: "0123456789abcdef0123456789abcdef",
}


def _at(body: Any, *keys: str) -> Any:
    for key in keys:
        body = body.get(key) if isinstance(body, dict) else None
    return body


def _path(key: str) -> str:
    return problem_list.key_path("metadata.annotations", key)


@pytest.mark.parametrize(
    ("annotations", "keys", "expected"),
    [
        ({options.VN2_CCE_POLICY: POLICY}, ("properties", "sku"), "Confidential"),
        (
            {options.VN2_CCE_POLICY: POLICY},
            ("properties", "confidentialComputeProperties"),
            {"ccePolicy": POLICY},
        ),
        # A confidential group never gets the kube-proxy extension.
        ({options.VN2_CCE_POLICY: POLICY}, ("properties", "extensions"), None),
        ({options.SKU: "Confidential"}, ("properties", "extensions"), None),
        # The same policy under both spellings is one policy.
        ({options.VN2_CCE_POLICY: POLICY, options.CCE_POLICY: POLICY}, ("properties", "sku"), "Confidential"),
        (
            {options.VN2_IDENTITY: IDENTITY},
            ("identity",),
            {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
        ),
        ({options.VN2_ZONES: "2"}, ("zones",), ["2"]),
        ({options.VN2_ZONES: "3;"}, ("zones",), ["3"]),
        ({options.VN2_ZONES: "1", options.ZONES: "1"}, ("zones",), ["1"]),
        ({options.VN2_SUBNET: SUBNET}, ("properties", "subnetIds"), [{"id": SUBNET}]),
        ({options.VN2_SUBNET: SUBNET.upper()}, ("properties", "subnetIds"), [{"id": SUBNET}]),
        ({options.VN2_INJECT_KUBE_PROXY: "false"}, ("properties", "extensions"), None),
        ({options.VN2_INJECT_DNS: "false"}, ("properties", "dnsConfig"), None),
        ({options.VN2_INJECT_DNS: "true"}, ("properties", "dnsConfig", "nameServers"), ["10.0.0.10"]),
        ({options.VN2_IMAGE_CACHE_POD: "false"}, ("properties", "sku"), None),
        (
            CMK,
            ("properties", "encryptionProperties"),
            {"vaultBaseUrl": VAULT, "keyName": "group-key", "keyVersion": "0123456789abcdef0123456789abcdef"},
        ),
        (
            {**CMK, options.VN2_CMK_IDENTITY: IDENTITY},
            ("properties", "encryptionProperties", "identity"),
            IDENTITY,
        ),
        (
            {**CMK, options.VN2_CMK_IDENTITY: IDENTITY},
            ("identity", "userAssignedIdentities"),
            {IDENTITY: {}},
        ),
    ],
)
def test_honoured(annotations: dict[str, str], keys: tuple[str, ...], expected: Any) -> None:
    body = group(pod(annotations=annotations), NODE)
    assert schema_errors(body) == []
    assert _at(body, *keys) == expected


def test_kube_proxy_is_injected_by_default_and_on_request() -> None:
    for asked in ({}, {options.VN2_INJECT_KUBE_PROXY: "True"}):
        extensions = group(pod(annotations=asked), NODE)["properties"]["extensions"]
        assert [e["name"] for e in extensions] == ["kube-proxy"]


def test_injectdns_false_keeps_the_pods_own_dns_config() -> None:
    the_pod = pod(
        annotations={options.VN2_INJECT_DNS: "false"},
        dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["corp.example"]},
    )
    dns = group(the_pod, NODE)["properties"]["dnsConfig"]
    assert dns == {"nameServers": ["1.1.1.1"], "searchDomains": "corp.example"}


def test_custom_tags_override_the_nodes_and_never_acinodes_own() -> None:
    where = vnet_placement(extra_tags={"env": "Prod", "team": "shop"})
    body = group(pod(annotations={options.VN2_CUSTOM_TAGS: "env=Dev; project=silverSpoon;"}), where)
    assert body["tags"]["env"] == "Dev"
    assert body["tags"]["team"] == "shop"
    assert body["tags"]["project"] == "silverSpoon"
    assert body["tags"][tags.TAG_POD] == "web-0"


@pytest.mark.parametrize(
    ("annotations", "key", "reason"),
    [
        ({options.VN2_CCE_POLICY: "not base64!"}, options.VN2_CCE_POLICY, "base64"),
        ({options.VN2_CCE_POLICY: ""}, options.VN2_CCE_POLICY, "must not be empty"),
        ({options.VN2_CCE_POLICY: POLICY, options.CCE_POLICY: "b3RoZXI="}, options.VN2_CCE_POLICY, "differs"),
        (
            {options.VN2_CCE_POLICY: POLICY, options.VN2_INJECT_KUBE_PROXY: "true"},
            options.VN2_INJECT_KUBE_PROXY,
            "confidential container group never gets the kube-proxy extension",
        ),
        ({options.VN2_IDENTITY: "my-identity"}, options.VN2_IDENTITY, "not a user-assigned"),
        (
            {options.VN2_IDENTITY: IDENTITY.replace("/app", "/admin")},
            options.VN2_IDENTITY,
            "spec.azure.allowedIdentities",
        ),
        ({options.VN2_ZONES: "1;2"}, options.VN2_ZONES, "one availability zone"),
        ({options.VN2_ZONES: "4"}, options.VN2_ZONES, "not 1, 2 or 3"),
        ({options.VN2_ZONES: "1", options.ZONES: "2"}, options.VN2_ZONES, "differs"),
        ({options.VN2_SUBNET: "aci"}, options.VN2_SUBNET, "not a subnet resource id"),
        ({options.VN2_SUBNET: OTHER_SUBNET}, options.VN2_SUBNET, "only in its VirtualNode's subnet"),
        ({options.VN2_INJECT_KUBE_PROXY: "no"}, options.VN2_INJECT_KUBE_PROXY, "not true or false"),
        ({options.VN2_INJECT_DNS: "maybe"}, options.VN2_INJECT_DNS, "not true or false"),
        ({options.VN2_CUSTOM_TAGS: "env"}, options.VN2_CUSTOM_TAGS, "not key=value"),
        ({options.VN2_CUSTOM_TAGS: "a=1;a=2"}, options.VN2_CUSTOM_TAGS, "given twice"),
        ({options.VN2_CUSTOM_TAGS: "acinode.pod=evil"}, options.VN2_CUSTOM_TAGS, "acinode's own"),
        ({options.VN2_CUSTOM_TAGS: "a/b=1"}, options.VN2_CUSTOM_TAGS, "not valid in ARM"),
        ({options.VN2_CUSTOM_TAGS: "a=" + "x" * 257}, options.VN2_CUSTOM_TAGS, "longer than"),
        ({options.VN2_IMAGE_CACHE_POD: "true"}, options.VN2_IMAGE_CACHE_POD, "standby pools"),
        ({options.VN2_CMK_KEY_NAME: "k"}, options.VN2_CMK_VAULT_BASE_URL, "is required"),
        ({**CMK, options.VN2_CMK_VAULT_BASE_URL: "http://vault"}, options.VN2_CMK_VAULT_BASE_URL, "https"),
        ({**CMK, options.VN2_CMK_KEY_VERSION: ""}, options.VN2_CMK_KEY_VERSION, "is required"),
        (
            {**CMK, options.VN2_CMK_IDENTITY: IDENTITY.replace("/app", "/admin")},
            options.VN2_CMK_IDENTITY,
            "spec.azure.allowedIdentities",
        ),
        ({options.VN2_PREFIX + "cmk.keyvaulturl": VAULT}, options.VN2_PREFIX + "cmk.keyvaulturl", "unknown"),
        ({options.VN2_PREFIX + "standbypool": "x"}, options.VN2_PREFIX + "standbypool", "unknown"),
    ],
)
def test_refused(annotations: dict[str, str], key: str, reason: str) -> None:
    found = problems(pod(annotations=annotations), NODE)
    assert reason in found.get(_path(key), ""), found


@pytest.mark.parametrize(
    ("where", "key", "reason"),
    [
        (public_placement(), options.VN2_SUBNET, "not in a virtual network"),
        (vnet_placement(), options.VN2_INJECT_KUBE_PROXY, "no kube-proxy extension"),
    ],
)
def test_refused_where_the_node_cannot(where: placement.GroupPlacement, key: str, reason: str) -> None:
    annotations = {options.VN2_SUBNET: SUBNET, options.VN2_INJECT_KUBE_PROXY: "true"}
    found = problems(pod(annotations=annotations), where)
    assert reason in found.get(_path(key), ""), found


@pytest.mark.parametrize(
    "marker", ["===VIRTUALNODE2.CC.THIM.ENDPOINT===", "===VIRTUALNODE2.CC.THIM.ADDRESS==="]
)
def test_vn2_downlevel_api_values_are_refused(marker: str) -> None:
    the_pod = pod({"name": "app", "image": "cli", "env": [{"name": "THIM", "value": marker}]})
    assert "THIM" in problems(the_pod, NODE)["spec.containers[0].env[0].value"]
