"""Resolving a pod's persistentVolumeClaim volumes (pods/references.py): the claim from the pod's namespace, the PV
only when its claimRef names that claim back, and the PV's Secret only then, every name validated first."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import errors
from acinode.pods import references
from fakes.fake_kube import FakeKube

pytestmark = pytest.mark.timeout(5)


def _pod(claim: str = "files") -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "tenant-a", "uid": "uid-1"},
        "spec": {
            "nodeName": "vn",
            "enableServiceLinks": False,
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def _store(kube: FakeKube, claim_ref: dict[str, str], secret_namespace: str = "storage-admin") -> None:
    claim = kube.put(
        "/api/v1/namespaces/tenant-a/persistentvolumeclaims",
        {"metadata": {"name": "files"}, "spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}},
    )
    ref = {**claim_ref}
    if ref.get("uid") == "claim":
        ref["uid"] = claim["metadata"]["uid"]
    kube.put(
        "/api/v1/persistentvolumes",
        {
            "metadata": {"name": "pv-1"},
            "spec": {
                "claimRef": ref,
                "csi": {
                    "driver": "file.csi.azure.com",
                    "volumeHandle": "rg#acct#share#",
                    "nodeStageSecretRef": {"name": "storage", "namespace": secret_namespace},
                },
            },
        },
    )
    kube.put("/api/v1/namespaces/storage-admin/secrets", {"metadata": {"name": "storage"}, "data": {}})


async def test_a_claim_bound_both_ways_brings_its_volume_and_the_volumes_secret() -> None:
    kube = FakeKube()
    _store(kube, {"namespace": "tenant-a", "name": "files", "uid": "claim"})
    resolved = await references.resolve_references(kube, _pod())
    assert set(resolved.claims) == {"files"}
    assert set(resolved.persistent_volumes) == {"pv-1"}
    assert set(resolved.volume_secrets) == {("storage-admin", "storage")}


@pytest.mark.parametrize(
    "claim_ref",
    [
        {"namespace": "kube-system", "name": "files"},
        {"namespace": "tenant-a", "name": "other"},
        {"namespace": "tenant-a", "name": "files", "uid": "someone-elses"},
    ],
)
async def test_a_volume_not_bound_back_to_the_claim_is_not_followed(claim_ref: dict[str, str]) -> None:
    kube = FakeKube()
    _store(kube, claim_ref)
    resolved = await references.resolve_references(kube, _pod())
    assert resolved.persistent_volumes == {}
    assert resolved.volume_secrets == {}
    assert not [c for c in kube.calls if "/secrets/" in c.path], "no Secret read for a volume not ours"


async def test_a_hostile_claim_name_is_refused_before_anything_is_read() -> None:
    kube = FakeKube()
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        await references.resolve_references(kube, _pod("../../kube-system/persistentvolumeclaims/x"))
    assert [p.path for p in caught.value.problems] == ["spec.volumes[0].persistentVolumeClaim.claimName"]
    assert kube.calls == []


async def test_an_invalid_secret_name_in_the_volume_refuses_the_pod_unread() -> None:
    kube = FakeKube()
    _store(kube, {"namespace": "tenant-a", "name": "files"}, secret_namespace="../kube-system")
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        await references.resolve_references(kube, _pod())
    assert "invalid Secret" in str(caught.value)
    assert not caught.value.only_missing_objects
    assert not [c for c in kube.calls if "/secrets/" in c.path]
