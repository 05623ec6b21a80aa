"""Container group → pod status: phase, conditions, container statuses, IPs — as a kubelet would report them.

ACI reports container states only in a group's instance view, which a list entry lacks and which a
``provisioningState`` of Succeeded does not imply (it stays Succeeded after the containers exit). So the
instance view decides when present; without it, what the previous status knew is kept. The phase follows the
kubelet's rules (``getPhase``) and never moves backwards: a Succeeded or Failed pod stays so.

Unlike virtual-kubelet's provider, exit codes, init container statuses, last states and the group's
provisioning failures all reach the pod.
"""

from __future__ import annotations

import datetime
import hashlib
import re

from azure.mgmt.containerinstance import models

from acinode.mapping import conditions, names, objects

PROVISIONING_FAILED = ("Failed", "Canceled")
PROVIDER_FAILED = "ProviderFailed"
#: Termination reasons a runtime reports that Kubernetes users know; anything else becomes Completed/Error.
_TERMINATION_REASONS = ("Completed", "Error", "OOMKilled", "ContainerCannotRun", "DeadlineExceeded")
_REASON_WORD = re.compile(r"^[A-Z][A-Za-z]+$")
_PULL_WORDS = re.compile(r"pull|image", re.IGNORECASE)

AnyInstanceView = (
    models.ContainerPropertiesInstanceView | models.InitContainerPropertiesDefinitionInstanceView
)


def container_id(group: models.ContainerGroup, aci_name: str, restart_count: int) -> str:
    """A stable id per container run (it changes on every restart, as a runtime's would)."""
    key = f"{group.id or group.name or ''}/containers/{aci_name}/{restart_count}"
    return "aci://" + hashlib.sha256(key.encode()).hexdigest()


def _time(moment: datetime.datetime | None) -> str | None:
    return conditions.timestamp(moment) if moment is not None else None


def _terminated(state: models.ContainerState, container_ref: str | None) -> objects.ContainerStateTerminated:
    exit_code = state.exit_code if state.exit_code is not None else 0
    detail = (state.detail_status or "").strip()
    reason = detail if detail in _TERMINATION_REASONS else ("Completed" if exit_code == 0 else "Error")
    terminated = objects.ContainerStateTerminated(exitCode=exit_code, reason=reason)
    if detail and detail != reason:
        terminated["message"] = detail
    if (started := _time(state.start_time)) is not None:
        terminated["startedAt"] = started
    if (finished := _time(state.finish_time)) is not None:
        terminated["finishedAt"] = finished
    if container_ref:
        terminated["containerID"] = container_ref
    return terminated


def image_pull_failure(events: list[models.Event] | None) -> tuple[str, str] | None:
    """(ErrImagePull or ImagePullBackOff, message) when the latest pull-related event is a failure."""
    pulls = [
        e
        for e in events or []
        if e.name in ("Failed", "BackOff", "Pulling", "Pulled")
        and _PULL_WORDS.search(f"{e.name} {e.message or ''}")
    ]
    if not pulls:
        return None
    latest = max(
        pulls,
        key=lambda e: (
            e.last_timestamp or e.first_timestamp or datetime.datetime.min.replace(tzinfo=datetime.UTC)
        ),
    )
    if latest.name == "Failed":
        return "ErrImagePull", latest.message or "failed to pull the image"
    if latest.name == "BackOff":
        return "ImagePullBackOff", latest.message or "backing off pulling the image"
    return None


def _waiting(state: models.ContainerState | None, view: AnyInstanceView) -> objects.ContainerStateWaiting:
    detail = ((state.detail_status if state else None) or "").strip()
    pull = image_pull_failure(view.events)
    if pull is not None:
        return objects.ContainerStateWaiting(reason=pull[0], message=pull[1])
    reason = detail.split(":", 1)[0].strip() if detail else ""
    if _REASON_WORD.match(reason):
        message = detail.split(":", 1)[1].strip() if ":" in detail else ""
        waiting = objects.ContainerStateWaiting(reason=reason)
    else:
        previous = view.previous_state
        restarted = previous is not None and previous.state == "Terminated" and (view.restart_count or 0) > 0
        waiting = objects.ContainerStateWaiting(
            reason="CrashLoopBackOff" if restarted else "ContainerCreating"
        )
        message = detail
    if message:
        waiting["message"] = message
    return waiting


