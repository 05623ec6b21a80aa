"""The status-sync scheduler: which groups get a GET in a pass, and how long until the next pass.

ARM's list omits every instance view and ``provisioningState`` stays Succeeded after containers exit, so container
states come only from GETs of single groups (no batch source carries them: docs/architecture.md, "Where container
state can come from"), drawn from a read budget (``readbudget``; docs/performance.md, "Status lag"):
- groups in transition (provisioning, just created, pod not yet Running and ready) first, up to
  ``max_gets_per_sync`` a pass: those the listing shows deployed before those still provisioning, then the
  longest unread. A group read with no change waits twice as long for its next read (``fast_sync_seconds`` × 2ⁿ,
  at most ``steady_sync_seconds``), unless a listing shows its provisioningState changed since;
- then steady groups, as many as the budget holds: ``status_reads_per_second`` for the operator, shared by its
  nodes in proportion to their steady load, accrued between passes and charged for the transition reads too; the
  most overdue first (time since the last read × ``likely_to_end_weight`` for pods likely to end). With a budget
  of 0, a fixed round-robin sweep of ``steady_gets_per_sync`` a pass instead;
- the pass interval adapts: fast while anything is in transition, ``budget_pass_seconds`` while the budget has
  steady groups to read, steady otherwise, idle for an empty node, and backing off while no listing has succeeded
  yet. The listing is refreshed every pass while anything is in transition, else every ``steady_sync_seconds``,
  or less often when all nodes' listing pages together would exceed ``listing_reads_per_second``.
No I/O here: the controller lists, GETs and patches; this decides, on the injected clock.
"""

from __future__ import annotations

import dataclasses

from acinode import settings, types
from acinode.aci import api
from acinode.mapping import objects
from acinode.pods import clock, readbudget, retry


def has_run(pod: objects.Pod) -> bool:
    """Whether the pod's status shows that its group existed (so a missing group was lost, not never made)."""
    status = pod.get("status", {})
    return status.get("phase") == "Running" or any(
        "running" in s.get("state", {}) or "terminated" in s.get("state", {})
        for s in status.get("containerStatuses", [])
    )


def needs_look(pod: objects.Pod, summary: api.GroupSummary, *, just_created: bool) -> bool:
    """In transition: provisioning, just created (and not yet seen run), or not yet seen Running and ready."""
    return in_transition(
        summary, just_created=just_created, has_run=has_run(pod), running_and_ready=is_running_and_ready(pod)
    )


def in_transition(
    summary: api.GroupSummary, *, just_created: bool, has_run: bool, running_and_ready: bool
) -> bool:
    """``needs_look`` from what the pod's status says (the controller reads that once per version of a pod)."""
    return summary.is_provisioning() or (just_created and not has_run) or not running_and_ready


def is_running_and_ready(pod: objects.Pod) -> bool:
    status = pod.get("status", {})
    statuses = status.get("containerStatuses", [])
    return status.get("phase") == "Running" and bool(statuses) and all(s.get("ready") for s in statuses)


@dataclasses.dataclass
class LookState:
    """When a group was last read, and how often in a row that changed nothing."""

    at: float
    unchanged: int = 0
    provisioning_state: str | None = None
    """The group's provisioningState in the listing at the time of the look."""


@dataclasses.dataclass(slots=True)
class Candidate:
    """A pod whose own group is listed: one GET would refresh its status. Made for every bound pod in every
    pass, so the controller may hand over what it already knows of the pod (None: worked out here)."""

    pod: objects.Pod
    name: types.ContainerGroupName
    summary: api.GroupSummary
    just_created: bool = False
    in_transition: bool | None = None
    """``needs_look`` of the candidate."""
    likely_to_end: bool | None = None
    """``readbudget.likely_to_end`` of the pod."""

    def needs_look(self) -> bool:
        if self.in_transition is None:
            return needs_look(self.pod, self.summary, just_created=self.just_created)
        return self.in_transition

    def ends_likely(self) -> bool:
        return readbudget.likely_to_end(self.pod) if self.likely_to_end is None else self.likely_to_end


