"""Volumes and mounts: what ACI's emptyDir, secret, Azure Files and gitRepo volumes can carry.

ACI has no ConfigMap, projected or downward API volume; all three become an ACI *secret* volume, a flat
directory of files fixed at create time. ``items`` renames and filters files exactly; a file in a
subdirectory or with a mode other than the default 0644 cannot be expressed and is refused, as is
``subPath`` (ACI mounts whole volumes). virtual-kubelet's provider ignores items, paths, modes and subPath
instead.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import cast

from azure.mgmt.containerinstance import models

from acinode.mapping import (
    azurefiles,
    downward,
    fields,
    keyvault,
    names,
    objects,
    placement,
    problems,
    references,
    resources,
)

DEFAULT_MODE = 0o644
MAX_VOLUMES = 20

_HOST_ONLY = "a virtual node has no host of its own to take it from"
_NOT_AZURE_FILES = (
    "ACI mounts only emptyDir, secret/configMap/projected/downwardAPI (as files), Azure Files (inline "
    "azureFile or the file.csi.azure.com CSI driver), Key Vault secrets (the secrets-store.csi.k8s.io driver's "
    "Azure provider) and gitRepo volumes"
)
_REFUSED_SOURCES = {
    "hostPath": _HOST_ONLY,
    "ephemeral": "generic ephemeral volumes are PersistentVolumeClaims, which ACI cannot attach",
    "image": "ACI cannot mount an image as a volume",
    "azureDisk": "ACI cannot attach Azure disks; use an Azure Files share",
}
_SUPPORTED_SOURCES = (
    "emptyDir",
    "secret",
    "configMap",
    "projected",
    "downwardAPI",
    "azureFile",
    "csi",
    "gitRepo",
    "persistentVolumeClaim",
)
_OWNER = "ACI cannot choose the owner of the files it writes"
#: Fields of each supported source; anything else non-empty is refused (``fields.check_fields``).
_SOURCE_FIELDS = {
    "emptyDir": ("medium", "sizeLimit"),
    "secret": ("secretName", "items", "defaultMode", "optional"),
    "configMap": ("name", "items", "defaultMode", "optional"),
    "downwardAPI": ("items", "defaultMode"),
    "projected": ("sources", "defaultMode"),
    "azureFile": ("secretName", "shareName", "readOnly"),
    "gitRepo": ("repository", "revision", "directory"),
    "persistentVolumeClaim": ("claimName", "readOnly"),
}
_SOURCE_REFUSED = {"defaultUser": _OWNER, "mode": "ACI sets the permissions of an emptyDir itself"}
_ITEM_REFUSED = {"user": _OWNER}
_LINUX_ONLY = (
    "secret",
    "configMap",
    "projected",
    "downwardAPI",
    "azureFile",
    "csi",
    "gitRepo",
    "persistentVolumeClaim",
)


@dataclasses.dataclass(frozen=True)
class VolumeContext:
    pod: objects.Pod
    where: placement.GroupPlacement
    refs: references.ResolvedReferences
    container_resources: Mapping[str, resources.ContainerResources]


def _mode_ok(mode: int | None, path: str, found: problems.Problems) -> None:
    if mode is not None and mode != DEFAULT_MODE:
        found.add(path, f"ACI sets its own file modes; only the default 0644 can be honoured, not {mode:#o}")


def _file_path(path_value: str, path: str, found: problems.Problems) -> str | None:
    if "/" in path_value.strip("/"):
        found.add(path, f"ACI's secret volume is flat: {path_value!r} would need a subdirectory")
        return None
    return path_value.strip("/")


def _key_files(
    data: Mapping[str, bytes] | None,
    source: objects.SecretProjection | objects.ConfigMapVolumeSource | objects.SecretVolumeSource,
    *,
    name: str,
    kind: str,
    path: str,
    found: problems.Problems,
) -> dict[str, bytes]:
    """Files of a Secret or ConfigMap source, honouring ``items`` and ``optional``."""
    optional = source.get("optional", False)
    if data is None:
        if not optional:
            found.add(path, f"{kind} {name!r} not found", missing_object=True)
        return {}
    items = source.get("items")
    if not items:
        return dict(data)
    files: dict[str, bytes] = {}
    for index, item in enumerate(items):
        item_path = f"{path}.items[{index}]"
        fields.check_fields(item, item_path, ("key", "path", "mode"), _ITEM_REFUSED, found)
        _mode_ok(item.get("mode"), f"{item_path}.mode", found)
        key = item.get("key", "")
        if key not in data:
            if not optional:
                found.add(f"{item_path}.key", f"{kind} {name!r} has no key {key!r}")
            continue
        file_name = _file_path(item.get("path", key), f"{item_path}.path", found)
        if file_name is not None:
            files[file_name] = data[key]
    return files


def _downward_files(
    source: objects.DownwardApiVolumeSource, path: str, ctx: VolumeContext, found: problems.Problems
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for index, item in enumerate(source.get("items", [])):
        item_path = f"{path}.items[{index}]"
        fields.check_fields(
            item, item_path, ("path", "fieldRef", "resourceFieldRef", "mode"), _ITEM_REFUSED, found
        )
        _mode_ok(item.get("mode"), f"{item_path}.mode", found)
        file_name = _file_path(item.get("path", ""), f"{item_path}.path", found)
        value: str | None = None
        if "fieldRef" in item:
            field_path = item["fieldRef"].get("fieldPath", "")
            value = downward.field_value(
                ctx.pod,
                field_path,
                f"{item_path}.fieldRef",
                ctx.where,
                pod_ip=None,
                found=found,
                for_volume=True,
            )
        elif "resourceFieldRef" in item:
            selector = item["resourceFieldRef"]
            container = ctx.container_resources.get(selector.get("containerName", ""))
            value = downward.resource_value(selector, f"{item_path}.resourceFieldRef", container, found)
        if file_name is not None and value is not None:
            files[file_name] = value.encode()
    return files


def _merge(files: dict[str, bytes], more: Mapping[str, bytes], path: str, found: problems.Problems) -> None:
    for name, content in more.items():
        if name in files:
            found.add(path, f"two sources write the file {name!r}")
        files[name] = content


def _projected_files(
    source: objects.ProjectedVolumeSource, path: str, ctx: VolumeContext, found: problems.Problems
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for index, projection in enumerate(source.get("sources", [])):
        source_path = f"{path}.sources[{index}]"
        fields.check_fields(
            projection,
            source_path,
            ("secret", "configMap", "downwardAPI", "serviceAccountToken"),
            {
                "clusterTrustBundle": "ACI cannot follow ClusterTrustBundles; project a ConfigMap instead",
                "podCertificate": "acinode does not issue pod certificates",
            },
            found,
        )
        if "secret" in projection:
            secret_source = projection["secret"]
            name = secret_source.get("name", "")
            secret = ctx.refs.secrets.get(name)
            data = references.secret_data(secret) if secret is not None else None
            more = _key_files(
                data, secret_source, name=name, kind="Secret", path=f"{source_path}.secret", found=found
            )
        elif "configMap" in projection:
            config_source = projection["configMap"]
            name = config_source.get("name", "")
            config_map = ctx.refs.config_maps.get(name)
            data = references.config_map_data(config_map) if config_map is not None else None
            more = _key_files(
                data, config_source, name=name, kind="ConfigMap", path=f"{source_path}.configMap", found=found
            )
        elif "downwardAPI" in projection:
            more = _downward_files(projection["downwardAPI"], f"{source_path}.downwardAPI", ctx, found)
        elif "serviceAccountToken" in projection:
            more = _token_file(
                projection["serviceAccountToken"], f"{source_path}.serviceAccountToken", ctx, found
            )
        else:
            more = {}
        _merge(files, more, source_path, found)
    return files


def _token_file(
    projection: objects.ServiceAccountTokenProjection, path: str, ctx: VolumeContext, found: problems.Problems
) -> dict[str, bytes]:
    fields.check_fields(projection, path, ("audience", "expirationSeconds", "path"), _ITEM_REFUSED, found)
    audience = projection.get("audience", references.DEFAULT_AUDIENCE)
    token = ctx.refs.service_account_tokens.get(audience)
    file_name = _file_path(projection.get("path", ""), f"{path}.path", found)
    if token is None:
        found.add(
            path,
            f"no service-account token was obtained for audience {audience or '(default)'!r}",
            missing_object=True,
        )
        return {}
    return {file_name: token.encode()} if file_name is not None else {}


def _secret_volume(name: str, files: Mapping[str, bytes]) -> models.Volume:
    if not files:
        # An optional source that does not exist mounts as an empty directory, as on a kubelet.
        return models.Volume(name=name, empty_dir={})
    return models.Volume(
        name=name, secret={file: base64.b64encode(content).decode() for file, content in files.items()}
    )


def _volume(
    volume: objects.Volume, path: str, ctx: VolumeContext, found: problems.Problems
) -> models.Volume | None:
    name = names.aci_volume_name(volume.get("name", ""))
    kinds = [key for key in volume if key != "name"]
    for kind in kinds:
        if kind in _REFUSED_SOURCES:
            found.add(f"{path}.{kind}", _REFUSED_SOURCES[kind])
        elif kind not in _SUPPORTED_SOURCES:
            found.add(f"{path}.{kind}", _NOT_AZURE_FILES)
        elif kind in _SOURCE_FIELDS:
            source = cast(Mapping[str, object], volume)[kind]
            fields.check_fields(source, f"{path}.{kind}", _SOURCE_FIELDS[kind], _SOURCE_REFUSED, found)
        if ctx.where.is_windows and kind in _LINUX_ONLY:
            reason = f"ACI offers {kind} volumes to Linux container groups only"
            if kind == "projected":
                reason += " (set automountServiceAccountToken: false to avoid the token volume)"
            found.add(f"{path}.{kind}", reason)
    if "emptyDir" in volume:
        medium = volume["emptyDir"].get("medium", "")
        if medium:
            found.add(f"{path}.emptyDir.medium", f"ACI's emptyDir is disk-backed; it has no {medium} medium")
        return models.Volume(name=name, empty_dir={})
    if "secret" in volume:
        source = volume["secret"]
        _mode_ok(source.get("defaultMode"), f"{path}.secret.defaultMode", found)
        secret_name = source.get("secretName", "")
        secret = ctx.refs.secrets.get(secret_name)
        data = references.secret_data(secret) if secret is not None else None
        return _secret_volume(
            name,
            _key_files(data, source, name=secret_name, kind="Secret", path=f"{path}.secret", found=found),
        )
    if "configMap" in volume:
        config_source = volume["configMap"]
        _mode_ok(config_source.get("defaultMode"), f"{path}.configMap.defaultMode", found)
        config_name = config_source.get("name", "")
        config_map = ctx.refs.config_maps.get(config_name)
        data = references.config_map_data(config_map) if config_map is not None else None
        files = _key_files(
            data, config_source, name=config_name, kind="ConfigMap", path=f"{path}.configMap", found=found
        )
        return _secret_volume(name, files)
    if "downwardAPI" in volume:
        _mode_ok(volume["downwardAPI"].get("defaultMode"), f"{path}.downwardAPI.defaultMode", found)
        return _secret_volume(name, _downward_files(volume["downwardAPI"], f"{path}.downwardAPI", ctx, found))
    if "projected" in volume:
        _mode_ok(volume["projected"].get("defaultMode"), f"{path}.projected.defaultMode", found)
        return _secret_volume(name, _projected_files(volume["projected"], f"{path}.projected", ctx, found))
    if "azureFile" in volume:
        share = azurefiles.azure_file_from_inline(volume["azureFile"], f"{path}.azureFile", ctx.refs, found)
        return models.Volume(name=name, azure_file=share) if share is not None else None
    if keyvault.is_key_vault(volume):
        namespace = ctx.pod.get("metadata", {}).get("namespace", "default")
        csi = volume["csi"]
        mapped = keyvault.key_vault_volume(
            volume.get("name", ""),
            csi,
            f"{path}.csi",
            namespace,
            ctx.refs.secret_provider_classes.get(keyvault.class_name(csi)),
            ctx.where,
            found,
        )
        if mapped is None:
            return None
        # ACI fetches the values into the volume; only the file → reference map travels (API 2025-09-01).
        secret_volume = models.Volume(name=name, secret={})
        secret_volume.additional_properties = {"secretReference": dict(mapped.files)}
        return secret_volume
    if "csi" in volume:
        namespace = ctx.pod.get("metadata", {}).get("namespace", "default")
        share = azurefiles.azure_file_from_csi(volume["csi"], f"{path}.csi", namespace, ctx.refs, found)
        return models.Volume(name=name, azure_file=share) if share is not None else None
    if "persistentVolumeClaim" in volume:
        namespace = ctx.pod.get("metadata", {}).get("namespace", "default")
        share = azurefiles.azure_file_from_claim(
            volume["persistentVolumeClaim"], f"{path}.persistentVolumeClaim", namespace, ctx.refs, found
        )
        return models.Volume(name=name, azure_file=share) if share is not None else None
    if "gitRepo" in volume:
        git = volume["gitRepo"]
        if not git.get("repository"):
            found.add(f"{path}.gitRepo.repository", "is required")
            return None
        return models.Volume(
            name=name,
            git_repo=models.GitRepoVolume(
                repository=git["repository"],
                directory=git.get("directory") or None,
                revision=git.get("revision") or None,
            ),
        )
    return None


def aci_volumes_from_pod(ctx: VolumeContext, found: problems.Problems) -> dict[str, models.Volume]:
    """Kubernetes volume name → ACI volume, for every volume of the pod that ACI can carry."""
    volumes: dict[str, models.Volume] = {}
    pod_volumes = ctx.pod.get("spec", {}).get("volumes", [])
    if len(pod_volumes) > MAX_VOLUMES:
        found.add(
            "spec.volumes", f"ACI allows {MAX_VOLUMES} volumes per container group, not {len(pod_volumes)}"
        )
    for index, volume in enumerate(pod_volumes):
        path = f"spec.volumes[{index}]"
        mapped = _volume(volume, path, ctx, found)
        if mapped is not None:
            volumes[volume.get("name", "")] = mapped
    return volumes


_MOUNT_REFUSED = {
    "subPath": "ACI mounts whole volumes only; mount the volume and read the file from its directory",
    "subPathExpr": "ACI mounts whole volumes only",
    "bindMountOptions": "ACI takes no mount options",
}


def aci_volume_mounts_from_container(
    container: objects.Container, path: str, volumes: Mapping[str, models.Volume], found: problems.Problems
) -> list[models.VolumeMount]:
    mounts: list[models.VolumeMount] = []
    if container.get("volumeDevices"):
        found.add(f"{path}.volumeDevices", "ACI cannot attach block devices")
    for index, mount in enumerate(container.get("volumeMounts", [])):
        mount_path = f"{path}.volumeMounts[{index}]"
        fields.check_fields(
            mount,
            mount_path,
            ("name", "mountPath", "readOnly", "recursiveReadOnly", "mountPropagation"),
            _MOUNT_REFUSED,
            found,
        )
        if mount.get("mountPropagation", "None") != "None":
            found.add(f"{mount_path}.mountPropagation", "ACI has no mount propagation")
        if mount.get("recursiveReadOnly", "Disabled") == "Enabled":
            found.add(f"{mount_path}.recursiveReadOnly", "ACI cannot promise recursively read-only mounts")
        volume = volumes.get(mount.get("name", ""))
        if volume is None:
            continue  # an unknown name was refused with its volume, or the API server refused it already
        mounts.append(
            models.VolumeMount(
                name=volume.name,
                mount_path=mount.get("mountPath", ""),
                read_only=mount.get("readOnly") or None,
            )
        )
    return mounts
