"""Benchmark: how soon a container's exit in ACI shows on its pod, at the default status-read budget (issue 22).

N virtual nodes × P pods (default 1 × 1,000; ``--nodes 50 --pods-per-node 20`` for the spread case) are bound
directly to the nodes (as if scheduled). A random tenth (seeded) run ``sleep S; exit 0`` with S drawn uniformly
from [``--first-exit``, ``--first-exit`` + ``--exit-spread``] seconds after their start, so their ends fall at known
times; the rest sleep for a day. Two phases:
1. setup: the operator runs with every rate budget raised (creating 1,000 groups at ACI's default create quota
   would take hours), until every pod is Running;
2. measurement: the operator is restarted with the ACI client's budgets at their defaults (reads 3/s) and the
   status-read budget at its default (``pods.status_reads_per_second``) unless ``--status-reads-per-second`` says
   otherwise; it resumes from a fresh listing with every pod Running and steady.
The **status lag** is the time from a container's end in ACI (its ``finishedAt``, which the operator copies into
the pod, whole seconds) to the benchmark's watch seeing the pod Succeeded. Exits that happened before phase 2
began are left out (reported as ``exits_before_measurement``). ARM reads per minute (GETs, list pages, usage) are
counted by the emulator over phase 2. The design bound printed beside the figures is ``readbudget.lag_bound``'s
arithmetic. All pods have the same restartPolicy (``--restart-policy``, Never), so the priority for pods likely to
end does not favour the ones that end: the figure is the plain arithmetic. Prints one JSON object. Bounded in time;
all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import random
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

import stack
from acinode import settings
from acinode.pods import readbudget
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body

NAMESPACE = "lag"
DAY = 86_400

# Setup only: budgets that let 1,000 groups be created and read Running in about a minute.
SETUP_ENV = {**stack.UNTHROTTLED}


def create_pods(
    core: client.CoreV1Api, names: list[str], per_node: int, ending: dict[int, int], policy: str
) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

    def create(index: int) -> None:
        node = names[index % len(names)]
        sleep = ending.get(index, DAY)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{node}-{index // len(names):04d}",
                "labels": {"ends": str(index in ending).lower()},
            },
            "spec": {
                "nodeName": node,
                "restartPolicy": policy,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                "containers": [
                    {"name": "main", "image": "busybox", "command": ["sh", "-c", f"sleep {sleep}; exit 0"]}
                ],
            },
        }
        core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(create, i) for i in range(per_node * len(names))]:
            future.result()


def arm_reads(requests: dict[str, dict[str, int]]) -> dict[str, int]:
    def total(*suffixes: str) -> int:
        return sum(sum(codes.values()) for op, codes in requests.items() if op.endswith(suffixes))

    return {
        "gets": total("_Get"),
        "list_pages": total("_ListByResourceGroup", "_List"),
        "usage": total("_ListUsage"),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    total = args.nodes * args.pods_per_node
    rng = random.Random(args.seed)
    ending = {
        index: args.first_exit + rng.randint(0, args.exit_spread)
        for index in rng.sample(range(total), max(1, round(total * args.ending_fraction)))
    }
    defaults = settings.PodSettings()
    budget = (
        args.status_reads_per_second
        if args.status_reads_per_second is not None
        else defaults.status_reads_per_second
    )
    likely = total if args.restart_policy in ("Never", "OnFailure") else 0
    bound = readbudget.lag_bound(
        total - likely,
        likely,
        budget,
        likely_weight=defaults.likely_to_end_weight,
        pass_seconds=defaults.budget_pass_seconds,
    )
    design_lag = bound.likely_lag_seconds if likely else bound.server_lag_seconds
    env = {**stack.PRODUCTION_ENV, **SETUP_ENV}
    with stack.running_stack(
        work, ("--no-throttle", "--no-network", *stack.NO_QUOTA), env, stack.PRODUCTION_ARGS
    ) as bed:
        core, custom = client.CoreV1Api(bed.api), client.CustomObjectsApi(bed.api)
        names = [f"vn-{index:03d}" for index in range(args.nodes)]
        for name in names:
            custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(name, bed.emulator))
        stack.wait_until(
            f"{args.nodes} nodes Ready",
            lambda: (
                sum(
                    1
                    for n in core.list_node().items
                    if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                )
                >= args.nodes
            ),
            180,
            1.0,
        )
        watcher = stack.PodWatcher(bed.api, NAMESPACE)
        try:
            began = time.monotonic()
            create_pods(core, names, args.pods_per_node, ending, args.restart_policy)
            watcher.wait_for(
                f"{total} pods Running",
                lambda: sum(1 for t in watcher.pods.values() if t.running or t.terminal) >= total,
                600,
            )
            setup_seconds = time.monotonic() - began

            # Phase 2: the default budgets (the raised ones were only for creating the pods).
            bed.operator.stop()
            for key in SETUP_ENV:
                bed.operator.env.pop(key, None)
            if args.status_reads_per_second is not None:
                # A raised status budget needs the client's read bucket raised with it (listings, probes on top).
                bed.operator.env["ACINODE_PODS_STATUS_READS_PER_SECOND"] = str(args.status_reads_per_second)
                bed.operator.env["ACINODE_ACI_READS_PER_SECOND"] = str(
                    max(3.0, args.status_reads_per_second + 1)
                )
            if args.aci_reads_per_second is not None:
                bed.operator.env["ACINODE_ACI_READS_PER_SECOND"] = str(args.aci_reads_per_second)
            measured_from = time.time()
            bed.operator.start()
            arm_before = stack.arm_requests(bed.emulator)
            window_began = time.monotonic()
            last_exit = max(t.running or 0.0 for t in watcher.snapshot()) + args.first_exit + args.exit_spread
            deadline = max(0.0, last_exit - time.time()) + 1.25 * design_lag + 60
            ends = len(ending)
            # Bounded: the exits not seen by then are reported as unseen, with the figures of the rest.
            with contextlib.suppress(SystemExit):
                watcher.wait_for(
                    f"{ends} ended pods Succeeded",
                    lambda: sum(1 for t in watcher.pods.values() if t.terminal) >= ends,
                    min(deadline, args.max_seconds),
                )
            window = time.monotonic() - window_began
            reads = arm_reads(stack.requests_delta(stack.arm_requests(bed.emulator), arm_before))
            times = watcher.snapshot()
        finally:
            watcher.close()
        ended = [t for t in times if t.terminal and t.finished_at]
        measured = [t for t in ended if t.finished_at is not None and t.finished_at >= measured_from]
        lags = [t.terminal - t.finished_at for t in measured if t.terminal and t.finished_at]
        return {
            "virtual_nodes": args.nodes,
            "pods_per_node": args.pods_per_node,
            "pods": total,
            "restart_policy": args.restart_policy,
            "ending_pods": ends,
            "exit_window_seconds": [args.first_exit, args.first_exit + args.exit_spread],
            "status_reads_per_second": budget,
            "budget_fraction_of_arm_subscription_reads": round(bound.budget_fraction, 3),
            "aci_reads_per_second": float(bed.operator.env.get("ACINODE_ACI_READS_PER_SECOND", "3.0")),
            "setup_seconds": round(setup_seconds, 1),
            "window_seconds": round(window, 1),
            "exits_before_measurement": len(ended) - len(measured),
            "exits_unseen_at_the_end": ends - len(ended),
            "status_lag_seconds": stack.distribution(lags, digits=1) if lags else {},
            "status_lag_design_bound_seconds": round(design_lag, 1),
            "arm_reads_per_minute": round(60 * sum(reads.values()) / window, 1),
            "arm_reads": reads,
            "reads_for_p99_30s_per_second": round(
                readbudget.reads_for_lag(
                    total - likely,
                    likely,
                    30.0,
                    likely_weight=defaults.likely_to_end_weight,
                    pass_seconds=defaults.budget_pass_seconds,
                )
                / (defaults.likely_to_end_weight if likely else 1),
                1,
            ),
            "arm_subscription_reads_per_second": readbudget.ARM_SUBSCRIPTION_READS_PER_SECOND,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--pods-per-node", type=int, default=1000)
    parser.add_argument("--ending-fraction", type=float, default=0.1)
    parser.add_argument(
        "--first-exit", type=int, default=300, help="seconds after its start a container may end"
    )
    parser.add_argument("--exit-spread", type=int, default=120)
    parser.add_argument("--restart-policy", default="Never", choices=("Never", "OnFailure", "Always"))
    parser.add_argument("--status-reads-per-second", type=float, default=None, help="default: the settings'")
    parser.add_argument("--aci-reads-per-second", type=float, default=None, help="the client's read bucket")
    parser.add_argument("--max-seconds", type=float, default=1500, help="longest wait for the exits to show")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    return stack.main("status_lag", lambda work: run(args, work))


if __name__ == "__main__":
    sys.exit(main())
