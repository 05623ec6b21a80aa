"""Azure Files shares, the only persistent storage ACI mounts: inline ``azureFile`` volumes and inline CSI
volumes of the ``file.csi.azure.com`` driver. Both name a Secret holding the storage account's name and key, as
AKS documents; ACI mounts the share with that key (no PersistentVolumeClaims, no identity-based mounts).
"""

from __future__ import annotations

from azure.mgmt.containerinstance import models

from acinode.mapping import fields, objects, problems, references

AZURE_FILE_CSI_DRIVER = "file.csi.azure.com"
AZURE_ACCOUNT_NAME_KEY = "azurestorageaccountname"
AZURE_ACCOUNT_KEY_KEY = "azurestorageaccountkey"
_CSI_ATTRIBUTES = ("secretName", "shareName", "secretNamespace")


def _share(
    secret_name: str,
    share_name: str,
    *,
    read_only: bool,
    path: str,
    refs: references.ResolvedReferences,
    found: problems.Problems,
) -> models.AzureFileVolume | None:
    secret = refs.secrets.get(secret_name)
    if secret is None:
        found.add(path, f"Secret {secret_name!r} not found", missing_object=True)
        return None
    data = references.secret_data(secret)
    missing = [key for key in (AZURE_ACCOUNT_NAME_KEY, AZURE_ACCOUNT_KEY_KEY) if key not in data]
    if missing:
        found.add(path, f"Secret {secret_name!r} lacks {' and '.join(missing)}")
        return None
    if not share_name:
        found.add(path, "needs a shareName")
        return None
    return models.AzureFileVolume(
        share_name=share_name,
        storage_account_name=data[AZURE_ACCOUNT_NAME_KEY].decode(errors="replace"),
        storage_account_key=data[AZURE_ACCOUNT_KEY_KEY].decode(errors="replace"),
        read_only=read_only or None,
    )


def azure_file_from_inline(
    source: objects.AzureFileVolumeSource,
    path: str,
    refs: references.ResolvedReferences,
    found: problems.Problems,
) -> models.AzureFileVolume | None:
    return _share(
        source.get("secretName", ""),
        source.get("shareName", ""),
        read_only=source.get("readOnly", False),
        path=path,
        refs=refs,
        found=found,
    )


def azure_file_from_csi(
    source: objects.CsiVolumeSource,
    path: str,
    namespace: str,
    refs: references.ResolvedReferences,
    found: problems.Problems,
) -> models.AzureFileVolume | None:
    driver = source.get("driver", "")
    if driver != AZURE_FILE_CSI_DRIVER:
        found.add(f"{path}.driver", f"ACI can mount only the {AZURE_FILE_CSI_DRIVER} CSI driver's shares")
        return None
    fields.check_fields(
        source,
        path,
        ("driver", "readOnly", "volumeAttributes"),
        {
            "fsType": "Azure Files shares have no filesystem type to choose",
            "nodePublishSecretRef": "give the storage account Secret as volumeAttributes.secretName",
        },
        found,
    )
    attributes = source.get("volumeAttributes", {})
    for key, value in attributes.items():
        if key == "secretNamespace" and value != namespace:
            found.add(problems.key_path(f"{path}.volumeAttributes", key), "must be the pod's own namespace")
        elif key not in _CSI_ATTRIBUTES:
            found.add(
                problems.key_path(f"{path}.volumeAttributes", key),
                "ACI's Azure Files volume takes only shareName and the storage account Secret (secretName)",
            )
    if not attributes.get("secretName"):
        found.add(
            f"{path}.volumeAttributes", "needs secretName: ACI mounts shares with a storage account key"
        )
        return None
    return _share(
        attributes["secretName"],
        attributes.get("shareName", ""),
        read_only=source.get("readOnly", False),
        path=path,
        refs=refs,
        found=found,
    )
