"""Backend health with hysteresis (``heartbeat.BackendHealthTracker``): one failed probe never flips it, a throttled
probe is an answer, an unusable configuration is no backend health at all; and the backend taint that follows it."""

from __future__ import annotations

import datetime

import pytest
from node_builders import IDENTITY, virtual_node

from acinode import errors
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import heartbeat

OK = heartbeat.REACHABLE
DOWN = heartbeat.readiness_from_error(errors.BackendUnavailableError("ARM did not answer within 5s"))
FIVE_XX = heartbeat.readiness_from_error(errors.TransientError("503 ServiceUnavailable"))
REFUSED = heartbeat.readiness_from_error(errors.AuthenticationError("ARM refused the credentials"))
THROTTLED = heartbeat.readiness_from_error(errors.ThrottledError("429", retry_after_seconds=5))
CONFIG = heartbeat.readiness_from_error(errors.ConfigurationError("Azure settings unusable"))

VERDICTS = {"ok": OK, "down": DOWN, "5xx": FIVE_XX, "refused": REFUSED, "429": THROTTLED, "config": CONFIG}
STATUS = {None: "?", True: "T", False: "F"}
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def statuses(sequence: str, unhealthy_after: int = 3, healthy_after: int = 1) -> str:
    """The health's status after each verdict of ``sequence`` (space-separated names): ? unknown, T, F."""
    tracker = heartbeat.BackendHealthTracker(unhealthy_after, healthy_after)
    seen = ""
    for name in sequence.split():
        tracker.observe(VERDICTS[name])
        seen += STATUS[tracker.health.reachable]
    return seen


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        pytest.param("ok", "T", id="first-success-is-healthy"),
        pytest.param("down down", "??", id="unknown-until-the-threshold"),
        pytest.param("down down down", "??F", id="unknown-to-unhealthy-at-the-threshold"),
        pytest.param("ok down", "TT", id="one-failure-never-flips"),
        pytest.param("ok down down ok down down ok", "TTTTTTT", id="interleaved-failures-never-flip"),
        pytest.param("ok down down down", "TTTF", id="three-in-a-row-flip"),
        pytest.param("ok 5xx refused down", "TTTF", id="any-failures-count-together"),
        pytest.param("ok down down 429 down down", "TTTTTT", id="throttled-is-an-answer"),
        pytest.param("ok down down down ok", "TTTFT", id="one-success-recovers"),
        pytest.param("ok down down down 429", "TTTFT", id="a-throttled-answer-recovers"),
        pytest.param("ok down down down ok down", "TTTFTT", id="after-recovery-counting-starts-over"),
        pytest.param("ok down down down config", "TTTF?", id="config-error-is-not-backend-health"),
        pytest.param("config down down", "???", id="config-error-resets-the-count"),
    ],
)
def test_backend_health_follows_the_probes_with_hysteresis(sequence: str, expected: str) -> None:
    assert statuses(sequence) == expected


@pytest.mark.parametrize(
    ("sequence", "unhealthy_after", "healthy_after", "expected"),
    [
        pytest.param("ok down", 1, 1, "TF", id="threshold-one"),
        pytest.param("ok down down down ok ok", 3, 2, "TTTFFT", id="two-successes-to-recover"),
        pytest.param("ok down down down ok down ok ok", 3, 2, "TTTFFFFT", id="successes-must-be-consecutive"),
    ],
)
def test_thresholds_are_settings(
    sequence: str, unhealthy_after: int, healthy_after: int, expected: str
) -> None:
    assert statuses(sequence, unhealthy_after, healthy_after) == expected


def test_unhealthy_health_carries_the_reason_and_message_of_the_failure() -> None:
    tracker = heartbeat.BackendHealthTracker(2, 1)
    for verdict in (OK, REFUSED, REFUSED):
        tracker.observe(verdict)
    assert tracker.health == node_mapping.BackendHealth(
        False, "BackendCredentialsRefused", "ARM refused the credentials"
    )
    assert tracker.unavailable


