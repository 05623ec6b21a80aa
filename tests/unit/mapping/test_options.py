"""The documented pod annotations: ACI features without a Kubernetes field."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import ALLOW_IDENTITY, IDENTITY, group, pod, problems, public_placement, vnet_placement

from acinode.mapping import options
from acinode.mapping import problems as problem_list

pytestmark = pytest.mark.timeout(2)

GPU_NODE = public_placement(gpu_skus=("V100",))
GPU_CONTAINER = {"resources": {"limits": {"nvidia.com/gpu": "1"}}}


@pytest.mark.parametrize(
    ("annotations", "field", "expected"),
    [
        ({options.PRIORITY: "Spot"}, ("properties", "priority"), "Spot"),
        ({options.PRIORITY: "regular"}, ("properties", "priority"), "Regular"),
        ({options.ZONES: "2"}, ("zones",), ["2"]),
        ({options.SKU: "Confidential"}, ("properties", "sku"), "Confidential"),
        ({options.CCE_POLICY: "cG9saWN5"}, ("properties", "sku"), "Confidential"),
        (
            {options.CCE_POLICY: "cG9saWN5"},
            ("properties", "confidentialComputeProperties"),
            {"ccePolicy": "cG9saWN5"},
        ),
        ({options.VK_CONTAINER_SKU: "Confidential"}, ("properties", "sku"), "Confidential"),
        (
            {options.IDENTITIES: IDENTITY},
            ("identity",),
            {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
        ),
    ],
)
def test_group_options(annotations: dict[str, str], field: tuple[str, ...], expected: Any) -> None:
    body: Any = group(pod(annotations=annotations), vnet_placement(allowed_identities=ALLOW_IDENTITY))
    for key in field:
        body = body[key]
    assert body == expected


@pytest.mark.parametrize(
    ("annotations", "path"),
    [
        ({options.PRIORITY: "Cheap"}, options.PRIORITY),
        ({options.ZONES: "4"}, options.ZONES),
        ({options.ZONES: "1,2"}, options.ZONES),
        ({options.SKU: "Huge"}, options.SKU),
        ({options.CCE_POLICY: "not base64!"}, options.CCE_POLICY),
        ({options.CCE_POLICY: "cG9saWN5", options.SKU: "Standard"}, options.SKU),
        ({options.IDENTITIES: "my-identity"}, options.IDENTITIES),
        ({options.ACR_IDENTITY: "/subscriptions/x"}, options.ACR_IDENTITY),
        ({options.ACR_SERVERS: "myacr.azurecr.io"}, options.ACR_SERVERS),
        ({options.GPU_SKU: "H100"}, options.GPU_SKU),
        ({options.DNS_NAME_LABEL: "Not_Valid"}, options.DNS_NAME_LABEL),
        ({options.IP_ADDRESS: "fe80::1"}, options.IP_ADDRESS),
        ({options.IP_ADDRESS_TYPE: "Elastic"}, options.IP_ADDRESS_TYPE),
        ({options.ENTRYPOINTS: "[1, 2]"}, options.ENTRYPOINTS),
        ({options.ENTRYPOINTS: "{"}, options.ENTRYPOINTS),
        ({options.PREFIX + "gpu-type": "V100"}, options.PREFIX + "gpu-type"),
    ],
)
def test_bad_values_and_unknown_keys_are_refused(annotations: dict[str, str], path: str) -> None:
    found = problems(pod(annotations=annotations))
    assert problem_list.key_path("metadata.annotations", path) in found


def test_annotations_of_other_prefixes_are_ignored() -> None:
    group(pod(annotations={"acinode.dev/other": "x", "example.com/anything": "y"}))


@pytest.mark.parametrize("key", [options.GPU_SKU, options.VK_GPU_TYPE])
def test_gpu_sku_annotation_and_its_virtual_kubelet_spelling(key: str) -> None:
    where = public_placement(gpu_skus=("K80", "V100"))
    body = group(pod({"name": "app", "image": "cuda", **GPU_CONTAINER}, annotations={key: "V100"}), where)
    assert body["properties"]["containers"][0]["properties"]["resources"]["requests"]["gpu"] == {
        "count": 1,
        "sku": "V100",
    }


def test_dns_name_label_and_its_virtual_kubelet_spelling() -> None:
    web = {"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}
    for key in (options.DNS_NAME_LABEL, options.VK_DNS_NAME_LABEL):
        body = group(pod(web, annotations={key: "my-shop"}), public_placement())
        assert body["properties"]["ipAddress"]["dnsNameLabel"] == "my-shop"


def test_vnet_and_public_options_do_not_mix() -> None:
    assert problem_list.key_path("metadata.annotations", options.DNS_NAME_LABEL) in problems(
        pod(annotations={options.DNS_NAME_LABEL: "shop"}), vnet_placement()
    )
