"""Container-group CRUD through the real SDK (sync and aio): bodies, LRO shape, paging, errors."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient, models

from emulator.harness import LOCATION, SUBSCRIPTION, FakeCredential, group_path, group_spec, raw


def test_put_answers_201_pending_with_an_absolute_async_operation_header(emu, rg) -> None:
    body = group_spec().serialize()
    status, headers, answer = raw(emu, "PUT", group_path(rg, "web"), body)
    assert status == 201
    assert answer["properties"]["provisioningState"] == "Pending"
    assert answer["properties"]["instanceView"] == {"events": [], "state": "Pending"}
    assert answer["properties"]["sku"] == "Standard"
    operation = headers["Azure-AsyncOperation"]
    assert operation.startswith(
        f"{emu.url}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerInstance/"
    )
    assert f"/locations/{LOCATION}/operations/" in operation
    assert "Location" not in headers


def test_create_get_and_delete_with_the_sync_sdk(client, rg) -> None:
    poller = client.container_groups.begin_create_or_update(rg, "web", group_spec())
    group = poller.result()
    assert group.provisioning_state == "Succeeded"
    assert group.instance_view.state == "Running"
    [container] = group.containers
    view = container.instance_view
    assert view.current_state.state == "Running"
    assert view.restart_count == 0
    assert [e.name for e in view.events] == ["Pulling", "Pulled", "Created", "Started"]
    assert group.id.endswith(
        f"/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/web"
    )

    deleted = client.container_groups.begin_delete(rg, "web").result()
    assert deleted is not None and deleted.name == "web"
    with pytest.raises(ResourceNotFoundError) as info:
        client.container_groups.get(rg, "web")
    assert info.value.error.code == "ResourceNotFound"
    assert client.container_groups.begin_delete(rg, "web").result() is None  # 204


async def test_create_get_and_delete_with_the_aio_sdk(aclient, rg) -> None:
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    group = await poller.result()
    assert group.instance_view.state == "Running"
    again = await aclient.container_groups.get(rg, "web")
    assert again.provisioning_state == "Succeeded"
    poller = await aclient.container_groups.begin_delete(rg, "web")
    assert (await poller.result()).name == "web"
    with pytest.raises(ResourceNotFoundError):
        await aclient.container_groups.get(rg, "web")


def test_put_on_an_existing_group_is_an_update_answered_200(client, emu, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    same = group_spec().serialize()
    status, _, answer = raw(emu, "PUT", group_path(rg, "web"), same)
    assert status == 200
    assert answer["properties"]["provisioningState"] == "Succeeded"  # idempotent: nothing redeployed
    changed = client.container_groups.begin_create_or_update(
        rg, "web", group_spec(["sh", "-c", "echo v2; sleep 3600"])
    ).result()
    assert changed.containers[0].command == ["sh", "-c", "echo v2; sleep 3600"]
    assert changed.instance_view.state == "Running"


def test_patch_updates_tags(client, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec(tags={"a": "1"})).result()
    updated = client.container_groups.update(rg, "web", models.Resource(tags={"b": "2"}))
    assert updated.tags == {"b": "2"}
    assert client.container_groups.get(rg, "web").tags == {"b": "2"}


def test_list_pages_with_next_link_and_omits_instance_views(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"pageSize": 2})
    for i in range(5):
        client.container_groups.begin_create_or_update(rg, f"g{i}", group_spec()).result()
    pages = list(client.container_groups.list_by_resource_group(rg).by_page())
    assert [len(list(p)) for p in pages] == [2, 2, 1]
    listed = list(client.container_groups.list_by_resource_group(rg))
    assert sorted(g.name for g in listed) == [f"g{i}" for i in range(5)]
    assert all(g.instance_view is None for g in listed)
    assert all(c.instance_view is None for g in listed for c in g.containers)
    everywhere = {g.name for g in client.container_groups.list() if f"/resourceGroups/{rg}/" in g.id}
    assert everywhere == {f"g{i}" for i in range(5)}


def test_secure_values_and_passwords_are_never_echoed(client, rg) -> None:
    env = [
        models.EnvironmentVariable(name="PLAIN", value="visible"),
        models.EnvironmentVariable(name="SECRET", secure_value="hunter2"),
    ]
    creds = [
        models.ImageRegistryCredential(server="private.invalid", username="u", password="valid-password")
    ]
    spec = group_spec(env=env, image="private.invalid/app:1", credentials=creds)
    client.container_groups.begin_create_or_update(rg, "sec", spec).result()
    for group in (
        client.container_groups.get(rg, "sec"),
        *client.container_groups.list_by_resource_group(rg),
    ):
        dumped = json.dumps(group.serialize(keep_readonly=True))
        assert "hunter2" not in dumped and "valid-password" not in dumped
        assert {e.name for e in group.containers[0].environment_variables} == {"PLAIN", "SECRET"}


def test_a_group_in_another_location_is_a_409(client, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    with pytest.raises(ResourceExistsError) as info:
        client.container_groups.begin_create_or_update(rg, "web", group_spec(location="eastus"))
    assert info.value.error.code == "InvalidResourceLocation"


def test_missing_or_wrong_token_is_401(emu, rg) -> None:
    status, _, body = raw(emu, "GET", group_path(rg, "web"), token=None)
    assert status == 401 and body["error"]["code"] == "AuthenticationFailed"
    with (
        ContainerInstanceManagementClient(
            FakeCredential("wrong"),
            SUBSCRIPTION,
            base_url=emu.url,
            connection_verify=emu.ca_file,
            retry_total=0,
        ) as wrong,
        pytest.raises(ClientAuthenticationError) as info,
    ):
        wrong.container_groups.get(rg, "web")
    assert info.value.error.code == "InvalidAuthenticationToken"


def test_api_version_is_required_and_checked(emu, rg) -> None:
    status, _, body = raw(emu, "GET", group_path(rg, "web"), query="")
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, _, body = raw(emu, "GET", group_path(rg, "web"), query="api-version=1999-01-01")
    assert status == 400 and body["error"]["code"] == "NoRegisteredProviderFound"
    status, _, body = raw(emu, "GET", group_path(rg, "web"), query="api-version=2021-10-01")
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"


def test_location_operations_and_capabilities(client) -> None:
    usages = {u.name.value: u for u in client.location.list_usage(LOCATION)}
    assert usages["ContainerGroups"].limit == 100
    assert usages["StandardCores"].unit == "Count"
    capabilities = list(client.location.list_capabilities(LOCATION))
    assert any(c.os_type == "Linux" and c.capabilities.max_cpu == 4.0 for c in capabilities)
    assert list(client.location.list_cached_images(LOCATION))
    names = [op.name for op in client.operations.list()]
    assert "Microsoft.ContainerInstance/containerGroups/read" in names
