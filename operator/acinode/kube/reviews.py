"""TokenReview and SubjectAccessReview: how the kubelet API asks the API server who a caller is and what it may do.

Both are create-only, cluster-scoped review objects; the answer is the review's ``status``.
"""

from __future__ import annotations

from typing import Any, Protocol

from acinode.kube import names

JsonObject = dict[str, Any]
TOKEN_REVIEWS = names.group_path("authentication.k8s.io/v1", "tokenreviews")
SUBJECT_ACCESS_REVIEWS = names.group_path("authorization.k8s.io/v1", "subjectaccessreviews")


class ReviewApi(Protocol):
    """The one verb reviews need (``KubeClient.create``: POST a review object, return the answer)."""

    async def create(self, path: str, body: JsonObject) -> JsonObject: ...


async def review_token(kube: ReviewApi, token: str) -> JsonObject:
    """The TokenReview's status for ``token``: ``authenticated`` and, if so, ``user`` (username, uid, groups,
    extra). Errors of the API server propagate."""
    review = await kube.create(
        TOKEN_REVIEWS,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    return dict(review.get("status") or {})


async def review_access(kube: ReviewApi, spec: JsonObject) -> JsonObject:
    """The SubjectAccessReview's status for ``spec`` (user, groups, uid, extra, resourceAttributes): ``allowed``
    and, when given, ``denied`` and ``reason``. Errors of the API server propagate."""
    review = await kube.create(
        SUBJECT_ACCESS_REVIEWS,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
    )
    return dict(review.get("status") or {})
