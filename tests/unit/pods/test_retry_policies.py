"""Retries by failure kind (client-go's rate-limited queue): one formula, one counter per key and kind, holds that
events do not cut short, and scheduled adds that fire on the fake clock."""

from __future__ import annotations

import pytest

from acinode import settings
from acinode.pods import retry, workqueue
from fakes.fake_clock import FakeClock

Kind = retry.FailureKind


def make(clock: FakeClock) -> workqueue.RateLimitedQueue[str]:
    return workqueue.RateLimitedQueue(retry.RetryPolicies.from_settings(settings.PodSettings()), clock)


@pytest.mark.parametrize(
    ("backoff", "failures", "delay"),
    [
        (retry.Backoff(1, 60), 0, 0),
        (retry.Backoff(1, 60), 1, 1),
        (retry.Backoff(1, 60), 4, 8),
        (retry.Backoff(1, 60), 7, 60),
        (retry.Backoff(10, 300), 1, 10),
        (retry.Backoff(10, 300), 6, 300),
        (retry.Backoff(10, 300), 10_000, 300),
        (retry.Backoff(2, 2), 9, 2),
    ],
)
def test_one_formula_doubles_up_to_its_cap(backoff: retry.Backoff, failures: int, delay: float) -> None:
    assert backoff.delay(failures) == delay


def test_the_policies_of_the_failure_table() -> None:
    policies = retry.RetryPolicies.from_settings(
        settings.PodSettings(backoff_base_seconds=10, backoff_max_seconds=300)
    )
    assert [policies.delay(Kind.MISSING_REFERENCES, n) for n in (1, 2, 7)] == [1, 2, 60]
    assert [policies.delay(Kind.IMAGE_PULL, n) for n in (1, 2, 6)] == [10, 20, 300]
    assert [policies.delay(Kind.QUOTA, n) for n in (1, 3)] == [10, 40]
    assert policies.delay(Kind.TRANSIENT, 5) == 2
    assert policies.delay(Kind.THROTTLED, 5) == 0  # the Retry-After decides


async def test_waiting_for_a_secret_does_not_advance_the_image_back_off(clock: FakeClock) -> None:
    queue = make(clock)
    for _ in range(5):
        queue.add_rate_limited("pod", Kind.MISSING_REFERENCES)
    assert queue.failures("pod", Kind.MISSING_REFERENCES) == 5
    assert queue.add_rate_limited("pod", Kind.IMAGE_PULL) == 10, "the image back-off starts at its first step"
    assert queue.add_rate_limited("pod", Kind.IMAGE_PULL) == 20


async def test_a_retried_key_is_held_and_comes_back_when_due(clock: FakeClock) -> None:
    queue = make(clock)
    assert queue.add_rate_limited("pod", Kind.MISSING_REFERENCES) == 1
    assert queue.held_for("pod") == 1 and len(queue) == 0
    clock.advance(0.5)
    assert queue.fire_due() == 0 and queue.held_for("pod") == 0.5
    clock.advance(0.5)
    assert queue.fire_due() == 1
    assert queue.held_for("pod") == 0 and len(queue) == 1
    assert await queue.get() == "pod"


async def test_a_retry_after_is_a_floor(clock: FakeClock) -> None:
    queue = make(clock)
    assert queue.add_rate_limited("pod", Kind.THROTTLED, at_least=30) == 30
    assert queue.add_rate_limited("pod", Kind.TRANSIENT, at_least=0.5) == 2


async def test_forget_resets_every_kind_and_the_hold(clock: FakeClock) -> None:
    queue = make(clock)
    queue.add_rate_limited("pod", Kind.IMAGE_PULL)
    queue.add_rate_limited("pod", Kind.QUOTA)
    queue.add_rate_limited("other", Kind.QUOTA)
    queue.forget("pod", Kind.QUOTA)
    assert queue.failures("pod", Kind.QUOTA) == 0 and queue.failures("pod", Kind.IMAGE_PULL) == 1
    queue.forget("pod")
    assert queue.failures("pod", Kind.IMAGE_PULL) == 0 and queue.held_for("pod") == 0
    assert queue.failures("other", Kind.QUOTA) == 1
    queue.close()
