"""The emulator answers as Azure does where recordings show what Azure answers (docs/emulator.md, fidelity table):
write-only values, identities, the restart and create operations, rate-limit headers, image default commands and
the virtual networks a group names."""

from __future__ import annotations

import re

import pytest
from azure.mgmt.containerinstance import models

from emulator.harness import SUBSCRIPTION, group_path, group_spec, raw, wait_for

UAI = (
    f"/subscriptions/{SUBSCRIPTION}/resourcegroups/ids/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/app-id"
)
SUBNET = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _body(**properties: object) -> dict[str, object]:
    container: dict[str, object] = {
        "name": "app",
        "properties": {"image": "nginx", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}},
    }
    if "volumes" in properties:
        mounts = [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in properties["volumes"]]  # type: ignore[attr-defined]
        container["properties"]["volumeMounts"] = mounts  # type: ignore[index]
    return {
        "location": "westeurope",
        "properties": {"osType": "Linux", "containers": [container], **properties},
    }


def test_write_only_values_are_never_answered_but_the_hook_shows_them(emu, rg) -> None:
    body = _body(
        volumes=[
            {"name": "s", "secret": {"token": "c2VjcmV0"}},
            {
                "name": "f",
                "azureFile": {
                    "shareName": "share",
                    "storageAccountName": "acct",
                    "storageAccountKey": "KEY==",
                },
            },
        ],
        extensions=[
            {
                "name": "kube-proxy",
                "properties": {
                    "extensionType": "kube-proxy",
                    "version": "1.0",
                    "settings": {"clusterCidr": "10.240.0.0/16"},
                    "protectedSettings": {"kubeConfig": "a3ViZWNvbmZpZw=="},
                },
            }
        ],
    )
    status, _, put = raw(emu, "PUT", group_path(rg, "quiet"), body)
    assert status == 201
    _, _, got = raw(emu, "GET", group_path(rg, "quiet"))
    for answer in (put, got):
        volumes = {v["name"]: v for v in answer["properties"]["volumes"]}
        assert volumes["s"]["secret"] == {}
        assert volumes["f"]["azureFile"] == {"shareName": "share", "storageAccountName": "acct"}
        [extension] = answer["properties"]["extensions"]
        assert "protectedSettings" not in extension["properties"]
        assert extension["properties"]["settings"] == {"clusterCidr": "10.240.0.0/16"}
    held = emu.hook("GET", f"groups/{SUBSCRIPTION}/{rg}/quiet/secrets")
    assert held["volumes"] == {"s": {"secret": {"token": "c2VjcmV0"}}, "f": {"storageAccountKey": "KEY=="}}
    assert held["extensions"] == {"kube-proxy": {"kubeConfig": "a3ViZWNvbmZpZw=="}}


def test_identities_get_their_principal_client_and_tenant_ids(client, rg) -> None:
    spec = group_spec()
    spec.identity = models.ContainerGroupIdentity(
        type="SystemAssigned, UserAssigned", user_assigned_identities={UAI: models.UserAssignedIdentities()}
    )
    group = client.container_groups.begin_create_or_update(rg, "ids", spec).result()
    [(uid, user)] = group.identity.user_assigned_identities.items()
    assert uid == UAI
    assert (
        GUID.match(user.principal_id) and GUID.match(user.client_id) and user.principal_id != user.client_id
    )
    assert GUID.match(group.identity.principal_id) and GUID.match(group.identity.tenant_id)
    again = client.container_groups.get(rg, "ids").identity
    assert again.user_assigned_identities[UAI].client_id == user.client_id  # stable, as Azure's


