"""Who is calling the kubelet API, and may they: authentication and authorization as a kubelet does them.

Authentication (``--authentication-token-webhook`` with a client CA, anonymous off):
1. a client certificate that chained to the client CA during the TLS handshake: user = CN, groups = O;
2. else a bearer token, checked with a TokenReview (answers cached ``auth_cache_ttl_seconds``);
3. else anonymous (``system:anonymous``) only if explicitly enabled; otherwise 401.

Authorization (``--authorization-mode=Webhook``): a SubjectAccessReview on ``nodes/<node>`` with the HTTP verb
(GET→get, POST→create…) and the subresource of the path, as the kubelet's request attributes
(``pkg/kubelet/server/auth.go``): ``/stats`` → stats, ``/metrics`` → metrics, ``/logs`` → log, ``/spec`` → spec,
``/checkpoint`` → checkpoint; ``/pods`` and ``/runningpods`` → pods, ``/healthz`` → healthz, ``/configz`` → configz,
``/statusz`` → statusz, each then proxy; everything else (exec, attach, portForward…) → proxy. Where a kubelet asks
about several subresources (fine-grained authorization: ``/pods`` → ``pods`` then ``proxy``) any allowing answer
allows. ``/containerLogs`` asks ``log`` then ``proxy``: a real kubelet asks only ``proxy``, so RBAC written for
kubelets keeps working, and ``nodes/log`` alone is enough here. Allowing answers are cached
``auth_cache_ttl_seconds``, denying ones ``deny_cache_ttl_seconds``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from acinode import errors
from acinode.kube import reviews

JsonObject = dict[str, Any]
SUBJECT_ACCESS_REVIEWS = reviews.SUBJECT_ACCESS_REVIEWS
_MAX_CACHE_ENTRIES = 4096

_VERBS: Mapping[str, str] = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


ANONYMOUS = User("system:anonymous", groups=("system:unauthenticated",))


Reviewer = reviews.ReviewApi
"""What auth needs of the Kubernetes client: POST a review object (``KubeClient.create``), via ``kube.reviews``."""


def verb_for(method: str) -> str:
    return _VERBS.get(method.upper(), "delete" if method.upper() == "DELETE" else method.lower())


def subresources_for(path: str) -> tuple[str, ...]:
    """The ``nodes/<name>`` subresources a request path is authorized against (any of them allows)."""

    def under(prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    if under("/stats"):
        return ("stats",)
    if under("/metrics"):
        return ("metrics",)
    if under("/containerLogs"):
        return ("log", "proxy")
    if under("/logs"):
        return ("log",)
    if under("/spec"):
        return ("spec",)
    if under("/checkpoint"):
        return ("checkpoint",)
    if under("/pods") or under("/runningpods"):
        return ("pods", "proxy")
    if under("/healthz"):
        return ("healthz", "proxy")
    if under("/configz"):
        return ("configz", "proxy")
    if under("/statusz"):
        return ("statusz", "proxy")
    return ("proxy",)


class _Cache:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= _MAX_CACHE_ENTRIES:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= _MAX_CACHE_ENTRIES:
                self._entries.clear()
        self._entries[key] = (self._clock() + ttl, value)


class Authenticator:
    def __init__(
        self,
        reviewer: Reviewer,
        *,
        ttl_seconds: float,
        anonymous: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reviewer = reviewer
        self.ttl_seconds = ttl_seconds
        self.anonymous = anonymous
        self._cache = _Cache(clock)

    async def authenticate(
        self, certificate_identity: tuple[str, tuple[str, ...]] | None, authorization: str | None
    ) -> User | None:
        """The caller, or None when unauthenticated (401). Raises TransientError when a TokenReview fails."""
        if certificate_identity is not None:
            name, groups = certificate_identity
            return User(name, groups=(*groups, "system:authenticated"))
        token = _bearer_token(authorization)
        if token:
            return await self._review_token(token)
        return ANONYMOUS if self.anonymous else None

    async def _review_token(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached if isinstance(cached, User) else None
        status = await reviews.review_token(self.reviewer, token)
        user: User | None = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            extra = tuple(
                sorted((str(k), tuple(str(x) for x in v)) for k, v in (info.get("extra") or {}).items())
            )
            user = User(
                str(info.get("username", "")),
                uid=str(info.get("uid", "")),
                groups=tuple(str(g) for g in info.get("groups") or ()),
                extra=extra,
            )
        self._cache.put(key, user if user is not None else False, self.ttl_seconds)
        return user


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class Authorizer:
    def __init__(
        self,
        reviewer: Reviewer,
        *,
        allow_ttl_seconds: float,
        deny_ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reviewer = reviewer
        self.allow_ttl_seconds = allow_ttl_seconds
        self.deny_ttl_seconds = deny_ttl_seconds
        self._cache = _Cache(clock)

    async def is_allowed(self, user: User, verb: str, node: str, subresources: tuple[str, ...]) -> bool:
        """Whether ``user`` may ``verb`` any of ``nodes/<node>/<subresource>`` (node "" means every node)."""
        for subresource in subresources:
            if await self._review(user, verb, node, subresource):
                return True
        return False

    async def _review(self, user: User, verb: str, node: str, subresource: str) -> bool:
        key = (user, verb, node, subresource)
        cached = self._cache.get(key)
        if cached is not None:
            return bool(cached)
        spec: JsonObject = {
            "user": user.name,
            "groups": list(user.groups),
            "resourceAttributes": {
                "verb": verb,
                "group": "",
                "version": "v1",
                "resource": "nodes",
                "subresource": subresource,
                "name": node,
            },
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        try:
            status = await reviews.review_access(self.reviewer, spec)
        except errors.PermissionDeniedError as err:
            raise errors.ConfigurationError(
                f"the operator may not create SubjectAccessReviews: {err}"
            ) from err
        allowed = bool(status.get("allowed"))
        self._cache.put(key, allowed, self.allow_ttl_seconds if allowed else self.deny_ttl_seconds)
        return allowed
