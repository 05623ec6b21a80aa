"""The emulator's state: container groups with their runtime views, LRO operations, and (de)serialization.

Only plain data lives here; ``lifecycle`` drives the state machine and ``render`` shapes what clients see.
Keys are lower-cased because ARM names are case-insensitive.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acinode.emulator import wire

Key = tuple[str, str, str]
MAX_LOG_LINES = 10_000  # the real service keeps 4 MB while running; lines are what tests count
MAX_OPERATIONS = 10_000


@dataclass
class EventRecord:
    name: str
    message: str
    type: str
    count: int
    first: float
    last: float

    def to_wire(self) -> wire.Json:
        return {
            "count": self.count,
            "firstTimestamp": wire.iso(self.first),
            "lastTimestamp": wire.iso(self.last),
            "name": self.name,
            "message": self.message,
            "type": self.type,
        }


def add_event(
    events: list[EventRecord],
    now: float,
    name: str,
    message: str,
    kind: str = "Normal",
    *,
    by_name: bool = False,
) -> None:
    """Repeated events aggregate into one with a count, as ACI reports BackOff and restarts.

    ``by_name``: aggregate on the name alone, keeping the latest message (ACI's ``Killing`` names each run's
    container id, yet shows one event with a count)."""
    for event in events:
        if event.name == name and (by_name or event.message == message):
            event.count += 1
            event.last = now
            event.message = message
            return
    events.append(EventRecord(name, message, kind, 1, now, now))


@dataclass
class ContainerState:
    state: str
    start_time: float | None = None
    finish_time: float | None = None
    exit_code: int | None = None
    detail_status: str = ""

    def to_wire(self) -> wire.Json:
        out: wire.Json = {"state": self.state, "detailStatus": self.detail_status}
        if self.start_time is not None:
            out["startTime"] = wire.iso(self.start_time)
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.finish_time is not None:
            out["finishTime"] = wire.iso(self.finish_time)
        return out


@dataclass
class ContainerRuntime:
    name: str
    current: ContainerState | None = None
    """None until the container's image pull starts (the real service shows no instance view before)."""
    previous: ContainerState | None = None
    restart_count: int = 0
    events: list[EventRecord] = field(default_factory=list)
    logs: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    lines_written: int = 0
    """Lines ever written to this run's log (a follower's cursor survives the deque dropping old lines)."""

    def write(self, now: float, line: str) -> None:
        self.logs.append((now, line))
        self.lines_written += 1

    def clear_logs(self) -> None:
        self.logs.clear()
        self.lines_written = 0


@dataclass
class GroupRecord:
    subscription: str
    resource_group: str
    name: str
    location: str
    body: wire.Json
    """The accepted request body (secrets included; ``render`` strips them)."""
    created_at: float
    provisioning_state: str = "Pending"
    state: str = "Pending"
    """instanceView.state: Pending, Running, Stopped, Succeeded or Failed."""
    events: list[EventRecord] = field(default_factory=list)
    containers: dict[str, ContainerRuntime] = field(default_factory=dict)
    init_containers: dict[str, ContainerRuntime] = field(default_factory=dict)
    ip: str | None = None
    operation_id: str | None = None
    generation: int = 0

    @property
    def key(self) -> Key:
        return group_key(self.subscription, self.resource_group, self.name)

    @property
    def properties(self) -> wire.Json:
        props: wire.Json = self.body["properties"]
        return props

    @property
    def resource_id(self) -> str:
        return wire.group_id(self.subscription, self.resource_group, self.name)

    def container_specs(self, init: bool = False) -> list[wire.Json]:
        specs: list[wire.Json] = self.properties.get("initContainers" if init else "containers") or []
        return specs

    def total_cpu(self) -> float:
        return sum(float(c["properties"]["resources"]["requests"]["cpu"]) for c in self.container_specs())

    def total_memory(self) -> float:
        return sum(
            float(c["properties"]["resources"]["requests"]["memoryInGB"]) for c in self.container_specs()
        )

    def uses_gpu(self) -> bool:
        return any(c["properties"]["resources"]["requests"].get("gpu") for c in self.container_specs())


def group_key(subscription: str, resource_group: str, name: str) -> Key:
    return (subscription.lower(), resource_group.lower(), name.lower())


@dataclass
class Operation:
    id: str
    subscription: str
    location: str
    resource_id: str
    start_time: float
    status: str = "InProgress"
    end_time: float | None = None
    error: wire.Json | None = None

    def finish(self, now: float, status: str, error: wire.Json | None = None) -> None:
        if self.status == "InProgress":
            self.status, self.end_time, self.error = status, now, error


@dataclass
class Store:
    groups: dict[Key, GroupRecord] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    missing_resource_groups: set[tuple[str, str]] = field(default_factory=set)
    version: int = 0
    """Bumped on every change, so the persister knows when to write."""

    def touch(self) -> None:
        self.version += 1

    def add_operation(self, op: Operation) -> None:
        self.operations[op.id] = op
        if len(self.operations) > MAX_OPERATIONS:
            done = [k for k, o in self.operations.items() if o.status != "InProgress"]
            for k in done[: len(self.operations) - MAX_OPERATIONS]:
                del self.operations[k]
        self.touch()

    def in_scope(self, subscription: str, resource_group: str | None = None) -> list[GroupRecord]:
        sub = subscription.lower()
        rg = resource_group.lower() if resource_group is not None else None
        return [g for k, g in self.groups.items() if k[0] == sub and (rg is None or k[1] == rg)]

    def in_region(self, subscription: str, location: str) -> list[GroupRecord]:
        return [g for g in self.in_scope(subscription) if g.location == location]

    # -- persistence --

    def to_json(self) -> dict[str, Any]:
        groups = []
        for group in self.groups.values():
            data = asdict(group)
            for kind in ("containers", "init_containers"):
                for runtime in data[kind].values():
                    runtime["logs"] = [list(entry) for entry in runtime["logs"]]
            groups.append(data)
        return {
            "groups": groups,
            "operations": [asdict(op) for op in self.operations.values()],
            "missingResourceGroups": sorted(list(pair) for pair in self.missing_resource_groups),
        }

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secureValues: owner only
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_json(), fh)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Store:
        data = json.loads(path.read_text())
        store = cls()
        for raw in data.get("groups", []):
            group = GroupRecord(
                **{k: v for k, v in raw.items() if k not in ("events", "containers", "init_containers")}
            )
            group.events = [EventRecord(**e) for e in raw.get("events", [])]
            group.containers = {n: _runtime(r) for n, r in raw.get("containers", {}).items()}
            group.init_containers = {n: _runtime(r) for n, r in raw.get("init_containers", {}).items()}
            store.groups[group.key] = group
        for raw in data.get("operations", []):
            op = Operation(**raw)
            store.operations[op.id] = op
        store.missing_resource_groups = {(s, r) for s, r in data.get("missingResourceGroups", [])}
        return store


def _runtime(raw: dict[str, Any]) -> ContainerRuntime:
    runtime = ContainerRuntime(name=raw["name"], restart_count=raw.get("restart_count", 0))
    runtime.current = ContainerState(**raw["current"]) if raw.get("current") else None
    runtime.previous = ContainerState(**raw["previous"]) if raw.get("previous") else None
    runtime.events = [EventRecord(**e) for e in raw.get("events", [])]
    for ts, line in raw.get("logs", []):
        runtime.write(ts, line)
    return runtime
