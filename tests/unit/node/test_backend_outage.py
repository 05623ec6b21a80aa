"""A backend outage as the keeper lives it (one probe per ``status_once``, fixed clock): Ready and the Lease stay,
BackendReachable and acinode's NoSchedule taint follow the backend with hysteresis, Events tell the VirtualNode,
and only an unusable configuration makes the node NotReady."""

from __future__ import annotations

from typing import Any

import pytest
from node_builders import NODES, MakeKeeper, fast_settings, lease_path, node_path, vn_status_path

from acinode import errors, settings
from acinode.mapping import node as node_mapping
from acinode.runtime import virtualnode as runtime
from fakes.fake_backend import FakeBackendProbe
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube

EVENTS = "/api/v1/namespaces/default/events"
BACKEND_TAINT = {"key": "acinode.dev/backend-unavailable", "effect": "NoSchedule"}
PROVIDER_TAINT = {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}
ADMIN_TAINT = {"key": "example.com/maintenance", "value": "soon", "effect": "NoSchedule"}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    assert obj is not None
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def taints(kube: FakeKube) -> list[dict[str, Any]]:
    """The Node's taints, in key order (others' taints come first in a drift patch)."""
    node = kube.stored(node_path())
    assert node is not None
    return sorted(node["spec"].get("taints") or [], key=lambda t: str(t["key"]))


def events(kube: FakeKube) -> list[tuple[str, str]]:
    return [(c.body["reason"], c.body["type"]) for c in kube.calls_to("POST", EVENTS)]


def vn(kube: FakeKube) -> dict[str, Any] | None:
    return kube.stored(vn_status_path().removesuffix("/status"))


