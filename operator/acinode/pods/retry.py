"""Retry policies: how long a pod (or group) waits after its n-th failure of one kind.

One ``Backoff`` formula for every wait in ``acinode.pods`` (client-go's ``ItemExponentialFailureRateLimiter``):
``base * 2**(failures - 1)``, at most ``cap``. ``RetryPolicies`` gives one per ``FailureKind``; the work queue
(``workqueue.RateLimitedQueue``) counts failures per key *and kind*, so a pod that waited five times for a Secret
starts its image-pull back-off at the first step, not at the cap.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from acinode import settings


class FailureKind(enum.Enum):
    """Why a key is retried; each kind has its own failure counter and policy."""

    MISSING_REFERENCES = "missing_references"
    """A referenced Secret, ConfigMap or service account does not exist (yet): wait as a kubelet does."""
    IMAGE_PULL = "image_pull"
    """ACI cannot pull an image: ErrImagePull, then ImagePullBackOff."""
    QUOTA = "quota"
    """A quota or capacity limit of the region or subscription."""
    TRANSIENT = "transient"
    """ARM 5xx, a timeout, a dropped connection, a Kubernetes API error: retry soon."""
    THROTTLED = "throttled"
    """ARM or the client-side budget said wait (the wait is at least its Retry-After)."""
    UNEXPECTED = "unexpected"
    """A bug: an exception outside the error taxonomy."""


@dataclasses.dataclass(frozen=True)
class Backoff:
    """``base_seconds`` after the first failure, doubling with each further one, at most ``cap_seconds``."""

    base_seconds: float
    cap_seconds: float

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        # The exponent is bounded so that a long run of failures never overflows the float.
        return float(min(self.cap_seconds, self.base_seconds * 2 ** min(failures - 1, 64)))


THROTTLED = Backoff(0.0, 0.0)
"""Throttling: exactly the wait ARM or the client's budget asked for (given with the retry, as ``at_least``)."""


def pod_watch(pod_settings: settings.PodSettings) -> Backoff:
    """The pod view's list + watch after an API error."""
    return Backoff(pod_settings.watch_retry_base_seconds, pod_settings.watch_retry_max_seconds)


@dataclasses.dataclass(frozen=True)
class RetryPolicies:
    by_kind: Mapping[FailureKind, Backoff]

    def delay(self, kind: FailureKind, failures: int) -> float:
        return self.by_kind[kind].delay(failures)

    @classmethod
    def from_settings(cls, pod_settings: settings.PodSettings) -> RetryPolicies:
        """The policies of docs/architecture.md's failure table."""
        image = Backoff(pod_settings.backoff_base_seconds, pod_settings.backoff_max_seconds)
        return cls(
            {
                # A kubelet's wait for a missing Secret or ConfigMap (a new namespace's kube-root-ca.crt appears
                # a moment after the namespace).
                FailureKind.MISSING_REFERENCES: Backoff(
                    pod_settings.reference_retry_base_seconds, pod_settings.reference_retry_max_seconds
                ),
                FailureKind.IMAGE_PULL: image,
                FailureKind.QUOTA: image,
                FailureKind.TRANSIENT: Backoff(
                    pod_settings.transient_retry_seconds, pod_settings.transient_retry_seconds
                ),
                FailureKind.THROTTLED: THROTTLED,
                FailureKind.UNEXPECTED: Backoff(
                    pod_settings.unexpected_retry_seconds, pod_settings.unexpected_retry_seconds
                ),
            }
        )
