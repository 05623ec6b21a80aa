"""Two operator replicas peered through a ClusterKopfPeering: the one with the higher priority acts, the other
stands by. Killing the active one lets the standby take over; the two never act at once (the emulator counts one
PUT per pod, no duplicates)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chaos import invariants
from chaos.stack import ChaosStack, Observer, chaos_stack
from support.operator_process import OperatorProcess
from support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

LONG = os.environ.get("ACINODE_CHAOS_LONG") == "1"
PODS = 30 if LONG else 8
TAKEOVER_BUDGET = float(os.environ.get("ACINODE_CHAOS_TAKEOVER_SECONDS", "30"))
"""SIGKILL leaves the dead replica's keep-alive in the peering until Kopf's peering lifetime (60 s by default)
expires; a graceful stop withdraws it at once (30 s budget)."""


@pytest.fixture
def pair(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosStack]:
    peering = f"chaos-ha-{uuid.uuid4().hex[:6]}"
    with chaos_stack(
        cluster, api_client, tmp_path_factory.mktemp("ha"), replicas=2, peering=peering
    ) as stack:
        yield stack
        for index, operator in enumerate(stack.operators):
            print(f"--- replica {index}\n{operator.log_text()[-2500:]}")


def acting(operator: OperatorProcess) -> bool:
    """Whether the replica's watch on VirtualNodes is running (not paused by a higher-priority peer)."""
    log = operator.log_text()
    resumed = log.rfind("Resuming the watch-stream for virtualnodes")
    return resumed > log.rfind("Pausing the watch-stream for virtualnodes")


def creates(stack: ChaosStack) -> int:
    requests = stack.stats()["requests"].get("ContainerGroups_CreateOrUpdate", {})
    return int(sum(requests.values()))


def takeover(pair: ChaosStack, sig: int, budget: float, size: int) -> float:
    active, standby = pair.operators
    active.stop(sig)
    killed = time.monotonic()
    pair.scale(size)
    pair.wait_converged(size, budget + 60)
    took = time.monotonic() - killed
    assert acting(standby), "the standby did not resume"
    return took


@pytest.mark.chaos_long
def test_standby_takes_over_after_sigkill_without_duplicate_puts(pair: ChaosStack) -> None:
    _active, standby = pair.operators
    started = time.monotonic()
    pair.hook("POST", "stats/reset")
    with Observer(pair.api, pair.namespace, pair.node) as observer:
        pair.scale(PODS)
        pair.wait_converged(PODS, 180)
        assert not acting(standby), "the standby acted while the active one ran"
        took = takeover(pair, signal.SIGKILL, TAKEOVER_BUDGET, PODS * 2)
        # The peering lifetime (20 s) is shorter than the node-monitor grace period: the node stays Ready.
        found = invariants.violations(pair, observer.seen, backend_fault=False)
    distinct = len(observer.seen.pod_uids)
    puts = creates(pair)
    row = invariants.Row(
        "ha-failover-sigkill",
        f"active replica SIGKILLed (takeover {took:.0f}s)",
        1,
        distinct,
        len(found) + max(puts - distinct, 0),
        time.monotonic() - started,
        "; ".join(found[:5]),
    )
    invariants.record(row)
    print(f"\ntakeover after SIGKILL: {took:.1f}s; PUTs {puts} for {distinct} pods")
    assert puts == distinct, f"{puts} PUTs for {distinct} pods: both replicas acted"
    assert took <= TAKEOVER_BUDGET
    assert not found, found


@pytest.mark.chaos_long
def test_standby_takes_over_within_30s_after_the_active_one_stops(pair: ChaosStack) -> None:
    _active, standby = pair.operators
    started = time.monotonic()
    pair.hook("POST", "stats/reset")
    with Observer(pair.api, pair.namespace, pair.node) as observer:
        pair.scale(PODS)
        pair.wait_converged(PODS, 180)
        assert not acting(standby), "the standby acted while the active one ran"
        took = takeover(pair, signal.SIGTERM, 30, PODS + PODS // 2)
        found = invariants.violations(pair, observer.seen, backend_fault=False)
    distinct = len(observer.seen.pod_uids)
    puts = creates(pair)
    row = invariants.Row(
        "ha-failover-sigterm",
        f"active replica stopped (takeover {took:.0f}s)",
        1,
        distinct,
        len(found) + max(puts - distinct, 0),
        time.monotonic() - started,
        "; ".join(found[:5]),
    )
    invariants.record(row)
    print(f"\ntakeover after SIGTERM: {took:.1f}s; PUTs {puts} for {distinct} pods")
    assert puts == distinct, f"{puts} PUTs for {distinct} pods: both replicas acted"
    assert took <= 30
    assert not found, found
    wait_until(pair.operators[1].is_running, 5, "the standby still running")
