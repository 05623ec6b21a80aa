"""The status-sync read budget: its arithmetic, the order in which steady groups spend it, and its share per node.

Only a GET of one group shows container states (docs/architecture.md, "Where container state can come from"), so
noticing an exit in a steady pod costs one ARM read, and how soon it is noticed is budget arithmetic:
- the operator spends ``reads_per_second`` status GETs (``pods.status_reads_per_second``), stated as a fraction of
  ARM's documented subscription read limit (``ARM_SUBSCRIPTION_READS_PER_SECOND``);
- groups in transition are read first (the scheduler charges their GETs to the same budget), and what remains
  goes to steady groups, the most overdue first: a group's claim is the time since its last read times its
  weight, ``likely_weight`` for pods likely to end (Jobs, restartPolicy Never or OnFailure), 1 for the rest;
- read that way, every steady group is read once its claim reaches the same threshold θ, so
  ``reads_per_second = servers / θ + likely × likely_weight / θ``, hence θ = (servers + likely_weight × likely) /
  reads_per_second: a server is read every θ seconds, a pod likely to end every θ / likely_weight;
- virtual nodes share the budget in proportion to their steady load (servers + likely_weight × likely), so θ is
  the same on every node: it depends on the operator's steady groups, not on how they are spread.
The worst-case lag from a container's exit to its pod's status is θ (or θ / likely_weight) plus one pass.
Pure: no I/O, no clock; the scheduler (``statussync``) feeds it.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Iterable, Sequence

from acinode.mapping import objects

ARM_SUBSCRIPTION_READS_PER_SECOND = 25.0
"""ARM's documented subscription read limit: a token bucket of 250 refilled at 25 reads/s per subscription, per
security principal and per region (learn.microsoft.com/azure/azure-resource-manager/management/
request-limits-and-throttling, "Regional throttling and token bucket algorithm", since 2024)."""
ARM_LEGACY_READS_PER_HOUR = 12_000
"""The limit the same page documented before that migration: 12,000 reads per hour per principal (3.3/s)."""
LIST_PAGE_SIZE = 100
"""Container groups per page of ARM's list: a listing of N groups costs ceil(N / 100) reads."""

ENDING_KINDS = frozenset({"Job"})
"""Owner kinds whose pods run to completion."""


def likely_to_end(pod: objects.Pod) -> bool:
    """Whether the pod's containers are expected to end: owned by a Job, or restartPolicy Never or OnFailure (a
    server under a Deployment, StatefulSet or DaemonSet has restartPolicy Always and ends only by failing)."""
    if pod.get("spec", {}).get("restartPolicy", "Always") in ("Never", "OnFailure"):
        return True
    references = dict(pod.get("metadata", {})).get("ownerReferences") or []  # not in ObjectMeta's typing
    return isinstance(references, list) and any(
        isinstance(ref, dict) and ref.get("kind") in ENDING_KINDS for ref in references
    )


def claim(last_read: float | None, now: float, weight: float) -> float:
    """How overdue a steady group is: never read → infinite; else seconds since its last read × its weight."""
    return math.inf if last_read is None else (now - last_read) * weight


def most_overdue(claims: Sequence[float], count: int) -> list[int]:
    """Indexes of the ``count`` largest claims, largest first; ties keep their order (a stable sweep)."""
    if count <= 0:
        return []
    return sorted(range(len(claims)), key=lambda index: -claims[index])[:count]


def load(servers: int, likely: int, likely_weight: float) -> float:
    """A node's steady load in reads per threshold: what it needs of the budget."""
    return servers + likely_weight * likely


def listing_reads_per_second(groups: int, interval_seconds: float) -> float:
    """ARM reads one listing of ``groups`` costs per second when repeated every ``interval_seconds``."""
    return math.ceil(groups / LIST_PAGE_SIZE) / interval_seconds if groups else 0.0


@dataclasses.dataclass(frozen=True)
class LagBound:
    """The budget's arithmetic for a set of steady groups."""

    servers: int
    likely: int
    reads_per_second: float
    threshold_seconds: float
    """θ: how often a server is read (infinite without a budget and with steady groups)."""
    server_lag_seconds: float
    """Worst-case lag from a server's container exit to its pod's status: θ + one pass."""
    likely_lag_seconds: float
    """The same for a pod likely to end: θ / likely_weight + one pass."""

    @property
    def budget_fraction(self) -> float:
        """The budget as a fraction of ARM's documented subscription read limit."""
        return self.reads_per_second / ARM_SUBSCRIPTION_READS_PER_SECOND


