"""The VirtualNode's status conditions as its keeper reports them (Ready, Registered, BackendReachable)."""

from __future__ import annotations

import datetime
from typing import Any

from acinode.mapping import conditions, ownership, timestamps
from acinode.mapping import node as node_mapping


def _condition(
    kind: str,
    ok: bool | None,
    reason: str,
    message: str,
    *,
    now: datetime.datetime,
    before: dict[str, Any] | None,
) -> dict[str, Any]:
    status = "Unknown" if ok is None else "True" if ok else "False"
    previous = next((c for c in (before or {}).get("conditions", []) if c["type"] == kind), None)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": conditions.transition_time(previous, status, timestamps.rfc3339(now)),
    }


def virtual_node_conditions(
    readiness: node_mapping.Readiness,
    registered: bool,
    now: datetime.datetime,
    before: dict[str, Any] | None,
    *,
    refusal: ownership.Refusal | None = None,
    lease_refusal: ownership.Refusal | None = None,
    backend: node_mapping.BackendHealth | None = None,
) -> list[dict[str, Any]]:
    """Ready, Registered and BackendReachable. A refusal (no Node of ours) is the reason of Ready and Registered;
    the backend is not checked meanwhile (Unknown). A foreign Lease keeps Ready False.

    BackendReachable is ``backend`` (the keeper's health, with hysteresis), not Ready: Ready stays True through
    backend outages. Without ``backend``, nothing is known yet (Unknown)."""
    if refusal is not None:
        return [
            _condition("Ready", False, refusal.reason, refusal.message, now=now, before=before),
            _condition("Registered", False, refusal.reason, refusal.message, now=now, before=before),
            _condition(
                "BackendReachable",
                None,
                "NotChecked",
                "the backend is not checked while the VirtualNode has no Node of its own",
                now=now,
                before=before,
            ),
        ]
    health = backend or node_mapping.BackendHealth(
        None, "BackendNotChecked", "the backend has not been checked yet"
    )
    ready = (
        _condition("Ready", False, lease_refusal.reason, lease_refusal.message, now=now, before=before)
        if lease_refusal is not None and registered
        else _condition(
            "Ready",
            readiness.ready and registered,
            readiness.reason,
            readiness.message,
            now=now,
            before=before,
        )
    )
    return [
        ready,
        _condition(
            "Registered",
            registered,
            "NodeRegistered" if registered else "NodeNotRegistered",
            "the Node is registered" if registered else "the Node is not registered yet",
            now=now,
            before=before,
        ),
        _condition(
            node_mapping.BACKEND_CONDITION,
            health.reachable,
            health.reason,
            health.message,
            now=now,
            before=before,
        ),
    ]


def same_status(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def essence(s: dict[str, Any]) -> Any:
        return (
            s.get("pods"),
            s["observedGeneration"],
            s["nodeName"],
            [(c["type"], c["status"], c["reason"], c["message"]) for c in s["conditions"]],
        )

    return bool(essence(a) == essence(b))
