"""PersistentVolumeClaims bound to Azure Files PersistentVolumes (in-tree azureFile and file.csi.azure.com)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from mapping_builders import container, group, pod, problems, refs, schema_errors, secret, vnet_placement

from acinode import errors
from acinode.mapping import azurefiles, objects, pods, references

pytestmark = pytest.mark.timeout(2)

CLAIM_UID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ACCOUNT = secret({"azurestorageaccountname": "shopfiles", "azurestorageaccountkey": "a2V5"})
PATH = "spec.volumes[0].persistentVolumeClaim"


def _claim(volume_name: str = "pv-files", phase: str = "Bound") -> objects.PersistentVolumeClaim:
    return {
        "metadata": {"name": "files", "namespace": "shop", "uid": CLAIM_UID},
        "spec": {"volumeName": volume_name},
        "status": {"phase": phase},
    }


def _in_tree(**source: Any) -> objects.PersistentVolume:
    return {
        "metadata": {"name": "pv-files"},
        "spec": {
            "claimRef": {"namespace": "shop", "name": "files", "uid": CLAIM_UID},
            "azureFile": {"secretName": "storage", "shareName": "assets", **source},
        },
    }


def _csi(attributes: dict[str, str] | None = None, **source: Any) -> objects.PersistentVolume:
    csi: dict[str, Any] = {
        "driver": "file.csi.azure.com",
        "volumeHandle": "rg#shopfiles#assets#",
        "nodeStageSecretRef": {"name": "storage", "namespace": "storage-admin"},
        **source,
    }
    if attributes is not None:
        csi["volumeAttributes"] = attributes
    return {
        "metadata": {"name": "pv-files"},
        "spec": {"claimRef": {"namespace": "shop", "name": "files", "uid": CLAIM_UID}, "csi": csi},
    }  # type: ignore[typeddict-item]


def _refs(
    volume: objects.PersistentVolume,
    secrets: dict[tuple[str, str], objects.Secret] | None = None,
    claim: objects.PersistentVolumeClaim | None = None,
) -> references.ResolvedReferences:
    return dataclasses.replace(
        refs(),
        claims={"files": claim or _claim()},
        persistent_volumes={"pv-files": volume},
        volume_secrets=secrets if secrets is not None else {("shop", "storage"): ACCOUNT},
    )


def _pod(read_only: bool | None = None, mount: dict[str, Any] | None = None) -> objects.Pod:
    source: dict[str, Any] = {"claimName": "files"}
    if read_only is not None:
        source["readOnly"] = read_only
    return pod(
        container(volumeMounts=[{"name": "data", "mountPath": "/data", **(mount or {})}]),
        volumes=[{"name": "data", "persistentVolumeClaim": source}],
    )


CSI_SECRETS = {("storage-admin", "storage"): ACCOUNT}


def _without_stage_secret(volume: objects.PersistentVolume) -> objects.PersistentVolume:
    changed = copy.deepcopy(volume)
    del changed["spec"]["csi"]["nodeStageSecretRef"]
    return changed


@pytest.mark.parametrize(
    ("the_pod", "resolved", "expected"),
    [
        (_pod(), _refs(_in_tree()), {"shareName": "assets", "storageAccountName": "shopfiles"}),
        (_pod(True), _refs(_in_tree()), {"shareName": "assets", "readOnly": True}),
        (_pod(), _refs(_in_tree(readOnly=True)), {"readOnly": True}),
        # In-tree: the Secret's namespace is the pod's unless the PV names one.
        (
            _pod(),
            _refs(_in_tree(secretNamespace="storage-admin"), CSI_SECRETS),
            {"storageAccountName": "shopfiles"},
        ),
        # CSI: nodeStageSecretRef; the share from the volume handle.
        (_pod(), _refs(_csi(), CSI_SECRETS), {"shareName": "assets", "storageAccountKey": "a2V5"}),
        # CSI: shareName attribute wins over the handle; provisioner bookkeeping is fine.
        (
            _pod(),
            _refs(
                _csi(
                    {
                        "shareName": "other",
                        "csi.storage.k8s.io/pvc/name": "files",
                        "storage.kubernetes.io/csiProvisionerIdentity": "x",
                        "protocol": "smb",
                        "mountWithManagedIdentity": "false",
                    }
                ),
                CSI_SECRETS,
            ),
            {"shareName": "other"},
        ),
        # CSI without nodeStageSecretRef: volumeAttributes secretName, namespace default "default".
        (
            _pod(),
            _refs(_without_stage_secret(_csi({"secretName": "storage"})), {("default", "storage"): ACCOUNT}),
            {"storageAccountName": "shopfiles"},
        ),
        (_pod(), _refs(_csi(readOnly=True), CSI_SECRETS), {"readOnly": True}),
    ],
)
def test_claims_on_azure_files_mount_the_share(
    the_pod: objects.Pod, resolved: references.ResolvedReferences, expected: dict[str, Any]
) -> None:
    body = group(the_pod, vnet_placement(), resolved)
    assert schema_errors(body) == []
    share = body["properties"]["volumes"][0]["azureFile"]
    assert expected.items() <= share.items()
    mount = body["properties"]["containers"][0]["properties"]["volumeMounts"][0]
    assert mount["mountPath"] == "/data"


def test_read_only_mount_is_honoured() -> None:
    body = group(_pod(mount={"readOnly": True}), vnet_placement(), _refs(_in_tree()))
    assert body["properties"]["containers"][0]["properties"]["volumeMounts"][0]["readOnly"] is True


@pytest.mark.parametrize(
    ("resolved", "path", "reason"),
    [
        (dataclasses.replace(refs()), f"{PATH}.claimName", "PersistentVolumeClaim 'files' not found"),
        (_refs(_in_tree(), claim=_claim(phase="Pending")), f"{PATH}.claimName", "not bound yet"),
        (
            dataclasses.replace(_refs(_in_tree()), persistent_volumes={}),
            f"{PATH}.claimName",
            "PersistentVolume 'pv-files' of claim 'files' not found",
        ),
        # A PV bound to another namespace's claim is never mounted, whatever the claim says.
        (
            _refs(
                {
                    **_in_tree(),
                    "spec": {**_in_tree()["spec"], "claimRef": {"namespace": "bank", "name": "files"}},
                }
            ),
            f"{PATH}.claimName",
            "not bound to claim shop/files",
        ),
        (
            _refs(
                {
                    **_in_tree(),
                    "spec": {
                        **_in_tree()["spec"],
                        "claimRef": {**_in_tree()["spec"]["claimRef"], "uid": "x"},
                    },
                }
            ),
            f"{PATH}.claimName",
            "not bound to claim shop/files",
        ),
        (_refs(_in_tree(), secrets={}), PATH, "Secret shop/storage of PersistentVolume 'pv-files' not found"),
        (
            _refs(_in_tree(), secrets={("shop", "storage"): secret({"azurestorageaccountname": "x"})}),
            PATH,
            "lacks azurestorageaccountkey",
        ),
        (_refs(_in_tree(shareName="")), PATH, "needs a shareName"),
        (
            _refs({**_in_tree(), "spec": {**_in_tree()["spec"], "mountOptions": ["dir_mode=0777"]}}),
            PATH,
            "mountOptions dir_mode=0777",
        ),
        (
            _refs(
                {
                    "metadata": {"name": "pv-files"},
                    "spec": {"claimRef": {"namespace": "shop", "name": "files"}, "nfs": {}},
                }
            ),  # type: ignore[typeddict-unknown-key]
            PATH,
            "is not an Azure Files share (nfs)",
        ),
        (_refs(_csi(driver="disk.csi.azure.com"), CSI_SECRETS), PATH, "is not an Azure Files share"),
        (_refs(_csi({"mountWithManagedIdentity": "true"}), CSI_SECRETS), PATH, "not a managed identity"),
        (_refs(_csi({"folderName": "sub"}), CSI_SECRETS), PATH, "cannot mount a folder"),
        (_refs(_csi({"protocol": "nfs"}), CSI_SECRETS), PATH, "SMB only"),
        (_refs(_csi({"someNewKnob": "1"}), CSI_SECRETS), PATH, "cannot express it"),
        (_refs(_csi(fsType="ext4"), CSI_SECRETS), PATH, "no filesystem type"),
        (_refs(_without_stage_secret(_csi()), CSI_SECRETS), PATH, "names no storage account Secret"),
    ],
)
def test_refused_precisely(resolved: references.ResolvedReferences, path: str, reason: str) -> None:
    found = problems(_pod(), vnet_placement(), resolved)
    assert any(reason in text for key, text in found.items() if key == path), found


def test_sub_path_is_refused_on_a_claim_too() -> None:
    found = problems(_pod(mount={"subPath": "logs"}), vnet_placement(), _refs(_in_tree()))
    assert "whole volumes" in found["spec.containers[0].volumeMounts[0].subPath"]


def test_a_missing_or_unbound_claim_is_waited_for() -> None:

    for resolved in (refs(), _refs(_in_tree(), claim=_claim(phase="Pending"))):
        with pytest.raises(errors.UnsupportedPodSpecError) as caught:
            pods.container_group_from_pod(_pod(), vnet_placement(), resolved)
        assert caught.value.only_missing_objects


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        (_in_tree(), ("shop", "storage")),
        (_in_tree(secretNamespace="storage-admin"), ("storage-admin", "storage")),
        (_csi(), ("storage-admin", "storage")),
        (_without_stage_secret(_csi({"secretName": "s", "secretNamespace": "ns"})), ("ns", "s")),
        (_without_stage_secret(_csi({"SecretName": "s"})), ("default", "s")),
        (_without_stage_secret(_csi()), None),
        (_csi(driver="disk.csi.azure.com"), None),
    ],
)
def test_where_the_secret_of_a_volume_is_read(volume: objects.PersistentVolume, expected: Any) -> None:
    assert azurefiles.persistent_volume_secret(volume, "shop") == expected


def test_claims_are_named_references() -> None:
    needed = references.needed_references_from_pod(_pod())
    assert needed.claim_names == frozenset({"files"})
    assert [ref.kind for ref in needed.named] == ["PersistentVolumeClaim"]
