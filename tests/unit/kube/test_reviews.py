"""TokenReview and SubjectAccessReview: the objects posted, and the status they answer with."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import errors
from acinode.kube import reviews
from fakes.fake_kube import FakeKube


class Answering:
    """The API server's review endpoints: each posted review comes back with ``status`` (None: none)."""

    def __init__(self, status: dict[str, object] | None) -> None:
        self.status = status
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((path, body))
        return body if self.status is None else {**body, "status": self.status}


async def test_a_token_review_posts_the_token_and_returns_the_status() -> None:
    kube = Answering({"authenticated": True, "user": {"username": "alice"}})
    assert await reviews.review_token(kube, "t0k3n") == {"authenticated": True, "user": {"username": "alice"}}
    assert kube.calls == [
        (
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "t0k3n"}},
        )
    ]


async def test_a_subject_access_review_posts_the_spec_and_returns_the_status() -> None:
    kube = Answering({"allowed": True})
    spec = {"user": "bob", "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy"}}
    assert await reviews.review_access(kube, spec) == {"allowed": True}
    assert kube.calls == [
        (
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
    ]


async def test_an_answer_without_status_is_an_empty_one() -> None:
    kube = Answering(None)
    assert await reviews.review_token(kube, "t") == {}


async def test_errors_of_the_api_server_propagate() -> None:
    kube = FakeKube()
    kube.fail("*subjectaccessreviews", errors.PermissionDeniedError("403"))
    with pytest.raises(errors.PermissionDeniedError):
        await reviews.review_access(kube, {"user": "bob"})
