"""Volumes and mounts: what ACI's emptyDir, secret, Azure Files and gitRepo volumes can carry, exactly."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mapping_builders import (
    b64,
    config_map,
    container,
    first_container,
    group,
    pod,
    problems,
    public_placement,
    refs,
    secret,
)

pytestmark = pytest.mark.timeout(2)

RESOLVED = refs(
    secrets={
        "tls": secret({"tls.crt": "CERT", "tls.key": "KEY"}),
        "storage": secret(
            {"azurestorageaccountname": "shopfiles", "azurestorageaccountkey": "c3RvcmFnZWtleQ=="}
        ),
        "half": secret({"azurestorageaccountname": "shopfiles"}),
    },
    config_maps={
        "nginx": config_map(
            {"nginx.conf": "server {}", "mime.types": "types {}"}, binary={"logo.png": b"\x89PNG"}
        )
    },
    tokens={"": "header.payload.sig", "vault": "vault-token"},
)


def _volume(
    volume: dict[str, Any], where: Any = None, **mount: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    the_pod = pod(
        container(volumeMounts=[{"name": volume["name"], "mountPath": "/data", **mount}]), volumes=[volume]
    )
    body = group(the_pod, where, RESOLVED)
    return body["properties"]["volumes"][0], first_container(body)["volumeMounts"]


def _files(volume: dict[str, Any]) -> dict[str, str]:
    return {name: base64.b64decode(content).decode() for name, content in volume["secret"].items()}


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ({"name": "scratch", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}),
        ({"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "scratch", "emptyDir": {}}),
        (
            {
                "name": "code",
                "gitRepo": {"repository": "https://github.com/x/y", "revision": "main", "directory": "."},
            },
            {
                "name": "code",
                "gitRepo": {"repository": "https://github.com/x/y", "revision": "main", "directory": "."},
            },
        ),
        (
            {
                "name": "share",
                "azureFile": {"secretName": "storage", "shareName": "assets", "readOnly": True},
            },
            {
                "name": "share",
                "azureFile": {
                    "shareName": "assets",
                    "readOnly": True,
                    "storageAccountName": "shopfiles",
                    "storageAccountKey": "c3RvcmFnZWtleQ==",
                },
            },
        ),
        (
            {
                "name": "share",
                "csi": {
                    "driver": "file.csi.azure.com",
                    "volumeAttributes": {"secretName": "storage", "shareName": "assets"},
                },
            },
            {
                "name": "share",
                "azureFile": {
                    "shareName": "assets",
                    "storageAccountName": "shopfiles",
                    "storageAccountKey": "c3RvcmFnZWtleQ==",
                },
            },
        ),
        # an optional source that does not exist mounts as an empty directory, as on a kubelet
        (
            {"name": "opt", "secret": {"secretName": "absent", "optional": True}},
            {"name": "opt", "emptyDir": {}},
        ),
    ],
)
def test_volume_kinds(volume: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _volume(volume)[0] == expected


@pytest.mark.parametrize(
    ("volume", "files"),
    [
        ({"name": "v", "secret": {"secretName": "tls"}}, {"tls.crt": "CERT", "tls.key": "KEY"}),
        (
            {"name": "v", "secret": {"secretName": "tls", "defaultMode": 420}},
            {"tls.crt": "CERT", "tls.key": "KEY"},
        ),
        # items select and rename keys (virtual-kubelet's provider ignores them)
        (
            {"name": "v", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "cert.pem"}]}},
            {"cert.pem": "CERT"},
        ),
        (
            {
                "name": "v",
                "configMap": {"name": "nginx", "items": [{"key": "nginx.conf", "path": "default.conf"}]},
            },
            {"default.conf": "server {}"},
        ),
        (
            {
                "name": "v",
                "configMap": {"name": "nginx", "items": [{"key": "absent", "path": "x"}], "optional": True},
            },
            None,
        ),
        (
            {
                "name": "v",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {
                            "path": "cpu",
                            "resourceFieldRef": {
                                "containerName": "app",
                                "resource": "limits.cpu",
                                "divisor": "1m",
                            },
                        },
                    ]
                },
            },
            {"labels": 'app="shop"\ntier="front"', "name": "web-0", "cpu": "1000"},
        ),
        (
            {
                "name": "v",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {"serviceAccountToken": {"path": "vault-token", "audience": "vault"}},
                        {
                            "configMap": {
                                "name": "nginx",
                                "items": [{"key": "nginx.conf", "path": "nginx.conf"}],
                            }
                        },
                        {"secret": {"name": "tls", "items": [{"key": "tls.key", "path": "key.pem"}]}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                                ]
                            }
                        },
                    ],
                },
            },
            {
                "token": "header.payload.sig",
                "vault-token": "vault-token",
                "nginx.conf": "server {}",
                "key.pem": "KEY",
                "namespace": "shop",
            },
        ),
    ],
)
def test_file_volumes(volume: dict[str, Any], files: dict[str, str] | None) -> None:
    the_pod = pod(
        container(volumeMounts=[{"name": "v", "mountPath": "/data"}]),
        volumes=[volume],
        labels={"tier": "front", "app": "shop"},
    )
    got = group(the_pod, resolved=RESOLVED)["properties"]["volumes"][0]
    if files is None:
        assert got == {"name": "v", "emptyDir": {}}
    else:
        assert _files(got) == files


def test_config_map_binary_data_is_carried_byte_for_byte() -> None:
    volume = {"name": "v", "configMap": {"name": "nginx"}}
    got = _volume(volume)[0]["secret"]
    assert got == {"nginx.conf": b64("server {}"), "mime.types": b64("types {}"), "logo.png": b64(b"\x89PNG")}


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        ({}, {"name": "scratch", "mountPath": "/data"}),
        ({"readOnly": True}, {"name": "scratch", "mountPath": "/data", "readOnly": True}),
        (
            {"mountPropagation": "None", "recursiveReadOnly": "Disabled"},
            {"name": "scratch", "mountPath": "/data"},
        ),
    ],
)
def test_mounts(mount: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _volume({"name": "scratch", "emptyDir": {}}, **mount)[1] == [expected]


@pytest.mark.parametrize(
    ("volume", "mount", "path", "reason"),
    [
        ({"name": "v", "hostPath": {"path": "/var/log"}}, {}, "spec.volumes[0].hostPath", "no host"),
        ({"name": "v", "nfs": {"server": "x", "path": "/"}}, {}, "spec.volumes[0].nfs", "ACI mounts only"),
        (
            {"name": "v", "ephemeral": {"volumeClaimTemplate": {}}},
            {},
            "spec.volumes[0].ephemeral",
            "PersistentVolumeClaims",
        ),
        ({"name": "v", "image": {"reference": "x"}}, {}, "spec.volumes[0].image", "image as a volume"),
        (
            {"name": "v", "emptyDir": {"medium": "Memory"}},
            {},
            "spec.volumes[0].emptyDir.medium",
            "disk-backed",
        ),
        (
            {"name": "v", "emptyDir": {}},
            {"subPath": "x"},
            "spec.containers[0].volumeMounts[0].subPath",
            "whole volumes",
        ),
        (
            {"name": "v", "emptyDir": {}},
            {"subPathExpr": "$(X)"},
            "spec.containers[0].volumeMounts[0].subPathExpr",
            "whole volumes",
        ),
        (
            {"name": "v", "emptyDir": {}},
            {"mountPropagation": "Bidirectional"},
            "spec.containers[0].volumeMounts[0].mountPropagation",
            "propagation",
        ),
        (
            {"name": "v", "emptyDir": {}},
            {"recursiveReadOnly": "Enabled"},
            "spec.containers[0].volumeMounts[0].recursiveReadOnly",
            "recursively",
        ),
        (
            {"name": "v", "secret": {"secretName": "tls", "defaultMode": 256}},
            {},
            "spec.volumes[0].secret.defaultMode",
            "0644",
        ),
        (
            {
                "name": "v",
                "secret": {"secretName": "tls", "items": [{"key": "tls.key", "path": "k", "mode": 0o600}]},
            },
            {},
            "spec.volumes[0].secret.items[0].mode",
            "0o600",
        ),
        (
            {"name": "v", "secret": {"secretName": "tls", "items": [{"key": "tls.key", "path": "a/b"}]}},
            {},
            "spec.volumes[0].secret.items[0].path",
            "flat",
        ),
        (
            {"name": "v", "secret": {"secretName": "tls", "items": [{"key": "nope", "path": "x"}]}},
            {},
            "spec.volumes[0].secret.items[0].key",
            "no key 'nope'",
        ),
        ({"name": "v", "secret": {"secretName": "absent"}}, {}, "spec.volumes[0].secret", "not found"),
        ({"name": "v", "configMap": {"name": "absent"}}, {}, "spec.volumes[0].configMap", "not found"),
        (
            {"name": "v", "azureFile": {"secretName": "half", "shareName": "s"}},
            {},
            "spec.volumes[0].azureFile",
            "lacks azurestorageaccountkey",
        ),
        (
            {"name": "v", "csi": {"driver": "disk.csi.azure.com"}},
            {},
            "spec.volumes[0].csi.driver",
            "file.csi.azure.com",
        ),
        (
            {"name": "v", "csi": {"driver": "file.csi.azure.com", "volumeAttributes": {"shareName": "s"}}},
            {},
            "spec.volumes[0].csi.volumeAttributes",
            "secretName",
        ),
        (
            {
                "name": "v",
                "csi": {
                    "driver": "file.csi.azure.com",
                    "volumeAttributes": {
                        "secretName": "storage",
                        "shareName": "s",
                        "mountOptions": "dir_mode=0777",
                    },
                },
            },
            {},
            "spec.volumes[0].csi.volumeAttributes['mountOptions']",
            "takes only",
        ),
        (
            {
                "name": "v",
                "csi": {
                    "driver": "file.csi.azure.com",
                    "volumeAttributes": {
                        "secretName": "storage",
                        "shareName": "s",
                        "secretNamespace": "other",
                    },
                },
            },
            {},
            "spec.volumes[0].csi.volumeAttributes['secretNamespace']",
            "own namespace",
        ),
        (
            {
                "name": "v",
                "projected": {"sources": [{"serviceAccountToken": {"path": "t", "audience": "unknown"}}]},
            },
            {},
            "spec.volumes[0].projected.sources[0].serviceAccountToken",
            "no service-account token",
        ),
        (
            {
                "name": "v",
                "projected": {"sources": [{"clusterTrustBundle": {"path": "b", "signerName": "x"}}]},
            },
            {},
            "spec.volumes[0].projected.sources[0].clusterTrustBundle",
            "ClusterTrustBundles",
        ),
        (
            {
                "name": "v",
                "projected": {
                    "sources": [
                        {"secret": {"name": "tls"}},
                        {"configMap": {"name": "nginx", "items": [{"key": "nginx.conf", "path": "tls.crt"}]}},
                    ]
                },
            },
            {},
            "spec.volumes[0].projected.sources[1]",
            "two sources",
        ),
        (
            {
                "name": "v",
                "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]},
            },
            {},
            "spec.volumes[0].downwardAPI.items[0].fieldRef",
            "not available",
        ),
        ({"name": "v", "gitRepo": {}}, {}, "spec.volumes[0].gitRepo.repository", "required"),
        (
            {"name": "v", "secret": {"secretName": "tls", "defaultUser": 1000}},
            {},
            "spec.volumes[0].secret.defaultUser",
            "owner",
        ),
        (
            {
                "name": "v",
                "secret": {"secretName": "tls", "items": [{"key": "tls.key", "path": "k", "user": 1}]},
            },
            {},
            "spec.volumes[0].secret.items[0].user",
            "owner",
        ),
        ({"name": "v", "emptyDir": {"mode": 511}}, {}, "spec.volumes[0].emptyDir.mode", "permissions"),
        (
            {"name": "v", "configMap": {"name": "nginx", "futureField": "x"}},
            {},
            "spec.volumes[0].configMap.futureField",
            "not known",
        ),
    ],
)
def test_refusals(volume: dict[str, Any], mount: dict[str, Any], path: str, reason: str) -> None:
    the_pod = pod(container(volumeMounts=[{"name": "v", "mountPath": "/data", **mount}]), volumes=[volume])
    found = problems(the_pod, resolved=RESOLVED)
    assert path in found, found
    assert reason in found[path]


def test_volume_devices_are_refused() -> None:
    the_pod = pod(container(volumeDevices=[{"name": "v", "devicePath": "/dev/xvda"}]))
    assert "block devices" in problems(the_pod)["spec.containers[0].volumeDevices"]


def test_at_most_twenty_volumes() -> None:
    volumes = [{"name": f"v{i}", "emptyDir": {}} for i in range(21)]
    assert "20 volumes" in problems(pod(container(), volumes=volumes))["spec.volumes"]


@pytest.mark.parametrize("kind", ["secret", "azureFile", "gitRepo", "projected"])
def test_windows_groups_have_only_empty_dirs(kind: str) -> None:
    sources = {
        "secret": {"secretName": "tls"},
        "azureFile": {"secretName": "storage", "shareName": "s"},
        "gitRepo": {"repository": "https://x"},
        "projected": {"sources": []},
    }
    the_pod = pod(container(), volumes=[{"name": "v", kind: sources[kind]}])
    found = problems(the_pod, public_placement(os_type="Windows"), RESOLVED)
    assert "Linux container groups only" in found[f"spec.volumes[0].{kind}"]


def test_volume_names_aci_refuses_are_renamed_consistently() -> None:
    the_pod = pod(
        container(volumeMounts=[{"name": "cache--dir", "mountPath": "/c"}]),
        volumes=[{"name": "cache--dir", "emptyDir": {}}],
    )
    body = group(the_pod)
    assert body["properties"]["volumes"][0]["name"] == first_container(body)["volumeMounts"][0]["name"]
    assert "--" not in body["properties"]["volumes"][0]["name"]