def _container_status(
    container: objects.Container,
    aci: models.Container | models.InitContainerDefinition | None,
    group: models.ContainerGroup,
    previous: objects.ContainerStatus | None,
    *,
    init: bool,
) -> objects.ContainerStatus:
    view = aci.instance_view if aci is not None else None
    if view is None or view.current_state is None:
        if previous is not None:
            return previous  # no news about this container: keep what was known
        return conditions.waiting_status(container, None, "ContainerCreating", None)
    state = view.current_state
    aci_name = names.aci_container_name(container.get("name", ""))
    restart_count = max(view.restart_count or 0, (previous or {}).get("restartCount", 0))
    current_id = container_id(group, aci_name, restart_count)
    status = objects.ContainerStatus(
        name=container.get("name", ""),
        restartCount=restart_count,
        image=(aci.image if aci is not None else None) or container.get("image", ""),
        imageID="",
        lastState=objects.ContainerState(),
        ready=False,
        started=False,
    )
    if view.previous_state is not None and view.previous_state.state == "Terminated":
        last_id = container_id(group, aci_name, max(restart_count - 1, 0))
        status["lastState"] = objects.ContainerState(terminated=_terminated(view.previous_state, last_id))
    elif previous is not None and previous.get("lastState"):
        status["lastState"] = previous["lastState"]
    if state.state == "Running":
        running = objects.ContainerStateRunning()
        if (started := _time(state.start_time)) is not None:
            running["startedAt"] = started
        status["state"] = objects.ContainerState(running=running)
        status["containerID"] = current_id
        status["started"] = True
        status["ready"] = not init
    elif state.state == "Terminated":
        terminated = _terminated(state, current_id)
        status["state"] = objects.ContainerState(terminated=terminated)
        status["containerID"] = current_id
        status["ready"] = init and terminated["exitCode"] == 0
    else:
        status["state"] = objects.ContainerState(waiting=_waiting(state, view))
    return status


def _exit_code(state: objects.ContainerState) -> int | None:
    terminated = state.get("terminated")
    return terminated.get("exitCode", 0) if terminated is not None else None


def phase_from_statuses(
    spec: objects.PodSpec,
    init_statuses: list[objects.ContainerStatus],
    app_statuses: list[objects.ContainerStatus],
) -> str:
    """The kubelet's ``getPhase``, for containers whose statuses are known."""
    policy = spec.get("restartPolicy", "Always")
    pending_init = failed_init = 0
    for status in init_statuses:
        state = status.get("state", {})
        code = _exit_code(state)
        if code is None and "waiting" in state:
            code = _exit_code(status.get("lastState", {}))
        if code is None:
            pending_init += 1
        elif code != 0:
            failed_init += 1
    if failed_init and policy == "Never":
        return conditions.FAILED
    if pending_init or failed_init:
        return conditions.PENDING
    running = waiting = stopped = succeeded = 0
    for status in app_statuses:
        state = status.get("state", {})
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += _exit_code(state) == 0
        elif "terminated" in status.get("lastState", {}):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return conditions.PENDING
    if running:
        return conditions.RUNNING
    if stopped:
        if policy == "Always":
            return conditions.RUNNING
        if stopped == succeeded:
            return conditions.SUCCEEDED
        return conditions.FAILED if policy == "Never" else conditions.RUNNING
    return conditions.PENDING


def _by_aci_name(
    items: list[models.Container] | list[models.InitContainerDefinition] | None,
) -> dict[str, models.Container | models.InitContainerDefinition]:
    return {item.name: item for item in items or [] if item.name}


def _provisioning_message(group: models.ContainerGroup) -> str:
    events: list[models.Event] = (group.instance_view.events if group.instance_view else None) or []
    warnings = [e for e in events if e.type != "Normal" and e.message] or [e for e in events if e.message]
    detail = f": {warnings[-1].message}" if warnings else ""
    return (
        f"ACI could not provision the container group (provisioningState {group.provisioning_state}){detail}"
    )