def test_a_restart_is_an_operation_the_client_can_wait_for(client, emu, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    emu.hook("PATCH", "config", {"provisioningDelaySeconds": 0.3})
    status, headers, _ = raw(emu, "POST", f"{group_path(rg, 'web')}/restart")
    assert status == 204
    operation = headers["Azure-AsyncOperation"]
    assert "/operations/" in operation and operation.endswith("?api-version=2018-06-01")
    path, query = operation.split(emu.url, 1)[1].split("?")
    _, _, running = raw(emu, "GET", path, query=query)
    assert running["status"] == "Pending" and "endTime" not in running and "name" not in running
    done = wait_for(lambda: (o := raw(emu, "GET", path, query=query)[2])["status"] == "Succeeded" and o)
    assert {e["name"] for e in done["properties"]["events"]} >= {"Pulling", "Pulled", "Started"}
    assert client.container_groups.get(rg, "web").instance_view.state == "Running"
    client.container_groups.begin_restart(rg, "web").result()  # the SDK's poller now waits for it
    assert client.container_groups.get(rg, "web").instance_view.state == "Running"


def test_a_create_goes_pending_then_creating_then_succeeded(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"provisioningDelaySeconds": 0.3, "pullDelaySeconds": 0.5})
    status, headers, put = raw(emu, "PUT", group_path(rg, "slow"), _body())
    assert (status, put["properties"]["provisioningState"]) == (201, "Pending")
    path, query = headers["Azure-AsyncOperation"].split(emu.url, 1)[1].split("?")
    creating = wait_for(lambda: (o := raw(emu, "GET", path, query=query)[2])["status"] == "Creating" and o)
    assert {e["name"] for e in creating["properties"]["events"]} <= {"Pulling"}
    assert set(creating) == {"id", "status", "startTime", "properties"}
    assert creating["id"] == group_path(rg, "slow")
    assert raw(emu, "GET", group_path(rg, "slow"))[2]["properties"]["provisioningState"] == "Creating"
    pulling = wait_for(lambda: (o := raw(emu, "GET", path, query=query)[2])["properties"]["events"] and o)
    assert (pulling["status"], [e["name"] for e in pulling["properties"]["events"]]) == (
        "Creating",
        ["Pulling"],
    )
    wait_for(lambda: raw(emu, "GET", path, query=query)[2]["status"] == "Succeeded")
    assert client.container_groups.get(rg, "slow").provisioning_state == "Succeeded"


def test_containers_always_carry_environment_variables_and_ports(emu, rg) -> None:
    body = _body()
    body["properties"]["initContainers"] = [
        {"name": "init", "properties": {"image": "busybox", "command": ["true"]}}
    ]
    _, _, put = raw(emu, "PUT", group_path(rg, "lists"), body)
    [container] = put["properties"]["containers"]
    assert (container["properties"]["environmentVariables"], container["properties"]["ports"]) == ([], [])
    [init] = put["properties"]["initContainers"]
    assert init["properties"]["environmentVariables"] == [] and "ports" not in init["properties"]


def test_the_ip_address_answers_the_dns_label_scope_azure_applied(emu, rg) -> None:
    ports = {"ports": [{"port": 80, "protocol": "TCP"}]}
    body = _body(ipAddress={"type": "Public", **ports})
    body["properties"]["containers"][0]["properties"]["ports"] = [{"port": 80}]
    _, _, put = raw(emu, "PUT", group_path(rg, "scope"), body)
    assert put["properties"]["ipAddress"]["autoGeneratedDomainNameLabelScope"] == "Unsecure"


def test_a_delete_answers_the_delete_rate_limit_headers(start_emulator, rg) -> None:
    emu = start_emulator(network=False)
    emu.hook("PATCH", "config", {"throttle": True})
    assert raw(emu, "PUT", group_path(rg, "gone"), _body())[0] == 201
    status, headers, _ = raw(emu, "DELETE", group_path(rg, "gone"))
    assert status == 200
    limits = {k.lower() for k in headers if k.lower().startswith("x-ms-ratelimit-")}
    assert limits == {
        "x-ms-ratelimit-remaining-subscription-deletes",
        "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m",
        "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h",
    }


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [
        ("alpine:latest", "Never", ("Terminated", "Completed", "Succeeded")),
        ("docker.io/library/busybox:1.36", "Never", ("Terminated", "Completed", "Succeeded")),
        ("ubuntu:24.04", "OnFailure", ("Terminated", "Completed", "Succeeded")),
        ("nginx:1.27", "Never", ("Running", "", "Running")),
        ("myregistry.example.com/team/app:1", "Never", ("Running", "", "Running")),
    ],
)
def test_a_container_without_a_command_runs_its_image_default(client, rg, image, policy, expected) -> None:
    client.container_groups.begin_create_or_update(
        rg, "default", group_spec(image=image, restart_policy=policy)
    ).result()

    def settled():
        group = client.container_groups.get(rg, "default")
        state = group.containers[0].instance_view.current_state
        seen = (state.state, state.detail_status, group.instance_view.state)
        return seen if seen == expected else None

    wait_for(settled, what=f"{image} under {policy}: {expected}")


