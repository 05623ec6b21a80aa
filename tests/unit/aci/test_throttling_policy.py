"""The pipeline policy under 429s: it slows the whole client down, never hammers, and gives up after a budget.

The policy sits just above the transport; here a scripted stand-in answers instead of ARM, on virtual time.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.transport import HttpRequest

from acinode import errors
from acinode.aci import counting, pipeline, ratelimit

SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance"
GROUP_URL = f"https://arm.test{SUB}/containerGroups/web?api-version=2023-05-01"
LIST_URL = f"https://arm.test{SUB}/containerGroups?api-version=2023-05-01"


class ScriptedArm:
    """Stands in for the transport: answers each request with the next (status, headers) of a script."""

    def __init__(self, clock: Any, answers: Iterator[tuple[int, dict[str, str]]]) -> None:
        self.clock = clock
        self.answers = answers
        self.sent: list[tuple[float, str, str]] = []

    async def send(self, request: PipelineRequest[HttpRequest]) -> PipelineResponse[Any, Any]:
        self.sent.append((self.clock.elapsed(), request.http_request.method, request.http_request.url))
        status, headers = next(self.answers)
        if status == 0:
            raise ConnectionResetError("dropped")
        response = SimpleNamespace(status_code=status, headers=headers)
        return PipelineResponse(request.http_request, response, request.context)  # type: ignore[arg-type]

    def times(self) -> list[float]:
        return [t for t, _, _ in self.sent]


def always(status: int, headers: dict[str, str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    while True:
        yield status, dict(headers or {})


def then(*answers: tuple[int, dict[str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    yield from answers
    yield from always(200)


def request(method: str = "GET", url: str = GROUP_URL) -> PipelineRequest[HttpRequest]:
    return PipelineRequest(HttpRequest(method, url), PipelineContext(None))


@pytest.fixture
def limiter(clock: Any, aci_settings: Any) -> ratelimit.ArmRateLimiter:
    return ratelimit.ArmRateLimiter.from_settings(aci_settings, clock=clock)


@pytest.fixture
def counter() -> counting.ArmRequestCounter:
    return counting.ArmRequestCounter()


def policy_over(
    arm: ScriptedArm, limiter: ratelimit.ArmRateLimiter, counter: counting.ArmRequestCounter, retries: int = 3
) -> pipeline.ThrottlingPolicy:
    policy = pipeline.ThrottlingPolicy(limiter, counter, throttle_retries=retries, default_pause_seconds=5.0)
    policy.next = arm  # type: ignore[assignment]
    return policy


async def test_a_429_pauses_for_the_retry_after_then_the_call_succeeds(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, then((429, {"Retry-After": "7"}), (429, {"Retry-After": "3"})))
    policy = policy_over(arm, limiter, counter)
    [response] = await clock.run(policy.send(request()))
    assert response.http_response.status_code == 200
    assert arm.times() == [0.0, 7.0, 10.0]
    assert counter.snapshot() == {("get", "429"): 2, ("get", "200"): 1}


async def test_endless_429s_surface_as_throttled_after_the_budget(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, always(429, {"Retry-After": "10"}))
    policy = policy_over(arm, limiter, counter, retries=3)
    [result] = await clock.run(policy.send(request()))
    assert isinstance(result, errors.ThrottledError)
    assert result.retry_after_seconds == pytest.approx(10.0)
    # First send plus three retries, each after the full pause: never faster than the server asked.
    assert arm.times() == [0.0, 10.0, 20.0, 30.0]
    assert counter.count("get", "429") == 4


@pytest.mark.parametrize(
    "retry_after", ["86400", "Thu, 01 Jan 2099 00:00:00 GMT", "3600000000"], ids=["a-day", "a-date", "huge"]
)
async def test_a_hostile_retry_after_pauses_at_most_the_cap(
    clock, limiter, counter, retry_after: str
) -> None:
    arm = ScriptedArm(clock, then((429, {"Retry-After": retry_after})))
    policy = pipeline.ThrottlingPolicy(
        limiter, counter, throttle_retries=3, default_pause_seconds=5.0, max_retry_after_seconds=300.0
    )
    policy.next = arm  # type: ignore[assignment]
    [result] = await clock.run(policy.send(request()))
    # Longer than the client queues a call (max_queue_seconds): the call fails at once, saying when to come back,
    # and reads are paused for the cap, not for a day.
    assert isinstance(result, errors.ThrottledError)
    assert result.retry_after_seconds == pytest.approx(300.0, abs=1.0)
    assert limiter.paused_for((ratelimit.Budget.READ,)) <= 300.0


async def test_without_retry_after_the_pause_doubles(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, then((429, {}), (429, {}), (429, {})))
    policy = policy_over(arm, limiter, counter)
    await clock.run(policy.send(request()))
    assert arm.times() == [0.0, 5.0, 15.0, 35.0]


async def sent_at(policy: Any, clock: Any, method: str, url: str, after: float = 0.0) -> float:
    """When a call made ``after`` seconds in completed (virtual time)."""
    await clock.sleep(after)
    await policy.send(request(method, url))
    return float(clock.elapsed())


async def test_a_throttled_read_holds_every_read_but_not_the_writes(clock, limiter, counter) -> None:
    """ARM limits reads and writes separately: a burst's PUTs must not wait out a GET's 429."""
    arm = ScriptedArm(clock, then((429, {"Retry-After": "20"})))
    policy = policy_over(arm, limiter, counter)

    results = await clock.run(
        sent_at(policy, clock, "GET", GROUP_URL),
        *(
            sent_at(policy, clock, method, url, after=1.0)
            for method, url in (("GET", LIST_URL), ("PUT", GROUP_URL), ("DELETE", GROUP_URL))
        ),
    )
    first_read, other_read, put, delete = results
    assert first_read >= 20.0 and other_read >= 20.0  # reads made during the pause waited for its end
    assert put == delete == 1.0  # writes went at once


async def test_a_throttled_write_holds_every_write_but_not_the_reads(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, then((429, {"Retry-After": "20"})))
    policy = policy_over(arm, limiter, counter)

    results = await clock.run(
        sent_at(policy, clock, "PUT", GROUP_URL),
        *(
            sent_at(policy, clock, method, url, after=1.0)
            for method, url in (("DELETE", GROUP_URL), ("GET", LIST_URL))
        ),
    )
    first_put, delete, read = results
    assert first_put >= 20.0 and delete >= 20.0
    assert read == 1.0


async def test_steady_load_within_the_budget_never_draws_a_429(clock, limiter, counter) -> None:
    """Simulate ARM's own read bucket (capacity 5, 2/s): a client budgeted below it is never refused."""
    server_tokens = 5.0
    last = 0.0

    def arm_bucket() -> Iterator[tuple[int, dict[str, str]]]:
        nonlocal server_tokens, last
        while True:
            now = clock.elapsed()
            server_tokens = min(5.0, server_tokens + (now - last) * 2.0)
            last = now
            if server_tokens >= 1.0:
                server_tokens -= 1.0
                yield 200, {}
            else:
                yield 429, {"Retry-After": "1"}

    arm = ScriptedArm(clock, arm_bucket())
    policy = policy_over(arm, limiter, counter)  # client: 2 reads/s, burst 3
    await clock.run(*(policy.send(request("GET", LIST_URL)) for _ in range(60)))
    assert counter.count(result="429") == 0
    assert counter.count("list", "200") == 60


