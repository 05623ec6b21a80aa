"""Every replica works (issue 18.4): VirtualNodes are shared through their Leases, a SIGKILLed replica's nodes (and
only those) move to the others, and a replica cut off from the API server fences itself before another takes
over. The long versions (three replicas, 30 VirtualNodes) run under `make chaos`; short ones in `make test`.

Pods are few (one per node): the subject is ownership, not throughput. PUTs are counted by the emulator; since no
pod changes during a takeover, every PUT after it would be a duplicate."""

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
from chaos.replicas import ReadinessSampler, Replicas, replica_stack
from support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

LONG = os.environ.get("ACINODE_CHAOS_LONG") == "1"
TAKEOVER_BUDGET = float(os.environ.get("ACINODE_CHAOS_TAKEOVER_SECONDS", "30"))


def log_marks(stack: Replicas) -> dict[str, int]:
    return {name: len(operator.log_text()) for name, operator in stack.operators.items()}


def logged_errors(stack: Replicas, since: dict[str, int], *, besides: tuple[str, ...] = ()) -> list[str]:
    """ERROR lines and tracebacks logged since ``since`` by the replicas not named in ``besides`` (Kopf's own
    included: a handler that failed, or annotations that did not converge, would show here). Start-up is left out:
    the API server may answer 429 while its storage for a CRD just applied initializes."""
    found = []
    for name, operator in stack.operators.items():
        if name in besides:
            continue
        text = operator.log_text()[since.get(name, 0) :]
        found += [
            f"{name}: {line[:200]}" for line in text.splitlines() if "ERROR" in line or "Traceback" in line
        ]
    return found


def spread(stack: Replicas) -> dict[str, list[str]]:
    held = stack.held_by()
    return {name: sorted(held.get(name, [])) for name in stack.operators}


def settle_spread(stack: Replicas, total: int) -> dict[str, list[str]]:
    """Wait until every VirtualNode is held by a live replica and no replica holds more than half of them."""

    def settled() -> dict[str, list[str]] | None:
        held = spread(stack)
        counts = [len(v) for v in held.values()]
        if sum(counts) != total or max(counts) > total // 2 or min(counts) == 0:
            return None
        return held

    result: dict[str, list[str]] = wait_until(
        settled, 120, "VirtualNodes spread over the replicas", interval=1.0
    )
    return result


def bind_pods(stack: Replicas) -> None:
    for index, node in enumerate(stack.nodes):
        stack.bind_pod(node, f"web-{index}")
    wait_until(
        lambda: stack.all_running(len(stack.nodes)), 240, "every pod Running with its group", interval=2.0
    )


