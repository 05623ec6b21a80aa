"""What ARM's failures become at the client's boundary, end to end against the emulator."""

from __future__ import annotations

import dataclasses
import time

import pytest
from azure.mgmt.containerinstance import models

from acinode import errors, types
from acinode.aci import azure, target
from contract import emulated

WEB = types.ContainerGroupName("web")


async def test_a_wrong_token_is_an_authentication_error_and_not_retried(
    clean_emulator, resource_group, client_settings
) -> None:
    async with emulated.make_client(clean_emulator, resource_group, client_settings, token="wrong") as aci:
        with pytest.raises(errors.AuthenticationError):
            await aci.get(WEB)
        assert aci.counter.snapshot() == {("get", "401"): 1}


async def test_a_missing_group_is_not_found(aci) -> None:
    with pytest.raises(errors.NotFoundError):
        await aci.get(types.ContainerGroupName("missing"))


async def test_a_missing_resource_group_is_not_found(aci, clean_emulator, resource_group) -> None:
    await clean_emulator.hook("POST", f"resource-groups/{emulated.SUBSCRIPTION}/{resource_group}/missing")
    try:
        with pytest.raises(errors.NotFoundError, match="ResourceGroupNotFound"):
            await aci.list_groups()
    finally:
        await clean_emulator.hook(
            "DELETE", f"resource-groups/{emulated.SUBSCRIPTION}/{resource_group}/missing"
        )


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (emulated.container_group(cpu=64.0), "ResourceRequestsExceedMaxAllowed"),
        (emulated.container_group(container_name="Not_Valid"), None),
    ],
    ids=["too-much-cpu", "bad-container-name"],
)
async def test_a_refused_spec_is_an_invalid_request_with_the_services_code(
    aci, spec: models.ContainerGroup, code: str | None
) -> None:
    with pytest.raises(errors.InvalidRequestError) as refused:
        await aci.create_or_update(WEB, spec)
    assert refused.value.code and not refused.value.code.startswith("HTTP")
    if code:
        assert refused.value.code == code
    assert str(refused.value)
    assert aci.counter.count("create_or_update") == 1  # a 400 is never retried


async def test_a_conflicting_put_is_a_conflict(aci) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    elsewhere = emulated.container_group()
    elsewhere.location = "eastus"  # a group cannot move to another region
    with pytest.raises(errors.ConflictError, match="InvalidResourceLocation"):
        await aci.create_or_update(WEB, elsewhere)


async def test_a_group_over_quota_is_quota_exceeded(aci, clean_emulator) -> None:
    used = {entry.name: entry for entry in await aci.location_usage()}
    cores = used["StandardCores"].current_value
    await clean_emulator.hook("PATCH", "config", {"quotaCores": cores + 1})
    await aci.create_or_update(types.ContainerGroupName("first"), emulated.container_group(cpu=1.0))
    with pytest.raises(errors.QuotaExceededError) as refused:
        await aci.create_or_update(types.ContainerGroupName("second"), emulated.container_group(cpu=1.0))
    assert refused.value.code == "ContainerGroupQuotaReached"
    assert "StandardCores" in str(refused.value)
    assert refused.value.retryable


async def test_an_unreachable_registry_is_image_inaccessible(aci) -> None:
    image = "unreachable.invalid/team/app:1.0"
    with pytest.raises(errors.ImageInaccessibleError) as refused:
        await aci.create_or_update(WEB, emulated.container_group(image=image))
    assert refused.value.image == image


async def test_a_private_image_needs_valid_registry_credentials(aci) -> None:
    image = "private.invalid/team/app:1.0"
    with pytest.raises(errors.ImageInaccessibleError):
        await aci.create_or_update(WEB, emulated.container_group(image=image))
    credentials = [
        models.ImageRegistryCredential(server="private.invalid", username="puller", password="valid-password")
    ]
    accepted = await aci.create_or_update(WEB, emulated.container_group(image=image, credentials=credentials))
    assert accepted.provisioning_state == "Pending"


async def test_a_transient_server_error_is_retried_through(aci, clean_emulator) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    await clean_emulator.hook(
        "POST", "faults", {"operation": "ContainerGroups_Get", "status": 500, "count": 2}
    )
    aci.counter.reset()
    group = await aci.get(WEB)
    assert group.name == WEB
    assert aci.counter.snapshot() == {("get", "500"): 2, ("get", "200"): 1}


async def test_a_dropped_connection_is_retried_through(aci, clean_emulator) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    await clean_emulator.hook(
        "POST", "faults", {"operation": "ContainerGroups_Get", "status": None, "drop": True, "count": 1}
    )
    aci.counter.reset()
    await aci.get(WEB)
    assert aci.counter.count("get", "200") == 1
    # The emulator did drop one connection. Who re-sent depends on the connection: aiohttp itself re-sends
    # an idempotent request once when a pooled keep-alive connection drops; else the SDK's retry policy does.
    faults = await clean_emulator.hook("GET", "faults")
    assert [rule["count"] for rule in faults["rules"]] == [0]
    assert 1 <= aci.counter.count("get") <= 2


async def test_a_lasting_server_error_surfaces_as_transient_after_bounded_retries(
    aci, clean_emulator
) -> None:
    await clean_emulator.hook(
        "POST", "faults", {"operation": "ContainerGroups_CreateOrUpdate", "status": 503}
    )
    with pytest.raises(errors.TransientError):
        await aci.create_or_update(WEB, emulated.container_group())
    assert aci.counter.snapshot() == {("create_or_update", "503"): 4}  # 1 + transient_retries


async def test_an_unreachable_endpoint_is_backend_unavailable(resource_group, client_settings) -> None:
    nowhere = target.AciTarget(
        emulated.SUBSCRIPTION,
        types.ResourceGroup(resource_group),
        emulated.REGION,
        cloud=target.custom_cloud("https://127.0.0.1:9"),  # the discard port: nothing listens there
        credential=target.StaticToken("t"),
    )
    quick = dataclasses.replace(client_settings, transient_retries=0)
    async with azure.AzureAciApi(nowhere, settings=quick) as aci:
        with pytest.raises(errors.BackendUnavailableError):
            await aci.location_usage()


async def test_429_with_retry_after_is_waited_out(aci, clean_emulator) -> None:
    await aci.create_or_update(WEB, emulated.container_group())
    await clean_emulator.hook(
        "POST",
        "faults",
        {
            "operation": "ContainerGroups_Get",
            "status": 429,
            "code": "TooManyRequests",
            "retryAfter": 1,
            "count": 2,
        },
    )
    aci.counter.reset()
    started = time.monotonic()
    await aci.get(WEB)
    assert time.monotonic() - started >= 2.0  # two pauses of the 1 s the server asked for
    assert aci.counter.snapshot() == {("get", "429"): 2, ("get", "200"): 1}
