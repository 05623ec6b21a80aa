"""Regression (found by the `arm-429-storm` chaos scenario): while ARM throttles the subscription, the client
pauses every request — the backend probe included. A probe that times out behind that pause must not turn the node
NotReady: being throttled is not being down."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from acinode.aci import api
from acinode.kube import resources
from acinode.mapping import virtualnode
from acinode.node import backend, heartbeat, keeper
from fakes.fake_kube import FakeKube

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "node"))
import node_builders


class PausedLimiter:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def paused_for(self) -> float:
        return self.seconds


class PausedApi:
    """``location_usage`` waits behind the client's 429 pause for longer than the probe's timeout."""

    def __init__(self, pause: float) -> None:
        self.limiter = PausedLimiter(pause)

    async def location_usage(self) -> Sequence[Any]:
        await asyncio.sleep(3600)
        return []


async def test_a_probe_held_by_a_throttle_pause_keeps_the_node_ready() -> None:
    probe = backend.UsageProbe(cast(api.AciApi, PausedApi(2.0)), ttl_seconds=30, timeout_seconds=0.05)
    readiness = await heartbeat.probe_readiness(probe)
    assert readiness.ready, readiness


async def test_a_probe_that_times_out_without_throttling_is_an_outage() -> None:
    probe = backend.UsageProbe(cast(api.AciApi, PausedApi(0.0)), ttl_seconds=30, timeout_seconds=0.05)
    readiness = await heartbeat.probe_readiness(probe)
    assert not readiness.ready
    assert readiness.reason == "BackendUnreachable"


async def test_the_keeper_lets_a_throttled_probe_decide_and_stays_ready() -> None:
    """The keeper's own guard used the probe's timeout too, fired first, and said BackendUnreachable."""
    operator_settings = node_builders.fast_settings(api_timeout=0.2)
    kube = FakeKube()
    kube.put(resources.VIRTUALNODES, node_builders.virtual_node())
    config = virtualnode.virtual_node_config_from_resource(node_builders.virtual_node())
    probe = backend.UsageProbe(
        cast(api.AciApi, PausedApi(2.0)),
        ttl_seconds=30,
        timeout_seconds=operator_settings.node.api_timeout_seconds,
    )
    node_keeper = keeper.NodeKeeper(kube, config, node_builders.IDENTITY, probe, operator_settings, "vn-uid")
    await node_keeper.status_once(force=True)
    assert node_keeper.readiness.ready, node_keeper.readiness
