"""Container usage through the real client (azure-mgmt-monitor on the ACI client's pipeline) and the emulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from acinode import errors, settings, types
from acinode.aci import azure, ratelimit
from contract import emulated

JOB = types.ContainerGroupName("busy")


@pytest.fixture
async def usage_aci(
    clean_emulator: emulated.Emulator, resource_group: str, client_settings: settings.AciSettings
) -> AsyncIterator[azure.AzureAciApi]:
    fast = dataclasses.replace(client_settings, metrics_grain_seconds=1.0)
    async with azure.AzureAciApi(clean_emulator.target(resource_group), settings=fast) as api:
        yield api
        for group in await api.list_groups():
            await api.delete(group.name)


async def test_usage_comes_per_container_through_the_clients_pipeline(usage_aci: azure.AzureAciApi) -> None:
    command = ("sh", "-c", "usage cpu=250m memory=48Mi; sleep 3600")
    await usage_aci.create_or_update(JOB, emulated.container_group(command=command))

    async def read() -> object:
        now = dt.datetime.now(dt.UTC)
        usage = await usage_aci.container_usage(JOB, start=now - dt.timedelta(seconds=30), end=now)
        app = usage.containers.get("app")
        return usage if app and app.cpu_millicores and app.cpu_millicores[-1].average == 250.0 else None

    usage = await emulated.wait_for(read, within=20, what="a quarter core")
    assert usage.grain_seconds == 1.0  # type: ignore[attr-defined]
    assert usage.containers["app"].memory_bytes[-1].average == 48 * 2**20  # type: ignore[attr-defined]
    assert usage_aci.arm_requests.count("metrics", "200") >= 1


async def test_usage_of_a_missing_group_is_not_found(usage_aci: azure.AzureAciApi) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(errors.NotFoundError):
        await usage_aci.container_usage(types.ContainerGroupName("nope"), start=now, end=now)


async def test_usage_reads_in_a_lane_take_no_token_of_the_reconcilers_reads(
    usage_aci: azure.AzureAciApi,
) -> None:
    await usage_aci.create_or_update(JOB, emulated.container_group())
    lanes = ratelimit.InteractiveLanes(5.0, 1, max_queue_seconds=0.0)
    now = dt.datetime.now(dt.UTC)
    with ratelimit.interactive(lanes):
        await usage_aci.container_usage(JOB, start=now - dt.timedelta(seconds=5), end=now)
        with pytest.raises(errors.ThrottledError):
            await usage_aci.container_usage(JOB, start=now - dt.timedelta(seconds=5), end=now)
    assert usage_aci.arm_requests.count("metrics") == 1, "the lane's only token was spent, nothing else"
