"""Resolve before mapping: every referenced name is checked before anything is read, references resolve in the
pod's own namespace, and tokens are minted only after the mapping accepted the pod, with the expiry it asked."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import errors
from acinode.pods import references
from fakes.fake_kube import FakeKube

pytestmark = pytest.mark.timeout(5)

TRAVERSAL = "../../kube-system/secrets/admin"


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "tenant-a", "uid": "uid-1"},
        "spec": {"nodeName": "vn", "containers": [{"name": "app", "image": "nginx"}], **spec},
    }


HOSTILE_SPECS = [
    ({"volumes": [{"name": "v", "secret": {"secretName": TRAVERSAL}}]}, "spec.volumes[0].secret.secretName"),
    ({"volumes": [{"name": "v", "configMap": {"name": TRAVERSAL}}]}, "spec.volumes[0].configMap.name"),
    (
        {"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "..%2Fx"}}]}}]},
        "spec.volumes[0].projected.sources[0].secret.name",
    ),
    (
        {"volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "a/b"}}]}}]},
        "spec.volumes[0].projected.sources[0].configMap.name",
    ),
    (
        {"volumes": [{"name": "v", "azureFile": {"secretName": TRAVERSAL, "shareName": "s"}}]},
        "spec.volumes[0].azureFile.secretName",
    ),
    (
        {"volumes": [{"name": "v", "csi": {"driver": "d", "volumeAttributes": {"secretName": "%2e%2e"}}}]},
        "spec.volumes[0].csi.volumeAttributes['secretName']",
    ),
    ({"imagePullSecrets": [{"name": TRAVERSAL}]}, "spec.imagePullSecrets[0].name"),
    (
        {"containers": [{"name": "a", "image": "x", "envFrom": [{"secretRef": {"name": TRAVERSAL}}]}]},
        "spec.containers[0].envFrom[0].secretRef.name",
    ),
    (
        {
            "initContainers": [
                {
                    "name": "i",
                    "image": "x",
                    "env": [{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "..", "key": "k"}}}],
                }
            ]
        },
        "spec.initContainers[0].env[0].valueFrom.configMapKeyRef.name",
    ),
    (
        {
            "serviceAccountName": "../../kube-system/serviceaccounts/admin",
            "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
        },
        "spec.serviceAccountName",
    ),
]


@pytest.mark.parametrize(("spec", "path"), HOSTILE_SPECS)
async def test_a_hostile_reference_is_refused_before_anything_is_read(
    spec: dict[str, Any], path: str
) -> None:
    kube = FakeKube()
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        await references.resolve_references(kube, pod(**spec))
    assert [p.path for p in caught.value.problems] == [path]
    assert not caught.value.only_missing_objects  # refused, not waited for
    assert kube.calls == []


async def test_references_resolve_in_the_pods_namespace_only() -> None:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/tenant-a/secrets", {"metadata": {"name": "db"}, "data": {}})
    kube.put("/api/v1/namespaces/kube-system/secrets", {"metadata": {"name": "db"}, "data": {"x": "eA=="}})
    resolved = await references.resolve_references(
        kube, pod(volumes=[{"name": "v", "secret": {"secretName": "db"}}])
    )
    assert resolved.secrets["db"]["metadata"]["namespace"] == "tenant-a"
    secret_reads = [c.path for c in kube.calls if "/secrets/" in c.path]
    assert secret_reads == ["/api/v1/namespaces/tenant-a/secrets/db"]


async def test_no_token_is_minted_while_resolving() -> None:
    kube = FakeKube()
    the_pod = pod(
        volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
    )
    resolved = await references.resolve_references(kube, the_pod)
    assert resolved.service_account_tokens == {"": references.PLACEHOLDER_TOKEN}
    assert kube.count("POST") == 0


async def test_tokens_are_minted_with_the_audiences_and_expiry_asked() -> None:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/tenant-a/serviceaccounts", {"metadata": {"name": "default"}})
    the_pod = pod(
        volumes=[
            {
                "name": "t",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "t", "expirationSeconds": 3607}},
                        {"serviceAccountToken": {"path": "v", "audience": "vault", "expirationSeconds": 600}},
                    ]
                },
            }
        ],
    )
    resolved = await references.resolve_references(kube, the_pod)
    minted = await references.mint_tokens(kube, the_pod, resolved)
    assert set(minted.service_account_tokens) == {"", "vault"}
    requests = [c.body["spec"] for c in kube.calls_to("POST") if c.path.endswith("/token")]
    assert {(tuple(r.get("audiences", ())), r["expirationSeconds"]) for r in requests} == {
        ((), 3607),
        (("vault",), 600),
    }
    assert all(
        r["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "uid-1"}
        for r in requests
    )


async def test_a_token_the_api_server_refuses_refuses_the_pod() -> None:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/tenant-a/serviceaccounts", {"metadata": {"name": "default"}})
    kube.fail(
        "*/token", errors.PermissionDeniedError("403 acinode may not request tokens for the audience x")
    )
    the_pod = pod(
        volumes=[
            {
                "name": "t",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "t", "audience": "api://AzureADTokenExchange"}}
                    ]
                },
            }
        ],
    )
    resolved = await references.resolve_references(kube, the_pod)
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        await references.mint_tokens(kube, the_pod, resolved)
    assert "api://AzureADTokenExchange" in str(caught.value)
    assert not caught.value.only_missing_objects
