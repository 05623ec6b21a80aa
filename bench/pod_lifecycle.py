"""Benchmark: a burst of pods onto one virtual node, and the operator's cost in a cluster full of other pods.

Measures, on the real control plane with `acinode run` and a zero-latency emulator:
- time for N pods (a Deployment scaled 0 → N) to be Running, and to be gone again (pods and groups) after → 0;
- ARM requests per pod lifecycle by operation (from the emulator's stats);
- the operator's peak RSS during the burst, and with M unrelated pods bound to an ordinary node.
Prints one JSON object. Bounded: every wait has a timeout; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

import stack
from support import arm
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body


class Sampler:
    """Peak RSS of one process, sampled whenever ``sample`` is called (from the wait loops)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0

    def sample(self) -> float:
        value = stack.rss_mib(self.pid)
        self.peak = max(self.peak, value)
        return value


def create_unrelated_pods(core: client.CoreV1Api, namespace: str, node: str, count: int) -> None:
    for index in range(count):
        core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"unrelated-{index}", "labels": {"app": "unrelated"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            },
        )


def deployment(node: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "burst"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "burst"}},
            "template": {
                "metadata": {"labels": {"app": "burst"}},
                "spec": {
                    "nodeSelector": {"acinode.dev/virtual-node": node},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [{"name": "web", "image": "nginx"}],
                },
            },
        },
    }


def run(pods: int, unrelated: int, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"pods": pods, "unrelated_pods": unrelated}
    flags = (
        "--provisioning-delay", "0", "--no-throttle", "--page-size", "1000",
        "--quota-container-groups", "100000", "--quota-cores", "1000000",
    )  # fmt: skip
    with stack.running_stack(work, flags, stack.UNTHROTTLED) as bed:
        emu = bed.emulator
        core, apps, custom = (
            client.CoreV1Api(bed.api),
            client.AppsV1Api(bed.api),
            client.CustomObjectsApi(bed.api),
        )
        sampler = Sampler(bed.operator_pid)
        node = "bench-vn"
        custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(node, emu))
        stack.wait_until(
            "virtual node Ready",
            lambda: (
                sampler.sample()
                and any(
                    c.type == "Ready" and c.status == "True"
                    for c in core.read_node(node).status.conditions or []
                )
            ),
            60,
        )
        result["operator_rss_idle_mib"] = round(sampler.sample(), 1)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))
        asyncio.run(emu.hook("POST", "stats/reset"))

        apps.create_namespaced_deployment("bench", deployment(node, pods))
        result["all_running_seconds"] = round(
            stack.wait_until(
                f"{pods} pods Running",
                lambda: (
                    sampler.sample() is not None
                    and sum(
                        1
                        for p in core.list_namespaced_pod("bench", label_selector="app=burst").items
                        if p.status.phase == "Running"
                    )
                    == pods
                ),
                300,
                interval=0.5,
            ),
            2,
        )
        apps.patch_namespaced_deployment_scale("burst", "bench", {"spec": {"replicas": 0}})
        result["all_gone_seconds"] = round(
            stack.wait_until(
                "pods and groups gone",
                lambda: (
                    sampler.sample() is not None
                    and not core.list_namespaced_pod("bench", label_selector="app=burst").items
                    and not arm.list_groups(emu, f"rg-{node}")
                ),
                300,
                interval=0.5,
            ),
            2,
        )
        stats = arm.stats(emu)["requests"]
        result["arm_requests_per_pod"] = {
            op: round(sum(codes.values()) / pods, 2) for op, codes in sorted(stats.items())
        }
        result["arm_errors"] = {
            op: {c: n for c, n in codes.items() if not c.startswith("2")}
            for op, codes in stats.items()
            if any(not c.startswith("2") for c in codes)
        }
        result["operator_rss_peak_burst_mib"] = round(sampler.peak, 1)

        if unrelated:
            stack.register_plain_node(core, "ordinary-node")
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="unrelated")))
            began = time.monotonic()
            before = sampler.sample()
            create_unrelated_pods(core, "unrelated", "ordinary-node", unrelated)
            result["unrelated_create_seconds"] = round(time.monotonic() - began, 1)
            # Give any watch of pods a chance to receive them all before reading memory.
            settle_until = time.monotonic() + 10
            while time.monotonic() < settle_until:
                sampler.sample()
                time.sleep(0.5)
            result["operator_rss_before_unrelated_mib"] = round(before, 1)
            result["operator_rss_with_unrelated_mib"] = round(sampler.sample(), 1)
        result["operator_rss_peak_mib"] = round(sampler.peak, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--unrelated", type=int, default=2000)
    args = parser.parse_args()
    return stack.main("pod_lifecycle", lambda work: run(args.pods, args.unrelated, work))


if __name__ == "__main__":
    sys.exit(main())
