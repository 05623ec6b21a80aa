"""Benchmark: many VirtualNodes in one operator — lease renewal intervals, status lag, operator CPU and memory.

Declares N VirtualNodes (default 50) backed by the emulator, waits until all are Ready, then for a measurement
window reads every Lease in kube-node-lease once a second and records each renewTime. Reports the intervals
between successive renewals (p50, p99, max) and the operator's CPU share and peak RSS over the window.

With ``--pods-per-node P`` (issue 9: 20), P pods are bound to each node before the window (binding → Running is
reported); each runs ``sleep S; exit 0`` (S spread over 45–120 s, restartPolicy Never), so the containers end
during the window. The **status lag** is the time from a container's end in ACI (its ``finishedAt``, which the
operator copies into the pod) to the pod showing Succeeded in the API: steady groups are read by a round-robin
sweep (2 GETs per node per 15 s), so the design bound is P / 2 × 15 s. The window is stretched (at most 180 s)
until every pod has ended. ARM reads per minute over the window are reported too: the default read budget is
3/s per subscription, shared by every node. The operator runs as the chart runs it (JSON logs, the settings'
default probe timings); with pods, its rate budget is raised (1,000 creates would take ACI's limits hours).
Prints one JSON object. Bounded in time; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

import stack
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


NAMESPACE = "many"


def create_pods(bed: stack.Stack, names: list[str], per_node: int) -> None:
    """``per_node`` pods bound to each node (as if scheduled), each ending after 45–120 s."""
    core = client.CoreV1Api(bed.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

    def create(index: int) -> None:
        node = names[index % len(names)]
        sleep = 45 + (index * 37) % 76
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{node}-{index // len(names):03d}"},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                "containers": [
                    {"name": "job", "image": "busybox", "command": ["sh", "-c", f"sleep {sleep}; exit 0"]}
                ],
            },
        }
        core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(create, i) for i in range(per_node * len(names))]:
            future.result()


def reads(requests: dict[str, dict[str, int]]) -> int:
    return sum(
        sum(codes.values())
        for op, codes in requests.items()
        if op.endswith(("_Get", "_ListByResourceGroup", "_ListUsage", "_List"))
    )


def run(nodes: int, seconds: float, work: Path, pods_per_node: int = 0) -> dict[str, Any]:
    flags: tuple[str, ...] = ("--no-throttle", "--no-network")
    env = dict(stack.PRODUCTION_ENV)
    if pods_per_node:
        flags += stack.NO_QUOTA
        env.update(stack.UNTHROTTLED)
    with stack.running_stack(work, flags, env, stack.PRODUCTION_ARGS) as bed:
        core, custom = client.CoreV1Api(bed.api), client.CustomObjectsApi(bed.api)
        coordination = client.CoordinationV1Api(bed.api)
        pid = bed.operator_pid
        names = [f"vn-{index:03d}" for index in range(nodes)]
        for name in names:
            custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(name, bed.emulator))
        began = time.monotonic()
        while True:
            ready = [
                n
                for n in core.list_node().items
                if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            ]
            if len(ready) == nodes:
                break
            if time.monotonic() - began > 180:
                raise SystemExit(f"only {len(ready)} of {nodes} nodes Ready after 180 s")
            time.sleep(1)
        all_ready_seconds = time.monotonic() - began
        pod_results: dict[str, Any] = {}
        watcher = stack.PodWatcher(bed.api, NAMESPACE) if pods_per_node else None
        if watcher is not None:
            total = pods_per_node * nodes
            began = time.monotonic()
            create_pods(bed, names, pods_per_node)
            watcher.wait_for(
                f"{total} pods Running",
                lambda: sum(1 for t in watcher.pods.values() if t.running or t.terminal) >= total,
                600,
            )
            times = watcher.snapshot()
            pod_results["pods"] = total
            pod_results["all_running_seconds"] = round(time.monotonic() - began, 1)
            pod_results["binding_to_running_seconds"] = stack.distribution(
                [t.running - t.seen for t in times if t.running]
            )

        renewals: dict[str, list[float]] = {name: [] for name in names}
        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
        arm_before = stack.arm_requests(bed.emulator)
        peak = stack.rss_mib(pid)

        def pods_done() -> bool:
            return watcher is None or all(t.terminal for t in watcher.snapshot())

        while time.monotonic() - wall_before < seconds or (
            not pods_done() and time.monotonic() - wall_before < seconds + 180
        ):
            for lease in coordination.list_namespaced_lease("kube-node-lease").items:
                stamps = renewals.get(lease.metadata.name)
                renewed = lease.spec.renew_time.timestamp()
                if stamps is not None and (not stamps or stamps[-1] != renewed):
                    stamps.append(renewed)
            peak = max(peak, stack.rss_mib(pid))
            time.sleep(1)
        window = time.monotonic() - wall_before
        cpu_share = (cpu_seconds(pid) - cpu_before) / window
        arm = stack.requests_delta(stack.arm_requests(bed.emulator), arm_before)
        intervals = [b - a for stamps in renewals.values() for a, b in itertools.pairwise(stamps)]
        if watcher is not None:
            times = watcher.snapshot()
            watcher.close()
            pod_results["ended"] = sum(1 for t in times if t.terminal)
            pod_results["status_lag_seconds"] = stack.distribution(
                [t.terminal - t.finished_at for t in times if t.terminal and t.finished_at], digits=1
            )
            pod_results["status_lag_design_bound_seconds"] = pods_per_node / 2 * 15
        return {
            "virtual_nodes": nodes,
            "pods_per_node": pods_per_node,
            "window_seconds": round(window, 1),
            "all_ready_seconds": round(all_ready_seconds, 1),
            "renewals_observed": len(intervals),
            "lease_interval_p50_seconds": round(statistics.median(intervals), 2),
            "lease_interval_p99_seconds": round(percentile(intervals, 0.99), 2),
            "lease_interval_max_seconds": round(max(intervals), 2),
            "operator_cpu_percent_of_one_core": round(100 * cpu_share, 2),
            "operator_rss_peak_mib": round(peak, 1),
            "arm_reads_per_minute": round(60 * reads(arm) / window, 1),
            "arm_throttled": stack.throttled(arm),
            **({"pod_status": pod_results} if pod_results else {}),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--pods-per-node", type=int, default=0)
    args = parser.parse_args()
    return stack.main("many_nodes", lambda work: run(args.nodes, args.seconds, work, args.pods_per_node))


if __name__ == "__main__":
    sys.exit(main())
