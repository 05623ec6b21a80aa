"""The ownership Lease rules (``mapping.election``), as tables: names, observation, standing, fair share, the
decision to take a Lease, and the fencing arithmetic."""

from __future__ import annotations

import datetime
import re

import pytest

from acinode.mapping import election

pytestmark = pytest.mark.timeout(2)

ME = "acinode-0"


def record(
    holder: str = "acinode-1", renew: str = "t1", duration: int = 15, version: str = "7"
) -> election.LeaseRecord:
    return election.LeaseRecord(
        name="acinode-vn-a",
        holder=holder,
        renew_time=renew,
        duration_seconds=duration,
        transitions=2,
        resource_version=version,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vn-1", "acinode-vn-vn-1"),
        ("aci.westeurope", "acinode-vn-aci.westeurope"),
    ],
)
def test_short_valid_names_are_kept_readable(name: str, expected: str) -> None:
    assert election.virtual_node_lease_name(name) == expected


@pytest.mark.parametrize("name", ["x" * 253, "a" * 250 + "b", "Host_Name-1234", "pod/7"])
def test_long_or_invalid_names_are_shortened_with_a_hash_and_stay_valid(name: str) -> None:
    lease = election.replica_lease_name(name)
    assert len(lease) <= 253
    assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", lease), lease
    assert lease != election.replica_lease_name(name + "x")


@pytest.mark.parametrize(
    ("before", "after", "moves"),
    [
        (record(), record(), False),
        (record(), record(version="8"), False),  # another field changed: not a renewal
        (record(), record(renew="t2"), True),  # renewed
        (record(), record(holder="acinode-2"), True),  # taken over
        (record(), None, True),  # deleted
        (None, None, False),
    ],
)
def test_the_observation_time_moves_only_when_holder_or_renew_time_change(
    before: election.LeaseRecord | None, after: election.LeaseRecord | None, moves: bool
) -> None:
    first = election.observe(None, before, now=100.0)
    second = election.observe(first, after, now=130.0)
    assert second.since == (130.0 if moves else 100.0)


@pytest.mark.parametrize(
    ("lease", "seen_at", "now", "expected"),
    [
        (None, 100.0, 100.0, (election.Standing.FREE, 100.0)),
        (record(holder=""), 100.0, 101.0, (election.Standing.FREE, 100.0)),
        (record(holder=ME), 100.0, 500.0, (election.Standing.MINE, 100.0)),
        (record(), 100.0, 114.9, (election.Standing.HELD, 115.0)),
        # Free only after a whole lease duration on the observer's clock, whatever renewTime says.
        (record(), 100.0, 115.0, (election.Standing.FREE, 115.0)),
        (record(duration=40), 100.0, 139.0, (election.Standing.HELD, 140.0)),
    ],
)
def test_standing(
    lease: election.LeaseRecord | None, seen_at: float, now: float, expected: tuple[election.Standing, float]
) -> None:
    assert election.standing(election.Observation(lease, seen_at), ME, now) == expected


@pytest.mark.parametrize(
    ("virtual_nodes", "replicas", "share"),
    [(0, 3, 0), (1, 3, 1), (30, 3, 10), (31, 3, 11), (30, 1, 30), (30, 0, 30), (5, 10, 1)],
)
def test_fair_share_is_the_ceiling(virtual_nodes: int, replicas: int, share: int) -> None:
    assert election.fair_share(virtual_nodes, replicas) == share


@pytest.mark.parametrize(
    ("held", "share", "fewest_elsewhere", "extra"),
    [
        (10, 10, None, False),
        (11, 10, None, False),
        (12, 10, None, True),
        (1, 0, None, False),
        # Two replicas, two VirtualNodes, one replica started first and took both: give one up.
        (2, 1, 0, True),
        # Balanced within one: nothing moves (no ping-pong).
        (11, 10, 10, False),
        (11, 11, 9, False),
        (10, 10, 8, False),
        (11, 10, 9, True),
        # The only replica: keeps everything.
        (30, 30, None, False),
    ],
)
def test_a_replica_gives_up_work_only_when_that_improves_the_spread(
    held: int, share: int, fewest_elsewhere: int | None, extra: bool
) -> None:
    assert election.has_extra(held, share, fewest_elsewhere) is extra


ACQUIRE, WAIT = election.Action.ACQUIRE, election.Action.WAIT


@pytest.mark.parametrize(
    ("lease", "now", "held", "share", "ignore_share", "action"),
    [
        pytest.param(None, 100.0, 0, 10, False, ACQUIRE, id="absent-under-share"),
        pytest.param(None, 100.0, 10, 10, False, WAIT, id="absent-at-share"),
        pytest.param(None, 104.0, 10, 10, False, ACQUIRE, id="absent-past-grace"),
        pytest.param(record(holder=""), 100.0, 3, 10, False, ACQUIRE, id="released"),
        pytest.param(record(holder=ME), 100.0, 30, 10, False, ACQUIRE, id="mine-whatever-the-share"),
        pytest.param(record(), 114.0, 0, 10, False, WAIT, id="held-not-yet-expired"),
        pytest.param(record(), 115.0, 0, 10, False, ACQUIRE, id="expired-under-share"),
        pytest.param(record(), 115.0, 10, 10, False, WAIT, id="expired-within-grace"),
        pytest.param(record(), 119.0, 10, 10, False, ACQUIRE, id="expired-past-grace"),
        pytest.param(record(), 114.0, 0, 10, True, WAIT, id="delete-waits-for-holder"),
        pytest.param(record(), 115.0, 40, 10, True, ACQUIRE, id="delete-takes-when-free"),
    ],
)
def test_decide_acquire(
    lease: election.LeaseRecord | None,
    now: float,
    held: int,
    share: int,
    ignore_share: bool,
    action: election.Action,
) -> None:
    decision = election.decide_acquire(
        election.Observation(lease, 100.0),
        ME,
        now,
        held=held,
        share=share,
        free_grace_seconds=4.0,
        ignore_share=ignore_share,
    )
    assert decision.action is action, decision.reason


def test_the_holder_stops_a_margin_before_anyone_may_take_over() -> None:
    # The holder's last successful renewal was sent at 50 on its clock; an observer saw that renewal at the
    # earliest when it was written, i.e. not before it was sent, and takes over a duration after that.
    sent, duration, margin = 50.0, 15, 4.0
    stop = election.fence_deadline(sent, duration, margin)
    assert stop == 61.0
    observed = election.Observation(record(renew="after-50"), since=sent)
    assert election.standing(observed, ME, stop)[0] is election.Standing.HELD
    assert election.standing(observed, ME, sent + duration)[0] is election.Standing.FREE
    assert sent + duration - stop == margin


def test_patches_are_guarded_by_the_resource_version_and_count_transitions() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    renew = election.renewal_patch(record(holder=ME), ME, now, 15)
    assert renew == {
        "metadata": {"resourceVersion": "7"},
        "spec": {
            "holderIdentity": ME,
            "renewTime": "2026-01-01T12:00:00.123456Z",
            "leaseDurationSeconds": 15,
        },
    }
    takeover = election.renewal_patch(record(), ME, now, 15)
    assert takeover["spec"]["leaseTransitions"] == 3 and takeover["spec"]["acquireTime"]
    released = election.release_patch(record(holder=ME), released_uid="uid-1")
    assert released["metadata"] == {
        "resourceVersion": "7",
        "annotations": {election.RELEASED_ANNOTATION: "uid-1"},
    }
    assert released["spec"]["holderIdentity"] is None
