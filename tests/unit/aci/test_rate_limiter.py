"""The client-side rate limiter: bursts, then the refill rate; arrival order; failing fast; pausing on 429."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from acinode import errors, settings
from acinode.aci import ratelimit

Budget = ratelimit.Budget


def limiter_with(
    clock: object, *, rate: float, burst: int, max_queue: float = 30.0
) -> ratelimit.ArmRateLimiter:
    return ratelimit.ArmRateLimiter(
        {Budget.READ: ratelimit.TokenBucket(rate, burst)},
        max_queue_seconds=max_queue,
        clock=clock,
    )


async def send_at(limiter: ratelimit.ArmRateLimiter, clock, budgets=(Budget.READ,)) -> float:
    await limiter.acquire(budgets)
    return float(clock.elapsed())


async def test_a_burst_goes_at_once_then_requests_follow_the_refill_rate(clock) -> None:
    limiter = limiter_with(clock, rate=2.0, burst=3)
    times = await clock.run(*(send_at(limiter, clock) for _ in range(7)))
    assert times == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]


async def test_waiting_callers_go_in_arrival_order(clock) -> None:
    limiter = limiter_with(clock, rate=1.0, burst=1)
    order: list[int] = []

    async def caller(index: int) -> None:
        await limiter.acquire([Budget.READ])
        order.append(index)

    await clock.run(*(caller(i) for i in range(6)))
    assert order == list(range(6))
    assert clock.elapsed() == 5.0


async def test_the_bucket_refills_while_idle_but_never_beyond_its_burst(clock) -> None:
    limiter = limiter_with(clock, rate=1.0, burst=2)
    await clock.run(*(send_at(limiter, clock) for _ in range(2)))
    assert limiter.tokens(Budget.READ) == pytest.approx(0.0)
    await clock.run(clock.sleep(100.0))
    assert limiter.tokens(Budget.READ) == pytest.approx(2.0)
    times = await clock.run(*(send_at(limiter, clock) for _ in range(3)))
    assert [t - 100.0 for t in times] == [0.0, 0.0, 1.0]


async def test_a_request_counts_against_every_budget_it_belongs_to(clock) -> None:
    limiter = ratelimit.ArmRateLimiter(
        {Budget.WRITE: ratelimit.TokenBucket(10.0, 10), Budget.CREATE: ratelimit.TokenBucket(0.5, 1)},
        max_queue_seconds=30.0,
        clock=clock,
    )
    creates = (Budget.WRITE, Budget.CREATE)
    times = await clock.run(*(send_at(limiter, clock, creates) for _ in range(3)))
    assert times == [0.0, 2.0, 4.0]  # the create budget is the tighter one
    # Plain writes were not held up by the create budget, only charged to the write budget.
    assert limiter.tokens(Budget.WRITE) == pytest.approx(10.0)


async def test_a_caller_whose_turn_is_too_far_fails_fast_without_spending_a_token(clock) -> None:
    limiter = limiter_with(clock, rate=1.0, burst=1, max_queue=1.5)
    results = await clock.run(*(send_at(limiter, clock) for _ in range(4)))
    assert results[:2] == [0.0, 1.0]
    for rejected in results[2:]:
        assert isinstance(rejected, errors.ThrottledError)
        assert rejected.retry_after_seconds == pytest.approx(2.0)
    assert limiter.rejected == 2
    # The rejected callers gave their reservations back: the next one is served on time.
    assert (await clock.run(send_at(limiter, clock))) == [2.0]


async def test_a_pause_holds_every_caller_then_resumes_at_the_refill_rate(clock) -> None:
    limiter = limiter_with(clock, rate=2.0, burst=5)

    async def throttled_by_the_server() -> None:
        await clock.sleep(0.25)
        limiter.pause(10.0)

    async def late_caller() -> float:
        await clock.sleep(1.0)
        return await send_at(limiter, clock)

    results = await clock.run(
        throttled_by_the_server(), *(send_at(limiter, clock) for _ in range(3)), late_caller(), late_caller()
    )
    first_three, late = results[1:4], results[4:]
    assert first_three == [0.0, 0.0, 0.0]  # before the pause: the burst
    # After the pause nobody goes before 10.25 s, and the bucket was emptied, so they go one by one.
    assert late == [10.25, 10.75]


async def test_callers_queued_for_tokens_also_wait_out_a_pause(clock) -> None:
    limiter = limiter_with(clock, rate=1.0, burst=1)

    async def pause_soon() -> None:
        await clock.sleep(0.5)
        limiter.pause(4.0)

    results = await clock.run(*(send_at(limiter, clock) for _ in range(3)), pause_soon())
    assert results[0] == 0.0
    assert all(t >= 4.5 for t in results[1:3])
    assert results[2] - results[1] >= 1.0  # spaced by the refill rate, not a herd at the end of the pause


async def test_a_pause_longer_than_the_queue_limit_fails_callers_at_once(clock) -> None:
    limiter = limiter_with(clock, rate=1.0, burst=5, max_queue=5.0)
    limiter.pause(60.0)
    [result] = await clock.run(send_at(limiter, clock))
    assert isinstance(result, errors.ThrottledError)
    assert result.retry_after_seconds == pytest.approx(60.0)
    assert clock.elapsed() == 0.0
    assert limiter.paused_for() == pytest.approx(60.0)


async def test_a_pause_on_some_budgets_holds_only_their_callers(clock) -> None:
    limiter = ratelimit.ArmRateLimiter(
        {budget: ratelimit.TokenBucket(2.0, 5) for budget in (Budget.READ, Budget.WRITE, Budget.CREATE)},
        max_queue_seconds=30.0,
        clock=clock,
    )
    limiter.pause(10.0, [ratelimit.Budget.READ])
    assert limiter.paused_for([ratelimit.Budget.READ]) == pytest.approx(10.0)
    assert limiter.paused_for([ratelimit.Budget.WRITE, ratelimit.Budget.CREATE]) == 0.0
    assert limiter.paused_for() == pytest.approx(10.0)  # any budget

    async def send(budgets: list[ratelimit.Budget]) -> float:
        await limiter.acquire(budgets)
        return float(clock.elapsed())

    write, read = await clock.run(
        send([ratelimit.Budget.WRITE, ratelimit.Budget.CREATE]), send([ratelimit.Budget.READ])
    )
    assert write == 0.0
    assert read == 10.0


def test_default_budgets_stay_under_aci_create_limits() -> None:
    aci = settings.AciSettings()
    # At most burst + rate × window creates in any window: ACI allows 100 per 5 min and 300 per hour.
    assert aci.create_burst + aci.creates_per_second * 300 < 100
    assert aci.create_burst + aci.creates_per_second * 3600 < 300
    assert aci.delete_burst + aci.deletes_per_second * 3600 < 300
    # ARM's legacy hourly limits: 12,000 reads and 1,200 writes per subscription.
    assert aci.read_burst + aci.reads_per_second * 3600 < 12_000
    assert aci.write_burst + aci.writes_per_second * 3600 < 1_200


@pytest.mark.parametrize(
    ("method", "operation", "budgets"),
    [
        ("GET", "get", (Budget.READ,)),
        ("GET", "list", (Budget.READ,)),
        ("PUT", "create_or_update", (Budget.WRITE, Budget.CREATE)),
        ("DELETE", "delete", (Budget.WRITE, Budget.DELETE)),
        ("POST", "exec", (Budget.WRITE,)),
        ("POST", "restart", (Budget.WRITE,)),
        ("PATCH", "update", (Budget.WRITE,)),
    ],
)
def test_each_request_kind_draws_from_its_budgets(
    method: str, operation: str, budgets: tuple[Budget, ...]
) -> None:
    assert ratelimit.budgets_for(method, operation) == budgets


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}, 30.0),
        ({"Retry-After": "Thu, 01 Jan 2026 00:00:00 GMT"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "soon", "retry-after-ms": "100"}, 0.1),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_from_seconds_dates_and_milliseconds(
    headers: dict[str, str], expected: float | None
) -> None:
    now = 1767225600.0  # 2026-01-01T00:00:00Z
    assert ratelimit.retry_after_seconds(headers, now=now) == expected


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_bucket_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        ratelimit.TokenBucket(rate, burst)


def test_clients_of_one_subscription_share_a_limiter(aci_settings) -> None:
    limiters = ratelimit.SubscriptionLimiters(aci_settings)
    first = limiters.limiter_for("AAAA-1")
    assert limiters.limiter_for("aaaa-1") is first
    assert limiters.limiter_for("bbbb-2") is not first


async def test_a_caller_that_gives_up_while_queued_hands_its_slot_back(clock) -> None:
    # Ten callers queue for a 1/s budget and give up after 2 s (as a node's backend probe does after its
    # timeout): their slots must not push the next caller back ten seconds.
    limiter = limiter_with(clock, rate=1.0, burst=1)

    async def impatient() -> None:
        waiting = asyncio.ensure_future(limiter.acquire([Budget.READ]))
        await clock.sleep(2.0)
        if not waiting.done():
            waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

    async def patient_after_them() -> float:
        await clock.sleep(3.0)
        return await send_at(limiter, clock)

    results = await clock.run(
        send_at(limiter, clock), *(impatient() for _ in range(10)), patient_after_them()
    )
    assert results[0] == 0.0
    # Two of the impatient got their slots (at 1 s and 2 s); the eight cancelled gave theirs back, so the
    # patient caller arriving at 3 s is served at 3 s, not at 11 s.
    assert results[-1] == 3.0
    assert limiter.queued == 0