def test_alpine_without_a_command_under_always_crash_loops(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"backoffBaseSeconds": 10.0, "backoffMaxSeconds": 300.0})
    client.container_groups.begin_create_or_update(rg, "loop", group_spec(image="alpine:latest")).result()
    view = wait_for(
        lambda: (
            (v := client.container_groups.get(rg, "loop").containers[0].instance_view).restart_count >= 1
            and v
        ),
        what="the first back-off",
    )
    assert (view.current_state.state, view.current_state.detail_status) == (
        "Waiting",
        "CrashLoopBackOff: Back-off 10s restarting failed",
    )
    assert (view.previous_state.state, view.previous_state.exit_code) == ("Terminated", 0)
    assert {"BackOff", "Killing"} <= {e.name for e in view.events}
    assert client.container_groups.get(rg, "loop").instance_view.state == "Running"


def test_network_profiles_and_subnets_must_exist_and_be_delegated(client, emu, rg) -> None:
    profile = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/net/providers/Microsoft.Network/networkProfiles/np"
    )
    status, _, answer = raw(emu, "PUT", group_path(rg, "np"), _body(networkProfile={"id": profile}))
    assert (status, answer["error"]["code"]) == (400, "NetworkProfileNotFound")
    assert answer["error"]["message"] == f"Network profile '{profile}' is not found for container group 'np'."
    emu.hook(
        "PUT",
        "networks",
        {
            "subnets": [{"id": SUBNET + "aci"}, {"id": SUBNET + "plain", "delegated": False}],
            "networkProfiles": [profile],
        },
    )
    try:
        assert raw(emu, "PUT", group_path(rg, "np"), _body(networkProfile={"id": profile}))[0] == 201
        status, _, answer = raw(
            emu, "PUT", group_path(rg, "plain"), _body(subnetIds=[{"id": SUBNET + "plain"}])
        )
        assert (status, answer["error"]["code"]) == (400, "SubnetMissingRequiredDelegation")
        status, _, answer = raw(emu, "PUT", group_path(rg, "bad"), _body(subnetIds=[{"id": "/not/a/subnet"}]))
        assert (status, answer["error"]["code"]) == (400, "SubnetNotFound")
        # A subnet nobody declared does not exist (the default, as in Azure) …
        status, _, answer = raw(
            emu, "PUT", group_path(rg, "other"), _body(subnetIds=[{"id": SUBNET + "other"}])
        )
        assert (status, answer["error"]["code"]) == (400, "SubnetNotFound")
        # … unless the emulator runs with --any-subnet.
        emu.hook("PATCH", "config", {"strictNetworks": False})
        assert raw(emu, "PUT", group_path(rg, "other"), _body(subnetIds=[{"id": SUBNET + "other"}]))[0] == 201
        emu.hook("PATCH", "config", {"strictNetworks": True})
        status, _, answer = raw(emu, "PUT", group_path(rg, "aci"), _body(subnetIds=[{"id": SUBNET + "aci"}]))
        assert status == 201
        # A group in a subnet gets a private IP although it exposes no port.
        ip = wait_for(lambda: raw(emu, "GET", group_path(rg, "aci"))[2]["properties"]["ipAddress"].get("ip"))
        assert ip.startswith("127.")
    finally:
        emu.hook("PUT", "networks", {})
