"""VirtualNode ownership on the fake API: one holder at a time, takeover judged on the taker's own clock, fencing
before anyone may take over, spread by fair share, release on stop, and one release of a deleted VirtualNode."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

import pytest

from acinode import errors, settings
from acinode.mapping import election
from acinode.runtime import ownership
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube

pytestmark = pytest.mark.timeout(5)

NS = "acinode-system"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
CONFIG = settings.OwnershipSettings()
FAST = settings.OwnershipSettings(
    lease_duration_seconds=1,
    renew_interval_seconds=0.2,
    observe_interval_seconds=0.05,
    fence_margin_seconds=0.3,
    free_grace_seconds=0.2,
    rebalance_interval_seconds=0.1,
)


def replica(
    kube: FakeKube, name: str, clock: FakeClock | None = None, config: settings.OwnershipSettings = CONFIG
) -> ownership.Ownership:
    if clock is None:
        made = ownership.Ownership(kube, NS, name, config)
    else:
        made = ownership.Ownership(kube, NS, name, config, monotonic=clock.monotonic, wall=clock.now)
    made.known.add("vn-1")  # its daemon runs: one VirtualNode, so a share of one
    return made


def lease(kube: FakeKube, vn: str = "vn-1") -> election.LeaseRecord:
    stored = kube.stored(f"{LEASES}/{election.virtual_node_lease_name(vn)}")
    assert stored is not None
    return election.record_from_lease(stored)


async def test_a_free_lease_is_taken_by_one_replica_and_refused_to_the_next() -> None:
    kube = FakeKube()
    a, b = replica(kube, "a", FakeClock()), replica(kube, "b", FakeClock())
    a.known.add("vn-1")
    b.known.add("vn-1")
    assert (await ownership.virtual_node_hold(a, "vn-1", "uid-1").take()).action is election.Action.ACQUIRE
    decision = await ownership.virtual_node_hold(b, "vn-1", "uid-1").take()
    assert decision.action is election.Action.WAIT and "held by a" in decision.reason
    stored = lease(kube)
    assert stored.holder == "a" and stored.kind == election.KIND_VIRTUAL_NODE
    owners = kube.stored(f"{LEASES}/acinode-vn-vn-1")["metadata"]["ownerReferences"]  # type: ignore[index]
    assert owners == [election.virtual_node_owner("vn-1", "uid-1")]


async def test_takeover_waits_a_whole_duration_on_the_takers_own_clock_whatever_the_renew_time_says() -> None:
    kube = FakeKube()
    # The holder's wall clock is a day ahead: its renewTime says "renewed in the future". Irrelevant.
    ahead = FakeClock(start=datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC))
    a = replica(kube, "a", ahead)
    taker_clock = FakeClock()
    b = replica(kube, "b", taker_clock)
    a.known.add("vn-1")
    b.known.add("vn-1")
    await ownership.virtual_node_hold(a, "vn-1", "uid-1").take()
    hold = ownership.virtual_node_hold(b, "vn-1", "uid-1")
    assert (await hold.take()).action is election.Action.WAIT  # first seen now, on b's clock
    taker_clock.advance(CONFIG.lease_duration_seconds - 0.1)
    assert (await hold.take()).action is election.Action.WAIT
    taker_clock.advance(0.1)
    decision = await hold.take()
    assert decision.action is election.Action.ACQUIRE, decision.reason
    assert lease(kube).holder == "b" and lease(kube).transitions == 1


async def test_a_renewal_seen_by_the_taker_restarts_its_wait() -> None:
    kube = FakeKube()
    a_clock, b_clock = FakeClock(), FakeClock()
    a, b = replica(kube, "a", a_clock), replica(kube, "b", b_clock)
    held = ownership.virtual_node_hold(a, "vn-1", "")
    await held.take()
    taker = ownership.virtual_node_hold(b, "vn-1", "")
    await taker.take()
    b_clock.advance(10)
    a_clock.advance(10)
    assert await held.renew()
    b_clock.advance(10)  # 20 s since b first saw the Lease; the renewal is new to it: held, seen now
    assert (await taker.take()).action is election.Action.WAIT
    b_clock.advance(14)
    assert (await taker.take()).action is election.Action.WAIT
    b_clock.advance(1)
    assert (await taker.take()).action is election.Action.ACQUIRE
    # The old holder's next renewal finds the Lease another's: it is told so (and stops serving).
    assert not await held.renew()


async def test_a_holder_that_cannot_renew_stops_its_work_before_anyone_may_take_over() -> None:
    kube = FakeKube()
    a = replica(kube, "a", config=FAST)
    hold = ownership.virtual_node_hold(a, "vn-1", "")
    await hold.take()
    taken_at = a.monotonic()
    kube.fail(
        f"{LEASES}/acinode-vn-vn-1",
        errors.TransientError("API server unreachable"),
        method="PATCH",
        times=None,
    )
    cancelled = asyncio.Event()
    stopped_at: list[float] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped_at.append(a.monotonic())
            cancelled.set()
            raise

    ending = await hold.keep(work, stop=asyncio.Event())
    assert ending is ownership.Ending.FENCED and cancelled.is_set()
    # Stopped at (last successful renewal sent + duration - margin): a margin before any taker's earliest time.
    fence = taken_at + FAST.lease_duration_seconds - FAST.fence_margin_seconds
    assert fence - 0.05 <= stopped_at[0] <= fence + 0.15
    assert stopped_at[0] < taken_at + FAST.lease_duration_seconds


async def test_a_holder_that_finds_the_lease_taken_stops_its_work() -> None:
    kube = FakeKube()
    a = replica(kube, "a", config=FAST)
    hold = ownership.virtual_node_hold(a, "vn-1", "")
    await hold.take()
    path = f"{LEASES}/acinode-vn-vn-1"
    stolen = kube.stored(path)
    assert stolen is not None
    stolen["spec"]["holderIdentity"] = "b"
    kube.put(path, stolen)  # a new resourceVersion: a's guarded renewal gets 409, then reads whose it is
    ending = await hold.keep(lambda: asyncio.Event().wait(), stop=asyncio.Event())  # type: ignore[arg-type, return-value]
    assert ending is ownership.Ending.LOST


async def test_the_serving_loop_runs_the_work_only_while_holding_and_releases_on_stop() -> None:
    kube = FakeKube()
    a = replica(kube, "a", config=FAST)
    serving = asyncio.Event()

    async def serve() -> None:
        serving.set()
        await asyncio.Event().wait()

    stop = asyncio.Event()
    loop = asyncio.create_task(ownership.serve_virtual_node(a, "vn-1", "uid-1", serve, stop))
    await asyncio.wait_for(serving.wait(), 1)
    assert set(a.held) == {"vn-1"} and lease(kube).holder == "a"
    stop.set()
    assert await loop is ownership.Ending.STOPPED
    assert not a.held and a.known == set()
    assert lease(kube).holder == ""  # released at once: the next replica need not wait for expiry


async def test_a_deleted_virtual_nodes_lease_is_kept_for_the_delete_handler() -> None:
    kube = FakeKube()
    a = replica(kube, "a", config=FAST)
    stop = asyncio.Event()
    served = asyncio.Event()

    async def serve() -> None:
        served.set()
        await asyncio.Event().wait()

    loop = asyncio.create_task(
        ownership.serve_virtual_node(a, "vn-1", "uid-1", serve, stop, keep_lease_on_stop=lambda: True)
    )
    await asyncio.wait_for(served.wait(), 1)
    stop.set()
    await loop
    assert lease(kube).holder == "a"


async def test_replicas_take_free_leases_only_up_to_their_fair_share() -> None:
    kube = FakeKube()
    clocks = [FakeClock(), FakeClock()]
    a, b = replica(kube, "a", clocks[0]), replica(kube, "b", clocks[1])
    for owner in (a, b):
        await owner.announce_once()  # presence Leases: each sees two live replicas
    await a.announce_once()
    names = [f"vn-{i}" for i in range(4)]
    a.known, b.known = set(names), set(names)
    assert a.share() == 2
    taken = []
    for name in names:
        decision = await ownership.virtual_node_hold(a, name, "").take()
        if decision.action is election.Action.ACQUIRE:
            a.held[name] = clocks[0].monotonic()
            taken.append(name)
    assert taken == names[:2], "a stops at its share"
    for name in names[2:]:
        assert (await ownership.virtual_node_hold(b, name, "").take()).action is election.Action.ACQUIRE
        b.held[name] = clocks[1].monotonic()
    # A Lease free for the grace period is taken by anyone (availability beats balance).
    kube.put(
        f"{LEASES}/acinode-vn-vn-9",
        election.new_lease(
            "acinode-vn-vn-9",
            NS,
            kind=election.KIND_VIRTUAL_NODE,
            holder="",
            now=clocks[0].now(),
            duration_seconds=15,
        ),
    )
    late = ownership.virtual_node_hold(a, "vn-9", "")
    assert (await late.take()).action is election.Action.WAIT
    clocks[0].advance(CONFIG.free_grace_seconds)
    assert (await late.take()).action is election.Action.ACQUIRE


async def test_a_replica_above_its_share_plus_one_sheds_one_at_a_time() -> None:
    kube = FakeKube()
    clock = FakeClock()
    a = replica(kube, "a", clock)
    a.known = {f"vn-{i}" for i in range(6)}
    a.held.update((name, float(i)) for i, name in enumerate(sorted(a.known)))
    assert not a.may_shed()  # alone: its share is all six
    other = replica(kube, "b", FakeClock())
    await other.announce_once()
    await a.announce_once()  # b is live: share 3, a holds 6 > 4
    assert not a.may_shed("vn-0"), "only the VirtualNode taken last is given up"
    assert a.may_shed("vn-5")
    assert not a.may_shed("vn-5"), "at most one per rebalance interval"
    clock.advance(CONFIG.rebalance_interval_seconds)
    assert a.may_shed()


async def test_a_stopped_replica_withdraws_its_presence() -> None:
    kube = FakeKube()
    a = replica(kube, "a", config=FAST)
    running = asyncio.create_task(a.run())
    await kube.wait_until(lambda: kube.stored(f"{LEASES}/acinode-replica-a") is not None, 1, "presence")
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert kube.stored(f"{LEASES}/acinode-replica-a") is None


async def test_a_deleted_virtual_node_is_released_once_by_the_holder_and_the_others_wait() -> None:
    kube = FakeKube()
    holder, other = replica(kube, "a", config=FAST), replica(kube, "b", config=FAST)
    await ownership.virtual_node_hold(holder, "vn-1", "uid-1").take()
    releases: list[str] = []
    gate = asyncio.Event()

    async def release() -> str:
        releases.append("released")
        await gate.wait()
        return "deleted 3 container groups"

    async def there() -> bool:
        return True

    waiting = asyncio.create_task(
        ownership.release_deleted_virtual_node(
            other, "vn-1", "uid-1", release, there, serving_here=lambda: False
        )
    )
    releasing = asyncio.create_task(
        ownership.release_deleted_virtual_node(
            holder, "vn-1", "uid-1", release, there, serving_here=lambda: False
        )
    )
    await asyncio.sleep(0.2)
    assert releases == ["released"] and not waiting.done()
    gate.set()
    assert await releasing == "deleted 3 container groups"
    assert (await asyncio.wait_for(waiting, 1)).startswith("released by")
    assert releases == ["released"], "exactly one replica released"
    assert lease(kube).released_uid == "uid-1"


async def test_a_deleted_virtual_node_whose_holder_died_is_released_by_another_after_expiry() -> None:
    kube = FakeKube()
    dead, other = replica(kube, "a", config=FAST), replica(kube, "b", config=FAST)
    await ownership.virtual_node_hold(dead, "vn-1", "uid-1").take()

    async def release() -> str:
        return "released"

    async def there() -> bool:
        return True

    started = other.monotonic()
    result = await ownership.release_deleted_virtual_node(
        other, "vn-1", "uid-1", release, there, serving_here=lambda: False
    )
    assert result == "released"
    assert other.monotonic() - started >= FAST.lease_duration_seconds


def test_defaults_validate_and_a_margin_too_large_is_refused() -> None:
    assert settings.validation_problems(settings.Settings()) == []
    bad = dataclasses.replace(settings.OwnershipSettings(), fence_margin_seconds=12.0)
    problems = settings.validation_problems(settings.Settings(ownership=bad))
    assert any("fence_margin_seconds" in p for p in problems)
