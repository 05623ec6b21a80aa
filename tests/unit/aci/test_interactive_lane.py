"""The interactive lane: the kubelet API's ARM calls (``logs -f`` polls, exec starts) draw from a bucket of their
own, so that no storm of them delays the reconciler's creates and deletes. On virtual time, through the real
pipeline policy, with a scripted stand-in for ARM."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.transport import HttpRequest

from acinode import errors
from acinode.aci import counting, pipeline, ratelimit

SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance"
GROUP_URL = f"https://arm.test{SUB}/containerGroups/web?api-version=2023-05-01"
EXEC_URL = GROUP_URL.replace("/containerGroups/web?", "/containerGroups/web/containers/main/exec?")
LOGS_URL = GROUP_URL.replace("/containerGroups/web?", "/containerGroups/web/containers/main/logs?")
STORM = 200


class ScriptedArm:
    """Stands in for the transport: answers each request with the next (status, headers) of a script."""

    def __init__(self, clock: Any, answers: Iterator[tuple[int, dict[str, str]]]) -> None:
        self.clock = clock
        self.answers = answers
        self.sent: list[tuple[float, str, str]] = []

    async def send(self, request: PipelineRequest[HttpRequest]) -> PipelineResponse[Any, Any]:
        self.sent.append((self.clock.elapsed(), request.http_request.method, request.http_request.url))
        status, headers = next(self.answers)
        response = SimpleNamespace(status_code=status, headers=headers)
        return PipelineResponse(request.http_request, response, request.context)  # type: ignore[arg-type]


def always(status: int) -> Iterator[tuple[int, dict[str, str]]]:
    while True:
        yield status, {}


def then(*answers: tuple[int, dict[str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    yield from answers
    yield from always(200)


def request(method: str, url: str) -> PipelineRequest[HttpRequest]:
    return PipelineRequest(HttpRequest(method, url), PipelineContext(None))


@pytest.fixture
def limiter(clock: Any, aci_settings: Any) -> ratelimit.ArmRateLimiter:
    return ratelimit.ArmRateLimiter.from_settings(aci_settings, clock=clock)


@pytest.fixture
def lanes(clock: Any) -> ratelimit.InteractiveLanes:
    return ratelimit.InteractiveLanes(1.0, 2, max_queue_seconds=5.0, clock=clock)


def policy_over(arm: ScriptedArm, limiter: ratelimit.ArmRateLimiter) -> pipeline.ThrottlingPolicy:
    policy = pipeline.ThrottlingPolicy(
        limiter, counting.ArmRequestCounter(), throttle_retries=3, default_pause_seconds=5.0
    )
    policy.next = arm  # type: ignore[assignment]
    return policy


async def interactive_send(
    policy: pipeline.ThrottlingPolicy, lanes: ratelimit.InteractiveLanes, method: str, url: str
) -> Any:
    with ratelimit.interactive(lanes):
        return await policy.send(request(method, url))


def sent_at(arm: ScriptedArm, method: str) -> list[float]:
    return [t for t, m, _ in arm.sent if m == method]


def reconciler_writes(policy: pipeline.ThrottlingPolicy) -> list[Coroutine[Any, Any, Any]]:
    """Two creates and a delete, all at once."""
    return [policy.send(request("PUT", GROUP_URL)) for _ in range(2)] + [
        policy.send(request("DELETE", GROUP_URL))
    ]


async def test_a_storm_of_interactive_calls_does_not_delay_creates_or_deletes(
    clock, aci_settings, limiter, lanes
) -> None:
    quiet_clock = type(clock)()
    quiet = ScriptedArm(quiet_clock, always(200))
    quiet_policy = policy_over(quiet, ratelimit.ArmRateLimiter.from_settings(aci_settings, clock=quiet_clock))
    await quiet_clock.run(*reconciler_writes(quiet_policy))

    arm = ScriptedArm(clock, always(200))
    policy = policy_over(arm, limiter)
    storm = [interactive_send(policy, lanes, "POST", EXEC_URL) for _ in range(STORM // 2)]
    storm += [interactive_send(policy, lanes, "GET", LOGS_URL) for _ in range(STORM // 2)]
    results = await clock.run(*storm, *reconciler_writes(policy))

    # The creates and the delete went exactly when they go without the storm (the write burst is 2).
    assert sent_at(arm, "PUT") + sent_at(arm, "DELETE") == sent_at(quiet, "PUT") + sent_at(quiet, "DELETE")
    assert sent_at(arm, "PUT") + sent_at(arm, "DELETE") == [0.0, 0.0, 1.0]
    # The storm had its own lane: a burst of 2, then 1/s for the 5 s a caller may queue; the rest failed fast.
    interactive = sorted(sent_at(arm, "POST") + sent_at(arm, "GET"))
    assert interactive == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    refused = [r for r in results if isinstance(r, errors.ThrottledError)]
    assert len(refused) == STORM - len(interactive)
    assert limiter.rejected == 0


async def test_without_the_lane_the_same_storm_delays_the_create(clock, limiter) -> None:
    """What the lane prevents: exec starts are ARM writes, so outside it they take the create's tokens."""
    arm = ScriptedArm(clock, always(200))
    policy = policy_over(arm, limiter)
    storm = [policy.send(request("POST", EXEC_URL)) for _ in range(20)]
    await clock.run(*storm, policy.send(request("PUT", GROUP_URL)))
    assert sent_at(arm, "PUT") == [19.0]


async def test_interactive_calls_fail_fast_while_arm_holds_the_subscription(clock, limiter, lanes) -> None:
    """A 429 to the reconciler pauses its reads; interactive reads then neither wait nor add to the load."""
    arm = ScriptedArm(clock, then((429, {"Retry-After": "30"})))
    policy = policy_over(arm, limiter)
    [reconciled, refused] = await clock.run(
        policy.send(request("GET", GROUP_URL)), interactive_send(policy, lanes, "GET", LOGS_URL)
    )
    assert isinstance(refused, errors.ThrottledError)
    assert refused.retry_after_seconds == pytest.approx(30.0)
    assert reconciled.http_response.status_code == 200
    assert [(t, m) for t, m, _ in arm.sent] == [(0.0, "GET"), (30.0, "GET")]  # the reconciler's two only


async def test_a_429_to_an_interactive_call_pauses_the_lane_only(clock, limiter, lanes) -> None:
    arm = ScriptedArm(clock, then((429, {"Retry-After": "3"})))
    policy = policy_over(arm, limiter)
    [logs, create] = await clock.run(
        interactive_send(policy, lanes, "GET", LOGS_URL), policy.send(request("PUT", GROUP_URL))
    )
    assert sent_at(arm, "PUT") == [0.0]
    assert sent_at(arm, "GET") == [0.0, 3.0]  # the lane waited out its own pause
    assert limiter.paused_for() == 0.0
    assert logs.http_response.status_code == create.http_response.status_code == 200


def test_each_subscription_has_its_own_lane(clock, aci_settings, lanes) -> None:
    one = ratelimit.ArmRateLimiter.from_settings(aci_settings, clock=clock)
    two = ratelimit.ArmRateLimiter.from_settings(aci_settings, clock=clock)
    assert lanes.lane_for(one) is lanes.lane_for(one)
    assert lanes.lane_for(one) is not lanes.lane_for(two)
    assert ratelimit.route(one, (ratelimit.Budget.READ,)) == (one, (ratelimit.Budget.READ,))
    with ratelimit.interactive(lanes):
        assert ratelimit.route(one, (ratelimit.Budget.READ,)) == (
            lanes.lane_for(one),
            (ratelimit.Budget.INTERACTIVE,),
        )
