"""Object names as untrusted input: validated as the API server validates them, then sent as one encoded path
segment. Every REST path acinode builds from a name it did not choose goes through here.

A pod spec can name ``../../kube-system/secrets/x`` as a Secret (the API server checks reference names only for
being non-empty), and HTTP clients collapse ``..``: so a name becomes part of a path only after it passed the same
rule the API server applies to the object's own ``metadata.name``, as client-go refuses names that are not valid
path segments. Quoting alone is not enough (``%2F`` is sent as is and decoded by the server).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal

from acinode import errors

NameRule = Literal["subdomain", "label"]
"""``subdomain``: RFC 1123 subdomain (most objects: Secrets, ConfigMaps, ServiceAccounts, Pods, Nodes, Leases).
``label``: RFC 1123 label (namespaces)."""

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_LABEL_RE = re.compile(_LABEL)
_MAX_LENGTH: Mapping[NameRule, int] = {"subdomain": 253, "label": 63}


def name_problem(name: object, rule: NameRule = "subdomain") -> str | None:
    """Why ``name`` is not a valid object name under ``rule`` (the API server's message, shortened), or None."""
    if not isinstance(name, str) or not name:
        return "a name is required"
    limit = _MAX_LENGTH[rule]
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    pattern = _SUBDOMAIN_RE if rule == "subdomain" else _LABEL_RE
    if not pattern.fullmatch(name):
        what = "RFC 1123 subdomain" if rule == "subdomain" else "RFC 1123 label"
        return (
            f"{name[:64]!r} is not a valid object name: a lowercase {what} must consist of lower case "
            "alphanumeric characters, '-'" + (" or '.'" if rule == "subdomain" else "")
        )
    return None


def segment(name: object, rule: NameRule = "subdomain", *, what: str = "name") -> str:
    """``name`` as one path segment, or InvalidRequestError (code ``InvalidName``) if it is not a valid name."""
    problem = name_problem(name, rule)
    if problem is not None:
        raise errors.InvalidRequestError(f"invalid {what}: {problem}", code="InvalidName")
    # Valid names hold no character that needs quoting; quote anyway so the path is one segment by construction.
    return urllib.parse.quote(str(name), safe="")


def core_path(resource: str, name: str | None = None, *, subresource: str | None = None) -> str:
    """A cluster-scoped core/v1 path: ``/api/v1/<resource>[/<name>[/<subresource>]]``."""
    return _path("/api/v1", None, resource, name, subresource)


def namespaced_core_path(
    namespace: str, resource: str, name: str | None = None, *, subresource: str | None = None
) -> str:
    """``/api/v1/namespaces/<namespace>/<resource>[/<name>[/<subresource>]]``."""
    return _path("/api/v1", namespace, resource, name, subresource)


def group_path(
    group_version: str,
    resource: str,
    name: str | None = None,
    *,
    namespace: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/apis/<group>/<version>[/namespaces/<namespace>]/<resource>[/<name>[/<subresource>]]``."""
    return _path(f"/apis/{group_version}", namespace, resource, name, subresource)


def _path(
    prefix: str, namespace: str | None, resource: str, name: str | None, subresource: str | None
) -> str:
    parts = [prefix]
    if namespace is not None:
        parts += ["namespaces", segment(namespace, "label", what="namespace")]
    parts.append(resource)
    if name is not None:
        parts.append(segment(name, what=f"{resource} name"))
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def check_identity(
    obj: Mapping[str, Any], *, kind: str, namespace: str | None, name: str
) -> Mapping[str, Any]:
    """The answer must be the object asked for: its kind (when the server says), namespace and name. Guards
    against anything between us and the API server (a proxy rewriting paths, a path that escaped validation)."""
    metadata = obj.get("metadata") or {}
    answered_kind = obj.get("kind")
    if (
        (answered_kind not in (None, kind))
        or metadata.get("name") != name
        or (namespace is not None and metadata.get("namespace") != namespace)
    ):
        where = f"{namespace}/{name}" if namespace is not None else name
        got = f"{answered_kind} {metadata.get('namespace', '')}/{metadata.get('name', '')}"
        raise errors.IntegrityError(f"asked the API server for {kind} {where}, got {got}")
    return obj
