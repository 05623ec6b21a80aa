"""Azure Files shares, the only persistent storage ACI mounts: inline ``azureFile`` volumes, inline CSI volumes
of the ``file.csi.azure.com`` driver, and PersistentVolumeClaims bound to a PersistentVolume of either kind. All
name a Secret holding the storage account's name and key, as AKS documents; ACI mounts the share with that key
(ACI API 2023-05-01 has no identity-based Azure Files mount).

A claim is followed as a kubelet follows it: the pod's own namespace's PVC, bound (``Bound``, ``volumeName``) to a
PersistentVolume whose ``claimRef`` names that PVC back. The PV's Secret is found where its driver looks: the
in-tree ``azureFile.secretNamespace`` (default: the pod's namespace); for CSI ``nodeStageSecretRef``, else
``volumeAttributes.secretName``/``secretNamespace`` (default ``default``), as the azurefile CSI driver does.
"""

from __future__ import annotations

from azure.mgmt.containerinstance import models

from acinode.mapping import fields, objects, problems, references

#: volumeAttributes (lower-cased, as the driver reads them) that change nothing ACI must do: where the share
#: lives is in the Secret's account name, and the rest is the provisioner's bookkeeping.
_PV_CSI_ATTRIBUTES = frozenset(
    {
        "sharename",
        "storageaccount",
        "resourcegroup",
        "subscriptionid",
        "secretname",
        "secretnamespace",
        "skuname",
        "storage.kubernetes.io/csiprovisioneridentity",
        "csi.storage.k8s.io/pv/name",
        "csi.storage.k8s.io/pvc/name",
        "csi.storage.k8s.io/pvc/namespace",
    }
)
_PV_CSI_REFUSED = {
    "mountwithmanagedidentity": "ACI mounts Azure Files with a storage account key only, not a managed identity",
    "clientid": "ACI mounts Azure Files with a storage account key only, not a managed identity",
    "folderName".lower(): "ACI mounts a share whole; it cannot mount a folder of it",
    "server": "ACI mounts shares of the storage account's own endpoint only",
    "storageendpointsuffix": "ACI mounts shares of the storage account's own endpoint only",
}
#: PersistentVolume spec fields that are not its volume source (what remains names the source's kind).
_PV_SPEC_FIELDS = frozenset(
    {
        "claimRef",
        "accessModes",
        "capacity",
        "storageClassName",
        "persistentVolumeReclaimPolicy",
        "volumeMode",
        "nodeAffinity",
        "mountOptions",
        "volumeAttributesClassName",
    }
)
#: The azurefile CSI driver's default secretNamespace.
CSI_DEFAULT_SECRET_NAMESPACE = "default"

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
    return _share_from_secret(
        secret, repr(secret_name), share_name, read_only=read_only, path=path, found=found
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


def _claimed_volume(
    source: objects.PersistentVolumeClaimVolumeSource,
    path: str,
    namespace: str,
    refs: references.ResolvedReferences,
    found: problems.Problems,
) -> tuple[str, objects.PersistentVolume] | None:
    """The PersistentVolume the pod's claim is bound to, both ways, or None with the problem recorded."""
    claim_name = source.get("claimName", "")
    claim = refs.claims.get(claim_name)
    if claim is None:
        found.add(f"{path}.claimName", f"PersistentVolumeClaim {claim_name!r} not found", missing_object=True)
        return None
    volume_name = claim.get("spec", {}).get("volumeName", "")
    if claim.get("status", {}).get("phase") != "Bound" or not volume_name:
        # As a kubelet: the pod waits until its claim is bound.
        found.add(
            f"{path}.claimName", f"PersistentVolumeClaim {claim_name!r} is not bound yet", missing_object=True
        )
        return None
    volume = refs.persistent_volumes.get(volume_name)
    if volume is None:
        found.add(
            f"{path}.claimName",
            f"PersistentVolume {volume_name!r} of claim {claim_name!r} not found",
            missing_object=True,
        )
        return None
    claim_ref = volume.get("spec", {}).get("claimRef", {})
    claim_uid = claim.get("metadata", {}).get("uid")
    if (
        claim_ref.get("namespace") != namespace
        or claim_ref.get("name") != claim_name
        or (claim_ref.get("uid") and claim_uid and claim_ref.get("uid") != claim_uid)
    ):
        # A claim may only use a volume bound back to it: nothing else lets a namespace reach another's share.
        found.add(
            f"{path}.claimName",
            f"PersistentVolume {volume_name!r} is not bound to claim {namespace}/{claim_name}",
        )
        return None
    return volume_name, volume


def persistent_volume_secret(volume: objects.PersistentVolume, pod_namespace: str) -> tuple[str, str] | None:
    """(namespace, name) of the storage account Secret an Azure Files PersistentVolume names, where its driver
    looks for it; None when it names none (or is not an Azure Files volume)."""
    spec = volume.get("spec", {})
    if "azureFile" in spec:
        source = spec["azureFile"]
        name = source.get("secretName", "")
        return (source.get("secretNamespace") or pod_namespace, name) if name else None
    csi = spec.get("csi")
    if csi is None or csi.get("driver") != AZURE_FILE_CSI_DRIVER:
        return None
    stage = csi.get("nodeStageSecretRef")
    if stage and stage.get("name"):
        return stage.get("namespace") or CSI_DEFAULT_SECRET_NAMESPACE, stage["name"]
    attributes = {key.lower(): value for key, value in csi.get("volumeAttributes", {}).items()}
    if attributes.get("secretname"):
        return attributes.get("secretnamespace") or CSI_DEFAULT_SECRET_NAMESPACE, attributes["secretname"]
    return None


def _share_from_secret(
    secret: objects.Secret | None,
    where: str,
    share_name: str,
    *,
    read_only: bool,
    path: str,
    found: problems.Problems,
) -> models.AzureFileVolume | None:
    if secret is None:
        found.add(path, f"Secret {where} not found", missing_object=True)
        return None
    data = references.secret_data(secret)
    missing = [key for key in (AZURE_ACCOUNT_NAME_KEY, AZURE_ACCOUNT_KEY_KEY) if key not in data]
    if missing:
        found.add(path, f"Secret {where} lacks {' and '.join(missing)}")
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


def azure_file_from_claim(
    source: objects.PersistentVolumeClaimVolumeSource,
    path: str,
    namespace: str,
    refs: references.ResolvedReferences,
    found: problems.Problems,
) -> models.AzureFileVolume | None:
    """The Azure Files share behind a PersistentVolumeClaim, read-only when the pod's volume or the PV says so."""
    claimed = _claimed_volume(source, path, namespace, refs, found)
    if claimed is None:
        return None
    volume_name, volume = claimed
    spec = volume.get("spec", {})
    where = f"PersistentVolume {volume_name!r}"
    ok = True
    if spec.get("mountOptions"):
        found.add(
            path,
            f"{where} has mountOptions {', '.join(spec['mountOptions'])}: ACI mounts Azure Files with its own "
            "options and takes none (remove them from the PV or its StorageClass)",
        )
        ok = False
    if spec.get("volumeMode", "Filesystem") != "Filesystem":
        found.add(path, f"{where} is a block volume; ACI mounts file systems only")
        ok = False
    pv_secret = persistent_volume_secret(volume, namespace)
    secret = refs.volume_secrets.get(pv_secret) if pv_secret else None
    secret_where = f"{pv_secret[0]}/{pv_secret[1]} of {where}" if pv_secret else ""
    if "azureFile" in spec:
        share = spec["azureFile"]
        fields.check_fields(
            share,
            f"{where}.spec.azureFile",
            ("secretName", "shareName", "readOnly", "secretNamespace"),
            {},
            found,
        )
        if pv_secret is None:
            found.add(path, f"{where} names no secretName")
            return None
        read_only = bool(source.get("readOnly") or share.get("readOnly"))
        result = _share_from_secret(
            secret, secret_where, share.get("shareName", ""), read_only=read_only, path=path, found=found
        )
        return result if ok else None
    csi = spec.get("csi")
    if csi is None or csi.get("driver") != AZURE_FILE_CSI_DRIVER:
        kinds = ", ".join(key for key in spec if key not in _PV_SPEC_FIELDS)
        found.add(
            path,
            f"{where} is not an Azure Files share ({kinds or 'no source'}); ACI mounts only azureFile and "
            f"{AZURE_FILE_CSI_DRIVER} volumes",
        )
        return None
    attributes = {key.lower(): value for key, value in csi.get("volumeAttributes", {}).items()}
    for key, value in attributes.items():
        attribute_path = problems.key_path(f"{where}.spec.csi.volumeAttributes", key)
        if key in _PV_CSI_REFUSED:
            if key != "mountwithmanagedidentity" or value.lower() == "true":
                found.add(path, f"{attribute_path}: {_PV_CSI_REFUSED[key]}")
                ok = False
        elif key == "protocol":
            if value.lower() != "smb":
                found.add(path, f"{attribute_path}: ACI mounts Azure Files over SMB only, not {value}")
                ok = False
        elif key not in _PV_CSI_ATTRIBUTES:
            found.add(path, f"{attribute_path}: ACI's Azure Files volume cannot express it")
            ok = False
    if csi.get("fsType"):
        found.add(path, f"{where}: Azure Files shares have no filesystem type to choose")
        ok = False
    if pv_secret is None:
        found.add(
            path,
            f"{where} names no storage account Secret (nodeStageSecretRef or volumeAttributes secretName): the "
            "CSI driver would read the key with its own Azure identity, which acinode does not borrow",
        )
        return None
    # The share: the shareName attribute, else the volume handle's third field (rg#account#share#…).
    handle = csi.get("volumeHandle", "").split("#")
    share_name = attributes.get("sharename") or (handle[2] if len(handle) > 2 else "")
    read_only = bool(source.get("readOnly") or csi.get("readOnly"))
    result = _share_from_secret(secret, secret_where, share_name, read_only=read_only, path=path, found=found)
    return result if ok else None
