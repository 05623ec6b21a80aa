"""Per-region quotas (ContainerGroupQuotaReached, usages) and ARM/ACI throttling (429 + Retry-After)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.harness import LOCATION, group_spec, raw


def test_container_group_quota(client, emu, rg) -> None:
    used = {u.name.value: u.current_value for u in client.location.list_usage(LOCATION)}["ContainerGroups"]
    emu.hook("PATCH", "config", {"quotaContainerGroups": used + 1})
    client.container_groups.begin_create_or_update(rg, "one", group_spec()).result()
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.begin_create_or_update(rg, "two", group_spec())
    error = info.value
    assert error.status_code == 400 and error.error.code == "ContainerGroupQuotaReached"
    assert (
        f"quota 'ContainerGroups' exceeded in region '{LOCATION}'. Limit: '{used + 1}'" in error.error.message
    )
    # An update of an existing group is not a new group.
    client.container_groups.begin_create_or_update(rg, "one", group_spec(tags={"x": "y"})).result()


def test_cores_quota_and_usages(start_emulator, rg) -> None:
    emu = start_emulator()
    emu.hook("PATCH", "config", {"quotaCores": 3})
    with emu.client() as client:
        client.container_groups.begin_create_or_update(rg, "a", group_spec(cpu=2)).result()
        usages = {u.name.value: u for u in client.location.list_usage(LOCATION)}
        assert (usages["StandardCores"].current_value, usages["StandardCores"].limit) == (2, 3)
        assert usages["ContainerGroups"].current_value == 1
        with pytest.raises(HttpResponseError) as info:
            client.container_groups.begin_create_or_update(rg, "b", group_spec(cpu=2))
        assert info.value.error.message.endswith("Limit: '3', Usage: '2' Requested: '2'.")
        assert "'StandardCores'" in info.value.error.message
        client.container_groups.stop(rg, "a")  # a stopped group holds no cores
        client.container_groups.begin_create_or_update(rg, "b", group_spec(cpu=2)).result()


def test_reads_are_throttled_with_retry_after(emu, rg) -> None:
    emu.hook("PATCH", "config", {"throttle": True, "readBurst": 3, "readRate": 0.5})
    emu.hook("POST", "throttle/reset")
    path = f"/subscriptions/00000000-0000-0000-0000-0000000000e1/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups"
    remaining = [raw(emu, "GET", path)[1]["x-ms-ratelimit-remaining-subscription-reads"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    status, headers, body = raw(emu, "GET", path)
    assert status == 429 and body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert int(headers["Retry-After"]) >= 1


def test_the_sdk_sees_429_after_its_retries(emu, rg) -> None:
    emu.hook("PATCH", "config", {"throttle": True, "readBurst": 1, "readRate": 0.001})
    emu.hook("POST", "throttle/reset")
    with emu.client() as client:
        list(client.container_groups.list_by_resource_group(rg))
        with pytest.raises(HttpResponseError) as info:
            list(client.container_groups.list_by_resource_group(rg))
    assert info.value.status_code == 429
    assert int(info.value.response.headers["Retry-After"]) > 1


def test_creates_per_five_minutes(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"throttle": True, "createsPer5m": 2})
    emu.hook("POST", "throttle/reset")
    for name in ("a", "b"):
        client.container_groups.begin_create_or_update(rg, name, group_spec()).result()
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.begin_create_or_update(rg, "c", group_spec())
    assert info.value.status_code == 429 and info.value.error.code == "TooManyRequests"
    assert 1 <= int(info.value.response.headers["Retry-After"]) <= 300
