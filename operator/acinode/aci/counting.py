"""ARM requests by operation and result: what the operator exports as metrics and what tests measure.

Every HTTP request that leaves the client is counted once (retries and LRO polls included, since ARM counts
them too), under an operation name read from its method and path, and a result: the HTTP status code, or the
exception's type name when no response came back.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Mapping

_PROVIDER = "/providers/microsoft.containerinstance/"

# Path suffixes after the provider segment, matched on the lower-cased path.
_GROUP_ROUTES: tuple[tuple[re.Pattern[str], Mapping[str, str]], ...] = (
    (re.compile(r"^containergroups/[^/]+/containers/[^/]+/logs$"), {"GET": "logs"}),
    (re.compile(r"^containergroups/[^/]+/containers/[^/]+/exec$"), {"POST": "exec"}),
    (re.compile(r"^containergroups/[^/]+/containers/[^/]+/attach$"), {"POST": "attach"}),
    (re.compile(r"^containergroups/[^/]+/restart$"), {"POST": "restart"}),
    (re.compile(r"^containergroups/[^/]+/stop$"), {"POST": "stop"}),
    (re.compile(r"^containergroups/[^/]+/providers/microsoft\.insights/metrics$"), {"GET": "metrics"}),
    (re.compile(r"^containergroups/[^/]+/start$"), {"POST": "start"}),
    (
        re.compile(r"^containergroups/[^/]+$"),
        {"GET": "get", "PUT": "create_or_update", "DELETE": "delete", "PATCH": "update"},
    ),
    (re.compile(r"^containergroups$"), {"GET": "list"}),
    (re.compile(r"^locations/[^/]+/usages$"), {"GET": "usage"}),
    (re.compile(r"^locations/[^/]+/capabilities$"), {"GET": "capabilities"}),
    (re.compile(r"^locations/[^/]+/cachedimages$"), {"GET": "cached_images"}),
    (re.compile(r"^locations/[^/]+/operations/[^/]+$"), {"GET": "operation_status"}),
)


def operation_of(method: str, path: str) -> str:
    """A stable name for an ARM request, e.g. ``create_or_update`` or ``list``; ``other`` if unknown."""
    lowered = path.lower()
    index = lowered.find(_PROVIDER)
    if index < 0:
        return "other"
    rest = lowered[index + len(_PROVIDER) :].rstrip("/")
    for pattern, by_method in _GROUP_ROUTES:
        if pattern.match(rest):
            return by_method.get(method.upper(), "other")
    return "other"


class ArmRequestCounter:
    """Counts requests by (operation, result). Safe to read from another thread (a metrics exporter)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def record(self, operation: str, result: str) -> None:
        with self._lock:
            self._counts[(operation, result)] += 1

    def count(self, operation: str | None = None, result: str | None = None) -> int:
        """Requests matching ``operation`` and ``result`` (None matches any)."""
        with self._lock:
            return sum(
                n
                for (op, res), n in self._counts.items()
                if (operation is None or op == operation) and (result is None or res == result)
            )

    def snapshot(self) -> dict[tuple[str, str], int]:
        """A copy of every count, keyed by (operation, result)."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
