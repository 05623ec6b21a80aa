"""Test hooks' state: injected faults, LRO failures, and request statistics.

A fault rule matches an operation (its swagger operationId, e.g. ``ContainerGroups_Get``, or ``*``) and fires
with a probability (``rate``) for at most ``count`` requests; it can add latency, drop the connection, or
answer
an ARM error with the given status and code.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from acinode.emulator import wire


@dataclass
class FaultRule:
    operation: str = "*"
    rate: float = 1.0
    status: int | None = 500
    """None: no error answer (latency or drop only)."""
    code: str = "InternalServerError"
    message: str = "Injected fault."
    latency_seconds: float = 0.0
    drop: bool = False
    count: int | None = None
    """Requests left to hit; None means unlimited."""
    retry_after: int | None = None

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> FaultRule:
        names = {
            "operation": "operation",
            "rate": "rate",
            "status": "status",
            "code": "code",
            "message": "message",
            "latencySeconds": "latency_seconds",
            "drop": "drop",
            "count": "count",
            "retryAfter": "retry_after",
        }
        unknown = set(raw) - set(names)
        if unknown:
            raise wire.ArmError(400, "InvalidRequestContent", f"Unknown fault fields: {sorted(unknown)}")
        rule = cls(**{names[k]: v for k, v in raw.items()})
        if not 0.0 <= rule.rate <= 1.0:
            raise wire.ArmError(400, "InvalidRequestContent", "rate must lie between 0 and 1")
        return rule

    def to_wire(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "operation": data["operation"],
            "rate": data["rate"],
            "status": data["status"],
            "code": data["code"],
            "message": data["message"],
            "latencySeconds": data["latency_seconds"],
            "drop": data["drop"],
            "count": data["count"],
            "retryAfter": data["retry_after"],
        }


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self.lro_failures: list[tuple[str, str]] = []
        self._random = random.Random(seed)

    def seed(self, seed: int) -> None:
        self._random.seed(seed)

    def clear(self) -> None:
        self.rules.clear()
        self.lro_failures.clear()

    def match(self, operation: str) -> FaultRule | None:
        """The first rule that fires for this request (consuming one of its ``count``)."""
        for rule in self.rules:
            if rule.operation not in ("*", operation):
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.rate < 1.0 and self._random.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            return rule
        return None

    def fail_next_lro(self, code: str, message: str, count: int = 1) -> None:
        self.lro_failures.extend([(code, message)] * count)

    def take_lro_failure(self) -> tuple[str, str] | None:
        return self.lro_failures.pop(0) if self.lro_failures else None


class Stats:
    """Requests per operation and status since start (or the last reset)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()
        self.api_versions: Counter[tuple[str, str]] = Counter()
        self.since = time.time()

    def record(self, operation: str, status: int, api_version: str = "") -> None:
        self.counts[(operation, status)] += 1
        if api_version:
            self.api_versions[(operation, api_version)] += 1

    def reset(self) -> None:
        self.counts.clear()
        self.api_versions.clear()
        self.since = time.time()

    def to_wire(self) -> dict[str, Any]:
        by_op: dict[str, dict[str, int]] = {}
        for (op, status), n in sorted(self.counts.items()):
            by_op.setdefault(op, {})[str(status)] = n
        versions: dict[str, dict[str, int]] = {}
        for (op, version), n in sorted(self.api_versions.items()):
            versions.setdefault(op, {})[version] = n
        return {
            "since": wire.iso(self.since),
            "total": sum(self.counts.values()),
            "requests": by_op,
            "apiVersions": versions,
        }
