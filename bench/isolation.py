"""Benchmark: the operator's cost does not grow with the rest of the cluster (issue 9).

One idle virtual node in `acinode run` (run as the chart runs it). The operator's CPU and memory are measured
over two windows in the empty cluster (their difference is the noise floor), then 10,000 pods are bound to
ordinary (kubelet-less) Nodes, whose Leases the benchmark keeps fresh so that nothing is evicted, and the
operator is measured again over the same window. Target: within 10 % of the empty cluster's. An idle operator
uses about 0.04 CPU-seconds a minute, so CPU is read from the threads' nanosecond counters. The operator watches pods with a `spec.nodeName` field selector per
virtual node, so it should never receive one of them.

Prints one JSON object. Bounded: every wait has a timeout; all traffic stays on loopback.

    .venv/bin/python bench/isolation.py --pods 10000 --nodes 10 --window 120
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

import burst
import stack

NAMESPACE = "unrelated"


def create_pods(api: client.ApiClient, nodes: list[str], count: int, threads: int = 6) -> float:
    """``count`` pods spread over ``nodes`` (bound directly, as if scheduled); returns the seconds it took."""
    core = client.CoreV1Api(api)

    def create(index: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"unrelated-{index:05d}", "labels": {"app": "unrelated"}},
            "spec": {
                "nodeName": nodes[index % len(nodes)],
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "containers": [{"name": "c", "image": "busybox"}],
            },
        }
        for attempt in range(5):
            try:
                core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)
                return
            except client.ApiException as err:
                if err.status == 409:
                    return
                if attempt == 4:
                    raise
                time.sleep(1)

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in concurrent.futures.as_completed([pool.submit(create, i) for i in range(count)]):
            future.result()
    return time.monotonic() - began


def count_pods(api: client.ApiClient, field_selector: str = "") -> int:
    listed = client.CoreV1Api(api).list_pod_for_all_namespaces(
        field_selector=field_selector, limit=1, _preload_content=True
    )
    remaining = listed.metadata.remaining_item_count or 0
    return len(listed.items) + remaining


def run(pods: int, nodes: int, window: float, work: Path) -> dict[str, Any]:
    flags = ("--no-throttle", "--no-network")
    result: dict[str, Any] = {"unrelated_pods": pods, "ordinary_nodes": nodes, "window_seconds": window}
    with stack.running_stack(work, flags, stack.PRODUCTION_ENV, stack.PRODUCTION_ARGS) as bed:
        core = client.CoreV1Api(bed.api)
        burst.declare_virtual_node(bed)
        meter = stack.ProcessMeter(bed.operator_pid)
        names = [f"ordinary-{index:02d}" for index in range(nodes)]
        leases = stack.LeaseKeeper(bed.api, names)
        try:
            for name in names:
                stack.register_plain_node(core, name)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
            time.sleep(10)  # settle after start-up and registration
            print("[isolation] empty cluster", file=sys.stderr, flush=True)
            with meter.phase() as empty:
                time.sleep(window)
            with meter.phase() as empty_again:  # the same, again: the noise between two alike windows
                time.sleep(window)
            print(f"[isolation] creating {pods} pods", file=sys.stderr, flush=True)
            with meter.phase() as creating:
                result["create_seconds"] = round(create_pods(bed.api, names, pods), 1)
            print("[isolation] loaded cluster", file=sys.stderr, flush=True)
            with meter.phase() as loaded:
                time.sleep(window)
            result["pods_in_cluster"] = count_pods(bed.api)
            result["pods_on_virtual_node"] = count_pods(bed.api, f"spec.nodeName={burst.NODE}")
        finally:
            leases.close()
            meter.close()
    result["empty"] = empty.summary()
    result["empty_again"] = empty_again.summary()
    result["while_creating"] = creating.summary()
    result["loaded"] = loaded.summary()
    result["rss_mean_change_percent"] = round(100 * (loaded.rss_mean_mib / empty_again.rss_mean_mib - 1), 1)
    result["rss_peak_change_percent"] = round(100 * (loaded.rss_peak_mib / empty.rss_peak_mib - 1), 1)
    # An idle operator uses a few clock ticks a minute: compare the threads' nanosecond counters instead.
    per_minute = {
        name: 60 * phase.cpu_seconds_precise / phase.wall_seconds
        for name, phase in (("empty", empty), ("empty_again", empty_again), ("loaded", loaded))
    }
    result["cpu_seconds_per_minute"] = {name: round(value, 4) for name, value in per_minute.items()}
    baseline = (per_minute["empty"] + per_minute["empty_again"]) / 2
    result["cpu_change_percent"] = round(100 * (per_minute["loaded"] / baseline - 1), 1) if baseline else None
    result["cpu_noise_percent"] = (
        round(100 * abs(per_minute["empty_again"] / per_minute["empty"] - 1), 1)
        if per_minute["empty"]
        else None
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--window", type=float, default=120.0, help="measurement window, seconds")
    args = parser.parse_args()
    return stack.main("isolation", lambda work: run(args.pods, args.nodes, args.window, work))


if __name__ == "__main__":
    sys.exit(main())
