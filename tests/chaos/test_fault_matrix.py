"""The fault matrix: a Deployment on a virtual node is scaled up and down in waves while one kind of fault strikes;
then the faults stop, the system must converge, and the invariants (chaos/invariants.py) must hold with zero
violations. Each scenario is bounded: a fixed number of waves, faults capped by ``count``, bounded waits.

The scenarios marked ``ci`` run in `make test` with small waves; `make chaos` runs them all with a few hundred
pods churned in total (``ACINODE_CHAOS_SCALE``)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from acinode.mapping import names
from chaos import invariants
from chaos.stack import ChaosStack, Observer, chaos_stack, compact_etcd
from contract import emulated
from support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

LONG = os.environ.get("ACINODE_CHAOS_LONG") == "1"
SCALE = int(os.environ.get("ACINODE_CHAOS_SCALE", "40" if LONG else "8"))
"""Peak replicas of a wave; a scenario churns about 3× this many pods."""
SEED = int(os.environ.get("ACINODE_CHAOS_SEED", "10"))
rng = random.Random(SEED)


def waves() -> list[int]:
    return [SCALE, SCALE // 3, SCALE, SCALE // 2]


Inject = Callable[[ChaosStack, int], int]
"""Called before wave ``i``; injects that wave's faults and returns how many it injected (or armed)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: str
    inject: Inject
    backend_fault: bool = False
    """The node may turn NotReady: the fault takes the backend itself away."""
    ci: bool = False
    needs_control_plane: bool = False


# --- ARM faults (the emulator's fault rules, capped by count; counted from what is left of them) --------------

GROUP_OPERATIONS = (
    "ContainerGroups_CreateOrUpdate",
    "ContainerGroups_Delete",
    "ContainerGroups_Get",
    "ContainerGroups_ListByResourceGroup",
)


def arm_rules(**rule: Any) -> Inject:
    def inject(stack: ChaosStack, wave: int) -> int:
        rules = [{"operation": op, **rule} for op in GROUP_OPERATIONS]
        stack.hook("PUT", "faults", {"rules": rules, "seed": SEED + wave})
        return 0  # counted when the wave ends (fired_faults)

    return inject


def fired_faults(stack: ChaosStack, armed: int) -> int:
    left = stack.hook("GET", "faults") or {}
    remaining = sum(r.get("count") or 0 for r in left.get("rules", []))
    return max(armed - remaining, 0)


def lro_failed(stack: ChaosStack, wave: int) -> int:
    stack.hook("POST", "lro/fail-next", {"code": "InternalServerError", "message": "chaos", "count": 3})
    return 3


def vanish(stack: ChaosStack, wave: int) -> int:
    running = [p for p in stack.live_pods() if p.status.phase == "Running"]
    victims = rng.sample(running, min(3, len(running)))
    vanished = 0
    for pod in victims:
        group = names.container_group_name(stack.namespace, pod.metadata.name)
        try:
            stack.hook("POST", f"groups/{emulated.SUBSCRIPTION}/{stack.resource_group}/{group}/vanish")
        except AssertionError:  # the pod was scaled away meanwhile and its group deleted: pick no other
            continue
        vanished += 1
    return vanished


# --- operator faults ------------------------------------------------------------------------------------------


def sigkill_at_random(stack: ChaosStack, wave: int) -> int:
    """Kill the operator at a random moment of the wave that is starting, and start it again."""

    stack.scale(waves()[wave])
    time.sleep(rng.uniform(0.2, 3.0))  # picks *when* the fault strikes; not a synchronisation
    stack.operator.stop(signal.SIGKILL)
    stack.operator.start()
    return 1


def sigterm_in_burst(stack: ChaosStack, wave: int) -> int:
    if wave % 2:
        return 0
    stack.scale(waves()[wave])  # the burst is under way when the signal lands
    stack.operator.stop(signal.SIGTERM)
    stack.operator.start()
    return 1


# --- Kubernetes faults ----------------------------------------------------------------------------------------


def restart_apiserver(stack: ChaosStack, wave: int) -> int:
    if wave not in (1, 2):
        return 0
    stack.scale(waves()[wave])
    stack.cluster.control_plane.restart_apiserver()
    return 1


def compaction(stack: ChaosStack, wave: int) -> int:
    """Freeze the operator, churn, compact etcd and restart the API server (fresh watch cache): its watches resume
    from resource versions that are gone (410 Gone / too old resource version) and must relist."""
    if wave != 2:
        return 0
    assert stack.operator.process is not None
    stack.operator.process.send_signal(signal.SIGSTOP)
    try:
        stack.scale(waves()[wave])
        stack.wait_pods_exist(waves()[wave], 60)
        compact_etcd(stack.cluster)
        stack.cluster.control_plane.restart_apiserver()
    finally:
        stack.operator.process.send_signal(signal.SIGCONT)
    return 1


