"""Statuses for failures before a group runs: refused spec, image pull, quota, and a vanished group."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import NOW, container, pod

from acinode import errors
from acinode.mapping import failures

pytestmark = pytest.mark.timeout(2)

ERROR = errors.UnsupportedPodSpecError(
    [
        errors.FieldProblem("spec.hostNetwork", "no host network"),
        errors.FieldProblem("spec.volumes[0].hostPath", "no host"),
    ]
)


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


@pytest.mark.parametrize(
    ("policy", "phase"), [("Always", "Pending"), ("OnFailure", "Pending"), ("Never", "Failed")]
)
def test_mapping_failure(policy: str, phase: str) -> None:
    status: dict[str, Any] = failures.pod_status_for_mapping_failure(
        pod(restartPolicy=policy), ERROR, now=NOW
    )
    assert (status["phase"], status["reason"]) == (phase, "ProviderFailed")
    assert "spec.hostNetwork: no host network" in status["message"]
    assert "spec.volumes[0].hostPath: no host" in status["message"]
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    assert _conditions(status)["Ready"] == "False"
    assert _conditions(status)["PodScheduled"] == "True"


@pytest.mark.parametrize(("backing_off", "reason"), [(False, "ErrImagePull"), (True, "ImagePullBackOff")])
def test_image_pull_failure(backing_off: bool, reason: str) -> None:
    the_pod = pod(container("app", image="shop.azurecr.io/web:1"), container("log", image="fluent-bit"))
    status: dict[str, Any] = failures.pod_status_for_image_pull_failure(
        the_pod,
        message="The image is not accessible",
        now=NOW,
        image="shop.azurecr.io/web:1",
        backing_off=backing_off,
    )
    assert status["phase"] == "Pending"
    assert "reason" not in status
    app, log = status["containerStatuses"]
    assert app["state"] == {"waiting": {"reason": reason, "message": "The image is not accessible"}}
    assert log["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_quota_failure() -> None:
    status: dict[str, Any] = failures.pod_status_for_quota_failure(
        pod(), code="ContainerGroupQuotaReached", message="quota 'StandardCores' exceeded", now=NOW
    )
    assert (status["phase"], status["reason"], status["message"]) == (
        "Pending",
        "ContainerGroupQuotaReached",
        "quota 'StandardCores' exceeded",
    )


def test_lost_group() -> None:
    previous = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "state": {"running": {"startedAt": "2024-05-01T11:00:00Z"}},
                "ready": True,
                "containerID": "aci://1",
            },
            {"name": "job", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}, "ready": False},
        ],
    }
    status: dict[str, Any] = failures.pod_status_for_lost_group(
        pod(container("app"), container("job"), status=previous, restartPolicy="Never"), now=NOW
    )
    assert (status["phase"], status["reason"]) == ("Failed", "ContainerGroupLost")
    app, job = status["containerStatuses"]
    assert app["state"]["terminated"]["exitCode"] == 137
    assert app["state"]["terminated"]["startedAt"] == "2024-05-01T11:00:00Z"
    assert app["ready"] is False
    assert job["state"] == {"terminated": {"exitCode": 0, "reason": "Completed"}}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_failures_never_reopen_a_finished_pod(phase: str) -> None:
    done = {"phase": phase, "conditions": []}
    the_pod = pod(status=done)
    assert failures.pod_status_for_mapping_failure(the_pod, ERROR, now=NOW) == done
    assert failures.pod_status_for_image_pull_failure(the_pod, message="x", now=NOW) == done
    assert failures.pod_status_for_quota_failure(the_pod, code="q", message="x", now=NOW) == done
    assert failures.pod_status_for_lost_group(the_pod, now=NOW) == done


def test_a_running_pod_hit_by_quota_stays_running() -> None:
    the_pod = pod(status={"phase": "Running"})
    assert (
        failures.pod_status_for_quota_failure(the_pod, code="q", message="x", now=NOW)["phase"] == "Running"
    )


def test_deadline_exceeded_fails_the_pod_as_the_kubelet_does() -> None:
    running = {
        "metadata": {"name": "job-x", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], "activeDeadlineSeconds": 5},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.4",
            "startTime": "2025-01-01T11:00:00Z",
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2025-01-01T11:00:00Z"}},
                }
            ],
        },
    }
    result = failures.pod_status_for_deadline_exceeded(running, now=NOW)  # type: ignore[arg-type]
    assert (result["phase"], result["reason"]) == ("Failed", "DeadlineExceeded")
    assert result["message"] == "Pod was active on the node longer than the specified deadline"
    terminated = result["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["startedAt"]) == (
        137,
        "Error",
        "2025-01-01T11:00:00Z",
    )
    assert result["podIP"] == "10.0.0.4" and result["startTime"] == "2025-01-01T11:00:00Z"
    assert failures.pod_status_for_terminated_pod({**running, "status": result}, now=NOW) == result  # type: ignore[arg-type]
