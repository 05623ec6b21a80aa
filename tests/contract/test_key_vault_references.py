"""Key Vault references through the real client: the fields newer than the SDK's models reach ARM with the API
version that has them (2025-09-01), and no secret value is in the request."""

from __future__ import annotations

from typing import Any

from azure.mgmt.containerinstance import models

from acinode import types
from acinode.aci import newer
from contract import emulated

IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-0000000000c1/resourceGroups/ids/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader"
)
URI = "https://kv-demo.vault.azure.net/secrets/db-password"


def group_with_references() -> models.ContainerGroup:
    group = emulated.container_group()
    group.identity = models.ContainerGroupIdentity(
        type="UserAssigned", user_assigned_identities={IDENTITY: models.UserAssignedIdentities()}
    )
    volume = models.Volume(name="secrets-store", secret={})
    volume.additional_properties = {"secretReference": {"db-password": "secrets-store-0"}}
    group.volumes = [volume]
    group.containers[0].volume_mounts = [
        models.VolumeMount(name="secrets-store", mount_path="/mnt/secrets", read_only=True)
    ]
    group.additional_properties = {
        "properties": {
            "secretReferences": [{"name": "secrets-store-0", "identity": IDENTITY, "secretReferenceUri": URI}]
        }
    }
    return group


async def test_key_vault_references_are_sent_with_the_api_version_that_has_them(
    aci, clean_emulator, resource_group: str
) -> None:
    name = types.ContainerGroupName("kv")
    await clean_emulator.hook("POST", "stats/reset")
    accepted = await aci.create_or_update(name, group_with_references())
    assert accepted.name == name
    stats: dict[str, Any] = await clean_emulator.hook("GET", "stats")
    assert stats["apiVersions"].get("ContainerGroups_CreateOrUpdate") == {newer.API_VERSION: 1}, stats
    stored = await clean_emulator.hook("GET", f"groups/{emulated.SUBSCRIPTION}/{resource_group}/kv/secrets")
    assert stored["volumes"]["secrets-store"] == {
        "secretReference": {"db-password": "secrets-store-0"},
        "resolved": {"db-password": f"value of {URI}"},
    }


async def test_groups_without_newer_fields_keep_the_sdks_api_version(aci, clean_emulator) -> None:
    await clean_emulator.hook("POST", "stats/reset")
    await aci.create_or_update(types.ContainerGroupName("plain"), emulated.container_group())
    stats: dict[str, Any] = await clean_emulator.hook("GET", "stats")
    assert stats["apiVersions"].get("ContainerGroups_CreateOrUpdate") == {"2023-05-01": 1}, stats