def restart_emulator(stack: ChaosStack, wave: int) -> int:
    if wave not in (1, 3):
        return 0
    stack.scale(waves()[wave])
    stack.restart_emulator(down_seconds=2.0)
    return 1


SCENARIOS = [
    Scenario(
        "arm-5xx-10pct",
        "ARM 500/503 on 10 % of group calls",
        arm_rules(rate=0.1, status=503, code="ServiceUnavailable", count=40),
        backend_fault=False,
        ci=True,
    ),
    Scenario(
        "arm-500-10pct",
        "ARM 500 on 10 % of group calls",
        arm_rules(rate=0.1, status=500, code="InternalServerError", count=40),
    ),
    Scenario(
        "arm-429-storm",
        "429 storms with Retry-After 2 s",
        arm_rules(rate=0.5, status=429, code="TooManyRequests", retryAfter=2, count=30),
    ),
    Scenario("arm-latency-5s", "5 s latency spikes", arm_rules(rate=0.2, latencySeconds=5, count=12)),
    Scenario("arm-dropped", "dropped connections", arm_rules(rate=0.1, drop=True, count=20)),
    Scenario("lro-failed", "create LROs that end Failed", lro_failed),
    Scenario("group-vanishes", "running groups vanish", vanish),
    Scenario("operator-sigkill", "operator SIGKILL at random moments", sigkill_at_random, ci=True),
    Scenario("operator-sigterm-burst", "operator SIGTERM during a burst", sigterm_in_burst),
    Scenario(
        "apiserver-restart",
        "API server restarts (watch streams cut)",
        restart_apiserver,
        needs_control_plane=True,
    ),
    Scenario(
        "etcd-compaction-410",
        "etcd compaction, resource versions too old",
        compaction,
        backend_fault=True,  # the operator is frozen (SIGSTOP) for the fault: a frozen kubelet is not Ready either
        needs_control_plane=True,
    ),
    Scenario("emulator-restart", "emulator restarted with --persist", restart_emulator, backend_fault=True),
]
ARM_FAULTS = {"arm-5xx-10pct", "arm-500-10pct", "arm-429-storm", "arm-latency-5s", "arm-dropped"}


def params() -> list[Any]:
    return [pytest.param(s, id=s.name, marks=[] if s.ci else [pytest.mark.chaos_long]) for s in SCENARIOS]


@pytest.fixture(scope="module")
def stack(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosStack]:
    with chaos_stack(cluster, api_client, tmp_path_factory.mktemp("chaos")) as running:
        yield running
        print(running.operator.log_text()[-3000:])


@pytest.mark.parametrize("scenario", params())
def test_fault_scenario(scenario: Scenario, stack: ChaosStack) -> None:
    if scenario.needs_control_plane and stack.cluster.control_plane is None:
        pytest.skip("needs the project's own control plane (not ACINODE_TEST_KUBECONFIG)")
    started = time.monotonic()
    # Start from a clean slate even if an earlier scenario failed half-way.
    stack.clear_faults()
    stack.ensure_operators()
    stack.scale(0)
    stack.wait_converged(0, 180)
    armed_rules = 0
    injected = 0
    with Observer(stack.api, stack.namespace, stack.node) as observer:
        for index, size in enumerate(waves()):
            if scenario.name in ARM_FAULTS:
                stack.hook("DELETE", "faults")
                scenario.inject(stack, index)
                armed_rules = sum(r.get("count") or 0 for r in stack.hook("GET", "faults")["rules"])
            else:
                injected += scenario.inject(stack, index)
            stack.scale(size)
            stack.wait_pods_exist(size, 180)
            # Let the wave make progress under the fault: some of its pods reach Running (bounded).
            wait_until(
                lambda s=size: stack.running() >= s // 2, 180, f"half of {size} pods Running under fault"
            )
            if scenario.name in ARM_FAULTS:
                injected += fired_faults(stack, armed_rules)
        stack.clear_faults()
        stack.ensure_operators()
        final = waves()[-1]
        stack.wait_converged(final, 240)
        found = invariants.violations(stack, observer.seen, backend_fault=scenario.backend_fault)
        # Scale-in to zero: every deleted pod's group must go, and nothing may be left behind.
        stack.scale(0)
        stack.wait_converged(0, 180)
        found += invariants.violations(stack, observer.seen, backend_fault=scenario.backend_fault)
    row = invariants.Row(
        scenario.name,
        scenario.faults,
        injected,
        len(observer.seen.pod_uids),
        len(found),
        time.monotonic() - started,
        "; ".join(found[:5]),
    )
    invariants.record(row)
    print("\n" + invariants.table([row]))
    assert injected > 0, "the scenario injected no fault"
    assert not found, found


def test_print_chaos_table() -> None:
    """Runs last in the module: the table of every scenario recorded in this run (and earlier ones of `make chaos`)."""
    rows = invariants.read_results()
    if rows:
        print("\n" + invariants.table(rows))
    assert all(r.violations == 0 for r in rows), [r for r in rows if r.violations]
