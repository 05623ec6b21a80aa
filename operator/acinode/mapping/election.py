"""Who serves which VirtualNode: the pure rules of the ownership Leases (no I/O, no clock: times are passed in).

Each VirtualNode is owned through a ``coordination.k8s.io/v1`` Lease of its own in the operator's namespace
(``acinode-vn-<name>``); each replica announces itself with a presence Lease (``acinode-replica-<id>``). A Lease is
held by the replica named in ``holderIdentity``; an empty holder means released.

Expiry is judged as client-go's leader election judges it: a replica remembers *when it first saw* the Lease's
current (holder, renewTime) on its own monotonic clock (the observation), and counts the Lease expired once that
has not changed for a full ``leaseDurationSeconds``. ``renewTime`` is never compared with the local clock, so
clock skew between machines does not matter. The holder stops its work earlier (fencing, ``fence_deadline``).

Spread: with ``M`` VirtualNodes and ``N`` live replicas, a replica takes a free Lease only while it holds fewer
than ``fair_share(M, N)`` (ceil(M/N)), unless the Lease has been free for the grace period (then anyone takes it:
availability beats balance); a replica that holds more than its fair share while another holds two fewer gives
one up now and then (``has_extra``).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

VIRTUAL_NODE_PREFIX = "acinode-vn-"
REPLICA_PREFIX = "acinode-replica-"
KIND_LABEL = "acinode.dev/lease-kind"
"""On every ownership Lease: ``virtualnode`` or ``replica`` (one LIST with this label finds them all)."""
KIND_VIRTUAL_NODE = "virtualnode"
KIND_REPLICA = "replica"
VIRTUAL_NODE_ANNOTATION = "acinode.dev/virtual-node"
"""The VirtualNode's full name (the Lease name may be shortened)."""
RELEASED_ANNOTATION = "acinode.dev/released-virtual-node-uid"
"""Set when the deleted VirtualNode of that uid has been released (its groups, Node and Lease removed): the other
replicas' delete handlers then return at once."""
MAX_NAME_LENGTH = 253
_HASH_LENGTH = 10
_INVALID = re.compile(r"[^a-z0-9.-]+")


def _lease_name(prefix: str, name: str) -> str:
    """``prefix + name`` when that is a valid object name (DNS subdomain, 253 characters); otherwise a readable
    prefix of it plus a hash of ``name``, so two names never share a Lease."""
    plain = prefix + name
    if len(plain) <= MAX_NAME_LENGTH and _INVALID.search(name) is None and plain[-1].isalnum():
        return plain
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    readable = _INVALID.sub("-", name.lower()).strip("-.")
    readable = readable[: MAX_NAME_LENGTH - len(prefix) - _HASH_LENGTH - 1].rstrip("-.")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def virtual_node_lease_name(virtual_node: str) -> str:
    return _lease_name(VIRTUAL_NODE_PREFIX, virtual_node)


def replica_lease_name(replica_id: str) -> str:
    return _lease_name(REPLICA_PREFIX, replica_id)


# --- reading Leases ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says about its holder."""

    name: str
    holder: str
    """Empty: released (free)."""
    renew_time: str
    duration_seconds: int
    transitions: int
    resource_version: str
    uid: str = ""
    kind: str = ""
    released_uid: str = ""
    """``RELEASED_ANNOTATION``: the uid of a deleted VirtualNode whose release is complete."""

    @property
    def key(self) -> tuple[str, str]:
        """What an observer compares: a renewal or a new holder changes it."""
        return (self.holder, self.renew_time)


