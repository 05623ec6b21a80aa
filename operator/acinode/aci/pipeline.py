"""The SDK pipeline policies that put acinode's rate limiter and request counter on every ARM request.

Order in the SDK's async pipeline: … → ``TransientRetryPolicy`` → bearer token → ``ThrottlingPolicy`` →
transport. So every attempt (first send, transient retry, LRO poll, next page) waits for its budget and is
counted, and the throttling policy alone decides what a 429 means: the SDK's own retry loop would resend
blindly (up to 10 times for any response carrying Retry-After), whereas ours pauses every request of the same
kind (reads, or writes) on the subscription's limiter and gives up after a budget.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AsyncHttpResponse, HttpRequest

from acinode import errors
from acinode.aci import counting, ratelimit

logger = logging.getLogger(__name__)

THROTTLED = 429


class ThrottlingPolicy(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Waits for the rate budget before each attempt, counts it, and pauses its kind of request on a 429."""

    def __init__(
        self,
        limiter: ratelimit.ArmRateLimiter,
        counter: counting.ArmRequestCounter,
        *,
        throttle_retries: int,
        default_pause_seconds: float,
        max_retry_after_seconds: float = ratelimit.MAX_RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__()
        self._max_retry_after = max_retry_after_seconds
        self._limiter = limiter
        self._counter = counter
        self._throttle_retries = throttle_retries
        self._default_pause_seconds = default_pause_seconds

    async def send(
        self, request: PipelineRequest[HttpRequest]
    ) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        method = request.http_request.method
        operation = counting.operation_of(method, urllib.parse.urlsplit(request.http_request.url).path)
        # Interactive calls (the kubelet API's) draw from their own lane, never from the reconciler's budgets.
        limiter, budgets = ratelimit.route(self._limiter, ratelimit.budgets_for(method, operation))
        throttled = 0
        while True:
            await limiter.acquire(budgets)
            try:
                response = await self.next.send(request)
            except Exception as exc:
                self._counter.record(operation, type(exc).__name__)
                raise
            status = response.http_response.status_code
            self._counter.record(operation, str(status))
            if status != THROTTLED:
                return response
            asked = ratelimit.retry_after_seconds(response.http_response.headers, cap=self._max_retry_after)
            pause = asked if asked else min(self._default_pause_seconds * 2**throttled, self._max_retry_after)
            limiter.pause(pause, budgets)
            throttled += 1
            logger.warning(
                "ARM answered 429",
                extra={"operation": operation, "retry_after_seconds": asked, "attempt": throttled},
            )
            if throttled > self._throttle_retries:
                raise errors.ThrottledError(
                    f"ARM throttled {operation} {throttled} times in a row",
                    retry_after_seconds=max(pause, limiter.paused_for(budgets)),
                )


class TransientRetryPolicy(AsyncRetryPolicy[Any, Any]):
    """The SDK's retry policy for 5xx, timeouts and dropped connections, bounded, and blind to 429."""

    def __init__(self, *, retries: int, backoff_seconds: float, backoff_max_seconds: float) -> None:
        super().__init__(
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
            retry_backoff_factor=backoff_seconds,
            retry_backoff_max=backoff_max_seconds,
        )

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if response.http_response.status_code == THROTTLED:
            return False
        return bool(super().is_retry(settings, response))

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        # A 5xx may carry a long Retry-After; one call should not sleep past the backoff cap for it.
        asked = super().get_retry_after(response)
        return min(asked, self.backoff_max) if asked else asked


class AllowLoopbackHttpPolicy(SansIOHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Lets bearer tokens go over plain HTTP: installed only for a loopback endpoint (emulator debugging)."""

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        request.context["enforce_https"] = False


def is_loopback_http(endpoint: str) -> bool:
    """True for a plain-HTTP URL on this machine; bearer tokens may go there unencrypted, nowhere else."""
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.hostname or ""
    return parts.scheme == "http" and (host in ("localhost", "::1") or host.startswith("127."))
