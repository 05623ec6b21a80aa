"""Benchmark: many VirtualNodes in one operator — lease renewal intervals, operator CPU and memory.

Declares N VirtualNodes (default 50) backed by the emulator, waits until all are Ready, then for a measurement
window reads every Lease in kube-node-lease once a second and records each renewTime. Reports the intervals
between successive renewals (p50, p99, max) and the operator's CPU share and peak RSS over the window.
Prints one JSON object. Bounded in time; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controlplane")]

import kubecluster  # noqa: E402
from kubernetes import client, config  # noqa: E402

from contract import emulated  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.virtualnodes import TOKEN_SECRET, VIRTUAL_NODES, virtual_node_body  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(nodes: int, seconds: float, work: Path) -> dict[str, Any]:
    with kubecluster.ControlPlane(work / "cluster", node_monitor_grace_period="40s") as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds" / "virtualnodes.acinode.dev.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev")
        emu = emulated.start_emulator(
            work / "emulator", "--no-throttle", "--no-network", "--log-level", "warning"
        )
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        coordination = client.CoordinationV1Api(api)
        operator = OperatorProcess(
            cp.kubeconfig, work / "operator.log", env={"ACINODE_NODE_PROBE_INTERVAL_SECONDS": "10"}
        )
        try:
            core.create_namespaced_secret(
                "default",
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name=TOKEN_SECRET),
                    data={"token": base64.b64encode(emu.token.encode()).decode()},
                ),
            )
            operator.start()
            assert operator.process is not None
            pid = operator.process.pid
            names = [f"vn-{index:03d}" for index in range(nodes)]
            for name in names:
                custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(name, emu))
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
            peak = rss_mib(pid)
            while time.monotonic() - wall_before < seconds:
                for lease in coordination.list_namespaced_lease("kube-node-lease").items:
                    stamps = renewals.get(lease.metadata.name)
                    renewed = lease.spec.renew_time.timestamp()
                    if stamps is not None and (not stamps or stamps[-1] != renewed):
                        stamps.append(renewed)
                peak = max(peak, rss_mib(pid))
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
        finally:
            operator.stop()
            emulated.stop_emulator(emu.process)
            api.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acinode-bench-") as folder:
        result = run(args.nodes, args.seconds, Path(folder))
    print(json.dumps({"benchmark": "many_nodes", **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
