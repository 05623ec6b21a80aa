"""The keeper's loops in real (short) time: cancellable, resilient to failing calls, prompt when poked, and one
node's trouble never delays another node. Tests wait on conditions with timeouts, never on sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from node_builders import (
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
from acinode.mapping import virtualnode
from acinode.node import keeper
from fakes.fake_backend import FakeBackendProbe
from fakes.fake_kube import FakeKube

NODE_STATUS = f"{NODES}/vn-1/status"
SLOW = 30.0
"""An interval no test waits for: anything that happens must have been triggered."""


@contextlib.asynccontextmanager
async def running(*keepers: keeper.NodeKeeper) -> AsyncIterator[None]:
    """Run the keepers' loops for the block, then cancel them and check they ended by cancellation only."""
    tasks = [asyncio.create_task(k.run()) for k in keepers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 0.5)
    for result in results:
        assert isinstance(result, asyncio.CancelledError), f"a loop ended by {result!r}"


def ready_status(kube: FakeKube, name: str = "vn-1") -> str | None:
    node = kube.stored(node_path(name))
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == "Ready"), None)


async def test_run_registers_reports_and_renews_until_cancelled(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=0.02), real_time=True)
    async with running(node_keeper):
        await kube.wait_for_calls(3, "PATCH", lease_path())
        assert ready_status(kube) == "True"
        assert kube.count("PATCH", vn_status_path()) == 1
        assert node_keeper.last_renewal is not None


async def test_run_is_cancelled_promptly_even_inside_a_hanging_call(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    kube.hold(node_path(), method="GET")
    node_keeper = make_keeper(fast_settings(api_timeout=SLOW), real_time=True)
    async with running(node_keeper):
        await kube.wait_for_calls(1, "GET", node_path())


async def test_the_first_lease_does_not_wait_a_renewal_interval(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=SLOW), real_time=True)
    async with running(node_keeper):
        await kube.wait_until(
            lambda: kube.stored(lease_path()) is not None, within=1.0, what="the first lease"
        )


async def test_an_unusable_configuration_keeps_the_node_not_ready_but_its_lease_renewed(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe
) -> None:
    probe.fail(errors.ConfigurationError("Azure settings unusable: no Secret"))
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=0.02), real_time=True)
    async with running(node_keeper):
        await kube.wait_until(lambda: ready_status(kube) == "False", what="Ready=False")
        await kube.wait_until(lambda: kube.stored(lease_path()) is not None, what="the lease, at once")
        node = kube.stored(node_path())
        assert node is not None
        assert taint_keys(node) == ["virtual-kubelet.io/provider"]  # NotReady is enough: no backend taint
        probe.healthy()
        await kube.wait_until(lambda: ready_status(kube) == "True", what="Ready=True")


def taint_keys(node: dict[str, Any] | None) -> list[str]:
    return [t["key"] for t in (node or {}).get("spec", {}).get("taints", [])]


def backend_status(kube: FakeKube) -> str | None:
    node = kube.stored(node_path())
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == "BackendReachable"), None)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(errors.BackendUnavailableError("no route"), id="unreachable"),
        pytest.param(errors.AuthenticationError("expired"), id="credentials-refused"),
    ],
)
async def test_the_lease_goes_on_while_the_backend_is_down_and_the_taint_comes_and_goes(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe, error: Exception
) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=0.01, probe_interval=0.01), real_time=True)
    async with running(node_keeper):
        await kube.wait_for_calls(2, "PATCH", lease_path())
        await kube.wait_until(lambda: backend_status(kube) == "True", what="BackendReachable=True")
        probe.fail(error)
        await kube.wait_until(lambda: backend_status(kube) == "False", what="BackendReachable=False")
        await kube.wait_until(
            lambda: "acinode.dev/backend-unavailable" in taint_keys(kube.stored(node_path())),
            what="the backend taint",
        )
        renewals = kube.count("PATCH", lease_path())
        await kube.wait_for_calls(renewals + 5, "PATCH", lease_path())
        assert ready_status(kube) == "True"
        probe.healthy()
        await kube.wait_until(lambda: backend_status(kube) == "True", what="BackendReachable=True again")
        await kube.wait_until(
            lambda: taint_keys(kube.stored(node_path())) == ["virtual-kubelet.io/provider"],
            what="the backend taint removed",
        )
        assert ready_status(kube) == "True"


