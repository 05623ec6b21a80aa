"""Benchmark: many VirtualNodes in one operator — lease renewal intervals, operator CPU and memory.

Declares N VirtualNodes (default 50) backed by the emulator, waits until all are Ready, then for a measurement
window reads every Lease in kube-node-lease once a second and records each renewTime. Reports the intervals
between successive renewals (p50, p99, max) and the operator's CPU share and peak RSS over the window.
Prints one JSON object. Bounded in time; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
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


def run(nodes: int, seconds: float, work: Path) -> dict[str, Any]:
    flags = ("--no-throttle", "--no-network")
    with stack.running_stack(work, flags, {"ACINODE_NODE_PROBE_INTERVAL_SECONDS": "10"}) as bed:
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

        renewals: dict[str, list[float]] = {name: [] for name in names}
        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
        peak = stack.rss_mib(pid)
        while time.monotonic() - wall_before < seconds:
            for lease in coordination.list_namespaced_lease("kube-node-lease").items:
                stamps = renewals.get(lease.metadata.name)
                renewed = lease.spec.renew_time.timestamp()
                if stamps is not None and (not stamps or stamps[-1] != renewed):
                    stamps.append(renewed)
            peak = max(peak, stack.rss_mib(pid))
            time.sleep(1)
        cpu_share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
        intervals = [b - a for stamps in renewals.values() for a, b in itertools.pairwise(stamps)]
        return {
            "virtual_nodes": nodes,
            "window_seconds": seconds,
            "all_ready_seconds": round(all_ready_seconds, 1),
            "renewals_observed": len(intervals),
            "lease_interval_p50_seconds": round(statistics.median(intervals), 2),
            "lease_interval_p99_seconds": round(percentile(intervals, 0.99), 2),
            "lease_interval_max_seconds": round(max(intervals), 2),
            "operator_cpu_percent_of_one_core": round(100 * cpu_share, 2),
            "operator_rss_peak_mib": round(peak, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    return stack.main("many_nodes", lambda work: run(args.nodes, args.seconds, work))


if __name__ == "__main__":
    sys.exit(main())
