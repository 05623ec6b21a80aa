"""What each emulated container "uses": CPU and memory over time, for the Azure Monitor metrics route.

Nothing runs, so usage is derived from what the container's command does (docs/emulator.md, "Usage"):

- a server (no command, or a program the interpreter does not know): idle, ``SERVER_CPU_MILLICORES`` and
  ``SERVER_MEMORY_BYTES``;
- a script: ``SCRIPT_CPU_MILLICORES`` and ``SCRIPT_MEMORY_BYTES`` while it sleeps or works a little; a loop whose
  body never sleeps is a busy loop and uses one core, or the container's CPU limit (else request) if smaller;
- set explicitly: environment variables ``ACI_EMULATOR_CPU`` (``250m`` or ``0.25`` cores) and
  ``ACI_EMULATOR_MEMORY`` (``64Mi``, ``1Gi``, ``100M`` or bytes) from the start, and the builtin
  ``usage cpu=… memory=…`` (``usage reset`` goes back to the derived figures) from the script or ``exec``, at
  any moment: that is how tests make usage change.

Each container keeps a step function of its usage (a segment per change, ``None`` while it is not running)
across restarts, so the route can answer averages, minima and maxima over any interval, as Azure Monitor does
(per ``containerName``; intervals without running time have no value).
"""

from __future__ import annotations

import collections
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from acinode.emulator import store

SERVER_CPU_MILLICORES = 2.0
SERVER_MEMORY_BYTES = 24 * 2**20
SCRIPT_CPU_MILLICORES = 1.0
SCRIPT_MEMORY_BYTES = 4 * 2**20
MAX_SEGMENTS = 10_000
CPU_ENV = "ACI_EMULATOR_CPU"
MEMORY_ENV = "ACI_EMULATOR_MEMORY"

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$")
_MEMORY_UNITS = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_millicores(text: str) -> float:
    """``250m`` → 250, ``0.5`` → 500, ``2`` → 2000. Raises ValueError."""
    value = text.strip()
    millicores = float(value[:-1]) if value.endswith("m") else float(value) * 1000.0
    if millicores < 0 or not math.isfinite(millicores):
        raise ValueError(f"invalid CPU {text!r}")
    return millicores


def memory_bytes(text: str) -> float:
    """``64Mi``, ``1Gi``, ``100M`` or plain bytes. Raises ValueError."""
    match = _MEMORY.match(text.strip())
    if match is None:
        raise ValueError(f"invalid memory {text!r}")
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2)]


@dataclass
class ContainerLoad:
    """One container's usage model and its history."""

    busy_millicores: float
    idle_millicores: float
    base_memory: float
    cpu_override: float | None = None
    memory_override: float | None = None
    is_busy: bool = False
    running: bool = False
    segments: collections.deque[tuple[float, float | None, float | None]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_SEGMENTS)
    )
    """(since, millicores, bytes): the usage from ``since`` until the next segment; None while not running."""

    def current(self) -> tuple[float | None, float | None]:
        if not self.running:
            return None, None
        cpu = self.cpu_override
        if cpu is None:
            cpu = self.busy_millicores if self.is_busy else self.idle_millicores
        memory = self.memory_override if self.memory_override is not None else self.base_memory
        return cpu, memory

    def _record(self) -> None:
        now = time.time()
        value = self.current()
        if self.segments and self.segments[-1][1:] == value:
            return
        if self.segments and self.segments[-1][0] == now:
            self.segments.pop()
        self.segments.append((now, *value))

    def start(self) -> None:
        self.running, self.is_busy = True, False
        self._record()

    def end(self) -> None:
        self.running = False
        self._record()

    def busy(self, flag: bool) -> None:
        if flag != self.is_busy:
            self.is_busy = flag
            self._record()

    def set(self, cpu: float | None, memory: float | None) -> None:
        if cpu is not None:
            self.cpu_override = cpu
        if memory is not None:
            self.memory_override = memory
        self._record()

    def reset(self) -> None:
        self.cpu_override = self.memory_override = None
        self._record()

    def aggregate(self, start: float, end: float, which: int) -> dict[str, float] | None:
        """Average, minimum and maximum of CPU (``which`` 1) or memory (2) over ``[start, end)``, weighted by
        running time; None when the container did not run then."""
        total = weight = 0.0
        low, high = math.inf, -math.inf
        items = list(self.segments)
        for index, segment in enumerate(items):
            since, value = segment[0], segment[which]
            until = items[index + 1][0] if index + 1 < len(items) else math.inf
            overlap = min(end, until) - max(start, since)
            if value is None or overlap <= 0:
                continue
            total += value * overlap
            weight += overlap
            low, high = min(low, value), max(high, value)
        if weight <= 0:
            return None
        return {"average": total / weight, "minimum": low, "maximum": high}


class UsageBook:
    """Every container's load, by group and container name (in memory only: history restarts with the emulator)."""

    def __init__(self) -> None:
        self._loads: dict[tuple[store.Key, str], ContainerLoad] = {}

    def get(self, key: store.Key, container: str) -> ContainerLoad | None:
        return self._loads.get((key, container.lower()))

    def loads(self, key: store.Key) -> dict[str, ContainerLoad]:
        return {name: load for (k, name), load in self._loads.items() if k == key}

    def for_run(self, key: store.Key, container: str, spec: dict[str, Any], is_server: bool) -> ContainerLoad:
        """The container's load, made on its first run; its derived figures follow the command's kind."""
        load = self._loads.get((key, container.lower()))
        resources = spec.get("properties", {}).get("resources", {})
        cores = (
            (resources.get("limits") or {}).get("cpu") or (resources.get("requests") or {}).get("cpu") or 1
        )
        busy = min(1000.0, float(cores) * 1000.0)
        idle = SERVER_CPU_MILLICORES if is_server else SCRIPT_CPU_MILLICORES
        memory = SERVER_MEMORY_BYTES if is_server else SCRIPT_MEMORY_BYTES
        if load is None:
            load = self._loads[(key, container.lower())] = ContainerLoad(busy, idle, memory)
            env = {
                str(e.get("name")): str(e.get("value", e.get("secureValue", "")))
                for e in spec.get("properties", {}).get("environmentVariables") or []
            }
            try:
                load.cpu_override = cpu_millicores(env[CPU_ENV]) if env.get(CPU_ENV) else None
                load.memory_override = memory_bytes(env[MEMORY_ENV]) if env.get(MEMORY_ENV) else None
            except ValueError:
                pass  # a malformed convention is ignored, as an unknown variable would be
        load.busy_millicores, load.idle_millicores, load.base_memory = busy, idle, memory
        return load

    def forget(self, key: store.Key) -> None:
        for entry in [k for k in self._loads if k[0] == key]:
            del self._loads[entry]