def pod_status_from_container_group(
    group: models.ContainerGroup,
    pod: objects.Pod,
    *,
    now: datetime.datetime,
    host_ip: str | None = None,
) -> objects.PodStatus:
    """The pod's status as its container group shows it; ``pod`` carries the previous status to build on."""
    previous = pod.get("status", {})
    if conditions.is_terminal(previous):
        return previous
    spec = pod.get("spec", {})
    stamp = conditions.timestamp(now)
    previous_by_name = {s.get("name"): s for s in previous.get("containerStatuses", [])}
    previous_init = {s.get("name"): s for s in previous.get("initContainerStatuses", [])}
    aci_app, aci_init = _by_aci_name(group.containers), _by_aci_name(group.init_containers)
    init_statuses = [
        _container_status(
            c,
            aci_init.get(names.aci_container_name(c.get("name", ""))),
            group,
            previous_init.get(c.get("name")),
            init=True,
        )
        for c in spec.get("initContainers", [])
    ]
    app_statuses = [
        _container_status(
            c,
            aci_app.get(names.aci_container_name(c.get("name", ""))),
            group,
            previous_by_name.get(c.get("name")),
            init=False,
        )
        for c in spec.get("containers", [])
    ]

    reason = message = None
    provisioning = group.provisioning_state or ""
    pulls_failing = any(
        s.get("state", {}).get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
        for s in [*init_statuses, *app_statuses]
    )
    if provisioning in PROVISIONING_FAILED and not pulls_failing:
        phase = conditions.FAILED if spec.get("restartPolicy") == "Never" else conditions.PENDING
        reason, message = PROVIDER_FAILED, _provisioning_message(group)
    else:
        phase = phase_from_statuses(spec, init_statuses, app_statuses)
    phase = conditions.later_phase(previous.get("phase"), phase)

    status = conditions.base_status(pod, stamp, phase, host_ip)
    if group.ip_address is not None and group.ip_address.ip:
        status["podIP"] = group.ip_address.ip
        status["podIPs"] = [objects.PodIp(ip=group.ip_address.ip)]
    if "podIP" not in status and phase == conditions.RUNNING and status.get("hostIP"):
        # A group with no IP (public mode, no ports: ACI gives a public IP only with ports): the node's address,
        # as a kubelet gives hostNetwork pods, so no Running pod is without an IP (docs/mapping.md).
        status["podIP"] = status["hostIP"]
        status["podIPs"] = [objects.PodIp(ip=status["hostIP"])]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    status["conditions"] = conditions.merged_conditions(
        previous.get("conditions", []),
        _wanted_conditions(pod, phase, provisioning, init_statuses, app_statuses),
        stamp,
        pod.get("metadata", {}).get("generation"),
    )
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = app_statuses
    return status


def _wanted_conditions(
    pod: objects.Pod,
    phase: str,
    provisioning: str,
    init_statuses: list[objects.ContainerStatus],
    app_statuses: list[objects.ContainerStatus],
) -> list[conditions.Condition]:
    terminal = phase in conditions.TERMINAL_PHASES
    started_any = any(s.get("containerID") for s in [*init_statuses, *app_statuses])
    incomplete = [s.get("name", "") for s in init_statuses if not s.get("ready")]
    unready = [s.get("name", "") for s in app_statuses if not s.get("ready")]
    initialized = conditions.Condition(conditions.INITIALIZED, True, "PodCompleted" if terminal else None)
    if incomplete and not terminal:
        initialized = conditions.Condition(
            conditions.INITIALIZED,
            False,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        )
    if terminal:
        containers_ready = conditions.Condition(conditions.CONTAINERS_READY, False, "PodCompleted")
        ready = conditions.Condition(conditions.READY, False, "PodCompleted")
    elif unready:
        detail = f"containers with unready status: [{' '.join(unready)}]"
        containers_ready = conditions.Condition(
            conditions.CONTAINERS_READY, False, "ContainersNotReady", detail
        )
        ready = conditions.Condition(conditions.READY, False, "ContainersNotReady", detail)
    else:
        containers_ready = conditions.Condition(conditions.CONTAINERS_READY, True)
        gates = conditions.readiness_gates_problem(pod)
        ready = (
            conditions.Condition(conditions.READY, False, "ReadinessGatesNotReady", gates)
            if gates
            else conditions.Condition(conditions.READY, True)
        )
    return [
        conditions.Condition(conditions.POD_SCHEDULED, True),
        conditions.Condition(conditions.READY_TO_START, provisioning == "Succeeded" or started_any),
        initialized,
        containers_ready,
        ready,
    ]


STOPPED_GROUP_STATES = ("Stopped", "Succeeded", "Failed")


def is_group_stopped(group: models.ContainerGroup) -> bool:
    """Whether the group's containers have all ended (after an ACI stop, or on their own)."""
    view = group.instance_view
    if view is not None and view.state in STOPPED_GROUP_STATES:
        return True
    containers = list(group.containers or [])
    return bool(containers) and all(
        c.instance_view is not None
        and c.instance_view.current_state is not None
        and c.instance_view.current_state.state == "Terminated"
        for c in containers
    )