class SyncScheduler:
    def __init__(
        self,
        pod_settings: settings.PodSettings,
        clock_: clock.Clock,
        budget: readbudget.SharedBudget | None = None,
    ) -> None:
        self.settings = pod_settings
        self.clock = clock_
        self.budget = readbudget.OPERATOR if budget is None else budget
        self.budget.configure(
            readbudget.BudgetTerms(
                pod_settings.status_reads_per_second,
                pod_settings.likely_to_end_weight,
                min(pod_settings.budget_pass_seconds, pod_settings.steady_sync_seconds),
            )
        )
        self.looks: dict[types.ContainerGroupName, LookState] = {}
        self._first_seen: dict[types.ContainerGroupName, float] = {}
        """When each steady group never read yet was first a candidate (see ``_last_read``)."""
        self._sweep_position = 0
        self._first_listing = retry.Backoff(
            pod_settings.fast_sync_seconds * 2, pod_settings.steady_sync_seconds
        )
        self._tokens = 0.0
        """Status reads this node may still spend (negative: transition reads ran ahead of its share)."""
        self._accrued_at: float | None = None
        self._in_transition = 0
        self._steady = 0
        self._budget_pass = False
        """Whether the next pass is one the budget scheduled (it reuses a listing up to a steady interval old)."""

    @property
    def pass_seconds(self) -> float:
        """The interval of passes that spend the budget (never longer than the steady interval)."""
        return min(self.settings.budget_pass_seconds, self.settings.steady_sync_seconds)

    @property
    def budgeted(self) -> bool:
        return self.settings.status_reads_per_second > 0

    def share(self) -> float:
        """This node's status reads per second now."""
        return self.budget.share(
            self, self.settings.status_reads_per_second, self.settings.likely_to_end_weight
        )

    def lag_bound(self) -> readbudget.LagBound:
        """The operator-wide worst-case status lags at the current steady load."""
        return self.budget.bound(
            self.settings.status_reads_per_second,
            likely_weight=self.settings.likely_to_end_weight,
            pass_seconds=self.pass_seconds,
        )

    def listing_is_stale(self, listing_began: float, listed: bool) -> bool:
        """Whether a pass lists again. While anything is in transition, a listing over ``fast_sync_seconds`` old
        (a pass woken early reuses a fresher one: in a burst, listings of every group would otherwise run back to
        back); a pass the budget scheduled (all steady) one over ``listing_interval()`` old, so that passes every
        ``budget_pass_seconds`` do not pay a listing (ceil(groups / 100) reads) each."""
        if not listed:
            return True
        age = self.clock.monotonic() - listing_began
        if self._budget_pass:
            return age >= self.listing_interval()
        return age >= self.settings.fast_sync_seconds

    def listing_interval(self) -> float:
        """How old a listing a budgeted (all steady) pass reuses: ``steady_sync_seconds``, or longer when every
        node's listings together would exceed ``listing_reads_per_second`` (each page of 100 groups is a read)."""
        return self.budget.listing_interval(
            self.settings.listing_reads_per_second, self.settings.steady_sync_seconds
        )

    def keep_only(self, names: set[types.ContainerGroupName]) -> None:
        """Forget the looks of groups no longer listed."""
        for name in set(self.looks) - names:
            del self.looks[name]
        for name in set(self._first_seen) - names:
            del self._first_seen[name]

    def forget(self, name: types.ContainerGroupName) -> None:
        """A new group under that name (just created): it is due a look at once."""
        self.looks.pop(name, None)
        self._first_seen.pop(name, None)

    def is_due(self, name: types.ContainerGroupName, summary: api.GroupSummary) -> bool:
        look = self.looks.get(name)
        if look is None or look.provisioning_state != summary.provisioning_state:
            return True  # never read, or ARM's listing shows a change since
        wait = min(self.settings.fast_sync_seconds * 2**look.unchanged, self.settings.steady_sync_seconds)
        return bool(self.clock.monotonic() >= look.at + wait)

    def choose(self, candidates: list[Candidate]) -> tuple[list[Candidate], int]:
        """The candidates to GET this pass, and how many are in transition."""
        due: list[tuple[bool, float, int, Candidate]] = []
        steady: list[Candidate] = []
        in_transition = 0
        for index, candidate in enumerate(candidates):
            if candidate.needs_look():
                in_transition += 1
                if self.is_due(candidate.name, candidate.summary):
                    look = self.looks.get(candidate.name)
                    due.append(
                        (candidate.summary.is_provisioning(), look.at if look else 0.0, index, candidate)
                    )
            else:
                steady.append(candidate)
        due.sort(key=lambda entry: entry[:3])
        chosen = [entry[3] for entry in due[: self.settings.max_gets_per_sync]]
        self._in_transition, self._steady = in_transition, len(steady)
        likely = [c.ends_likely() for c in steady]
        self.budget.report(self, len(steady) - sum(likely), sum(likely), groups=len(candidates))
        if self.budgeted:
            chosen += self._spend(steady, likely, transition_reads=len(chosen))
        elif steady and self.settings.steady_gets_per_sync > 0:
            start = self._sweep_position % len(steady)
            rotated = steady[start:] + steady[:start]
            chosen += rotated[: self.settings.steady_gets_per_sync]
            self._sweep_position = start + self.settings.steady_gets_per_sync
        return chosen, in_transition

    def charge(self, reads: int) -> None:
        """Status reads made between passes (a created group's first look): they count against the budget as a
        pass's transition reads do."""
        if self.budgeted:
            cap = 1.0 + self.share() * self.settings.steady_sync_seconds
            self._tokens = max(-cap, self._tokens - reads)

    def _spend(
        self, steady: list[Candidate], likely: list[bool], *, transition_reads: int
    ) -> list[Candidate]:
        """Accrue this node's share since the last pass, charge the transition reads, spend the rest on the most
        overdue steady groups."""
        weight = self.settings.likely_to_end_weight
        now = self.clock.monotonic()
        rate = self.share()
        if self._accrued_at is not None:
            self._tokens += rate * (now - self._accrued_at)
        self._accrued_at = now
        # Unspent reads carry over for one steady interval at most: a long quiet spell is no licence to burst. Plus
        # the read being saved up: capped at one token, a node with a small share (50 nodes of 20 pods: 0.04/s)
        # lost what it accrued past 1.0 in the pass that reached it, and read every 30 s instead of every 25 s.
        cap = 1.0 + rate * self.settings.steady_sync_seconds
        self._tokens = max(-cap, min(self._tokens, cap) - transition_reads)
        count = min(len(steady), int(self._tokens))
        if count <= 0:
            return []
        self._tokens -= count
        claims = [
            readbudget.claim(self._last_read(c.name, now), now, weight if ending else 1.0)
            for c, ending in zip(steady, likely, strict=True)
        ]
        return [steady[index] for index in readbudget.most_overdue(claims, count)]

    def _last_read(self, name: types.ContainerGroupName, now: float) -> float:
        """When the group was last read; one never read (a steady group found at start) counts as read a pass
        before it was first seen. Not as never read, which would outrank every weight: after a start, the first
        reads (1,000 groups: ~500 s at the default budget) would go in list order, and a Job's exit would wait
        behind every server."""
        look = self.looks.get(name)
        if look is not None:
            return look.at
        return self._first_seen.setdefault(name, now - self.pass_seconds)

    def looked(self, name: types.ContainerGroupName, *, unchanged: bool, listed_state: str | None) -> None:
        """Record a GET of the group: ``unchanged`` when the pod's status stayed as it was; ``listed_state`` is
        the provisioningState the group is now known in (the GET's, which the group cache takes over too): a later
        listing that says otherwise makes the group due again at once."""
        previous = self.looks.get(name)
        self.looks[name] = LookState(
            at=self.clock.monotonic(),
            unchanged=(previous.unchanged + 1 if previous and unchanged else 0),
            provisioning_state=listed_state,
        )

    def interval(self, *, listed: bool, in_transition: int, has_work: bool, failures: int) -> float:
        """Seconds until the next pass (a creation wakes it earlier)."""
        self._budget_pass = False
        if not listed:
            # Pods wait for the first listing: retry soon, backing off.
            return self._first_listing.delay(failures) if failures else self.settings.fast_sync_seconds
        if in_transition:
            return self.settings.fast_sync_seconds
        if has_work and self.budgeted and self._steady:
            self._budget_pass = True
            return self.pass_seconds
        if has_work:
            return self.settings.steady_sync_seconds
        return self.settings.idle_sync_seconds  # an empty node: just the orphan check
