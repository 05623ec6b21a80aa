"""Deterministic ACI names for pods, containers and volumes.

ACI names are 1–63 characters of ``[a-z0-9-]``, with no leading, trailing or doubled hyphen. Kubernetes names
are looser (pod names are DNS subdomains up to 253 characters, with dots; any name may double a hyphen), so a
name is kept readable when it can be and otherwise shortened with a hash of the original.

Group names must never collide between two pods, since a PUT on a taken name replaces the other pod's group.
``<namespace>-<pod>`` is ambiguous when the namespace itself has a hyphen (``a-b``/``c`` and ``a``/``b-c``),
so such names are hashed too; and a readable name never ends like a hashed one, so the two sets are disjoint.
"""

from __future__ import annotations

import hashlib
import re

from acinode import types

MAX_NAME_LENGTH = 63
HASH_LENGTH = 10

_VALID = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HASHED_TAIL = re.compile(rf"-[0-9a-f]{{{HASH_LENGTH}}}$")
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def is_valid_aci_name(name: str) -> bool:
    """Whether ACI accepts ``name`` for a container group, container or volume."""
    return 0 < len(name) <= MAX_NAME_LENGTH and bool(_VALID.match(name)) and "--" not in name


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:HASH_LENGTH]


def _hashed_name(text: str, key: str) -> str:
    """A readable prefix of ``text`` plus a hash of ``key``; always valid and always ending in the hash."""
    base = _NOT_ALLOWED.sub("-", text.lower()).strip("-")
    base = base[: MAX_NAME_LENGTH - HASH_LENGTH - 1].rstrip("-")
    return f"{base}-{_digest(key)}" if base else _digest(key)


def container_group_name(namespace: str, pod_name: str) -> types.ContainerGroupName:
    """``<namespace>-<pod>`` when that is valid and unambiguous, else a shortened name with a hash suffix."""
    readable = f"{namespace}-{pod_name}"
    if "-" not in namespace and is_valid_aci_name(readable) and not _HASHED_TAIL.search(readable):
        return types.ContainerGroupName(readable)
    return types.ContainerGroupName(_hashed_name(readable, f"{namespace}/{pod_name}"))


def aci_container_name(name: str) -> str:
    """The ACI name of a Kubernetes container (init or regular); unchanged unless ACI refuses it."""
    if is_valid_aci_name(name) and not _HASHED_TAIL.search(name):
        return name
    return _hashed_name(name, name)


def aci_volume_name(name: str) -> str:
    """The ACI name of a Kubernetes volume; unchanged unless ACI refuses it."""
    return aci_container_name(name)
