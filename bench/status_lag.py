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

``--mix jobs-and-servers`` shows the priority: a seeded share of the pods (``--likely-fraction``, a tenth) are
Job-like (restartPolicy Never: likely to end, read ``likely_to_end_weight`` times as often), the rest servers
(restartPolicy Always). ``--likely-ending-fraction`` (0.3) of the Job-like pods and ``--ending-fraction`` (0.1) of
the servers exit in the same window. A Job-like pod's exit is seen as in the plain mode (Succeeded, lag from its
``finishedAt``). A server's container is restarted by ACI (restartPolicy Always), so its pod never ends: its exit is
seen when the watch first shows its ``restartCount`` ≥ 1, and the lag runs from ``lastState.terminated.finishedAt``.
A server unseen until after its second exit (the command runs again on restart) shows only the second run's end:
its first end is then taken as its first run's ``startedAt`` plus its known sleep (counted in
``exit_from_start_plus_sleep``; ``start_plus_sleep_error_seconds`` is that estimate's largest error over the servers
seen after one exit). Figures and the design bound are reported per class (``by_class``); the top-level
``status_lag_seconds`` are every exit together and ``status_lag_design_bound_seconds`` the larger bound (servers').
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
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
    core: client.CoreV1Api,
    names: list[str],
    per_node: int,
    ending: dict[int, int],
    policy: str,
    job_like: frozenset[int] | None = None,
) -> None:
    """Bare pods bound to the nodes; with ``job_like`` (``--mix``) those are restartPolicy Never and the rest
    Always, labelled by class and with their sleep (the watch times the servers' restarts from them)."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

    def create(index: int) -> None:
        node = names[index % len(names)]
        sleep = ending.get(index, DAY)
        labels = {"ends": str(index in ending).lower()}
        if job_like is not None:
            server = index not in job_like
            policy_here = "Always" if server else "Never"
            labels.update({"class": "server" if server else "likely", "sleep": str(sleep)})
        else:
            policy_here = policy
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{node}-{index // len(names):04d}", "labels": labels},
            "spec": {
                "nodeName": node,
                "restartPolicy": policy_here,
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


@dataclasses.dataclass
class Restarts:
    """What the watch saw of one server's container (``--mix``): its first run's start, and the first status
    showing a restart."""

    sleep: int
    started_at: float | None = None
    """The first run's ``state.running.startedAt`` (whole seconds)."""
    seen: float | None = None
    """When the watch first showed ``restartCount`` ≥ 1."""
    restart_count: int = 0
    """The ``restartCount`` in that status."""
    last_finished_at: float | None = None
    """That status's ``lastState.terminated.finishedAt`` (the end of run number ``restart_count``)."""


