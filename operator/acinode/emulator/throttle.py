"""ARM and ACI request throttling, per subscription: 429 + ``Retry-After`` and the remaining-quota headers.

- ARM: token buckets for reads and for writes (ARM's current algorithm: a bucket refilled every second).
- ACI: sliding windows for container-group creates (PUT) and deletes, per 5 minutes and per hour.
Everything reads the (runtime-tunable) config on each request.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from acinode.emulator import config, wire


@dataclass
class _Bucket:
    tokens: float
    updated: float

    def refill(self, now: float, capacity: int, rate: float) -> None:
        self.tokens = min(float(capacity), self.tokens + (now - self.updated) * rate)
        self.updated = now


@dataclass
class _Window:
    hits: deque[float] = field(default_factory=deque)

    def count(self, now: float, span: float) -> int:
        while self.hits and self.hits[0] <= now - span:
            self.hits.popleft()
        return len(self.hits)

    def wait(self, now: float, span: float) -> float:
        return self.hits[0] + span - now if self.hits else 0.0


class Throttle:
    def __init__(self, cfg: config.ThrottleConfig) -> None:
        self.cfg = cfg
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._windows: dict[tuple[str, str, float], _Window] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self._windows.clear()

    def admit(self, subscription: str, method: str, aci_kind: str | None) -> dict[str, str]:
        """Count one request; returns the rate-limit headers, or raises a 429 ``ArmError``."""
        if not self.cfg.enabled:
            return {}
        now = time.monotonic()
        sub = subscription.lower()
        kind = "read" if method in ("GET", "HEAD") else "write"
        capacity, rate = (
            (self.cfg.read_burst, self.cfg.read_rate)
            if kind == "read"
            else (self.cfg.write_burst, self.cfg.write_rate)
        )
        bucket = self._buckets.setdefault((sub, kind), _Bucket(float(capacity), now))
        bucket.refill(now, capacity, rate)
        headers: dict[str, str] = {}
        windows: list[tuple[_Window, float, int, str]] = []
        if aci_kind in ("create", "delete"):
            limits = (
                (self.cfg.creates_per_5m, self.cfg.creates_per_hour)
                if aci_kind == "create"
                else (self.cfg.deletes_per_5m, self.cfg.deletes_per_hour)
            )
            # Azure names ACI's windows ...-resource-requests-pt5m/pt1h on both PUT and DELETE answers.
            name = "resource-requests"
            for span, limit, suffix in ((300.0, limits[0], "pt5m"), (3600.0, limits[1], "pt1h")):
                window = self._windows.setdefault((sub, aci_kind, span), _Window())
                used = window.count(now, span)
                if used >= limit:
                    raise self._throttled(
                        "TooManyRequests",
                        f"The number of container group '{aci_kind}' requests for subscription "
                        f"'{subscription}' "
                        f"exceeded the limit of '{limit}' per '{int(span // 60)}' minutes.",
                        window.wait(now, span),
                    )
                windows.append(
                    (window, span, limit, f"x-ms-ratelimit-remaining-subscription-{name}-{suffix}")
                )
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / rate if rate > 0 else 3600.0
            raise self._throttled(
                "SubscriptionRequestsThrottled",
                f"Number of '{kind}' requests for subscription '{subscription}' actor 'emulator' exceeded. "
                "Please try "
                f"again after '{math.ceil(wait)}' seconds after additional tokens are available. Refer to "
                "https://aka.ms/arm-throttling for additional information.",
                wait,
            )
        bucket.tokens -= 1.0
        # ARM answers a DELETE with ...-deletes in place of ...-writes (recorded resource-group deletes).
        counted = "deletes" if method == "DELETE" else f"{kind}s"
        headers[f"x-ms-ratelimit-remaining-subscription-{counted}"] = str(int(bucket.tokens))
        for window, _span, limit, header in windows:
            window.hits.append(now)
            headers[header] = str(limit - len(window.hits))
        return headers

    @staticmethod
    def _throttled(code: str, message: str, wait: float) -> wire.ArmError:
        # Retry-After: 0 reads as "no hint" to azure-core, so never send less than 1.
        return wire.ArmError(429, code, message, headers={"Retry-After": str(max(1, math.ceil(wait)))})
