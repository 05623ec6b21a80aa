"""The failure-policy table as pure functions: what a failure to create a pod's group means for the pod.

``decide_create_failure`` maps an error of the taxonomy to a ``Decision``: the failure kind (which selects the
retry policy and its counter, ``retry.RetryPolicies``), the pod status to write, the Event to post, and whether
to retry or to refuse the pod until it changes (docs/architecture.md, "Failure semantics"):

| error | kind | pod | retry |
|---|---|---|---|
| UnsupportedPodSpecError, only missing objects | MISSING_REFERENCES | Pending, CreateContainerConfigError | yes |
| UnsupportedPodSpecError, InvalidRequestError | — | ProviderFailed (Failed if Never) | no, until the pod changes |
| ImageInaccessibleError | IMAGE_PULL | ErrImagePull, then ImagePullBackOff | yes |
| QuotaExceededError | QUOTA | Pending, reason = the quota code | yes |
| ThrottledError | THROTTLED | unchanged | after its Retry-After |
| any other AcinodeError | TRANSIENT | unchanged | yes, soon |

``decide_lost_group``: a group that vanished under a pod that ran is recreated (restartPolicy Always/OnFailure) or
fails the pod (Never); an Event either way.

Deletion and deadlines, as a kubelet: ``grace_deadline`` is when a graceful deletion stops waiting for the stopped
containers (the pod's ``deletionTimestamp``, which the API server sets to the deletion's start plus its grace
period; None for a force deletion, grace 0); ``deletion_wait`` how long until the next look; ``active_deadline`` when
a pod with ``activeDeadlineSeconds`` must end (``status.startTime`` plus it). No I/O, no clock (``now`` is passed
in), no logging.
"""

from __future__ import annotations

import dataclasses
import datetime

from acinode import errors
from acinode.mapping import conditions, containers, events, failures, objects
from acinode.pods import retry


@dataclasses.dataclass(frozen=True)
class Decision:
    kind: retry.FailureKind | None
    """The retry counter and policy; None when the pod is refused (no retry until it changes)."""
    status: objects.PodStatus | None = None
    """The pod status to write (None: leave it)."""
    event: events.PodEvent | None = None
    retry_at_least_seconds: float = 0.0
    """A floor on the retry delay (a Retry-After)."""
    log: str = ""
    """What happened, for the operator's log."""

    @property
    def refuses(self) -> bool:
        return self.kind is None


def refusal(err: errors.AcinodeError) -> errors.UnsupportedPodSpecError | None:
    """The mapping refusal ``err`` amounts to: a refused spec, or ACI's 400 for the group (as one problem)."""
    if isinstance(err, errors.UnsupportedPodSpecError) and not err.only_missing_objects:
        return err
    if isinstance(err, errors.InvalidRequestError):
        problem = errors.FieldProblem("spec", f"ACI refused the container group ({err.code}): {err}")
        return errors.UnsupportedPodSpecError([problem])
    return None


def kind_of(err: errors.AcinodeError) -> retry.FailureKind | None:
    """The failure kind of an error met while creating a pod's group; None for a refusal."""
    if refusal(err) is not None:
        return None
    if isinstance(err, errors.UnsupportedPodSpecError):
        return retry.FailureKind.MISSING_REFERENCES
    if isinstance(err, errors.ImageInaccessibleError):
        return retry.FailureKind.IMAGE_PULL
    if isinstance(err, errors.QuotaExceededError):
        return retry.FailureKind.QUOTA
    if isinstance(err, errors.ThrottledError):
        return retry.FailureKind.THROTTLED
    return retry.FailureKind.TRANSIENT


def decide_create_failure(
    err: errors.AcinodeError, pod: objects.Pod, *, now: datetime.datetime, attempt: int
) -> Decision:
    """What to do after creating ``pod``'s group failed with ``err``; ``attempt`` counts failures of this
    kind for this pod, this one included (1 = first)."""
    refused = refusal(err)
    if refused is not None:
        return Decision(
            None,
            failures.pod_status_for_mapping_failure(pod, refused, now=now),
            events.pod_event_for_mapping_failure(pod, refused, now=now),
            log=f"pod refused: {refused}",
        )
    kind = kind_of(err)
    if kind is retry.FailureKind.MISSING_REFERENCES:
        return Decision(
            kind,
            failures.pod_status_for_missing_references(pod, message=str(err), now=now),
            events.pod_event(pod, reason="Failed", message=f"Error: {err}", now=now),
            log=f"waiting for referenced objects: {err}",
        )
    if kind is retry.FailureKind.IMAGE_PULL:
        assert isinstance(err, errors.ImageInaccessibleError)
        return Decision(
            kind,
            failures.pod_status_for_image_pull_failure(
                pod, message=str(err), now=now, image=err.image, backing_off=attempt > 1
            ),
            events.pod_event(pod, reason="Failed", message=f"Failed to pull image: {err}", now=now),
            log=f"image not accessible: {err}",
        )
    if kind is retry.FailureKind.QUOTA:
        assert isinstance(err, errors.QuotaExceededError)
        return Decision(
            kind,
            failures.pod_status_for_quota_failure(pod, code=err.code, message=str(err), now=now),
            events.pod_event(pod, reason=err.code, message=str(err), now=now),
            log=f"quota reached: {err}",
        )
    if isinstance(err, errors.ThrottledError):
        return Decision(
            retry.FailureKind.THROTTLED,
            retry_at_least_seconds=err.retry_after_seconds,
            log=f"pod action throttled, will retry: {err}",
        )
    return Decision(retry.FailureKind.TRANSIENT, log=f"pod action failed, will retry: {err}")