def fail_transiently(kube: FakeKube, path: str) -> None:
    kube.fail(path, errors.TransientError("503"), times=3)


def refuse(kube: FakeKube, path: str) -> None:
    kube.fail(path, errors.PermissionDeniedError("403 forbidden"), times=3)


def hang(kube: FakeKube, path: str) -> None:
    kube.hold(path, times=2)  # each call times out


@pytest.mark.parametrize("make_fail", [fail_transiently, refuse, hang])
async def test_failing_calls_do_not_stop_the_loops(
    kube: FakeKube, make_keeper: MakeKeeper, make_fail: Callable[[FakeKube, str], None]
) -> None:
    make_fail(kube, NODE_STATUS)
    make_fail(kube, lease_path())
    node_keeper = make_keeper(
        fast_settings(renew_interval=0.01, probe_interval=0.01, api_timeout=0.05), real_time=True
    )
    async with running(node_keeper):
        await kube.wait_until(lambda: ready_status(kube) == "True", what="the status patch to get through")
        await kube.wait_until(lambda: kube.stored(lease_path()) is not None, what="the lease to get through")
        renewals = kube.count("PATCH", lease_path())
        await kube.wait_for_calls(renewals + 2, "PATCH", lease_path())


async def test_a_poked_keeper_registers_a_deleted_node_at_once(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=SLOW), real_time=True)
    async with running(node_keeper):
        await kube.wait_until(lambda: ready_status(kube) == "True", what="the node")
        old_uid = node_keeper.node_uid
        kube.remove(node_path())
        node_keeper.poke()  # what the Node watch does on DELETED
        await kube.wait_until(lambda: ready_status(kube) == "True", what="the node to come back")
        node = kube.stored(node_path())
        assert node is not None
        assert node_keeper.node_uid == node["metadata"]["uid"] != old_uid


async def test_a_poke_during_a_status_update_is_not_lost(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    gate = kube.hold(NODE_STATUS, method="PATCH", times=1)
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=SLOW), real_time=True)
    async with running(node_keeper):
        await kube.wait_for_calls(1, "PATCH", NODE_STATUS)
        node_keeper.poke()
        gate.set()
        await kube.wait_for_calls(2, "PATCH", NODE_STATUS)


async def test_a_spec_change_is_reported_at_once(kube: FakeKube, make_keeper: MakeKeeper) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=SLOW), real_time=True)
    async with running(node_keeper):
        await kube.wait_for_calls(1, "PATCH", vn_status_path())
        node_keeper.update_config(virtualnode.virtual_node_config_from_resource(virtual_node(generation=2)))

        def observed() -> Any:
            vn = kube.stored(vn_status_path().removesuffix("/status"))
            return vn and vn.get("status", {}).get("observedGeneration") == 2

        await kube.wait_until(observed, what="observedGeneration 2")


async def test_a_lease_that_cannot_be_created_makes_the_status_loop_look_at_once(
    kube: FakeKube, make_keeper: MakeKeeper
) -> None:
    node_keeper = make_keeper(fast_settings(renew_interval=SLOW, probe_interval=SLOW), real_time=True)
    kube.fail(LEASES, errors.NotFoundError("404 namespaces kube-node-lease not found"), method="POST")
    async with running(node_keeper):
        await kube.wait_for_calls(1, "POST", LEASES)
        await kube.wait_for_calls(2, "PATCH", NODE_STATUS)


async def test_one_nodes_hanging_lease_does_not_delay_another_nodes(
    kube: FakeKube, make_keeper: MakeKeeper, probe: FakeBackendProbe
) -> None:
    kube.put(resources.VIRTUALNODES, virtual_node("vn-2"))
    fast = fast_settings(renew_interval=0.01, probe_interval=0.01, api_timeout=SLOW)
    first = make_keeper(fast, real_time=True)
    second = make_keeper(
        fast, real_time=True, config=virtualnode.virtual_node_config_from_resource(virtual_node("vn-2"))
    )
    kube.hold(lease_path("vn-1"))
    async with running(first, second):
        await kube.wait_for_calls(1, path=lease_path("vn-1"))
        await kube.wait_for_calls(5, "PATCH", lease_path("vn-2"))
        assert kube.count(path=lease_path("vn-1")) == 1
        assert ready_status(kube, "vn-1") == ready_status(kube, "vn-2") == "True"