def lag_bound(
    servers: int, likely: int, reads_per_second: float, *, likely_weight: float, pass_seconds: float
) -> LagBound:
    """θ and the worst-case status lags for ``servers`` and ``likely`` steady groups at ``reads_per_second``."""
    demand = load(servers, likely, likely_weight)
    if demand == 0:
        threshold = 0.0
    elif reads_per_second <= 0:
        threshold = math.inf
    else:
        threshold = demand / reads_per_second
    return LagBound(
        servers=servers,
        likely=likely,
        reads_per_second=reads_per_second,
        threshold_seconds=threshold,
        server_lag_seconds=threshold + pass_seconds if servers else 0.0,
        likely_lag_seconds=threshold / likely_weight + pass_seconds if likely else 0.0,
    )


def reads_for_lag(
    servers: int, likely: int, lag_seconds: float, *, likely_weight: float, pass_seconds: float
) -> float:
    """The status reads per second a worst-case server lag of ``lag_seconds`` needs (infinite if the pass
    interval alone exceeds it)."""
    if lag_seconds <= pass_seconds:
        return math.inf
    return load(servers, likely, likely_weight) / (lag_seconds - pass_seconds)


@dataclasses.dataclass(frozen=True)
class BudgetTerms:
    reads_per_second: float
    likely_weight: float
    pass_seconds: float


class SharedBudget:
    """One budget shared by every scheduler of the operator, in proportion to their steady load. Schedulers are
    held weakly: a node's controller that is gone stops counting without being told."""

    def __init__(self) -> None:
        self._loads: weakref.WeakKeyDictionary[object, tuple[int, int]] = weakref.WeakKeyDictionary()
        self._pages: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self.terms: BudgetTerms | None = None
        """The settings the schedulers spend it with (None until one exists): what the metrics report."""

    def configure(self, terms: BudgetTerms) -> None:
        self.terms = terms

    def current(self) -> LagBound | None:
        """The bound at the configured terms and the steady load last reported (None before any scheduler)."""
        if self.terms is None:
            return None
        return self.bound(
            self.terms.reads_per_second,
            likely_weight=self.terms.likely_weight,
            pass_seconds=self.terms.pass_seconds,
        )

    def report(self, member: object, servers: int, likely: int, groups: int | None = None) -> None:
        self._loads[member] = (servers, likely)
        if groups is not None:
            self._pages[member] = math.ceil(groups / LIST_PAGE_SIZE)

    def listing_interval(self, listing_reads_per_second: float, floor_seconds: float) -> float:
        """How often each member may list when all steady: every member's listing pages together within
        ``listing_reads_per_second`` (50 nodes of 20 groups, 0.5/s: every 100 s), never more often than
        ``floor_seconds``."""
        pages = sum(list(self._pages.values()))
        if listing_reads_per_second <= 0 or not pages:
            return floor_seconds
        return max(floor_seconds, pages / listing_reads_per_second)

    def totals(self) -> tuple[int, int]:
        """Steady (servers, likely) groups over every member."""
        entries: Iterable[tuple[int, int]] = list(self._loads.values())
        servers = likely = 0
        for s, li in entries:
            servers += s
            likely += li
        return servers, likely

    def share(self, member: object, reads_per_second: float, likely_weight: float) -> float:
        """``member``'s reads per second: the budget times its load over everyone's."""
        servers, likely = self._loads.get(member, (0, 0))
        mine = load(servers, likely, likely_weight)
        if mine == 0:
            return 0.0
        total = sum(load(s, li, likely_weight) for s, li in list(self._loads.values()))
        return reads_per_second * mine / total

    def bound(self, reads_per_second: float, *, likely_weight: float, pass_seconds: float) -> LagBound:
        servers, likely = self.totals()
        return lag_bound(
            servers, likely, reads_per_second, likely_weight=likely_weight, pass_seconds=pass_seconds
        )


OPERATOR = SharedBudget()
"""The operator's status-read budget (one process, one budget; tests make their own)."""
