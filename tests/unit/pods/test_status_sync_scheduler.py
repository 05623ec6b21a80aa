"""The status-sync scheduler on a fake clock: groups in transition first (deployed before provisioning, then the
longest unread), a doubling wait for groups whose reads change nothing, a round-robin sweep of steady groups, and
the pass interval."""

from __future__ import annotations

import dataclasses

from pods_builders import pod, ran, summary

from acinode import settings
from acinode.pods import statussync
from fakes.fake_clock import FakeClock

SETTINGS = settings.PodSettings(
    fast_sync_seconds=1,
    steady_sync_seconds=15,
    idle_sync_seconds=60,
    max_gets_per_sync=3,
    steady_gets_per_sync=2,
)


def candidate(
    name: str, *, state: str = "Succeeded", running: bool = False, created: bool = False
) -> statussync.Candidate:
    body = pod(name)
    return statussync.Candidate(
        ran(body) if running else body,
        summary(name, state=state).name,
        summary(name, state=state),
        created,  # type: ignore[arg-type]
    )


def names(chosen: list[statussync.Candidate]) -> list[str]:
    return [c.name for c in chosen]


def test_deployed_groups_before_provisioning_ones_then_the_longest_unread(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(SETTINGS, clock)
    scheduler.looked(summary("old").name, unchanged=False, listed_state="Succeeded")
    clock.advance(5)
    scheduler.looked(summary("recent").name, unchanged=False, listed_state="Succeeded")
    clock.advance(5)
    chosen, in_transition = scheduler.choose(
        [candidate("creating", state="Creating"), candidate("recent"), candidate("new"), candidate("old")]
    )
    assert in_transition == 4
    assert names(chosen) == ["new", "old", "recent"], "max_gets_per_sync is 3: the provisioning one waits"


def test_a_read_that_changes_nothing_doubles_the_wait(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(SETTINGS, clock)
    name = summary("web").name
    waits = []
    for _ in range(6):
        scheduler.looked(name, unchanged=True, listed_state="Succeeded")
        waited = 0
        while not scheduler.is_due(name, summary("web")):
            clock.advance(1)
            waited += 1
        waits.append(waited)
    assert waits == [1, 2, 4, 8, 15, 15]


def test_a_listing_that_shows_a_change_makes_the_group_due_at_once(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(SETTINGS, clock)
    name = summary("web").name
    scheduler.looked(name, unchanged=True, listed_state="Creating")
    assert not scheduler.is_due(name, summary("web", state="Creating"))
    assert scheduler.is_due(name, summary("web", state="Succeeded"))


def test_without_a_read_budget_steady_groups_are_swept_round_robin(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(dataclasses.replace(SETTINGS, status_reads_per_second=0), clock)
    steady = [candidate(n, running=True) for n in ("a", "b", "c")]
    passes = [names(scheduler.choose(steady)[0]) for _ in range(3)]
    assert passes == [["a", "b"], ["c", "a"], ["b", "c"]]
    assert scheduler.choose(steady)[1] == 0


def test_a_just_created_group_is_in_transition_until_its_pod_ran(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(dataclasses.replace(SETTINGS, steady_gets_per_sync=0), clock)
    assert scheduler.choose([candidate("web", running=True, created=True)]) == ([], 0)
    chosen, in_transition = scheduler.choose([candidate("web", created=True)])
    assert (names(chosen), in_transition) == (["web"], 1)


def test_the_pass_interval_adapts(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(SETTINGS, clock)
    assert scheduler.interval(listed=True, in_transition=2, has_work=True, failures=0) == 1
    assert scheduler.interval(listed=True, in_transition=0, has_work=True, failures=0) == 15
    assert scheduler.interval(listed=True, in_transition=0, has_work=False, failures=0) == 60
    unlisted = [
        scheduler.interval(listed=False, in_transition=0, has_work=True, failures=n) for n in range(6)
    ]
    assert unlisted == [1, 2, 4, 8, 15, 15]


def test_a_listing_is_reused_for_under_the_fast_interval(clock: FakeClock) -> None:
    scheduler = statussync.SyncScheduler(SETTINGS, clock)
    began = clock.monotonic()
    assert scheduler.listing_is_stale(began, listed=False)
    assert not scheduler.listing_is_stale(began, listed=True)
    clock.advance(1)
    assert scheduler.listing_is_stale(began, listed=True)


def _unready(body: dict[str, object]) -> dict[str, object]:
    body = ran(body)
    body["status"]["containerStatuses"][0]["ready"] = False  # type: ignore[index]
    return body


def test_what_the_controller_precomputes_decides_as_needs_look_does() -> None:
    # The controller reads a pod's status once per version and hands the result over; it must decide exactly as
    # needs_look does from the pod itself.
    pods = [pod("web"), ran(pod("web")), _unready(pod("web")), {"metadata": {"name": "bare"}}]
    summaries = [summary("web", state=s) for s in ("Succeeded", "Creating", "Pending", "Failed", "succeeded")]
    decided = set()
    for body in pods:
        for listed in summaries:
            for just_created in (False, True):
                precomputed = statussync.in_transition(
                    listed,
                    just_created=just_created,
                    has_run=statussync.has_run(body),  # type: ignore[arg-type]
                    running_and_ready=statussync.is_running_and_ready(body),  # type: ignore[arg-type]
                )
                expected = statussync.needs_look(body, listed, just_created=just_created)  # type: ignore[arg-type]
                candidate = statussync.Candidate(body, listed.name, listed, just_created, precomputed)  # type: ignore[arg-type]
                assert candidate.needs_look() == expected
                decided.add(expected)
    assert decided == {True, False}
