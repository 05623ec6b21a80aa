"""Container groups through the real client and the emulator: create, observe, list, stop/start, delete.

Every create and delete is one ARM request: the client submits, the status sync observes.
"""

from __future__ import annotations

import pytest

from acinode import errors, types
from acinode.aci import azure
from contract import emulated

WEB = types.ContainerGroupName("web")


async def provisioned(
    aci: azure.AzureAciApi, name: types.ContainerGroupName, state: str = "Succeeded"
) -> object:
    async def check() -> object:
        group = await aci.get(name)
        return group if group.provisioning_state == state else None

    return await emulated.wait_for(check, within=15, what=f"{name} provisioningState {state}")


async def test_create_submits_one_put_and_returns_without_waiting(aci, clean_emulator) -> None:
    await clean_emulator.hook("POST", "stats/reset")
    accepted = await aci.create_or_update(WEB, emulated.container_group(tags={"owner": "acinode"}))
    assert accepted.name == WEB
    assert accepted.provisioning_state == "Pending"
    assert accepted.tags == {"owner": "acinode"}
    # Exactly one ARM request left the client, and the emulator saw exactly one.
    assert aci.counter.snapshot() == {("create_or_update", "201"): 1}
    stats = await clean_emulator.hook("GET", "stats")
    assert stats["total"] == 1


async def test_a_created_group_is_later_seen_running_through_get(aci) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    group = await provisioned(aci, WEB)
    assert group.instance_view is not None
    assert group.instance_view.state == "Running"
    [container] = group.containers
    assert container.instance_view is not None
    assert container.instance_view.current_state is not None
    assert container.instance_view.current_state.state == "Running"


async def test_create_is_idempotent(aci) -> None:
    spec = emulated.container_group()
    await aci.create_or_update(WEB, spec)
    await provisioned(aci, WEB)
    again = await aci.create_or_update(WEB, spec)
    assert again.provisioning_state == "Succeeded"  # the same spec changes nothing
    group = await aci.get(WEB)
    assert group.instance_view is not None and group.instance_view.state == "Running"


async def test_a_provisioning_failure_is_seen_by_a_later_get(aci, clean_emulator) -> None:
    await clean_emulator.hook(
        "POST", "lro/fail-next", {"code": "InsufficientCapacity", "message": "No capacity in westeurope."}
    )
    accepted = await aci.create_or_update(WEB, emulated.container_group())
    assert accepted.provisioning_state == "Pending"  # the submit itself succeeded
    await provisioned(aci, WEB, state="Failed")
    assert aci.counter.count("operation_status") == 0  # the client never polled the LRO


async def test_delete_returns_at_once_and_may_repeat(aci) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    assert await aci.delete(WEB) is True
    assert aci.counter.count("delete") == 1
    with pytest.raises(errors.NotFoundError):
        await aci.get(WEB)
    assert await aci.delete(WEB) is False  # a missing group counts as deleted
    assert await aci.delete(types.ContainerGroupName("never-existed")) is False


async def test_list_returns_only_groups_with_our_tags_across_pages(aci, clean_emulator) -> None:
    ours = {"acinode.dev/cluster": "c1", "acinode.dev/node": "vn-1"}
    for index in range(7):
        await aci.create_or_update(
            types.ContainerGroupName(f"ours-{index}"), emulated.container_group(tags=ours)
        )
    await aci.create_or_update(
        types.ContainerGroupName("other-node"),
        emulated.container_group(tags={"acinode.dev/cluster": "c1", "acinode.dev/node": "vn-2"}),
    )
    await aci.create_or_update(
        types.ContainerGroupName("not-ours"), emulated.container_group(tags={"app": "x"})
    )
    aci.counter.reset()

    listed = await aci.list_groups(ours)

    assert sorted(g.name for g in listed) == [f"ours-{i}" for i in range(7)]
    assert all(g.tags == ours for g in listed)
    assert all(g.provisioning_state for g in listed)
    assert aci.counter.count("list") == 3  # 9 groups, 3 per page: the client followed every nextLink
    everything = await aci.list_groups()
    assert len(everything) == 9


async def test_a_listed_group_tells_whether_it_is_still_provisioning(aci, clean_emulator) -> None:
    await clean_emulator.hook("PATCH", "config", {"provisioningDelaySeconds": 30.0})
    await aci.create_or_update(WEB, emulated.container_group())
    [summary] = await aci.list_groups()
    assert summary.is_provisioning()
    assert summary.location == emulated.REGION


async def test_stop_start_and_restart_are_submitted_and_observed(aci) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    await provisioned(aci, WEB)

    await aci.stop(WEB)
    stopped = await aci.get(WEB)
    assert stopped.instance_view is not None and stopped.instance_view.state == "Stopped"

    await aci.start(WEB)

    async def running() -> bool:
        group = await aci.get(WEB)
        return group.instance_view is not None and group.instance_view.state == "Running"

    await emulated.wait_for(running, within=15, what="the group running again after start")

    await aci.restart(WEB)
    await emulated.wait_for(running, within=15, what="the group running again after restart")
    assert aci.counter.count("operation_status") == 0
    assert aci.counter.count("start") == 1 and aci.counter.count("restart") == 1


async def test_location_usage_reports_the_regions_quotas(aci) -> None:
    await aci.create_or_update(WEB, emulated.container_group(cpu=1.0))
    await provisioned(aci, WEB)
    usage = {entry.name: entry for entry in await aci.location_usage()}
    assert "StandardCores" in usage
    assert usage["StandardCores"].limit > 0
    assert usage["StandardCores"].current_value >= 1
