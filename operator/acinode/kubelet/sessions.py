"""Per-caller limits on the kubelet API's long-lived calls: exec, attach and ``logs -f``.

Each such call holds a connection, buffers and, for its whole life, ARM calls (polls, an exec websocket), so one
caller must not be able to open them without end. A call takes a slot in three counts at once and is refused with
429 (``Retry-After``) when any is full:

- every session of the server (``max_sessions``): bounds what all of them can hold together;
- the authenticated user's (``max_sessions_per_user``): bounds a direct caller. Calls tunnelled by the API server
  all carry the API server's kubelet client identity, so for them this is one shared count;
- the namespace of the pod the call is about (``max_sessions_per_namespace``): what keeps one tenant's storm of
  ``kubectl exec`` through the API server from taking every slot of the others.

Refusal happens before any ARM call or upgrade; a slot is given back when the call ends, however it ends.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator, Mapping

from acinode import errors, settings

RETRY_AFTER_SECONDS = 5.0
"""What a refused caller is told to wait (sessions end when their users end them: there is no better guess)."""

_SESSION_PREFIXES = ("/exec/", "/attach/", "/portForward/")


def is_session(path: str, query: Mapping[str, str]) -> bool:
    """Whether a request is a long-lived call: exec, attach, port-forward, or a followed log."""
    if path.startswith(_SESSION_PREFIXES):
        return True
    return path.startswith("/containerLogs/") and query.get("follow", "").strip().lower() in ("true", "1")


def namespace_of(path: str) -> str:
    """The pod namespace a container path names (``/exec/<namespace>/<pod>/<container>``)."""
    parts = path.split("/")
    return parts[2] if len(parts) > 2 else ""


class SessionLimits:
    """Counts of the sessions served, by user and by namespace, with the caps of ``KubeletSettings``."""

    def __init__(self, *, total: int, per_user: int, per_namespace: int) -> None:
        self._caps = {"total": total, "user": per_user, "namespace": per_namespace}
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.refused = 0
        """Calls refused so far."""

    @classmethod
    def from_settings(cls, kubelet: settings.KubeletSettings) -> SessionLimits:
        return cls(
            total=kubelet.max_sessions,
            per_user=kubelet.max_sessions_per_user,
            per_namespace=kubelet.max_sessions_per_namespace,
        )

    def count(self, kind: str, name: str = "") -> int:
        """Sessions held now: ``count("total")``, ``count("user", name)``, ``count("namespace", name)``."""
        return self._counts[(kind, name)]

    @contextlib.contextmanager
    def hold(self, user: str, namespace: str) -> Iterator[None]:
        """Hold a slot for the duration of the block. Raises ThrottledError (429) if a count is full."""
        keys = [("total", ""), ("user", user), ("namespace", namespace)]
        for kind, name in keys:
            cap = self._caps[kind]
            if self._counts[(kind, name)] >= cap:
                self.refused += 1
                who = {
                    "total": "in all",
                    "user": f"for user {user}",
                    "namespace": f"in namespace {namespace}",
                }
                raise errors.ThrottledError(
                    f"too many exec, attach and log-follow sessions {who[kind]} (at most {cap}); "
                    "retry when one has ended",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                )
        for key in keys:
            self._counts[key] += 1
        try:
            yield
        finally:
            for key in keys:
                self._counts[key] -= 1
                if self._counts[key] <= 0:
                    del self._counts[key]
