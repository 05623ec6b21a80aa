"""The test hooks: injected faults, LRO failures, a vanishing group, missing resource groups, stats, config."""

from __future__ import annotations

import time
import urllib.error

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from emulator.harness import group_spec


def test_an_injected_error_is_an_arm_error(client, emu, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    emu.hook(
        "POST",
        "faults",
        {"operation": "ContainerGroups_Get", "status": 503, "code": "ServerBusy", "count": 1},
    )
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.get(rg, "web")
    assert info.value.status_code == 503 and info.value.error.code == "ServerBusy"
    assert client.container_groups.get(rg, "web").name == "web"  # count exhausted


def test_the_sdk_retries_through_a_transient_fault(emu, rg) -> None:
    emu.hook("PUT", "faults", {"rules": [{"operation": "ContainerGroups_Get", "status": 500, "count": 2}]})
    with emu.client(retry_total=3, retry_backoff_factor=0) as client:
        client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
        emu.hook("POST", "stats/reset")
        emu.hook(
            "PUT", "faults", {"rules": [{"operation": "ContainerGroups_Get", "status": 500, "count": 2}]}
        )
        assert client.container_groups.get(rg, "web").name == "web"
    stats = emu.hook("GET", "stats")
    assert stats["requests"]["ContainerGroups_Get"] == {"200": 1, "500": 2}


def test_latency_and_dropped_connections(client, emu, rg) -> None:
    emu.hook(
        "POST",
        "faults",
        {"operation": "Location_ListUsage", "status": None, "latencySeconds": 0.3, "count": 1},
    )
    started = time.monotonic()
    list(client.location.list_usage("westeurope"))
    assert time.monotonic() - started >= 0.3
    emu.hook("POST", "faults", {"operation": "Location_ListUsage", "status": None, "drop": True, "count": 1})
    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        list(client.location.list_usage("westeurope"))
    assert list(client.location.list_usage("westeurope"))


def test_rate_faults_fire_about_as_often_as_asked(client, emu, rg) -> None:
    emu.hook(
        "PUT", "faults", {"seed": 7, "rules": [{"operation": "Operations_List", "rate": 0.5, "status": 500}]}
    )
    failures = 0
    for _ in range(40):
        try:
            list(client.operations.list())
        except HttpResponseError:
            failures += 1
    assert 8 <= failures <= 32


def test_the_next_lro_fails_with_the_given_error(client, emu, rg) -> None:
    emu.hook("POST", "lro/fail-next", {"code": "InsufficientCapacity", "message": "No capacity."})
    poller = client.container_groups.begin_create_or_update(rg, "web", group_spec())
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert info.value.error.code == "InsufficientCapacity"
    group = client.container_groups.get(rg, "web")
    assert group.provisioning_state == "Failed" and group.instance_view.state == "Failed"
    retried = client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    assert retried.provisioning_state == "Succeeded"  # the same PUT again redeploys a failed group


async def test_lro_status_moves_from_in_progress_to_succeeded(aclient, emu, rg) -> None:
    emu.hook("PATCH", "config", {"provisioningDelaySeconds": 0.3})
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    assert poller.status() == "InProgress"
    assert (await aclient.container_groups.get(rg, "web")).provisioning_state == "Pending"
    group = await poller.result()
    assert group.provisioning_state == "Succeeded"


def test_operations_on_a_provisioning_group_conflict(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"provisioningDelaySeconds": 5})
    client.container_groups.begin_create_or_update(rg, "web", group_spec())
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.stop(rg, "web")
    assert info.value.status_code == 409 and info.value.error.code == "ContainerGroupTransitioning"
    client.container_groups.begin_delete(rg, "web").result()


def test_a_group_can_vanish(client, emu, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    emu.hook("POST", f"groups/00000000-0000-0000-0000-0000000000e1/{rg}/web/vanish")
    with pytest.raises(ResourceNotFoundError):
        client.container_groups.get(rg, "web")


def test_a_resource_group_can_go_missing(client, emu, rg) -> None:
    emu.hook("POST", f"resource-groups/00000000-0000-0000-0000-0000000000e1/{rg}/missing")
    with pytest.raises(ResourceNotFoundError) as info:
        client.container_groups.get(rg, "web")
    assert info.value.error.code == "ResourceGroupNotFound"
    emu.hook("DELETE", f"resource-groups/00000000-0000-0000-0000-0000000000e1/{rg}/missing")
    with pytest.raises(ResourceNotFoundError) as info:
        client.container_groups.get(rg, "web")
    assert info.value.error.code == "ResourceNotFound"


def test_stats_count_requests_by_operation_and_status(client, emu, rg) -> None:
    emu.hook("POST", "stats/reset")
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    with pytest.raises(ResourceNotFoundError):
        client.container_groups.get(rg, "nope")
    stats = emu.hook("GET", "stats")
    assert stats["requests"]["ContainerGroups_CreateOrUpdate"] == {"201": 1}
    assert stats["requests"]["ContainerGroups_Get"]["404"] == 1
    assert stats["groups"]["total"] >= 1
    assert "_emulator" not in str(stats["requests"])  # hooks are not ARM calls


def test_config_rejects_unknown_settings(emu) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        emu.hook("PATCH", "config", {"noSuchSetting": 1})
    assert info.value.code == 400
    assert emu.hook("GET", "config")["provisioningDelaySeconds"] == 0.0