def test_while_unhealthy_the_reason_follows_the_failures_but_a_new_message_alone_is_no_change() -> None:
    tracker = heartbeat.BackendHealthTracker(2, 1)
    for verdict in (DOWN, DOWN):
        tracker.observe(verdict)
    assert tracker.health.reason == "BackendUnreachable"
    other_text = heartbeat.readiness_from_error(errors.BackendUnavailableError("connection reset"))
    assert not tracker.observe(other_text)
    assert tracker.health.message == DOWN.message
    assert tracker.observe(REFUSED)
    assert (tracker.health.reachable, tracker.health.reason) == (False, "BackendCredentialsRefused")


def test_observe_says_whether_anything_changed() -> None:
    tracker = heartbeat.BackendHealthTracker(3, 1)
    assert [tracker.observe(v) for v in (OK, OK, DOWN, DOWN, DOWN, DOWN, OK, OK)] == [
        True,
        False,
        False,
        False,
        True,
        False,
        True,
        False,
    ]


def test_nothing_is_known_before_the_first_probe() -> None:
    tracker = heartbeat.BackendHealthTracker(3, 1)
    assert tracker.health == heartbeat.BACKEND_NOT_CHECKED
    assert tracker.health.status == "Unknown"
    assert not tracker.unavailable


# --- the taint and the condition (mapping) ----------------------------------------------------------------------

TAINT = {"key": "acinode.dev/backend-unavailable", "effect": "NoSchedule"}


def config(**spec: object) -> virtualnode.VirtualNodeConfig:
    return virtualnode.virtual_node_config_from_resource(virtual_node(**spec))


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="default"),
        pytest.param({"disableDefaultTaint": True}, id="no-provider-taint"),
        pytest.param(
            {"taints": [{"key": "team", "value": "burst", "effect": "NoExecute"}]}, id="spec-taints"
        ),
    ],
)
def test_the_backend_taint_comes_on_top_of_the_others(spec: dict[str, object]) -> None:
    without = node_mapping.node_taints(config(**spec))
    assert TAINT not in without
    assert node_mapping.node_taints(config(**spec), backend_unavailable=True) == [*without, TAINT]


def test_a_spec_taint_of_the_same_key_and_effect_is_not_doubled() -> None:
    spec_taints = [{"key": "acinode.dev/backend-unavailable", "effect": "NoSchedule"}]
    taints = node_mapping.node_taints(config(taints=spec_taints), backend_unavailable=True)
    assert taints.count(TAINT) == 1


def test_the_backend_taint_is_a_managed_taint() -> None:
    node = node_mapping.node_from_virtual_node(config(), IDENTITY, "vn-uid", backend_unavailable=True)
    assert TAINT in node["spec"]["taints"]
    managed = node["metadata"]["annotations"][node_mapping.MANAGED_TAINTS_ANNOTATION].split(",")
    assert "acinode.dev/backend-unavailable:NoSchedule" in managed


@pytest.mark.parametrize(
    ("health", "status"),
    [
        (node_mapping.BackendHealth(True, "BackendReachable", "answered"), "True"),
        (node_mapping.BackendHealth(False, "BackendUnreachable", "hung"), "False"),
        (heartbeat.BACKEND_NOT_CHECKED, "Unknown"),
    ],
)
def test_the_node_condition_says_the_backend_health(health: node_mapping.BackendHealth, status: str) -> None:
    conditions = node_mapping.node_conditions(heartbeat.READY, NOW, (), health)
    backend = next(c for c in conditions if c["type"] == "BackendReachable")
    assert (backend["status"], backend["reason"], backend["message"]) == (
        status,
        health.reason,
        health.message,
    )
    assert next(c for c in conditions if c["type"] == "Ready")["status"] == "True"


def test_without_backend_health_the_node_conditions_are_a_kubelets() -> None:
    conditions = node_mapping.node_conditions(heartbeat.READY, NOW)
    assert "BackendReachable" not in {c["type"] for c in conditions}
