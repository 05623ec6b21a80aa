"""One iteration of each of the keeper's loops, on fakes and a fixed clock: register, status, lease and report."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from node_builders import (
    IDENTITY,
    LEASES,
    NODES,
    MakeKeeper,
    fast_settings,
    lease_path,
    node_path,
    virtual_node,
    vn_status_path,
)

from acinode import errors
from acinode.kube import resources
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from acinode.node import heartbeat
from fakes.fake_backend import FakeBackendProbe
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube

NODE_STATUS = f"{NODES}/vn-1/status"


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    assert obj is not None
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def verbs(kube: FakeKube) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in kube.calls]


# --- register_once ----------------------------------------------------------------------------------------------


async def test_register_once_creates_the_node_and_learns_its_uid(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    keeper = make_keeper()
    await keeper.register_once()
    node = kube.stored(node_path())
    assert node is not None
    assert keeper.node_uid == node["metadata"]["uid"]
    assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == "vn-uid"
    assert keeper.conditions == []


async def test_register_once_adopts_an_existing_node_and_its_conditions(
    kube: FakeKube, make_keeper: MakeKeeper, config: virtualnode.VirtualNodeConfig
) -> None:
    earlier = node_mapping.node_conditions(heartbeat.READY, FakeClock().now())
    existing = node_mapping.node_from_virtual_node(config, IDENTITY, "vn-uid") | {
        "status": {"conditions": earlier}
    }
    uid = kube.put(NODES, existing)["metadata"]["uid"]
    keeper = make_keeper()
    await keeper.register_once()
    assert verbs(kube) == [("GET", node_path())]
    assert (keeper.node_uid, keeper.conditions) == (uid, earlier)


# --- status_once ------------------------------------------------------------------------------------------------


EVENTS = "/api/v1/namespaces/default/events"


async def test_the_first_status_registers_patches_and_reports(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    assert verbs(kube) == [
        ("GET", node_path()),
        ("GET", resources.VIRTUALNODES),  # is this VirtualNode the first to claim the name?
        ("POST", NODES),
        ("POST", EVENTS),  # the readiness change, as an Event on the VirtualNode
        ("PATCH", NODE_STATUS),
        ("PATCH", vn_status_path()),
    ]
    assert kube.calls[4].patch_type == "strategic"
    assert kube.calls[4].body["metadata"] == {"uid": keeper.node_uid}  # only this Node's status
    assert kube.calls[5].patch_type == "merge"
    node = kube.stored(node_path())
    assert node is not None
    assert node["status"]["capacity"] == {"cpu": "800", "memory": "4Ti", "pods": "1000"}
    assert condition(node, "Ready") | {"message": ""} == {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "",
        "lastHeartbeatTime": clock.stamp(),
        "lastTransitionTime": clock.stamp(),
    }
    assert keeper.readiness == heartbeat.READY
    assert keeper.conditions == node["status"]["conditions"]
    status = kube.stored(vn_status_path().removesuffix("/status"))
    assert status is not None
    assert status["status"]["observedGeneration"] == 1
    assert status["status"]["nodeName"] == "vn-1"
    assert [(c["type"], c["status"]) for c in status["status"]["conditions"]] == [
        ("Ready", "True"),
        ("Registered", "True"),
        ("BackendReachable", "True"),
    ]


@pytest.mark.parametrize(
    ("advance", "force", "probe_error", "node_patches", "reports"),
    [
        pytest.param(0.0, False, None, 0, 0, id="nothing-changed"),
        pytest.param(0.0, True, None, 1, 0, id="forced"),
        pytest.param(59.9, False, None, 0, 0, id="interval-not-yet-elapsed"),
        pytest.param(60.0, False, None, 1, 0, id="interval-elapsed"),
        pytest.param(1.0, False, errors.ConfigurationError("no Secret"), 1, 1, id="readiness-changed"),
        pytest.param(1.0, False, errors.BackendUnavailableError("dns"), 0, 0, id="one-failure-is-no-change"),
        pytest.param(1.0, False, errors.ThrottledError("429", 5.0), 0, 0, id="throttled-is-no-change"),
    ],
)
async def test_node_status_is_patched_on_change_force_or_interval_only(
    *,
    kube: FakeKube,
    make_keeper: MakeKeeper,
    probe: FakeBackendProbe,
    clock: FakeClock,
    advance: float,
    force: bool,
    probe_error: errors.AcinodeError | None,
    node_patches: int,
    reports: int,
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    kube.reset_calls()
    clock.advance(advance)
    if probe_error is not None:
        probe.fail(probe_error)
    await keeper.status_once(force=force)
    assert kube.count("PATCH", NODE_STATUS) == node_patches
    assert kube.count("PATCH", vn_status_path()) == reports
    assert kube.count() - kube.count("POST", EVENTS) == node_patches + reports
    assert probe.checks == 2


async def test_a_periodic_patch_moves_the_heartbeat_but_not_the_transition(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    first = clock.stamp()
    clock.advance(60)
    await keeper.status_once()
    ready = condition(kube.stored(node_path()), "Ready")
    assert (ready["lastHeartbeatTime"], ready["lastTransitionTime"]) == (clock.stamp(), first)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(errors.AuthenticationError("token expired"), "BackendCredentialsRefused", id="auth"),
        pytest.param(errors.PermissionDeniedError("no role"), "BackendCredentialsRefused", id="perm"),
        pytest.param(errors.BackendUnavailableError("no route"), "BackendUnreachable", id="unreachable"),
        pytest.param(errors.TransientError("503"), "BackendUnreachable", id="transient"),
    ],
)
async def test_backend_failures_keep_the_node_ready_and_say_why_on_the_backend_condition(
    *,
    kube: FakeKube,
    make_keeper: MakeKeeper,
    probe: FakeBackendProbe,
    clock: FakeClock,
    error: errors.AcinodeError,
    reason: str,
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    probe.fail(error)
    for _ in range(3):  # backend_unhealthy_after
        clock.advance(10)
        await keeper.status_once()
    node = kube.stored(node_path())
    ready = condition(node, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    backend = condition(node, "BackendReachable")
    assert (backend["status"], backend["reason"], backend["message"]) == ("False", reason, str(error))
    vn = kube.stored(vn_status_path().removesuffix("/status"))
    assert condition(vn, "Ready")["status"] == "True"
    assert condition(vn, "Registered")["status"] == "True"
    assert (condition(vn, "BackendReachable")["status"], condition(vn, "BackendReachable")["reason"]) == (
        "False",
        reason,
    )


async def test_a_throttled_backend_keeps_the_node_ready(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe
) -> None:
    probe.fail(errors.ThrottledError("429", retry_after_seconds=5))
    keeper = make_keeper()
    await keeper.status_once()
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"
    assert keeper.readiness.ready


async def test_a_deleted_node_is_registered_again(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    old_uid = keeper.node_uid
    kube.remove(node_path())
    kube.reset_calls()
    clock.advance(5)
    await keeper.status_once(force=True)
    assert verbs(kube) == [
        ("PATCH", NODE_STATUS),  # 404
        ("GET", node_path()),
        ("GET", resources.VIRTUALNODES),
        ("POST", NODES),
        ("PATCH", NODE_STATUS),
    ]
    node = kube.stored(node_path())
    assert node is not None
    assert keeper.node_uid == node["metadata"]["uid"] != old_uid
    assert condition(node, "Ready")["lastTransitionTime"] == clock.stamp()  # a new Node starts afresh


async def test_a_deleted_node_goes_unnoticed_until_the_status_is_due_or_poked(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    kube.remove(node_path())
    await keeper.status_once()
    assert kube.stored(node_path()) is None  # the Node watch pokes the keeper (handlers/nodes.py)
    clock.advance(60)
    await keeper.status_once()
    assert kube.stored(node_path()) is not None


async def test_status_errors_surface_and_the_next_forced_call_retries(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    keeper = make_keeper()
    kube.fail(NODE_STATUS, errors.TransientError("503"), method="PATCH")
    with pytest.raises(errors.TransientError):
        await keeper.status_once()
    assert keeper.node_uid is not None  # registration stuck
    await keeper.status_once(force=True)
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"


# --- lease_once -------------------------------------------------------------------------------------------------


async def test_no_lease_before_the_node_is_ours_and_one_as_soon_as_it_is(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    keeper = make_keeper()
    await keeper.lease_once()
    assert kube.calls == []
    await keeper.register_once()
    await keeper.lease_once()  # registered, not probed yet: the operator is alive and owns the node
    assert kube.stored(lease_path()) is not None
    assert keeper.last_renewal is not None


async def test_a_ready_node_renews_its_lease(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    await keeper.lease_once()
    lease = kube.stored(lease_path())
    assert lease is not None
    assert lease["metadata"]["ownerReferences"][0]["uid"] == keeper.node_uid
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["spec"]["renewTime"] == "2025-01-01T12:00:00.000000Z"
    assert keeper.last_renewal == clock.monotonic()
    clock.advance(10)
    kube.reset_calls()
    await keeper.lease_once()
    assert verbs(kube) == [("PATCH", lease_path())]
    assert keeper.last_renewal == clock.monotonic()


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(errors.BackendUnavailableError("no route"), id="unreachable"),
        pytest.param(errors.AuthenticationError("expired"), id="credentials-refused"),
        pytest.param(errors.TransientError("503"), id="5xx"),
        pytest.param(errors.ConfigurationError("no Secret"), id="configuration"),
    ],
)
async def test_the_lease_is_renewed_whatever_the_backend_does(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock, error: Exception
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    await keeper.lease_once()
    probe.fail(error)
    for _ in range(5):
        clock.advance(10)
        await keeper.status_once()
        kube.reset_calls()
        await keeper.lease_once()
        assert verbs(kube) == [("PATCH", lease_path())]
        assert keeper.last_renewal == clock.monotonic()
    lease = kube.stored(lease_path())
    assert lease is not None
    assert lease["spec"]["renewTime"] == clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_lease_errors_surface(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    kube.fail(LEASES, errors.NotFoundError("404 namespaces kube-node-lease not found"), method="POST")
    with pytest.raises(errors.NotFoundError):
        await keeper.lease_once()
    assert keeper.last_renewal is None


# --- report_once ------------------------------------------------------------------------------------------------


async def test_the_virtual_node_status_is_reported_only_when_it_changes(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.report_once()
    await keeper.report_once()
    clock.advance(30)
    await keeper.report_once()
    assert kube.count("PATCH", vn_status_path()) == 1


async def test_before_registration_the_virtual_node_is_reported_not_registered(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.report_once()
    (call,) = kube.calls
    assert call.body == {
        "status": {
            "observedGeneration": 1,
            "nodeName": "vn-1",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "KubeletNotReady",
                    "message": "acinode is starting",
                    "lastTransitionTime": clock.stamp(),
                },
                {
                    "type": "Registered",
                    "status": "False",
                    "reason": "NodeNotRegistered",
                    "message": "the Node is not registered yet",
                    "lastTransitionTime": clock.stamp(),
                },
                {
                    "type": "BackendReachable",
                    "status": "Unknown",
                    "reason": "BackendNotChecked",
                    "message": "the backend has not been checked yet",
                    "lastTransitionTime": clock.stamp(),
                },
            ],
        }
    }


async def test_reported_conditions_keep_their_transition_time_unless_their_status_changes(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    start = clock.stamp()
    probe.fail(errors.BackendUnavailableError("no route"))
    for _ in range(3):
        clock.advance(10)
        await keeper.status_once()
    lost = clock.stamp()
    clock.advance(10)
    probe.fail(errors.AuthenticationError("expired"))  # reason changes, statuses do not
    await keeper.status_once()
    vn = kube.stored(vn_status_path().removesuffix("/status"))
    assert kube.count("PATCH", vn_status_path()) == 3
    assert condition(vn, "Ready")["lastTransitionTime"] == start
    assert condition(vn, "Registered")["lastTransitionTime"] == start
    assert condition(vn, "BackendReachable")["lastTransitionTime"] == lost
    assert condition(vn, "BackendReachable")["reason"] == "BackendCredentialsRefused"


async def test_a_new_generation_is_reported(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    keeper.update_config(virtualnode.virtual_node_config_from_resource(virtual_node(generation=2)))
    await keeper.report_once()
    vn = kube.stored(vn_status_path().removesuffix("/status"))
    assert vn is not None
    assert vn["status"]["observedGeneration"] == 2


async def test_a_failed_report_is_sent_again(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    keeper = make_keeper()
    kube.fail(vn_status_path(), errors.TransientError("503"))
    with pytest.raises(errors.TransientError):
        await keeper.report_once()
    await keeper.report_once()
    await keeper.report_once()
    assert kube.count("PATCH", vn_status_path()) == 2


# --- timeouts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "method"),
    [
        pytest.param(node_path(), "GET", id="registration"),
        pytest.param(NODE_STATUS, "PATCH", id="node-status"),
        pytest.param(vn_status_path(), "PATCH", id="report"),
    ],
)
async def test_a_hanging_api_call_times_out(
    kube: FakeKube, make_keeper: MakeKeeper, held: str, method: str
) -> None:
    keeper = make_keeper(fast_settings(api_timeout=0.05))
    kube.hold(held, method=method)
    with pytest.raises(TimeoutError):
        await keeper.status_once()


async def test_a_hanging_lease_renewal_times_out(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    keeper = make_keeper(fast_settings(api_timeout=0.05))
    await keeper.status_once()
    kube.hold(lease_path())
    with pytest.raises(TimeoutError):
        await keeper.lease_once()


async def test_a_hanging_backend_probe_is_a_failed_probe_and_keeps_the_node_ready(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe
) -> None:
    keeper = make_keeper(fast_settings(api_timeout=0.05))
    await keeper.status_once()
    probe.hold()
    for _ in range(3):
        await asyncio.wait_for(keeper.status_once(), 1)
    assert keeper.readiness.ready
    assert (keeper.backend.health.reachable, keeper.backend.health.reason) == (False, "BackendUnreachable")
    node = kube.stored(node_path())
    assert condition(node, "Ready")["status"] == "True"
    assert condition(node, "BackendReachable")["status"] == "False"
