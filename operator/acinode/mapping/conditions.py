"""Pod conditions and the parts of a pod status every status mapping shares.

Transition times change only when a condition's status does, as a kubelet keeps them; conditions other
components own (readiness gates, DisruptionTarget) are carried over untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from acinode.mapping import objects, resources, timestamps

POD_SCHEDULED = "PodScheduled"
READY_TO_START = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
CONTAINERS_READY = "ContainersReady"
READY = "Ready"
OWN_CONDITIONS = (POD_SCHEDULED, READY_TO_START, INITIALIZED, CONTAINERS_READY, READY)

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)
_PHASE_ORDER = {PENDING: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2}


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, at second precision, as Kubernetes writes times (``timestamps.rfc3339``)."""
    return timestamps.rfc3339(moment)


def transition_time(previous: Mapping[str, Any] | None, status: str, now: str) -> str:
    """A condition's ``lastTransitionTime``: kept from ``previous`` (the same condition as last written) unless
    its status flips, else ``now``. The one rule for pod, Node and VirtualNode conditions, as a kubelet keeps it."""
    if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
        return str(previous["lastTransitionTime"])
    return now


def is_terminal(status: objects.PodStatus) -> bool:
    return status.get("phase") in TERMINAL_PHASES


def later_phase(previous: str | None, computed: str) -> str:
    """Never move a pod backwards: Running does not return to Pending."""
    if previous in _PHASE_ORDER and _PHASE_ORDER[previous] > _PHASE_ORDER[computed]:
        return previous
    return computed


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str | None = None
    message: str | None = None


def merged_conditions(
    previous: list[objects.PodCondition], wanted: list[Condition], now: str, generation: int | None
) -> list[objects.PodCondition]:
    """``wanted`` conditions with transition times kept from ``previous`` when unchanged, then any previous
    condition acinode does not own."""
    by_type = {c.get("type"): c for c in previous}
    merged: list[objects.PodCondition] = []
    for condition in wanted:
        status = "True" if condition.status else "False"
        since = transition_time(by_type.get(condition.type), status, now)
        entry = objects.PodCondition(
            type=condition.type, status=status, lastProbeTime=None, lastTransitionTime=since
        )
        if condition.reason:
            entry["reason"] = condition.reason
        if condition.message:
            entry["message"] = condition.message
        if generation is not None:
            entry["observedGeneration"] = generation
        merged.append(entry)
    wanted_types = {c.type for c in wanted}
    merged.extend(c for c in previous if c.get("type") not in wanted_types)
    return merged


def readiness_gates_problem(pod: objects.Pod) -> str | None:
    """Why the pod's readiness gates hold Ready back, or None when they all pass."""
    conditions = {c.get("type"): c.get("status") for c in pod.get("status", {}).get("conditions", [])}
    for gate in pod.get("spec", {}).get("readinessGates", []):
        kind = gate.get("conditionType", "")
        if kind not in conditions:
            return f'corresponding condition of pod readiness gate "{kind}" does not exist.'
        if conditions[kind] != "True":
            return f'the status of pod readiness gate "{kind}" is not "True", but {conditions[kind]}'
    return None


def base_status(pod: objects.Pod, now: str, phase: str, host_ip: str | None) -> objects.PodStatus:
    """Phase plus the fields every mapping carries over: startTime, qosClass, IPs, observedGeneration."""
    previous = pod.get("status", {})
    status = objects.PodStatus(phase=phase)
    generation = pod.get("metadata", {}).get("generation")
    if generation is not None:
        status["observedGeneration"] = generation
    host = host_ip or previous.get("hostIP")
    if host:
        status["hostIP"] = host
        status["hostIPs"] = [objects.PodIp(ip=host)]
    if previous.get("podIP"):
        status["podIP"] = previous["podIP"]
        status["podIPs"] = previous.get("podIPs") or [objects.PodIp(ip=previous["podIP"])]
    status["startTime"] = previous.get("startTime") or now
    status["qosClass"] = previous.get("qosClass") or resources.qos_class_from_pod(pod.get("spec", {}))
    return status


def waiting_status(
    container: objects.Container, previous: objects.ContainerStatus | None, reason: str, message: str | None
) -> objects.ContainerStatus:
    """A container that has not started, keeping what its previous status knew (restarts, last state)."""
    waiting = objects.ContainerStateWaiting(reason=reason)
    if message:
        waiting["message"] = message
    return objects.ContainerStatus(
        name=container.get("name", ""),
        state=objects.ContainerState(waiting=waiting),
        lastState=(previous or {}).get("lastState", objects.ContainerState()),
        ready=False,
        restartCount=(previous or {}).get("restartCount", 0),
        image=container.get("image", ""),
        imageID="",
        started=False,
    )
