"""Pod statuses for the failures that happen before (or instead of) a running group.

The design's failure table: a spec the mapping refuses → ``ProviderFailed`` (Pending, or Failed when the
restart policy is Never); an image ACI cannot pull → Pending with containers waiting in ``ErrImagePull`` /
``ImagePullBackOff``; a quota or capacity error → Pending with the quota as reason; a group that vanished →
Failed with its running containers terminated. Like the group mapping, these never move a finished pod back.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from acinode import errors
from acinode.mapping import conditions, objects, status

CONFIG_ERROR = "CreateContainerConfigError"
GROUP_LOST = "ContainerGroupLost"
#: The exit code of a container killed with SIGKILL, reported for containers whose group vanished.
KILLED_EXIT_CODE = 137
#: The reason of a container killed by a stop or a deadline, as the container runtime reports a SIGKILL.
KILLED_REASON = "Error"
#: The kubelet's reason and message for a pod past its activeDeadlineSeconds (pkg/kubelet/active_deadline.go).
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_EXCEEDED_MESSAGE = "Pod was active on the node longer than the specified deadline"


def _waiting_statuses(
    pod: objects.Pod, reason_for: Mapping[str, tuple[str, str | None]], default: tuple[str, str | None]
) -> tuple[list[objects.ContainerStatus], list[objects.ContainerStatus]]:
    previous = pod.get("status", {})
    before = {s.get("name"): s for s in previous.get("containerStatuses", [])}
    before_init = {s.get("name"): s for s in previous.get("initContainerStatuses", [])}
    spec = pod.get("spec", {})

    def build(
        container: objects.Container, earlier: objects.ContainerStatus | None
    ) -> objects.ContainerStatus:
        reason, message = reason_for.get(container.get("name", ""), default)
        return conditions.waiting_status(container, earlier, reason, message)

    init = [build(c, before_init.get(c.get("name"))) for c in spec.get("initContainers", [])]
    app = [build(c, before.get(c.get("name"))) for c in spec.get("containers", [])]
    return init, app


def _not_running_status(
    pod: objects.Pod,
    *,
    now: datetime.datetime,
    phase: str,
    reason: str | None,
    message: str | None,
    container_reasons: Mapping[str, tuple[str, str | None]],
    default_reason: tuple[str, str | None],
) -> objects.PodStatus:
    previous = pod.get("status", {})
    if conditions.is_terminal(previous):
        return previous
    stamp = conditions.timestamp(now)
    result = conditions.base_status(pod, stamp, conditions.later_phase(previous.get("phase"), phase), None)
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    init, app = _waiting_statuses(pod, container_reasons, default_reason)
    unready = " ".join(s.get("name", "") for s in app)
    detail = f"containers with unready status: [{unready}]"
    wanted = [
        conditions.Condition(conditions.POD_SCHEDULED, True),
        conditions.Condition(conditions.READY_TO_START, False),
        conditions.Condition(
            conditions.INITIALIZED,
            not init,
            None if not init else "ContainersNotInitialized",
            None
            if not init
            else f"containers with incomplete status: [{' '.join(s.get('name', '') for s in init)}]",
        ),
        conditions.Condition(conditions.CONTAINERS_READY, False, "ContainersNotReady", detail),
        conditions.Condition(conditions.READY, False, "ContainersNotReady", detail),
    ]
    result["conditions"] = conditions.merged_conditions(
        previous.get("conditions", []), wanted, stamp, pod.get("metadata", {}).get("generation")
    )
    if init:
        result["initContainerStatuses"] = init
    result["containerStatuses"] = app
    return result


def pod_status_for_mapping_failure(
    pod: objects.Pod, error: errors.UnsupportedPodSpecError, *, now: datetime.datetime
) -> objects.PodStatus:
    """``ProviderFailed``: Pending (not retried until the pod changes), or Failed when restartPolicy is Never."""
    never = pod.get("spec", {}).get("restartPolicy") == "Never"
    message = "ACI cannot run this pod as written: " + "; ".join(str(p) for p in error.problems)
    return _not_running_status(
        pod,
        now=now,
        phase=conditions.FAILED if never else conditions.PENDING,
        reason=status.PROVIDER_FAILED,
        message=message,
        container_reasons={},
        default_reason=(CONFIG_ERROR, message),
    )


def pod_status_for_image_pull_failure(
    pod: objects.Pod,
    *,
    message: str,
    now: datetime.datetime,
    image: str | None = None,
    backing_off: bool = False,
) -> objects.PodStatus:
    """Pending, with the containers of ``image`` (all, when unknown) waiting in ErrImagePull/ImagePullBackOff."""
    reason = "ImagePullBackOff" if backing_off else "ErrImagePull"
    return _pending_with_waiting(pod, reason, message, now=now, image=image)


def _pending_with_waiting(
    pod: objects.Pod, reason: str, message: str, *, now: datetime.datetime, image: str | None = None
) -> objects.PodStatus:
    """Pending, the containers of ``image`` (all, when None) waiting with ``reason``, the others creating."""
    spec = pod.get("spec", {})
    affected = {
        c.get("name", ""): (reason, message)
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]
        if image is None or c.get("image") == image
    }
    return _not_running_status(
        pod,
        now=now,
        phase=conditions.PENDING,
        reason=None,
        message=None,
        container_reasons=affected,
        default_reason=("ContainerCreating", None),
    )


def pod_status_for_missing_references(
    pod: objects.Pod, *, message: str, now: datetime.datetime
) -> objects.PodStatus:
    """Pending, every container waiting in ``CreateContainerConfigError`` (as a kubelet shows a pod whose Secret or
    ConfigMap does not exist yet), with the missing objects named."""
    return _pending_with_waiting(pod, "CreateContainerConfigError", message, now=now)


def pod_status_for_quota_failure(
    pod: objects.Pod, *, code: str, message: str, now: datetime.datetime
) -> objects.PodStatus:
    """Pending with the quota or capacity error as the pod's reason (e.g. ``ContainerGroupQuotaReached``)."""
    return _not_running_status(
        pod,
        now=now,
        phase=conditions.PENDING,
        reason=code,
        message=message,
        container_reasons={},
        default_reason=("ContainerCreating", None),
    )


