"""The cluster's identity (kube-system's uid) and its published client CA."""

from __future__ import annotations

import pytest

from acinode import errors
from acinode.kube import cluster
from fakes.fake_kube import FakeKube

CONFIGMAPS = "/api/v1/namespaces/kube-system/configmaps"
CLIENT_CA = f"{CONFIGMAPS}/extension-apiserver-authentication"


async def test_the_cluster_id_is_the_uid_of_kube_system() -> None:
    kube = FakeKube()
    uid = kube.put("/api/v1/namespaces", {"metadata": {"name": "kube-system"}})["metadata"]["uid"]
    assert await cluster.cluster_id(kube) == uid
    assert [(c.method, c.path) for c in kube.calls] == [("GET", "/api/v1/namespaces/kube-system")]


async def test_no_kube_system_no_cluster_id() -> None:
    with pytest.raises(errors.NotFoundError):
        await cluster.cluster_id(FakeKube())


async def test_the_client_ca_is_the_published_bundle() -> None:
    kube = FakeKube()
    kube.put(
        CONFIGMAPS,
        {"metadata": {"name": "extension-apiserver-authentication"}, "data": {"client-ca-file": "PEM"}},
    )
    assert await cluster.client_ca_bundle(kube) == "PEM"
    assert [(c.method, c.path) for c in kube.calls] == [("GET", CLIENT_CA)]


async def test_a_configmap_without_a_bundle_gives_none() -> None:
    kube = FakeKube()
    kube.put(CONFIGMAPS, {"metadata": {"name": "extension-apiserver-authentication"}, "data": {}})
    assert await cluster.client_ca_bundle(kube) is None


async def test_errors_reading_the_bundle_propagate() -> None:
    kube = FakeKube()
    kube.fail(CLIENT_CA, errors.PermissionDeniedError("configmaps is forbidden"))
    with pytest.raises(errors.PermissionDeniedError):
        await cluster.client_ca_bundle(kube)
