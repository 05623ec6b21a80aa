"""Secrets Store CSI volumes (Azure provider) as ACI Key Vault references: what maps, what is refused and why."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from mapping_builders import IDENTITY, container, pod, vnet_placement

from acinode.aci import newer
from acinode.mapping import keyvault, placement, references
from acinode.mapping import pods as pod_mapping

pytestmark = pytest.mark.timeout(2)

CLIENT_ID = "6a0b4b3c-8f4e-4c6d-9a1b-2c3d4e5f6a7b"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECTS = """
array:
  - |
    objectName: db-password
    objectType: secret
  - |
    objectName: api-key
    objectType: secret
    objectVersion: 0123456789abcdef0123456789abcdef
    objectAlias: key.txt
"""


def provider_class(**parameters: Any) -> dict[str, Any]:
    base = {
        "keyvaultName": "kv-demo",
        "tenantId": TENANT,
        "userAssignedIdentityID": CLIENT_ID,
        "usePodIdentity": "false",
        "useVMManagedIdentity": "true",
        "objects": OBJECTS,
    }
    base.update(parameters)
    return {"spec": {"provider": "azure", "parameters": {k: v for k, v in base.items() if v is not None}}}


def kv_pod(namespace: str = "shop", read_only: bool = True) -> dict[str, Any]:
    return pod(
        container(volumeMounts=[{"name": "secrets-store", "mountPath": "/mnt/secrets", "readOnly": True}]),
        namespace=namespace,
        volumes=[
            {
                "name": "secrets-store",
                "csi": {
                    "driver": keyvault.DRIVER,
                    "readOnly": read_only,
                    "volumeAttributes": {"secretProviderClass": "app-secrets"},
                },
            }
        ],
    )


def where(namespaces: tuple[str, ...] = (), client_id: str = CLIENT_ID) -> placement.GroupPlacement:
    allowed = placement.AllowedIdentity(IDENTITY, namespaces, client_id=client_id)
    return dataclasses.replace(vnet_placement(), allowed_identities=(allowed,))


def resolved(cls: dict[str, Any] | None) -> references.ResolvedReferences:
    return references.ResolvedReferences(secret_provider_classes={"app-secrets": cls} if cls else {})


def test_a_provider_class_becomes_key_vault_references_fetched_with_its_identity() -> None:
    group = pod_mapping.container_group_from_pod(kv_pod(), where(), resolved(provider_class()))
    body = newer.request_body_json(group)
    props = body["properties"]
    assert props["secretReferences"] == [
        {
            "name": "secrets-store-0",
            "identity": IDENTITY,
            "secretReferenceUri": "https://kv-demo.vault.azure.net/secrets/db-password",
        },
        {
            "name": "secrets-store-1",
            "identity": IDENTITY,
            "secretReferenceUri": (
                "https://kv-demo.vault.azure.net/secrets/api-key/0123456789abcdef0123456789abcdef"
            ),
        },
    ]
    [volume] = props["volumes"]
    assert volume == {
        "name": "secrets-store",
        "secret": {},
        "secretReference": {"db-password": "secrets-store-0", "key.txt": "secrets-store-1"},
    }
    assert IDENTITY in body["identity"]["userAssignedIdentities"]


@pytest.mark.parametrize(
    ("cloud", "suffix"),
    [("AzureChinaCloud", "vault.azure.cn"), ("AzureUSGovernmentCloud", "vault.usgovcloudapi.net")],
)
def test_sovereign_clouds_use_their_vault_suffix(cloud: str, suffix: str) -> None:
    group = pod_mapping.container_group_from_pod(kv_pod(), where(), resolved(provider_class(cloudName=cloud)))
    uris = [r["secretReferenceUri"] for r in newer.request_body_json(group)["properties"]["secretReferences"]]
    assert all(uri.startswith(f"https://kv-demo.{suffix}/secrets/") for uri in uris)


CLASS = "SecretProviderClass shop/app-secrets.spec"


@pytest.mark.parametrize(
    ("the_class", "the_where", "path", "reason"),
    [
        (None, where(), "spec.volumes[0].csi.volumeAttributes.secretProviderClass", "not found"),
        (provider_class(), where(("payments",)), f"{CLASS}.parameters.userAssignedIdentityID", "not among"),
        (provider_class(), where(client_id=""), f"{CLASS}.parameters.userAssignedIdentityID", "not among"),
        (
            provider_class(userAssignedIdentityID=None),
            where(),
            f"{CLASS}.parameters.userAssignedIdentityID",
            "name",
        ),
        (provider_class(usePodIdentity="true"), where(), f"{CLASS}.parameters.usePodIdentity", "retired"),
        (
            provider_class(keyvaultName="no"),
            where(),
            f"{CLASS}.parameters.keyvaultName",
            "not a Key Vault name",
        ),
        (provider_class(cloudName="AzureStackCloud"), where(), f"{CLASS}.parameters.cloudName", "suffix"),
        (provider_class(tenantId=None), where(), f"{CLASS}.parameters.tenantId", "required"),
        (
            provider_class(objects="array:\n  - |\n    objectName: tls\n    objectType: cert\n"),
            where(),
            f"{CLASS}.parameters.objects[0].objectType",
            "as stored",
        ),
        (
            provider_class(
                objects="array:\n  - |\n    objectName: a\n    objectType: secret\n    objectEncoding: base64\n"
            ),
            where(),
            f"{CLASS}.parameters.objects[0].objectEncoding",
            "no conversion",
        ),
        (provider_class(objects="not: [an, array"), where(), f"{CLASS}.parameters.objects", "YAML"),
        (
            provider_class(filePermission="0400"),
            where(),
            f"{CLASS}.parameters.filePermission",
            "cannot honour",
        ),
    ],
)
def test_what_acis_references_cannot_do_is_refused_by_field(
    the_class: dict[str, Any] | None, the_where: placement.GroupPlacement, path: str, reason: str
) -> None:
    with pytest.raises(Exception) as caught:
        pod_mapping.container_group_from_pod(kv_pod(), the_where, resolved(the_class))
    found = {p.path: p.reason for p in caught.value.problems}  # type: ignore[attr-defined]
    assert path in found, found
    assert reason in found[path], found[path]


def test_other_providers_and_synced_secrets_are_refused() -> None:
    other = {"spec": {"provider": "vault", "parameters": {}}}
    synced = provider_class()
    synced["spec"]["secretObjects"] = [{"secretName": "copied", "type": "Opaque", "data": []}]
    for cls, path in ((other, f"{CLASS}.provider"), (synced, f"{CLASS}.secretObjects")):
        with pytest.raises(Exception) as caught:
            pod_mapping.container_group_from_pod(kv_pod(), where(), resolved(cls))
        assert path in {p.path for p in caught.value.problems}  # type: ignore[attr-defined]


def test_a_writable_mount_is_refused_as_the_driver_refuses_it() -> None:
    with pytest.raises(Exception) as caught:
        pod_mapping.container_group_from_pod(kv_pod(read_only=False), where(), resolved(provider_class()))
    assert "spec.volumes[0].csi.readOnly" in {p.path for p in caught.value.problems}  # type: ignore[attr-defined]


def test_the_provider_class_is_a_reference_of_the_pods_namespace() -> None:
    needed = references.needed_references_from_pod(kv_pod())
    assert needed.provider_class_names == frozenset({"app-secrets"})
    assert not needed.secret_names
