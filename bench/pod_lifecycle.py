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
import base64
import datetime
import json
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
from support import arm  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.virtualnodes import TOKEN_SECRET, VIRTUAL_NODES, virtual_node_body  # noqa: E402

# Budgets far above the emulator's: this measures acinode's own cost, not ARM's limits.
UNTHROTTLED = {
    f"ACINODE_ACI_{name}": value
    for name, value in {
        "READS_PER_SECOND": "1000",
        "READ_BURST": "1000",
        "WRITES_PER_SECOND": "1000",
        "WRITE_BURST": "1000",
        "CREATES_PER_SECOND": "1000",
        "CREATE_BURST": "1000",
        "DELETES_PER_SECOND": "1000",
        "DELETE_BURST": "1000",
    }.items()
}


def wait(what: str, check: Any, timeout: float, interval: float = 0.2) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if check():
                return time.monotonic() - began
        except client.ApiException as err:
            if err.status != 404:
                raise
        time.sleep(interval)
    raise SystemExit(f"benchmark failed: {what} not reached within {timeout:.0f}s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """Peak RSS of one process, sampled whenever ``sample`` is called (from the wait loops)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0

    def sample(self) -> float:
        value = rss_mib(self.pid)
        self.peak = max(self.peak, value)
        return value


def register_plain_node(core: client.CoreV1Api, name: str) -> None:
    capacity = {"cpu": "1000", "memory": "4000Gi", "pods": "100000"}
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
    now = datetime.datetime.now(datetime.UTC).isoformat()
    core.patch_node_status(
        name,
        {
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Bench", "lastHeartbeatTime": now}
                ],
            }
        },
    )


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
    with kubecluster.ControlPlane(work / "cluster", node_monitor_grace_period="40s") as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds" / "virtualnodes.acinode.dev.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev")
        emu = emulated.start_emulator(
            work / "emulator",
            "--provisioning-delay",
            "0",
            "--no-throttle",
            "--page-size",
            "1000",
            "--quota-container-groups",
            "100000",
            "--quota-cores",
            "1000000",
            "--log-level",
            "warning",
        )
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        operator = OperatorProcess(cp.kubeconfig, work / "operator.log", env=UNTHROTTLED)
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
            sampler = Sampler(operator.process.pid)
            node = "bench-vn"
            custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(node, emu))
            wait(
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
                wait(
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
                wait(
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
                register_plain_node(core, "ordinary-node")
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
        finally:
            operator.stop()
            emulated.stop_emulator(emu.process)
            api.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--unrelated", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acinode-bench-") as folder:
        result = run(args.pods, args.unrelated, Path(folder))
    print(json.dumps({"benchmark": "pod_lifecycle", **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