def record_from_lease(lease: Mapping[str, Any]) -> LeaseRecord:
    metadata = lease.get("metadata") or {}
    spec = lease.get("spec") or {}
    return LeaseRecord(
        name=str(metadata.get("name") or ""),
        holder=str(spec.get("holderIdentity") or ""),
        renew_time=str(spec.get("renewTime") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(metadata.get("resourceVersion") or ""),
        uid=str(metadata.get("uid") or ""),
        kind=str((metadata.get("labels") or {}).get(KIND_LABEL) or ""),
        released_uid=str((metadata.get("annotations") or {}).get(RELEASED_ANNOTATION) or ""),
    )


@dataclasses.dataclass(frozen=True)
class Observation:
    """A Lease (or its absence: ``record`` None) as this replica saw it, and since when (its monotonic clock)."""

    record: LeaseRecord | None
    since: float


def observe(previous: Observation | None, record: LeaseRecord | None, now: float) -> Observation:
    """The new observation after reading ``record`` at ``now``: ``since`` moves only when the holder or its
    renewTime changed (or the Lease appeared or vanished)."""
    if previous is not None:
        before = previous.record.key if previous.record is not None else None
        after = record.key if record is not None else None
        if before == after:
            return Observation(record, previous.since)
    return Observation(record, now)


class Standing(enum.Enum):
    MINE = "mine"
    HELD = "held"
    """By another replica that renewed it less than a lease duration ago (as observed here)."""
    FREE = "free"


def standing(observation: Observation, me: str, now: float) -> tuple[Standing, float]:
    """Whose the Lease is, and since when it is free (monotonic; meaningful for FREE only)."""
    record = observation.record
    if record is None or not record.holder:
        return Standing.FREE, observation.since
    if record.holder == me:
        return Standing.MINE, observation.since
    expires = observation.since + max(record.duration_seconds, 1)
    if now >= expires:
        return Standing.FREE, expires
    return Standing.HELD, expires


def is_live_replica(observation: Observation, now: float) -> bool:
    """Whether a presence Lease shows a live replica (its holder is the replica itself)."""
    return standing(observation, "", now)[0] is Standing.HELD


# --- deciding ---------------------------------------------------------------------------------------------------


def fair_share(virtual_nodes: int, replicas: int) -> int:
    """ceil(M/N): how many VirtualNodes each of ``replicas`` live replicas should serve."""
    if virtual_nodes <= 0:
        return 0
    return math.ceil(virtual_nodes / max(replicas, 1))


class Action(enum.Enum):
    ACQUIRE = "acquire"
    WAIT = "wait"


@dataclasses.dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide_acquire(
    observation: Observation,
    me: str,
    now: float,
    *,
    held: int,
    share: int,
    free_grace_seconds: float,
    ignore_share: bool = False,
) -> Decision:
    """Whether a replica not serving this VirtualNode should try to take its Lease now.

    ``held``: how many VirtualNodes this replica serves; ``share``: ``fair_share``; ``ignore_share``: take it
    whenever free (the delete handler: whoever can, releases)."""
    where, free_since = standing(observation, me, now)
    if where is Standing.MINE:
        return Decision(Action.ACQUIRE, "the Lease names this replica (an earlier run of it): resumed")
    record = observation.record
    if where is Standing.HELD:
        assert record is not None
        return Decision(Action.WAIT, f"held by {record.holder}")
    free_for = now - free_since
    was = f"left by {record.holder}" if record is not None and record.holder else "free"
    if ignore_share or held < share:
        return Decision(Action.ACQUIRE, f"{was}; this replica serves {held} of its share {share}")
    if free_for >= free_grace_seconds:
        return Decision(
            Action.ACQUIRE, f"{was} for {free_for:.0f}s: taken whatever the share ({held}/{share})"
        )
    return Decision(Action.WAIT, f"{was}; this replica already serves {held} (share {share})")


def has_extra(held: int, share: int, fewest_elsewhere: int | None = None) -> bool:
    """Whether a replica serving ``held`` VirtualNodes should give one up: more than its share + 1, or more than
    its share while another live replica serves at least two fewer (``fewest_elsewhere``: the least any other live
    replica serves; None when there is none). Moving one then makes the spread strictly better, so shedding
    converges (it stops once no two live replicas differ by two or more) and never ping-pongs."""
    if share <= 0:
        return False
    if held > share + 1:
        return True
    return fewest_elsewhere is not None and held > share and held - fewest_elsewhere >= 2


def fence_deadline(renewal_sent_at: float, duration_seconds: float, margin_seconds: float) -> float:
    """When a holder must have stopped the work the Lease guards (its monotonic clock), given when its last
    successful renewal was *sent*: no other replica takes over before ``renewal_sent_at + duration_seconds``."""
    return renewal_sent_at + duration_seconds - margin_seconds


# --- writing Leases ---------------------------------------------------------------------------------------------


def micro_time(moment: datetime.datetime) -> str:
    """A Lease's MicroTime (RFC 3339, microseconds, UTC)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_lease(
    name: str,
    namespace: str,
    *,
    kind: str,
    holder: str,
    now: datetime.datetime,
    duration_seconds: int,
    annotations: Mapping[str, str] | None = None,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Lease held by ``holder`` (POSTed when there is none)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {KIND_LABEL: kind}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner:
        metadata["ownerReferences"] = [dict(owner)]
    stamp = micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_seconds,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        },
    }


def renewal_patch(
    record: LeaseRecord, holder: str, now: datetime.datetime, duration_seconds: int
) -> dict[str, Any]:
    """A merge patch that renews (or takes over) the Lease, refused (409) if it changed since ``record``."""
    stamp = micro_time(now)
    spec: dict[str, Any] = {
        "holderIdentity": holder,
        "renewTime": stamp,
        "leaseDurationSeconds": duration_seconds,
    }
    if record.holder != holder:
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = record.transitions + 1
    return {"metadata": {"resourceVersion": record.resource_version}, "spec": spec}


def takeover_metadata(owner: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata a taker sets with its first write: the current owner (a VirtualNode recreated under the same
    name has a new uid) and no release mark of an earlier VirtualNode."""
    metadata: dict[str, Any] = {"annotations": {RELEASED_ANNOTATION: None}}
    if owner:
        metadata["ownerReferences"] = [dict(owner)]
    return metadata


def release_patch(record: LeaseRecord, *, released_uid: str | None = None) -> dict[str, Any]:
    """A merge patch that gives the Lease up (no holder), refused if it changed since ``record``; with
    ``released_uid``, also marks the deleted VirtualNode of that uid as released."""
    patch: dict[str, Any] = {
        "metadata": {"resourceVersion": record.resource_version},
        "spec": {"holderIdentity": None, "leaseDurationSeconds": 1},
    }
    if released_uid:
        patch["metadata"]["annotations"] = {RELEASED_ANNOTATION: released_uid}
    return patch


def virtual_node_owner(name: str, uid: str) -> dict[str, Any]:
    """The ownerReference that has the garbage collector delete a VirtualNode's Lease with it."""
    return {"apiVersion": "acinode.dev/v1alpha1", "kind": "VirtualNode", "name": name, "uid": uid}