@pytest.fixture
def three(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    with replica_stack(
        cluster, api_client, tmp_path_factory.mktemp("ha3"), replicas=3, virtual_nodes=30 if LONG else 6
    ) as stack:
        yield stack
        for name, operator in stack.operators.items():
            print(f"--- replica {name}\n{operator.log_text()[-2000:]}")


def test_sigkill_of_one_replica_moves_only_its_virtual_nodes_without_duplicate_puts(three: Replicas) -> None:
    stack = three
    started = time.monotonic()
    total = len(stack.nodes)
    before = settle_spread(stack, total)
    counts = {name: len(nodes) for name, nodes in before.items()}
    print(f"\nspread of {total} VirtualNodes over 3 replicas: {counts}")
    bind_pods(stack)
    before = spread(stack)  # the pods' binding changed nothing, but read it again right before the kill
    victim = max(before, key=lambda name: len(before[name]))
    moved = set(before[victim])
    arm_before = (stack.creates(), stack.deletes())
    survivors = {n: set(v) for n, v in before.items() if n != victim}
    marks = log_marks(stack)
    with ReadinessSampler(stack) as sampler:
        stack.operators[victim].stop(signal.SIGKILL)
        killed = time.monotonic()
        strays: list[str] = []

        def taken_over() -> bool:
            holders = stack.holders()
            for name, nodes in survivors.items():
                strays.extend(f"{n} left {name}" for n in nodes if holders[n] != name)
            return all(holders[n] in survivors for n in moved)

        wait_until(
            taken_over, TAKEOVER_BUDGET + 60, "the killed replica's VirtualNodes taken over", interval=0.5
        )
        took = time.monotonic() - killed
        # Let the new holders list and sync: a duplicate PUT or an orphan would show now.
        time.sleep(15)
        wait_until(
            lambda: not stack.orphans_and_missing(), 60, "every pod with exactly one group", interval=2.0
        )
    after = spread(stack)
    puts = stack.creates() - arm_before[0]
    deletes = stack.deletes() - arm_before[1]
    problems = stack.orphans_and_missing()
    print(
        f"SIGKILL of {victim} ({len(moved)} VirtualNodes): taken over in {took:.1f}s; spread after "
        f"{ {n: len(v) for n, v in after.items() if n != victim} }; PUTs {puts}, DELETEs {deletes}, "
        f"orphans/missing {len(problems)}, nodes not Ready {len(sampler.not_ready)}, strays {len(strays)}"
    )
    found = problems + [f"{puts} duplicate PUTs"] * bool(puts) + [f"{deletes} DELETEs"] * bool(deletes)
    found += [f"not Ready: {sampler.not_ready[:3]}"] * bool(sampler.not_ready) + strays[:3]
    invariants.record(
        invariants.Row(
            "ha-3-replicas-sigkill",
            f"replica SIGKILLed with {len(moved)} of {total} VirtualNodes (takeover {took:.0f}s)",
            1,
            len(stack.nodes),
            len(found),
            time.monotonic() - started,
            "; ".join(found[:5]),
        )
    )
    assert not strays, f"VirtualNodes of live replicas moved: {strays}"
    assert took <= TAKEOVER_BUDGET, f"takeover took {took:.1f}s"
    assert puts == 0, f"{puts} PUTs after the takeover: duplicates"
    assert deletes == 0 and not problems, (deletes, problems)
    assert not sampler.not_ready, sampler.not_ready[:5]
    errors = logged_errors(stack, marks, besides=(victim,))
    assert not errors, errors[:5]


@pytest.fixture
def partitioned(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    with replica_stack(
        cluster,
        api_client,
        tmp_path_factory.mktemp("partition"),
        replicas=3 if LONG else 2,
        virtual_nodes=12 if LONG else 4,
        proxied=("r0",),
    ) as stack:
        yield stack
        for name, operator in stack.operators.items():
            print(f"--- replica {name}\n{operator.log_text()[-2000:]}")


def test_a_replica_cut_off_from_the_api_server_fences_itself_before_its_nodes_are_taken_over(
    partitioned: Replicas,
) -> None:
    stack = partitioned
    started = time.monotonic()
    total = len(stack.nodes)
    settle_spread(stack, total)
    bind_pods(stack)
    [(cut_name, proxy)] = stack.proxies.items()
    cut = stack.operators[cut_name]
    fenced_nodes = set(spread(stack)[cut_name])
    assert fenced_nodes, "the replica to cut serves some VirtualNodes"
    arm_before = (stack.creates(), stack.deletes())
    marks = log_marks(stack)
    log_before = marks[cut_name]
    proxy.cut()
    partition = time.monotonic()

    def fenced() -> float | None:
        text = cut.log_text()[log_before:]
        done = text.count("not renewed in time: stopped serving")
        return time.monotonic() if done >= len(fenced_nodes) else None

    def taken_over() -> float | None:
        holders = stack.holders()
        return time.monotonic() if all(holders[n] not in ("", cut_name) for n in fenced_nodes) else None

    fence_at = wait_until(
        fenced, TAKEOVER_BUDGET + 30, "the cut replica to fence every VirtualNode", interval=0.2
    )
    took_at = wait_until(taken_over, TAKEOVER_BUDGET + 60, "its VirtualNodes taken over", interval=0.2)
    # New pods on the taken-over nodes: the new holders create their groups. A cut replica still serving its stale
    # view would see them as orphans (no pod of that name in its view) and delete them.
    new_pods = [f"late-{uuid.uuid4().hex[:4]}-{i}" for i in range(len(fenced_nodes))]
    for node, name in zip(sorted(fenced_nodes), new_pods, strict=True):
        stack.bind_pod(node, name)
    wait_until(lambda: stack.all_running(total + len(new_pods)), 120, "the new pods Running", interval=2.0)
    time.sleep(15)  # the cut replica's sync and orphan passes would have run several times by now
    puts = stack.creates() - arm_before[0]
    deletes = stack.deletes() - arm_before[1]
    problems = stack.orphans_and_missing()
    print(
        f"\npartition: {len(fenced_nodes)} VirtualNodes fenced {fence_at - partition:.1f}s after the cut, taken over "
        f"{took_at - partition:.1f}s after it ({took_at - fence_at:.1f}s after the fence); PUTs {puts} for "
        f"{len(new_pods)} new pods, DELETEs {deletes}, orphans/missing {len(problems)}"
    )
    found = problems + [f"{deletes} DELETEs"] * bool(deletes) + [f"{puts} PUTs"] * (puts != len(new_pods))
    found += ["taken over before the fence"] * (took_at < fence_at)
    invariants.record(
        invariants.Row(
            "ha-partition",
            f"replica cut off from the API server with {len(fenced_nodes)} VirtualNodes "
            f"(fenced {fence_at - partition:.0f}s, taken over {took_at - partition:.0f}s)",
            1,
            total + len(new_pods),
            len(found),
            time.monotonic() - started,
            "; ".join(found[:5]),
        )
    )
    assert fence_at <= took_at, "another replica took over before the cut one had stopped"
    assert took_at - partition <= TAKEOVER_BUDGET
    assert deletes == 0, f"{deletes} groups deleted during the partition"
    assert puts == len(new_pods), f"{puts} PUTs for {len(new_pods)} new pods"
    assert not problems, problems
    errors = logged_errors(stack, marks, besides=(cut_name,))
    assert not errors, errors[:5]
    # Healed: the cut replica comes back and serves again without disturbing anything.
    proxy.restore()
    wait_until(lambda: stack.all_running(total + len(new_pods)), 60, "all still Running after healing")