def decide_action_failure(err: errors.AcinodeError) -> Decision:
    """An error outside creation (deleting, patching status): the pod's status is left; retried."""
    if isinstance(err, errors.ThrottledError):
        return Decision(
            retry.FailureKind.THROTTLED,
            retry_at_least_seconds=err.retry_after_seconds,
            log=f"pod action throttled, will retry: {err}",
        )
    return Decision(retry.FailureKind.TRANSIENT, log=f"pod action failed, will retry: {err}")


@dataclasses.dataclass(frozen=True)
class LostGroup:
    recreate: bool
    status: objects.PodStatus | None
    """The Failed status (restartPolicy Never); None when the group is recreated."""
    event: events.PodEvent


def decide_lost_group(pod: objects.Pod, *, now: datetime.datetime) -> LostGroup:
    """A pod that ran lost its group (deleted outside acinode, or lost by ACI)."""
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    if policy == "Never":
        message = "The pod's ACI container group disappeared; restartPolicy Never: the pod has failed"
        status: objects.PodStatus | None = failures.pod_status_for_lost_group(pod, now=now)
    else:
        message = f"The pod's ACI container group disappeared; recreated it (restartPolicy {policy})"
        status = None
    event = events.pod_event(pod, reason="ContainerGroupLost", message=message, now=now)
    return LostGroup(recreate=status is None, status=status, event=event)


#: While a graceful deletion waits for the stopped group, how often it reads the group (seconds).
STOP_POLL_SECONDS = 1.0


def _parse_time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def grace_deadline(pod: objects.Pod) -> datetime.datetime | None:
    """When a graceful deletion gives up waiting for the containers to stop; None when the pod is not being
    deleted gracefully (no deletion timestamp, grace 0 or unset, or a pod whose containers have all ended)."""
    metadata = pod.get("metadata", {})
    grace = metadata.get("deletionGracePeriodSeconds")
    if not isinstance(grace, int) or grace <= 0 or conditions.is_terminal(pod.get("status", {})):
        return None
    return _parse_time(metadata.get("deletionTimestamp"))


def pre_stop_until(pod: objects.Pod, deadline: datetime.datetime) -> datetime.datetime | None:
    """When a graceful deletion may ask ACI to stop the group: after the pods' preStop ``sleep`` (counted from
    the deletion's start, as a kubelet runs it), never after the grace period; None when there is none."""
    seconds = containers.pre_stop_sleep(pod)
    grace = pod.get("metadata", {}).get("deletionGracePeriodSeconds")
    if seconds <= 0 or not isinstance(grace, int):
        return None
    started = deadline - datetime.timedelta(seconds=grace)
    return min(started + datetime.timedelta(seconds=seconds), deadline)


def deletion_wait(deadline: datetime.datetime, *, now: datetime.datetime, stopped: bool) -> float:
    """Seconds to wait before the next look at a stopping group: 0 means finish now (the group stopped or the
    grace period is over)."""
    if stopped:
        return 0.0
    left = (deadline - now).total_seconds()
    return 0.0 if left <= 0 else min(left, STOP_POLL_SECONDS)


def active_deadline(pod: objects.Pod) -> datetime.datetime | None:
    """When the pod has been active on the node longer than ``spec.activeDeadlineSeconds`` (counted from
    ``status.startTime``, as the kubelet counts); None without a deadline or a start time, or once terminal."""
    seconds = pod.get("spec", {}).get("activeDeadlineSeconds")
    status = pod.get("status", {})
    if not isinstance(seconds, int) or seconds <= 0 or conditions.is_terminal(status):
        return None
    started = _parse_time(status.get("startTime"))
    return started + datetime.timedelta(seconds=seconds) if started is not None else None


@dataclasses.dataclass(frozen=True)
class DeadlineExceeded:
    status: objects.PodStatus
    event: events.PodEvent


def decide_deadline_exceeded(pod: objects.Pod, *, now: datetime.datetime) -> DeadlineExceeded:
    """The pod outlived its activeDeadlineSeconds: Failed, DeadlineExceeded, containers killed."""
    return DeadlineExceeded(
        failures.pod_status_for_deadline_exceeded(pod, now=now),
        events.pod_event(
            pod,
            reason=failures.DEADLINE_EXCEEDED,
            message=failures.DEADLINE_EXCEEDED_MESSAGE,
            now=now,
            kind="Normal",
        ),
    )