class RestartWatcher(stack.PodWatcher):
    """``stack.PodWatcher`` that also stamps, for the servers that exit, when a restart first shows."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.restarts: dict[str, Restarts] = {}  # by pod name; set before the watch thread starts
        super().__init__(api, namespace)

    def _observe(self, kind: str, pod: dict[str, Any]) -> None:
        now = time.time()
        super()._observe(kind, pod)
        metadata = pod["metadata"]
        labels = metadata.get("labels") or {}
        if labels.get("class") != "server" or labels.get("ends") != "true":
            return
        with self.changed:
            entry = self.restarts.get(metadata["name"])
            if entry is None:
                entry = self.restarts[metadata["name"]] = Restarts(int(labels["sleep"]))
            for status in pod.get("status", {}).get("containerStatuses") or []:
                count = int(status.get("restartCount") or 0)
                running = status.get("state", {}).get("running") or {}
                if count == 0 and entry.started_at is None and running.get("startedAt"):
                    entry.started_at = stack.parse_time(running["startedAt"])
                if count >= 1 and entry.seen is None:
                    entry.seen, entry.restart_count = now, count
                    terminated = (status.get("lastState") or {}).get("terminated") or {}
                    if terminated.get("finishedAt"):
                        entry.last_finished_at = stack.parse_time(terminated["finishedAt"])
            self.changed.notify_all()

    def restarts_snapshot(self) -> list[Restarts]:
        with self.lock:
            return [dataclasses.replace(entry) for entry in self.restarts.values()]


def choose(rng: random.Random, args: argparse.Namespace, total: int) -> tuple[dict[int, int], frozenset[int]]:
    """The pods that end (index → seconds after its start) and, with ``--mix``, the Job-like ones."""

    def sleeps(population: list[int], fraction: float) -> dict[int, int]:
        if not population:
            return {}
        count = min(len(population), max(1, round(len(population) * fraction)))
        return {
            index: args.first_exit + rng.randint(0, args.exit_spread)
            for index in rng.sample(population, count)
        }

    if args.mix is None:
        return sleeps(list(range(total)), args.ending_fraction), frozenset()
    likely = sorted(rng.sample(range(total), round(total * args.likely_fraction)))
    chosen = set(likely)
    servers = [index for index in range(total) if index not in chosen]
    ending = sleeps(likely, args.likely_ending_fraction)
    ending.update(sleeps(servers, args.ending_fraction))
    return ending, frozenset(likely)


def server_lags(entries: list[Restarts], measured_from: float) -> dict[str, Any]:
    """Exit → restart-seen lags of the servers that exited (measured ones only), and how they were timed."""
    lags: list[float] = []
    estimated = before = unseen = untimed = 0
    errors: list[float] = []
    for entry in entries:
        first_end = entry.started_at + entry.sleep if entry.started_at is not None else None
        if entry.seen is None:
            unseen += 1
            continue
        if entry.restart_count == 1 and entry.last_finished_at is not None:
            end = entry.last_finished_at
            if first_end is not None:
                errors.append(abs(first_end - end))
        elif first_end is not None:
            end, estimated = first_end, estimated + 1
        else:
            untimed += 1  # seen restarted, but neither end is known: cannot be timed
            continue
        if end < measured_from:
            before += 1
            continue
        lags.append(entry.seen - end)
    return {
        "lags": lags,
        "exits_before_measurement": before,
        "exits_unseen_at_the_end": unseen,
        "exits_seen_untimed": untimed,
        "exit_from_start_plus_sleep": estimated,
        "start_plus_sleep_error_seconds": round(max(errors), 1) if errors else None,
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    total = args.nodes * args.pods_per_node
    rng = random.Random(args.seed)
    ending, job_like = choose(rng, args, total)
    defaults = settings.PodSettings()
    budget = (
        args.status_reads_per_second
        if args.status_reads_per_second is not None
        else defaults.status_reads_per_second
    )
    if args.mix is None:
        likely = total if args.restart_policy in ("Never", "OnFailure") else 0
    else:
        likely = len(job_like)
    bound = readbudget.lag_bound(
        total - likely,
        likely,
        budget,
        likely_weight=defaults.likely_to_end_weight,
        pass_seconds=defaults.budget_pass_seconds,
    )
    design_lag = (
        max(bound.likely_lag_seconds, bound.server_lag_seconds)
        if args.mix is not None
        else bound.likely_lag_seconds
        if likely
        else bound.server_lag_seconds
    )
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
        watcher = RestartWatcher(bed.api, NAMESPACE) if args.mix else stack.PodWatcher(bed.api, NAMESPACE)
        try:
            began = time.monotonic()
            create_pods(
                core, names, args.pods_per_node, ending, args.restart_policy, job_like if args.mix else None
            )
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
            restarts = watcher.restarts if isinstance(watcher, RestartWatcher) else {}

            def seen() -> int:  # under the watcher's lock
                return sum(1 for t in watcher.pods.values() if t.terminal) + sum(
                    1 for r in restarts.values() if r.seen is not None
                )

            # Bounded: the exits not seen by then are reported as unseen, with the figures of the rest.
            with contextlib.suppress(SystemExit):
                watcher.wait_for(
                    f"{ends} exits seen" if args.mix else f"{ends} ended pods Succeeded",
                    lambda: seen() >= ends,
                    min(deadline, args.max_seconds),
                )
            window = time.monotonic() - window_began
            reads = arm_reads(stack.requests_delta(stack.arm_requests(bed.emulator), arm_before))
            times = watcher.snapshot()
            server_entries = watcher.restarts_snapshot() if isinstance(watcher, RestartWatcher) else []
        finally:
            watcher.close()
        ended = [t for t in times if t.terminal and t.finished_at]
        measured = [t for t in ended if t.finished_at is not None and t.finished_at >= measured_from]
        lags = [t.terminal - t.finished_at for t in measured if t.terminal and t.finished_at]
        result = {
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
        if args.mix is None:
            return result
        likely_ends = sum(1 for index in ending if index in job_like)
        servers = server_lags(server_entries, measured_from)
        every = lags + servers["lags"]
        by_class: dict[str, dict[str, Any]] = {
            "likely_to_end": {
                "pods": likely,
                "restart_policy": "Never",
                "ending_pods": likely_ends,
                "exit_seen_as": "pod Succeeded (lag from the container's finishedAt)",
                "exits_before_measurement": len(ended) - len(measured),
                "exits_unseen_at_the_end": likely_ends - len(ended),
                "status_lag_seconds": stack.distribution(lags, digits=1) if lags else {},
                "status_lag_design_bound_seconds": round(bound.likely_lag_seconds, 1),
                "read_every_seconds": round(bound.threshold_seconds / defaults.likely_to_end_weight, 1),
            },
            "servers": {
                "pods": total - likely,
                "restart_policy": "Always",
                "ending_pods": ends - likely_ends,
                "exit_seen_as": "restartCount >= 1 (lag from lastState.terminated.finishedAt)",
                "exits_before_measurement": servers["exits_before_measurement"],
                "exits_unseen_at_the_end": servers["exits_unseen_at_the_end"],
                "exits_seen_untimed": servers["exits_seen_untimed"],
                "exit_from_start_plus_sleep": servers["exit_from_start_plus_sleep"],
                "start_plus_sleep_error_seconds": servers["start_plus_sleep_error_seconds"],
                "status_lag_seconds": stack.distribution(servers["lags"], digits=1)
                if servers["lags"]
                else {},
                "status_lag_design_bound_seconds": round(bound.server_lag_seconds, 1),
                "read_every_seconds": round(bound.threshold_seconds, 1),
            },
        }
        return {
            **result,
            "mix": args.mix,
            "restart_policy": "mixed",
            "likely_to_end_weight": defaults.likely_to_end_weight,
            "exits_before_measurement": sum(c["exits_before_measurement"] for c in by_class.values()),
            "exits_unseen_at_the_end": sum(c["exits_unseen_at_the_end"] for c in by_class.values()),
            "status_lag_seconds": stack.distribution(every, digits=1) if every else {},
            "by_class": by_class,
            "reads_for_p99_30s_per_second": round(
                readbudget.reads_for_lag(
                    total - likely,
                    likely,
                    30.0,
                    likely_weight=defaults.likely_to_end_weight,
                    pass_seconds=defaults.budget_pass_seconds,
                ),
                1,
            ),
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
    parser.add_argument(
        "--mix",
        choices=("jobs-and-servers",),
        default=None,
        help="Job-like pods (restartPolicy Never) beside servers (Always); --restart-policy is then ignored",
    )
    parser.add_argument("--likely-fraction", type=float, default=0.1, help="--mix: share of Job-like pods")
    parser.add_argument(
        "--likely-ending-fraction", type=float, default=0.3, help="--mix: share of the Job-like pods that end"
    )
    args = parser.parse_args()
    return stack.main("status_lag", lambda work: run(args, work))


if __name__ == "__main__":
    sys.exit(main())
