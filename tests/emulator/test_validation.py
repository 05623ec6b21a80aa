"""Request validation: the REST spec's schema, ACI's rules and limits, and the failing-image convention."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import models

from emulator.harness import group_path, group_spec, raw


def rejected(client, rg: str, spec, name: str = "bad") -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.begin_create_or_update(rg, name, spec)
    assert info.value.status_code == 400
    return info.value


def test_schema_errors_are_invalid_request_content_with_the_path(emu, rg) -> None:
    body = group_spec().serialize()
    body["properties"]["restartPolicy"] = "Sometimes"
    status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), body)
    assert status == 400
    error = answer["error"]
    assert error["code"] == "InvalidRequestContent"
    assert error["target"] == "properties.restartPolicy" and "Sometimes" in error["message"]

    del body["properties"]["containers"][0]["properties"]["image"]
    body["properties"]["restartPolicy"] = "Never"
    status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), body)
    assert "Required property 'image' not found" in answer["error"]["message"]
    assert answer["error"]["target"] == "properties.containers[0].properties"

    body = group_spec().serialize()
    body["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] = "lots"
    status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), body)
    assert status == 400 and "Expected Float" in answer["error"]["message"]


def test_invalid_json_and_missing_os_type(emu, rg) -> None:
    status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), "not an object")
    assert status == 400 and answer["error"]["code"] == "InvalidRequestContent"
    body = group_spec().serialize()
    del body["properties"]["osType"]
    status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), body)
    assert answer["error"]["code"] == "InvalidOsType"


@pytest.mark.parametrize("name", ["UPPER", "-lead", "trail-", "dou--ble", "x" * 64, "under_score"])
def test_group_name_rules(client, rg, name) -> None:
    assert rejected(client, rg, group_spec(), name=name).error.code == "InvalidContainerGroupName"


def test_per_group_cpu_and_memory_maximum(client, rg) -> None:
    error = rejected(client, rg, group_spec(cpu=5))
    assert error.error.code == "ResourceRequestsExceedMaxAllowed" and "'4' CPU" in error.error.message
    assert rejected(client, rg, group_spec(memory=17)).error.code == "ResourceRequestsExceedMaxAllowed"


def test_a_container_limit_above_the_group_total_request(client, rg) -> None:
    spec = group_spec(cpu=1)
    spec.containers[0].resources.limits = models.ResourceLimits(cpu=2)
    error = rejected(client, rg, spec).error
    assert error.code == "ContainerLimitGreaterThanContainerGroupTotalRequest"
    assert error.message == (
        "The 'Cpu' limit '2' in container 'app' is greater than the total request '1' of container group "
        "'bad'."
    )
    spec.containers[0].resources.limits = models.ResourceLimits(cpu=0.5)
    assert rejected(client, rg, spec).error.code == "ResourceLimitsLessThanRequests"


def test_counts_of_containers_volumes_and_ports(client, rg) -> None:
    many = group_spec(cpu=0.01, memory=0.01)
    many.containers = [
        models.Container(name=f"c{i}", image="busybox", resources=many.containers[0].resources)
        for i in range(61)
    ]
    assert rejected(client, rg, many).error.code == "ContainerGroupContainersExceedLimit"

    volumes = group_spec()
    volumes.volumes = [models.Volume(name=f"v{i}", empty_dir={}) for i in range(21)]
    assert rejected(client, rg, volumes).error.code == "ContainerGroupVolumesExceedLimit"

    ports = group_spec(ports=[1, 2, 3, 4, 5, 6])
    assert rejected(client, rg, ports).error.code == "IpAddressPortsExceedLimit"

    unexposed = group_spec(ports=[80])
    unexposed.ip_address.ports.append(models.Port(port=81))
    assert rejected(client, rg, unexposed).error.code == "InvalidIpAddressPort"


def test_container_names_must_be_valid_and_unique(client, rg) -> None:
    spec = group_spec()
    spec.containers[0].name = "Bad_Name"
    assert rejected(client, rg, spec).error.code == "InvalidContainerName"
    spec = group_spec()
    spec.containers.append(spec.containers[0])
    assert rejected(client, rg, spec).error.code == "DuplicateContainerName"


def test_unreachable_registry_is_inaccessible_image(client, rg) -> None:
    error = rejected(client, rg, group_spec(image="unreachable.invalid/app:1")).error
    assert error.code == "InaccessibleImage"
    assert error.message == (
        "The image 'unreachable.invalid/app:1' in container group 'bad' is not accessible. "
        "Please check the image and registry credential."
    )


def test_private_registry_needs_matching_valid_credentials(client, rg) -> None:
    image = "registry.example.invalid/team/app:2"
    assert rejected(client, rg, group_spec(image=image)).error.code == "InaccessibleImage"
    wrong = [models.ImageRegistryCredential(server="registry.example.invalid", username="u", password="nope")]
    assert rejected(client, rg, group_spec(image=image, credentials=wrong)).error.code == "InaccessibleImage"
    other = [models.ImageRegistryCredential(server="other.invalid", username="u", password="valid-password")]
    assert rejected(client, rg, group_spec(image=image, credentials=other)).error.code == "InaccessibleImage"
    good = [
        models.ImageRegistryCredential(
            server="registry.example.invalid", username="u", password="valid-password"
        )
    ]
    group = client.container_groups.begin_create_or_update(
        rg, "ok", group_spec(image=image, credentials=good)
    ).result()
    assert group.instance_view.state == "Running"