async def test_transport_failures_are_counted_by_kind_and_raised(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, then((0, {})))
    policy = policy_over(arm, limiter, counter)
    [result] = await clock.run(policy.send(request("DELETE")))
    assert isinstance(result, ConnectionResetError)
    assert counter.snapshot() == {("delete", "ConnectionResetError"): 1}


async def test_creates_wait_for_the_create_budget(clock, limiter, counter) -> None:
    arm = ScriptedArm(clock, always(201))
    policy = policy_over(arm, limiter, counter)  # creates: 0.5/s, burst 2
    await clock.run(*(policy.send(request("PUT")) for _ in range(4)))
    assert arm.times() == [0.0, 0.0, 2.0, 4.0]


def test_the_sdk_retry_policy_leaves_429_alone_but_retries_5xx() -> None:
    retry = pipeline.TransientRetryPolicy(retries=3, backoff_seconds=0.0, backoff_max_seconds=10.0)
    settings = retry.configure_retries({})

    def answer(status: int, headers: dict[str, str]) -> PipelineResponse[Any, Any]:
        response = SimpleNamespace(status_code=status, headers=headers)
        return PipelineResponse(HttpRequest("GET", GROUP_URL), response, PipelineContext(None))  # type: ignore[arg-type]

    assert not retry.is_retry(settings, answer(429, {"Retry-After": "1"}))
    assert not retry.is_retry(settings, answer(429, {}))
    assert retry.is_retry(settings, answer(503, {}))
    assert retry.is_retry(settings, answer(500, {}))
    assert not retry.is_retry(settings, answer(400, {}))
    assert retry.get_retry_after(answer(503, {"Retry-After": "3600"})) == 10.0


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("http://127.0.0.1:8443", True),
        ("http://localhost:1234/", True),
        ("http://[::1]:80", True),
        ("http://10.0.0.1", False),
        ("http://management.azure.com", False),
        ("https://127.0.0.1:8443", False),
    ],
)
def test_plain_http_is_only_for_loopback(endpoint: str, allowed: bool) -> None:
    assert pipeline.is_loopback_http(endpoint) is allowed
