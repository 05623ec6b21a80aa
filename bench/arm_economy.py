"""Benchmark: ARM requests — per pod lifecycle, and steady-state reads for 1,000 Running pods (issue 9).

On one stack (control plane, emulator with ARM's and ACI's own throttling, `acinode run` as the chart runs it):
1. **Default budget lifecycle**: a Deployment scaled 0 → K → 0 (K = 50, inside the default create and delete
   bursts of 60) with the operator's default rate budget against the emulator's real-ARM throttling: ARM
   requests per pod by operation, and every 429 (target: none).
2. **1,000 Running pods**: scaled up with a raised budget and the emulator's throttling off (ACI itself would
   take 50 minutes to accept 1,000 creates), then the operator is restarted with the **default** budget and the
   emulator's throttling back on. Counted from the restart: the reads the restart costs (its first minute),
   then the steady-state reads per minute over a window (target ≤ 60/min; virtual-kubelet's azure-aci
   provider makes 2 GETs per pod every 5 s, 24,000/min for 1,000 pods), and every 429 (target: none).
Prints one JSON object. Bounded: every wait has a timeout; all traffic stays on loopback.

    .venv/bin/python bench/arm_economy.py --lifecycle-pods 50 --pods 1000 --window 180
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

import burst
import stack

READS = ("ContainerGroups_Get", "ContainerGroups_ListByResourceGroup", "Location_ListUsage")
AZURE_ACI_GETS_PER_POD_PER_MINUTE = 2 * 60 / 5  # PodsTracker: two GETs per pod every 5 s


def reads_by_operation(requests: dict[str, dict[str, int]]) -> dict[str, int]:
    return {op: sum(codes.values()) for op, codes in sorted(requests.items()) if not _is_write(op)}


def _is_write(operation: str) -> bool:
    return operation.endswith(("_CreateOrUpdate", "_Delete", "_Update", "_Start", "_Stop", "_Restart"))


def restart_operator(bed: stack.Stack, env: dict[str, str]) -> stack.ProcessMeter:
    bed.operator.stop()
    bed.operator.env = {**bed.operator.env, **env}
    for name in list(bed.operator.env):
        if name.startswith("ACINODE_ACI_") and name not in env:
            del bed.operator.env[name]  # back to the default budget
    bed.operator.start()
    return stack.ProcessMeter(bed.operator_pid)


def run(lifecycle_pods: int, pods: int, window: float, work: Path) -> dict[str, Any]:
    flags = ("--provisioning-delay", "0.5", "--no-network", *stack.NO_QUOTA)  # throttling on (ARM's limits)
    result: dict[str, Any] = {"emulator_flags": list(flags)}
    with stack.running_stack(work, flags, stack.PRODUCTION_ENV, stack.PRODUCTION_ARGS) as bed:
        emulator = bed.emulator
        burst.declare_virtual_node(bed)
        burst.prepare_namespace(bed.api, burst.NODE)
        watcher = stack.PodWatcher(bed.api, burst.NAMESPACE)
        meter = stack.ProcessMeter(bed.operator_pid)
        try:
            # 1. one lifecycle of K pods with the default budget, against ARM's throttling
            print(f"[arm] default budget: {lifecycle_pods} pods", file=sys.stderr, flush=True)
            stack.emulator_hook(emulator, "POST", "throttle/reset")
            lifecycle = burst.burst(bed.api, watcher, meter, burst.NODE, lifecycle_pods, emulator=emulator)
            result["default_budget_lifecycle"] = {
                key: lifecycle[key]
                for key in (
                    "pods",
                    "all_running_seconds",
                    "all_gone_seconds",
                    "arm_requests_per_pod",
                    "arm_requests",
                    "arm_throttled",
                )
            }

            # 2. 1,000 Running pods: scaled up with a raised budget and no throttling…
            print(f"[arm] scaling to {pods} pods", file=sys.stderr, flush=True)
            stack.emulator_hook(emulator, "PATCH", "config", {"throttle": False})
            meter.close()
            meter = restart_operator(bed, {**stack.PRODUCTION_ENV, **stack.UNTHROTTLED})
            before = stack.arm_requests(emulator)
            apps = client.AppsV1Api(bed.api)
            apps.patch_namespaced_deployment_scale(
                burst.DEPLOYMENT, burst.NAMESPACE, {"spec": {"replicas": pods}}
            )
            watcher.wait_for(
                f"{pods} pods Running",
                lambda: sum(1 for t in watcher.pods.values() if t.running and not t.deleted) >= pods,
                900,
            )
            time.sleep(20)  # the last groups leave the transition set
            scale_up = stack.requests_delta(stack.arm_requests(emulator), before)
            result["scale_up_requests_per_pod"] = {
                op: round(sum(codes.values()) / pods, 3) for op, codes in scale_up.items()
            }

            # …then the operator restarts with the default budget, the emulator throttling as ARM does.
            stack.emulator_hook(emulator, "PATCH", "config", {"throttle": True})
            stack.emulator_hook(emulator, "POST", "throttle/reset")
            meter.close()
            before = stack.arm_requests(emulator)
            meter = restart_operator(bed, stack.PRODUCTION_ENV)
            with meter.phase() as restart:
                time.sleep(60)
            after_restart = stack.arm_requests(emulator)
            restart_requests = stack.requests_delta(after_restart, before)
            with meter.phase() as steady:
                time.sleep(window)
            steady_requests = stack.requests_delta(stack.arm_requests(emulator), after_restart)
            running = sum(1 for t in watcher.pods.values() if t.running and not t.deleted)
        finally:
            watcher.close()
            meter.close()
    reads = reads_by_operation(steady_requests)
    per_minute = sum(reads.values()) / (window / 60)
    result["steady_state"] = {
        "running_pods": running,
        "window_seconds": window,
        "reads_by_operation": reads,
        "reads_per_minute": round(per_minute, 1),
        "writes": sum(sum(c.values()) for op, c in steady_requests.items() if _is_write(op)),
        "throttled": stack.throttled(steady_requests),
        "azure_aci_provider_reads_per_minute": int(AZURE_ACI_GETS_PER_POD_PER_MINUTE * running),
        "operator": steady.summary(),
    }
    result["restart_first_minute"] = {
        "requests": restart_requests,
        "throttled": stack.throttled(restart_requests),
        "operator": restart.summary(),
    }
    result["throttled_with_default_budget"] = (
        result["default_budget_lifecycle"]["arm_throttled"]
        + result["steady_state"]["throttled"]
        + result["restart_first_minute"]["throttled"]
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lifecycle-pods", type=int, default=50)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--window", type=float, default=180.0, help="steady-state window, seconds")
    args = parser.parse_args()
    return stack.main("arm_economy", lambda work: run(args.lifecycle_pods, args.pods, args.window, work))


if __name__ == "__main__":
    sys.exit(main())