def _ended(
    statuses: list[objects.ContainerStatus], stamp: str, message: str | None, reason: str = GROUP_LOST
) -> list[objects.ContainerStatus]:
    """Container statuses with every unfinished container terminated as killed (exit code 137, ``reason``)."""
    ended_statuses: list[objects.ContainerStatus] = []
    for earlier in statuses:
        ended = objects.ContainerStatus(**earlier)
        state = earlier.get("state", {})
        if "terminated" not in state:
            terminated = objects.ContainerStateTerminated(
                exitCode=KILLED_EXIT_CODE, reason=reason, finishedAt=stamp
            )
            if message:
                terminated["message"] = message
            if "running" in state and state["running"].get("startedAt"):
                terminated["startedAt"] = state["running"]["startedAt"]
            if earlier.get("containerID"):
                terminated["containerID"] = earlier["containerID"]
            ended["state"] = objects.ContainerState(terminated=terminated)
        ended["ready"] = False
        ended["started"] = False
        ended_statuses.append(ended)
    return ended_statuses


def pod_status_for_lost_group(pod: objects.Pod, *, now: datetime.datetime) -> objects.PodStatus:
    """Failed: the group vanished (for a pod the reconciler will not recreate, restartPolicy Never).
    Running containers end as killed; containers that had finished keep their exit codes."""
    previous = pod.get("status", {})
    if conditions.is_terminal(previous):
        return previous
    stamp = conditions.timestamp(now)
    message = "the ACI container group of this pod disappeared"
    result = conditions.base_status(pod, stamp, conditions.FAILED, None)
    result["reason"] = GROUP_LOST
    result["message"] = message
    init = _ended(previous.get("initContainerStatuses", []), stamp, message)
    if init:
        result["initContainerStatuses"] = init
    app = _ended(previous.get("containerStatuses", []), stamp, message)
    if app:
        result["containerStatuses"] = app
    if "containerStatuses" not in result:
        _, app = _waiting_statuses(pod, {}, (GROUP_LOST, message))
        result["containerStatuses"] = app
    result["conditions"] = conditions.merged_conditions(
        previous.get("conditions", []),
        [
            conditions.Condition(conditions.POD_SCHEDULED, True),
            conditions.Condition(conditions.READY_TO_START, False),
            conditions.Condition(conditions.INITIALIZED, True, "PodCompleted"),
            conditions.Condition(conditions.CONTAINERS_READY, False, "PodCompleted"),
            conditions.Condition(conditions.READY, False, "PodCompleted"),
        ],
        stamp,
        pod.get("metadata", {}).get("generation"),
    )
    return result


