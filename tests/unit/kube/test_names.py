"""Names from pod specs and VirtualNodes are untrusted: validated as the API server validates object names, and
sent as exactly one path segment, or refused; answers must be the object asked for."""

from __future__ import annotations

import pytest

from acinode import errors
from acinode.kube import names
from acinode.kube import pods as kube_pods
from fakes.fake_kube import FakeKube

HOSTILE = [
    "../../kube-system/secrets/admin",
    "..",
    ".",
    "a/b",
    "%2E%2E%2Fkube-system",
    "..%2F..%2Fkube-system%2Fsecrets%2Fadmin",
    "name?watch=true",
    "name#x",
    "UPPER",
    "white space",
    "-leading-dash",
    "trailing-dash-",
    "a" * 254,
    "",
    "name\n",
    "sëcret",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    assert names.name_problem(name) is not None
    with pytest.raises(errors.InvalidRequestError) as caught:
        names.namespaced_core_path("tenant-a", "secrets", name)
    assert caught.value.code == "InvalidName"


@pytest.mark.parametrize("name", ["db-password", "kube-root-ca.crt", "a", "x" * 253, "default-token-abc12"])
def test_valid_names_become_one_segment(name: str) -> None:
    assert names.name_problem(name) is None
    path = names.namespaced_core_path("tenant-a", "secrets", name)
    assert path == f"/api/v1/namespaces/tenant-a/secrets/{name}"
    assert path.split("/")[-1] == name


@pytest.mark.parametrize(
    ("namespace", "ok"), [("tenant-a", True), ("a.b", False), ("x" * 64, False), ("..", False)]
)
def test_namespaces_are_labels(namespace: str, ok: bool) -> None:
    assert (names.name_problem(namespace, "label") is None) is ok


def test_paths_of_every_shape() -> None:
    assert names.core_path("nodes", "vn-1", subresource="status") == "/api/v1/nodes/vn-1/status"
    assert (
        names.namespaced_core_path("ns", "serviceaccounts", "sa", subresource="token")
        == "/api/v1/namespaces/ns/serviceaccounts/sa/token"
    )
    assert (
        names.group_path("coordination.k8s.io/v1", "leases", "vn-1", namespace="kube-node-lease")
        == "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1"
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"kind": "Secret", "metadata": {"namespace": "kube-system", "name": "db"}},
        {"kind": "Secret", "metadata": {"namespace": "tenant-a", "name": "admin"}},
        {"kind": "ConfigMap", "metadata": {"namespace": "tenant-a", "name": "db"}},
        {"metadata": {}},
    ],
)
def test_an_answer_for_another_object_is_refused(answer: dict[str, object]) -> None:
    with pytest.raises(errors.IntegrityError):
        names.check_identity(answer, kind="Secret", namespace="tenant-a", name="db")


async def test_get_secret_checks_what_comes_back() -> None:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/tenant-a/secrets", {"metadata": {"name": "db"}, "data": {}})
    secret = await kube_pods.get_secret(kube, "tenant-a", "db")
    assert secret is not None and secret["metadata"]["name"] == "db"
    assert await kube_pods.get_secret(kube, "tenant-a", "missing") is None


@pytest.mark.parametrize("name", HOSTILE)
async def test_get_secret_sends_nothing_for_a_hostile_name(name: str) -> None:
    kube = FakeKube()
    with pytest.raises(errors.InvalidRequestError):
        await kube_pods.get_secret(kube, "tenant-a", name)
    assert kube.calls == []