async def probes(keeper: Any, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        clock.advance(10)
        await keeper.status_once()


async def test_an_outage_taints_the_node_after_three_probes_and_recovery_removes_it_keeping_others_taints(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    node = kube.stored(node_path())
    assert node is not None
    kube.put(NODES, node | {"spec": {"taints": [*node["spec"]["taints"], ADMIN_TAINT]}})  # an admin's taint
    probe.fail(errors.BackendUnavailableError("ARM did not answer within 10s"))
    await probes(keeper, clock, 2)
    assert BACKEND_TAINT not in taints(kube)  # two failed probes: not yet
    assert condition(kube.stored(node_path()), "BackendReachable")["status"] == "True"
    await probes(keeper, clock, 1)
    assert taints(kube) == [BACKEND_TAINT, ADMIN_TAINT, PROVIDER_TAINT]
    annotations = kube.stored(node_path())["metadata"]["annotations"]  # type: ignore[index]
    assert "acinode.dev/backend-unavailable:NoSchedule" in annotations[node_mapping.MANAGED_TAINTS_ANNOTATION]
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"
    await probes(keeper, clock, 5)  # the outage lasts: nothing more changes
    assert taints(kube) == [BACKEND_TAINT, ADMIN_TAINT, PROVIDER_TAINT]
    probe.healthy()
    await probes(keeper, clock, 1)
    assert taints(kube) == [ADMIN_TAINT, PROVIDER_TAINT]
    backend = condition(kube.stored(node_path()), "BackendReachable")
    assert (backend["status"], backend["reason"]) == ("True", "BackendReachable")
    assert condition(vn(kube), "BackendReachable")["status"] == "True"


async def test_the_node_and_virtual_node_say_why_with_the_taint_on(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    probe.fail(errors.AuthenticationError("ARM refused the credentials: 401 InvalidAuthenticationToken"))
    await probes(keeper, clock, 3)
    for obj in (kube.stored(node_path()), vn(kube)):
        backend = condition(obj, "BackendReachable")
        assert (backend["status"], backend["reason"]) == ("False", "BackendCredentialsRefused")
        assert "401" in backend["message"]
        assert condition(obj, "Ready")["status"] == "True"
    assert BACKEND_TAINT in taints(kube)


async def test_events_on_the_virtual_node_when_backend_health_flips_only(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    assert events(kube) == [("NodeReady", "Normal")]  # starting → ready; not checked → reachable is no Event
    kube.reset_calls()
    probe.fail(errors.TransientError("503"))
    await probes(keeper, clock, 2)
    assert events(kube) == []
    await probes(keeper, clock, 4)
    assert events(kube) == [("BackendUnreachable", "Warning")]
    probe.fail(errors.PermissionDeniedError("403 AuthorizationFailed"))
    await probes(keeper, clock, 2)
    assert events(kube) == [("BackendUnreachable", "Warning"), ("BackendCredentialsRefused", "Warning")]
    probe.healthy()
    await probes(keeper, clock, 3)
    assert events(kube)[-1] == ("BackendReachable", "Normal")
    assert len(events(kube)) == 3
    (involved,) = {c.body["involvedObject"]["name"] for c in kube.calls_to("POST", EVENTS)}
    assert involved == "vn-1"


async def test_a_throttled_backend_keeps_everything_as_it_is(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    probe.fail(errors.ThrottledError("429", retry_after_seconds=30))
    await probes(keeper, clock, 6)
    assert BACKEND_TAINT not in taints(kube)
    assert condition(kube.stored(node_path()), "BackendReachable")["status"] == "True"
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"


async def test_a_taint_that_cannot_be_written_is_written_on_the_next_probe(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    probe.fail(errors.BackendUnavailableError("no route"))
    await probes(keeper, clock, 2)
    kube.fail(node_path(), errors.ConflictError("409 the node changed"), method="PATCH")
    clock.advance(10)
    with pytest.raises(errors.ConflictError):
        await keeper.status_once()
    assert BACKEND_TAINT not in taints(kube)
    clock.advance(10)
    await keeper.status_once(force=True)  # what the loop does after an error
    assert BACKEND_TAINT in taints(kube)
    assert condition(kube.stored(node_path()), "BackendReachable")["status"] == "False"


async def test_a_restart_during_an_outage_starts_unknown_and_taints_after_the_threshold(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    probe.fail(errors.BackendUnavailableError("no route"))
    keeper = make_keeper()
    await keeper.status_once()
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"
    assert condition(kube.stored(node_path()), "BackendReachable")["status"] == "Unknown"
    assert BACKEND_TAINT not in taints(kube)
    await probes(keeper, clock, 2)
    assert BACKEND_TAINT in taints(kube)


async def test_thresholds_come_from_the_settings(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    base = fast_settings()
    operator_settings = settings.Settings(
        lease=base.lease,
        node=settings.NodeSettings(
            **{
                **base.node.__dict__,
                "backend_unhealthy_after": 5,
                "backend_healthy_after": 2,
            }
        ),
    )
    keeper = make_keeper(operator_settings)
    await keeper.status_once()
    probe.fail(errors.BackendUnavailableError("no route"))
    await probes(keeper, clock, 4)
    assert BACKEND_TAINT not in taints(kube)
    await probes(keeper, clock, 1)
    assert BACKEND_TAINT in taints(kube)
    probe.healthy()
    await probes(keeper, clock, 1)
    assert BACKEND_TAINT in taints(kube)
    await probes(keeper, clock, 1)
    assert BACKEND_TAINT not in taints(kube)


@pytest.mark.parametrize("field", ["backend_unhealthy_after", "backend_healthy_after"])
def test_thresholds_must_be_positive(field: str) -> None:
    broken = settings.Settings(node=settings.NodeSettings(**{field: 0}))
    assert f"node.{field} must be positive, got 0" in settings.validation_problems(broken)


# --- configuration that can never work ---------------------------------------------------------------------------


async def test_an_unusable_configuration_makes_the_node_not_ready_at_once_with_its_reason(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, clock: FakeClock
) -> None:
    keeper = make_keeper()
    await keeper.status_once()
    probe.fail(errors.ConfigurationError("Azure settings unusable: secret aci-token has no key token"))
    clock.advance(10)
    await keeper.status_once()  # one probe is enough: nothing will ever run
    for obj in (kube.stored(node_path()), vn(kube)):
        ready = condition(obj, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidConfiguration")
        assert "has no key token" in ready["message"]
        assert condition(obj, "BackendReachable")["status"] == "Unknown"
    assert BACKEND_TAINT not in taints(kube)  # NotReady keeps pods off already (the not-ready taint)
    await keeper.lease_once()
    assert kube.stored(lease_path()) is not None  # the operator is alive and owns the node all the same


async def test_the_runtimes_switchable_probe_keeps_the_node_not_ready_until_the_backend_is_open(
    kube: FakeKube, make_keeper: MakeKeeper, clock: FakeClock
) -> None:
    switchable = runtime.SwitchableProbe()  # what VirtualNodeRuntime gives the keeper
    keeper = make_keeper(probe=switchable)
    for _ in range(5):
        clock.advance(10)
        await keeper.status_once()
    assert not keeper.readiness.ready
    assert condition(kube.stored(node_path()), "Ready")["reason"] == "InvalidConfiguration"
    switchable.current = FakeBackendProbe()  # type: ignore[assignment]
    clock.advance(10)
    await keeper.status_once()
    assert condition(kube.stored(node_path()), "Ready")["status"] == "True"
    assert condition(kube.stored(node_path()), "BackendReachable")["status"] == "True"