def _ended_conditions(
    pod: objects.Pod, previous: objects.PodStatus, stamp: str
) -> list[objects.PodCondition]:
    return conditions.merged_conditions(
        previous.get("conditions", []),
        [
            conditions.Condition(conditions.POD_SCHEDULED, True),
            conditions.Condition(conditions.READY_TO_START, False),
            conditions.Condition(conditions.INITIALIZED, True, "PodCompleted"),
            conditions.Condition(conditions.CONTAINERS_READY, False, "PodCompleted"),
            conditions.Condition(conditions.READY, False, "PodCompleted"),
        ],
        stamp,
        pod.get("metadata", {}).get("generation"),
    )


def _with_containers_ended(
    pod: objects.Pod, result: objects.PodStatus, stamp: str, message: str | None
) -> objects.PodStatus:
    previous = pod.get("status", {})
    init = _ended(previous.get("initContainerStatuses", []), stamp, message, KILLED_REASON)
    if init:
        result["initContainerStatuses"] = init
    app = _ended(previous.get("containerStatuses", []), stamp, message, KILLED_REASON)
    if not app:
        _, app = _waiting_statuses(pod, {}, ("ContainerCreating", None))
    result["containerStatuses"] = app
    result["conditions"] = _ended_conditions(pod, previous, stamp)
    return result


def pod_status_for_deadline_exceeded(pod: objects.Pod, *, now: datetime.datetime) -> objects.PodStatus:
    """Failed, reason ``DeadlineExceeded``, as the kubelet ends a pod active longer than its
    ``activeDeadlineSeconds``: running containers terminated as killed (137), finished ones keep their codes."""
    previous = pod.get("status", {})
    if conditions.is_terminal(previous):
        return previous
    stamp = conditions.timestamp(now)
    result = conditions.base_status(pod, stamp, conditions.FAILED, None)
    result["reason"] = DEADLINE_EXCEEDED
    result["message"] = DEADLINE_EXCEEDED_MESSAGE
    return _with_containers_ended(pod, result, stamp, None)


def pod_status_for_terminated_pod(pod: objects.Pod, *, now: datetime.datetime) -> objects.PodStatus:
    """The status a kubelet writes before a deleted pod leaves: every container terminated (those still running
    when the grace period ran out as killed, 137), not ready; the phase terminal (Succeeded only when every
    container exited 0). ``pod`` carries the latest status read from its stopped group."""
    previous = pod.get("status", {})
    if conditions.is_terminal(previous):
        return previous
    stamp = conditions.timestamp(now)
    result = conditions.base_status(pod, stamp, conditions.FAILED, None)
    result = _with_containers_ended(pod, result, stamp, None)
    codes = [
        s.get("state", {}).get("terminated", {}).get("exitCode") for s in result.get("containerStatuses", [])
    ]
    if codes and all(code == 0 for code in codes):
        result["phase"] = conditions.SUCCEEDED
    return result
