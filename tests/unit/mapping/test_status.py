"""Container group → pod status, as a kubelet would report it, and never backwards."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import EARLIER_TEXT, NOW, NOW_TEXT, aci_group, container, pod

from acinode.mapping import objects, status

pytestmark = pytest.mark.timeout(2)

T0, T1, T2 = "2024-05-01T11:59:10Z", "2024-05-01T11:59:20Z", "2024-05-01T11:59:30Z"


def state(
    kind: str,
    start: str | None = T1,
    exit_code: int | None = None,
    finish: str | None = None,
    detail: str = "",
) -> dict[str, Any]:
    result: dict[str, Any] = {"state": kind, "detailStatus": detail}
    if start:
        result["startTime"] = start
    if exit_code is not None:
        result["exitCode"] = exit_code
    if finish:
        result["finishTime"] = finish
    return result


def view(
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None = None,
    restarts: int = 0,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"restartCount": restarts, "events": events or []}
    if current:
        result["currentState"] = current
    if previous:
        result["previousState"] = previous
    return result


def aci(
    containers: dict[str, dict[str, Any] | None],
    *,
    provisioning: str = "Succeeded",
    group_state: str | None = "Running",
    ip: str | None = "10.241.0.4",
    init: dict[str, dict[str, Any] | None] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Any:
    def entry(name: str, instance: dict[str, Any] | None) -> dict[str, Any]:
        props: dict[str, Any] = {
            "image": "nginx:1.27",
            "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
        }
        if instance is not None:
            props["instanceView"] = instance
        return {"name": name, "properties": props}

    props: dict[str, Any] = {
        "provisioningState": provisioning,
        "osType": "Linux",
        "containers": [entry(name, instance) for name, instance in containers.items()],
    }
    if init:
        props["initContainers"] = [entry(name, instance) for name, instance in init.items()]
    if group_state is not None:
        props["instanceView"] = {"state": group_state, "events": events or []}
    if ip:
        props["ipAddress"] = {"ip": ip, "type": "Private", "ports": []}
    return aci_group(
        {
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/shop-web-0",
            "name": "shop-web-0",
            "properties": props,
        }
    )


def _pod(
    *names: str, previous: dict[str, Any] | None = None, init: tuple[str, ...] = (), **spec: Any
) -> objects.Pod:
    spec_init = {"initContainers": [container(n) for n in init]} if init else {}
    return pod(*[container(n) for n in names or ("app",)], status=previous, **spec_init, **spec)


def _status(group: Any, the_pod: objects.Pod) -> dict[str, Any]:
    result: dict[str, Any] = status.pod_status_from_container_group(
        group, the_pod, now=NOW, host_ip="10.240.0.4"
    )
    return result


def _conditions(result: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in result["conditions"]}


def test_a_running_pod() -> None:
    result = _status(aci({"app": view(state("Running"))}), _pod())
    assert result["phase"] == "Running"
    assert result["podIP"] == "10.241.0.4"
    assert result["podIPs"] == [{"ip": "10.241.0.4"}]
    assert result["hostIP"] == "10.240.0.4"
    assert result["startTime"] == NOW_TEXT
    assert result["qosClass"] == "BestEffort"
    assert _conditions(result) == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    [app] = result["containerStatuses"]
    assert app["state"] == {"running": {"startedAt": T1}}
    assert (app["ready"], app["started"], app["restartCount"], app["image"]) == (True, True, 0, "nginx:1.27")
    assert app["containerID"].startswith("aci://")
    assert app["lastState"] == {}


@pytest.mark.parametrize(
    ("policy", "current", "phase", "terminated"),
    [
        (
            "Never",
            state("Terminated", exit_code=0, finish=T2, detail="Completed"),
            "Succeeded",
            {"exitCode": 0, "reason": "Completed"},
        ),
        (
            "Never",
            state("Terminated", exit_code=3, finish=T2, detail="Error"),
            "Failed",
            {"exitCode": 3, "reason": "Error"},
        ),
        (
            "Never",
            state("Terminated", exit_code=137, finish=T2, detail="OOMKilled"),
            "Failed",
            {"exitCode": 137, "reason": "OOMKilled"},
        ),
        (
            "Never",
            state("Terminated", exit_code=2, finish=T2, detail="Killed by the platform"),
            "Failed",
            {"exitCode": 2, "reason": "Error", "message": "Killed by the platform"},
        ),
        (
            "OnFailure",
            state("Terminated", exit_code=0, finish=T2),
            "Succeeded",
            {"exitCode": 0, "reason": "Completed"},
        ),
        # OnFailure and Always restart the container: the pod is still Running
        (
            "OnFailure",
            state("Terminated", exit_code=1, finish=T2),
            "Running",
            {"exitCode": 1, "reason": "Error"},
        ),
        (
            "Always",
            state("Terminated", exit_code=0, finish=T2),
            "Running",
            {"exitCode": 0, "reason": "Completed"},
        ),
    ],
)
def test_exits(policy: str, current: dict[str, Any], phase: str, terminated: dict[str, Any]) -> None:
    result = _status(aci({"app": view(current)}, group_state="Stopped"), _pod(restartPolicy=policy))
    assert result["phase"] == phase
    got = result["containerStatuses"][0]["state"]["terminated"]
    assert {k: v for k, v in got.items() if k in ("exitCode", "reason", "message")} == terminated
    assert (got["startedAt"], got["finishedAt"]) == (T1, T2)
    if phase in ("Succeeded", "Failed"):
        assert _conditions(result)["Ready"] == "False"
        assert next(c for c in result["conditions"] if c["type"] == "Ready")["reason"] == "PodCompleted"


@pytest.mark.parametrize(
    ("provisioning", "group_state", "instance"),
    [
        ("Pending", None, None),
        ("Creating", "Pending", view(state("Waiting", start=None, detail=""))),
        ("Succeeded", None, None),  # a list entry: no instance view at all
    ],
)
def test_a_pod_still_starting(
    provisioning: str, group_state: str | None, instance: dict[str, Any] | None
) -> None:
    result = _status(
        aci({"app": instance}, provisioning=provisioning, group_state=group_state, ip=None), _pod()
    )
    assert result["phase"] == "Pending"
    assert result["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert _conditions(result)["Ready"] == "False"
    assert "podIP" not in result


def test_a_list_entry_keeps_what_was_known() -> None:
    running = _status(aci({"app": view(state("Running"))}), _pod())
    later = _status(aci({"app": None}, group_state=None), _pod(previous=running))
    assert later["phase"] == "Running"
    assert later["containerStatuses"] == running["containerStatuses"]
    assert later["conditions"] == running["conditions"]


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        (
            [
                {
                    "name": "Pulling",
                    "message": 'pulling image "x"',
                    "count": 1,
                    "firstTimestamp": T0,
                    "lastTimestamp": T0,
                    "type": "Normal",
                },
                {
                    "name": "Failed",
                    "message": 'Failed to pull image "x": not found',
                    "count": 1,
                    "firstTimestamp": T1,
                    "lastTimestamp": T1,
                    "type": "Warning",
                },
            ],
            "ErrImagePull",
        ),
        (
            [
                {
                    "name": "Failed",
                    "message": 'Failed to pull image "x"',
                    "count": 2,
                    "firstTimestamp": T0,
                    "lastTimestamp": T0,
                    "type": "Warning",
                },
                {
                    "name": "BackOff",
                    "message": 'Back-off pulling image "x"',
                    "count": 3,
                    "firstTimestamp": T1,
                    "lastTimestamp": T2,
                    "type": "Normal",
                },
            ],
            "ImagePullBackOff",
        ),
    ],
)
def test_image_pull_failures(events: list[dict[str, Any]], reason: str) -> None:
    group = aci(
        {"app": view(state("Waiting", start=None), events=events)},
        provisioning="Failed",
        group_state="Pending",
    )
    result = _status(group, _pod(restartPolicy="Never"))
    assert result["phase"] == "Pending"
    assert "reason" not in result
    waiting = result["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == reason
    assert "pull" in waiting["message"].lower()


@pytest.mark.parametrize(("policy", "phase"), [("Always", "Pending"), ("Never", "Failed")])
def test_provisioning_failure(policy: str, phase: str) -> None:
    events = [
        {
            "name": "InsufficientCapacity",
            "message": "The requested resource is not available",
            "type": "Warning",
            "count": 1,
            "firstTimestamp": T1,
            "lastTimestamp": T1,
        }
    ]
    group = aci({"app": None}, provisioning="Failed", group_state="Pending", events=events, ip=None)
    result = _status(group, _pod(restartPolicy=policy))
    assert (result["phase"], result["reason"]) == (phase, "ProviderFailed")
    assert "not available" in result["message"]


def test_crash_loop() -> None:
    previous = state("Terminated", start=T0, exit_code=1, finish=T1, detail="Error")
    group = aci({"app": view(state("Waiting", start=None), previous=previous, restarts=2)})
    result = _status(group, _pod())
    [app] = result["containerStatuses"]
    assert result["phase"] == "Running"
    assert app["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert app["lastState"]["terminated"]["exitCode"] == 1
    assert app["restartCount"] == 2
    assert app["ready"] is False


def test_waiting_reasons_aci_names_are_kept() -> None:
    group = aci(
        {"app": view(state("Waiting", start=None, detail="CrashLoopBackOff: back-off 10s restarting"))}
    )
    waiting = _status(group, _pod())["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}


def test_container_ids_change_with_restarts_and_restart_counts_never_fall() -> None:
    first = _status(aci({"app": view(state("Running"), restarts=1)}), _pod())
    second = _status(aci({"app": view(state("Running"), restarts=2)}), _pod())
    assert first["containerStatuses"][0]["containerID"] != second["containerStatuses"][0]["containerID"]
    recreated = _status(aci({"app": view(state("Running"), restarts=0)}), _pod(previous=second))
    assert recreated["containerStatuses"][0]["restartCount"] == 2


def test_init_containers() -> None:
    running_init = aci({"app": view(state("Waiting", start=None))}, init={"migrate": view(state("Running"))})
    result = _status(running_init, _pod(init=("migrate",)))
    assert result["phase"] == "Pending"
    initialized = next(c for c in result["conditions"] if c["type"] == "Initialized")
    assert (initialized["status"], initialized["reason"]) == ("False", "ContainersNotInitialized")
    assert initialized["message"] == "containers with incomplete status: [migrate]"
    assert result["initContainerStatuses"][0]["state"] == {"running": {"startedAt": T1}}
    assert result["initContainerStatuses"][0]["ready"] is False

    done = aci(
        {"app": view(state("Running", start=T2))},
        init={"migrate": view(state("Terminated", start=T0, exit_code=0, finish=T1))},
    )
    result = _status(done, _pod(init=("migrate",)))
    assert result["phase"] == "Running"
    assert _conditions(result)["Initialized"] == "True"
    assert result["initContainerStatuses"][0]["ready"] is True
    assert result["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_a_failed_init_container_fails_a_never_pod() -> None:
    group = aci({"app": None}, init={"migrate": view(state("Terminated", start=T0, exit_code=1, finish=T1))})
    assert _status(group, _pod(init=("migrate",), restartPolicy="Never"))["phase"] == "Failed"
    assert _status(group, _pod(init=("migrate",), restartPolicy="Always"))["phase"] == "Pending"


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_pod_never_changes(phase: str) -> None:
    finished = {"phase": phase, "containerStatuses": [{"name": "app"}], "conditions": []}
    group = aci({"app": view(state("Running"))}, provisioning="Succeeded")
    assert _status(group, _pod(previous=finished)) == finished


def test_a_running_pod_does_not_return_to_pending() -> None:
    running = _status(aci({"app": view(state("Running"))}), _pod())
    starting_again = aci({"app": view(state("Waiting", start=None))}, provisioning="Creating")
    assert _status(starting_again, _pod(previous=running))["phase"] == "Running"


def test_transition_times_move_only_on_change() -> None:
    previous = {
        "phase": "Running",
        "startTime": EARLIER_TEXT,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": EARLIER_TEXT},
            {"type": "Ready", "status": "False", "lastTransitionTime": EARLIER_TEXT},
            {"type": "DisruptionTarget", "status": "False", "lastTransitionTime": EARLIER_TEXT},
        ],
    }
    result = _status(aci({"app": view(state("Running"))}), _pod(previous=previous))
    times = {c["type"]: c["lastTransitionTime"] for c in result["conditions"]}
    assert times["PodScheduled"] == EARLIER_TEXT
    assert times["Ready"] == NOW_TEXT
    assert times["DisruptionTarget"] == EARLIER_TEXT
    assert result["startTime"] == EARLIER_TEXT


@pytest.mark.parametrize(
    ("gate_status", "ready", "reason"),
    [
        (None, "False", "ReadinessGatesNotReady"),
        ("False", "False", "ReadinessGatesNotReady"),
        ("True", "True", None),
    ],
)
def test_readiness_gates(gate_status: str | None, ready: str, reason: str | None) -> None:
    conditions = [] if gate_status is None else [{"type": "example.com/lb", "status": gate_status}]
    the_pod = _pod(
        previous={"phase": "Pending", "conditions": conditions},
        readinessGates=[{"conditionType": "example.com/lb"}],
    )
    result = _status(aci({"app": view(state("Running"))}), the_pod)
    condition = next(c for c in result["conditions"] if c["type"] == "Ready")
    assert (condition["status"], condition.get("reason")) == (ready, reason)


def test_containers_are_matched_by_their_aci_names() -> None:
    group = aci({"a-b-90827a2e56": view(state("Running"))})
    result = _status(group, _pod("a--b"))
    assert result["containerStatuses"][0]["name"] == "a--b"
    assert "running" in result["containerStatuses"][0]["state"]


def test_a_running_pod_whose_group_has_no_ip_reports_the_node_address() -> None:
    """Public mode, no ports: ACI gives the group no IP; the pod reports the host IP as a hostNetwork pod does."""
    result = _status(aci({"app": view(state("Running"))}, ip=None), _pod())
    assert (result["phase"], result["podIP"], result["podIPs"]) == (
        "Running",
        "10.240.0.4",
        [{"ip": "10.240.0.4"}],
    )


def test_a_pending_pod_without_a_group_ip_has_no_pod_ip() -> None:
    result = _status(
        aci({"app": view(state("Waiting", detail="Pulling"))}, ip=None, group_state="Pending"), _pod()
    )
    assert result["phase"] == "Pending" and "podIP" not in result


@pytest.mark.parametrize(
    ("containers", "group_state", "stopped"),
    [
        ({"app": view(state("Running"))}, "Running", False),
        ({"app": view(state("Terminated", exit_code=137))}, "Running", True),
        ({"app": view(state("Running"))}, "Stopped", True),
        ({"app": view(state("Terminated", exit_code=137)), "b": view(state("Running"))}, "Running", False),
    ],
)
def test_a_group_is_stopped_when_aci_says_so_or_every_container_ended(
    containers: dict[str, Any], group_state: str, stopped: bool
) -> None:
    assert status.is_group_stopped(aci(containers, group_state=group_state)) is stopped
