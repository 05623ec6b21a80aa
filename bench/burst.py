"""Benchmark: a Deployment scaled 0 → N → 0 onto one virtual node, for N = 100, 500, 1,000 (issue 9).

For each N, on the real control plane with `acinode run` (run as the Helm chart runs it: JSON logs, no
--verbose) and the ACI emulator:
- seconds from the scale-up until all N pods are Running, and from the scale-down until the pods and their
  container groups are all gone; the control plane's own share (the last pod created by the ReplicaSet
  controller, the last one bound by the scheduler) is reported beside them;
- per-pod latencies, p50 / p99 / max: binding → container-group PUT received by ARM (the emulator stamps the
  group's first `Pulling` event `--provisioning-delay` seconds after the PUT), ACI Running (the container's
  `startTime`) → pod Running in the API, and binding → pod Running;
- ARM requests per pod by operation (the emulator's stats), and 429s;
- the operator's CPU seconds and peak RSS during each phase;
- a timeline for plots (`bench/plots.py`): `timeline.up_running`, [seconds since the scale-up, pods Running]
  pairs (`up_bound`: pods bound by the scheduler), and `timeline.down_remaining`, [seconds since the
  scale-down, pods not yet deleted] pairs, one point where the count changes (thinned to at most 200), from the
  watch's stamps.
Bindings and Running transitions are stamped by a watch in the benchmark process (`stack.PodWatcher`).

Profiles: `zero` (no provisioning delay, no throttling: the operator's own cost) and `realistic`
(`--provisioning-delay 3`, ARM-like request latencies, and a few 429s with Retry-After from the emulator's fault
hooks). The client's rate budget is raised in both (ACI's real create limit is 100 per 5 minutes: a burst of
1,000 is a capacity-planning question, not a latency one); `bench/arm_economy.py` runs the default budget.

Prints one JSON object. Bounded: every wait has a timeout; all traffic stays on loopback.

    .venv/bin/python bench/burst.py --sizes 100,500,1000 --profiles zero,realistic
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client

import stack
from contract import emulated
from support import arm
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body

NAMESPACE = "burst"
DEPLOYMENT = "burst"
NODE = "bench-vn"

# Request latencies and throttling of the realistic profile, as emulator fault rules (first match wins, so
# each 429 rule comes before its latency-only rule). 2 % of writes and 1 % of reads answer 429 Retry-After 1.
REALISTIC_FAULTS: list[dict[str, Any]] = [
    {"operation": "ContainerGroups_CreateOrUpdate", "rate": 0.02, "status": 429, "code": "TooManyRequests",
     "message": "Injected throttling.", "retryAfter": 1, "latencySeconds": 0.3},
    {"operation": "ContainerGroups_CreateOrUpdate", "status": None, "latencySeconds": 0.3},
    {"operation": "ContainerGroups_Delete", "rate": 0.02, "status": 429, "code": "TooManyRequests",
     "message": "Injected throttling.", "retryAfter": 1, "latencySeconds": 0.2},
    {"operation": "ContainerGroups_Delete", "status": None, "latencySeconds": 0.2},
    {"operation": "ContainerGroups_Get", "rate": 0.01, "status": 429, "code": "SubscriptionRequestsThrottled",
     "message": "Injected throttling.", "retryAfter": 1, "latencySeconds": 0.05},
    {"operation": "ContainerGroups_Get", "status": None, "latencySeconds": 0.05},
    {"operation": "ContainerGroups_ListByResourceGroup", "rate": 0.01, "status": 429,
     "code": "SubscriptionRequestsThrottled", "message": "Injected throttling.", "retryAfter": 1,
     "latencySeconds": 0.1},
    {"operation": "ContainerGroups_ListByResourceGroup", "status": None, "latencySeconds": 0.1},
]  # fmt: skip

PROFILES: dict[str, dict[str, Any]] = {
    "zero": {
        "flags": ("--provisioning-delay", "0", "--no-throttle", "--no-network", *stack.NO_QUOTA),
        "provisioning_delay": 0.0,
        "faults": [],
    },
    "realistic": {
        "flags": ("--provisioning-delay", "3", "--no-throttle", "--no-network", *stack.NO_QUOTA),
        "provisioning_delay": 3.0,
        "faults": REALISTIC_FAULTS,
    },
}


def deployment(node: str, replicas: int) -> dict[str, Any]:
    """The burst Deployment; it selects its node by hostname, so the same manifest fits acinode and VK."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "burst"}},
            "template": {
                "metadata": {"labels": {"app": "burst"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [{"name": "web", "image": "nginx"}],
                },
            },
        },
    }


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _group_details(
    emulator: emulated.Emulator, resource_group: str, names: Sequence[str], concurrency: int = 8
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """GET every group (with its instance view), a few at a time. Returns the groups and the requests that
    took by status, so that they can be taken out of the emulator's counts."""
    base = (
        f"{emulator.url}/subscriptions/{emulated.SUBSCRIPTION}/resourceGroups/{resource_group}"
        "/providers/Microsoft.ContainerInstance/containerGroups"
    )
    context = ssl.create_default_context(cafile=emulator.ca_file)
    headers = {"Authorization": f"Bearer {emulator.token}"}
    found: dict[str, dict[str, Any]] = {}
    sent: dict[str, int] = {}
    queue = list(names)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while queue:
                name = queue.pop()
                for _ in range(5):
                    async with session.get(f"{base}/{name}?api-version=2023-05-01") as response:
                        sent[str(response.status)] = sent.get(str(response.status), 0) + 1
                        if response.status == 200:
                            found[name] = await response.json()
                            break
                        await response.read()
                        if response.status != 429:
                            break
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return found, sent


def group_times(
    emulator: emulated.Emulator, resource_group: str, provisioning_delay: float
) -> tuple[dict[str, tuple[float | None, float | None]], dict[str, dict[str, int]]]:
    """Pod name → (PUT received, ACI Running) from each group's instance view, and the benchmark's own ARM
    requests (to be taken out of the operator's counts)."""
    before = stack.arm_requests(emulator)
    listed = arm.list_groups(emulator, resource_group)
    listing = stack.requests_delta(stack.arm_requests(emulator), before)
    details, sent = asyncio.run(_group_details(emulator, resource_group, [g["name"] for g in listed]))
    own = {
        "ContainerGroups_ListByResourceGroup": listing.get("ContainerGroups_ListByResourceGroup", {}),
        "ContainerGroups_Get": sent,
    }
    times: dict[str, tuple[float | None, float | None]] = {}
    for group in details.values():
        pod = (group.get("tags") or {}).get("acinode.pod")
        containers = group["properties"]["containers"]
        view = containers[0]["properties"].get("instanceView") or {}
        pulling = [
            parse_time(e.get("firstTimestamp")) for e in view.get("events", []) if e.get("name") == "Pulling"
        ]
        put = pulling[0] - provisioning_delay if pulling and pulling[0] else None
        started = parse_time((view.get("currentState") or {}).get("startTime"))
        if pod:
            times[pod] = (put, started)
    return times, own


def subtract(
    requests: dict[str, dict[str, int]], own: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """The operator's requests: the emulator's counts less the benchmark's own."""
    out: dict[str, dict[str, int]] = {}
    for operation, codes in requests.items():
        for code, count in codes.items():
            left = count - own.get(operation, {}).get(code, 0)
            if left > 0:
                out.setdefault(operation, {})[code] = left
    return out


def put_answers(log: Path) -> dict[str, float]:
    """Pod name → when the operator logged its PUT answered (the last one), from its JSON log lines."""
    answered: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if '"container group submitted"' not in line or '"pod"' not in line:
                continue
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                answered[record["pod"]] = stack.parse_time(record["timestamp"])
    return answered


TIMELINE_POINTS = 200


def step_timeline(
    offsets: Sequence[float], initial: int, delta: int, points: int = TIMELINE_POINTS
) -> list[list[float]]:
    """A count that starts at ``initial`` and moves by ``delta`` (+1 or -1) at each of ``offsets`` (seconds
    since the phase began), as [seconds, count] pairs: [0, initial] first, then one pair per distinct time
    (to the hundredth of a second) where the count changed, thinned to at most ``points`` pairs. Thinning
    keeps evenly spaced changes and always the last one: a line through the pairs follows the count's curve
    and ends exactly where the phase did."""
    changes: list[list[float]] = []
    count = initial
    for offset in sorted(max(0.0, o) for o in offsets):
        count += delta
        at = round(offset, 2)
        if changes and changes[-1][0] == at:
            changes[-1][1] = count
        else:
            changes.append([at, count])
    start = changes.pop(0) if changes and changes[0][0] == 0.0 else [0.0, initial]
    room = max(1, points - 1)
    if len(changes) > room:
        step = len(changes) / room
        changes = [changes[round((i + 1) * step) - 1] for i in range(room)]  # the last one included
    return [start, *changes]


def groups_left(emulator: emulated.Emulator) -> int:
    return int(stack.emulator_hook(emulator, "GET", "stats")["groups"]["total"])


def burst(
    api: client.ApiClient,
    watcher: stack.PodWatcher,
    meter: stack.ProcessMeter,
    node: str,
    size: int,
    *,
    emulator: emulated.Emulator | None = None,
    provisioning_delay: float = 0.0,
    timeout: float = 600.0,
    operator_log: Path | None = None,
) -> dict[str, Any]:
    """Scale the Deployment 0 → ``size`` → 0 on ``node``; with an emulator, the ARM side too. With the
    operator's JSON log, binding → PUT answered (its "container group submitted" lines) is reported too."""
    apps = client.AppsV1Api(api)
    result: dict[str, Any] = {"pods": size}
    watcher.forget()

    def live() -> list[stack.PodTimes]:
        return [t for t in watcher.pods.values() if t.deleted is None]

    own: dict[str, dict[str, int]] = {}
    before = stack.arm_requests(emulator) if emulator is not None else {}
    # --- 0 → N
    with meter.phase() as up, stack.profiled(meter.pid, f"{node}-{size}-up"):
        began = time.time()
        apps.patch_namespaced_deployment_scale(DEPLOYMENT, NAMESPACE, {"spec": {"replicas": size}})
        watcher.wait_for(
            f"{size} pods Running on {node}",
            lambda: sum(1 for t in live() if t.running is not None) >= size,
            timeout,
        )
    pods = [t for t in watcher.snapshot() if t.deleted is None]
    running = [t for t in pods if t.running is not None and t.bound is not None]
    result["all_running_seconds"] = round(max(t.running for t in running if t.running) - began, 2)
    result["control_plane"] = {
        "last_pod_created_seconds": round(max(t.seen for t in pods) - began, 2),
        "last_pod_bound_seconds": round(max(t.bound for t in running if t.bound) - began, 2),
    }
    result["binding_to_running_seconds"] = stack.distribution(
        [t.running - t.bound for t in running if t.running and t.bound]
    )
    result["up"] = up.summary()
    timeline = {
        "up_running": step_timeline([t.running - began for t in pods if t.running], 0, +1),
        "up_bound": step_timeline([t.bound - began for t in pods if t.bound], 0, +1),
    }

    if emulator is not None:
        times, own = group_times(emulator, f"rg-{node}", provisioning_delay)
        to_put, aci_to_pod = [], []
        for t in running:
            put, started = times.get(t.name, (None, None))
            if put is not None and t.bound is not None:
                to_put.append(put - t.bound)
            if started is not None and t.running is not None:
                aci_to_pod.append(t.running - started)
        result["binding_to_put_seconds"] = stack.distribution(to_put)
        if operator_log is not None:
            answered = put_answers(operator_log)
            result["binding_to_put_answered_seconds"] = stack.distribution(
                [answered[t.name] - t.bound for t in running if t.bound and t.name in answered]
            )
        result["aci_running_to_pod_running_seconds"] = stack.distribution(aci_to_pod)

    # --- N → 0
    with meter.phase() as down, stack.profiled(meter.pid, f"{node}-{size}-down"):
        began = time.time()
        apps.patch_namespaced_deployment_scale(DEPLOYMENT, NAMESPACE, {"spec": {"replicas": 0}})
        watcher.wait_for(f"{size} pods gone from {node}", lambda: not live(), timeout)
        pods_gone = max((t.deleted or 0.0) for t in watcher.snapshot()) - began
        if emulator is not None:
            stack.wait_until("container groups gone", lambda: groups_left(emulator) == 0, timeout, 0.25)
        gone = time.time() - began if emulator is not None else pods_gone
    deletions = [t for t in watcher.snapshot() if t.deleting and t.deleted]
    present = [t for t in watcher.snapshot() if t.deleted is None or t.deleted >= began]
    timeline["down_remaining"] = step_timeline(
        [t.deleted - began for t in present if t.deleted], len(present), -1
    )
    result["all_gone_seconds"] = round(max(gone, pods_gone), 2)
    result["pods_gone_seconds"] = round(pods_gone, 2)
    result["deletion_to_gone_seconds"] = stack.distribution(
        [t.deleted - t.deleting for t in deletions if t.deleted and t.deleting]
    )
    result["down"] = down.summary()
    result["cpu_seconds"] = round(up.cpu_seconds + down.cpu_seconds, 2)
    result["rss_peak_mib"] = max(up.rss_peak_mib, down.rss_peak_mib)
    result["timeline"] = timeline

    if emulator is not None:
        requests = subtract(stack.requests_delta(stack.arm_requests(emulator), before), own)
        result["arm_requests_per_pod"] = {
            op: round(sum(codes.values()) / size, 3) for op, codes in sorted(requests.items()) if codes
        }
        result["arm_requests"] = {op: codes for op, codes in sorted(requests.items()) if codes}
        result["arm_throttled"] = stack.throttled(requests)
    return result


def prepare_namespace(api: client.ApiClient, node: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    with contextlib.suppress(client.ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    with contextlib.suppress(client.ApiException):
        apps.delete_namespaced_deployment(DEPLOYMENT, NAMESPACE)
        stack.wait_until(
            "old Deployment gone",
            lambda: not apps.list_namespaced_deployment(NAMESPACE).items,
            60,
        )
    apps.create_namespaced_deployment(NAMESPACE, deployment(node, 0))


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or [])


def declare_virtual_node(bed: stack.Stack, name: str = NODE) -> None:
    custom = client.CustomObjectsApi(bed.api)
    body = virtual_node_body(name, bed.emulator, capacity={"pods": 5000})
    custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
    core = client.CoreV1Api(bed.api)
    stack.wait_until(f"virtual node {name} Ready", lambda: node_ready(core, name), 90, 0.5)


def run_profile(profile: str, sizes: Sequence[int], work: Path) -> dict[str, Any]:
    spec = PROFILES[profile]
    env = {**stack.UNTHROTTLED, **stack.PRODUCTION_ENV}
    result: dict[str, Any] = {"emulator_flags": list(spec["flags"]), "faults": spec["faults"]}
    with stack.running_stack(work, spec["flags"], env, stack.PRODUCTION_ARGS) as bed:
        declare_virtual_node(bed)
        meter = stack.ProcessMeter(bed.operator_pid)
        with meter.phase() as idle:
            time.sleep(5)
        result["operator_idle"] = idle.summary()
        prepare_namespace(bed.api, NODE)
        watcher = stack.PodWatcher(bed.api, NAMESPACE)
        if spec["faults"]:
            stack.emulator_hook(bed.emulator, "PUT", "faults", {"rules": spec["faults"], "seed": 9})
        try:
            for size in sizes:
                print(f"[burst] {profile}: {size} pods", file=sys.stderr, flush=True)
                result[str(size)] = burst(
                    bed.api,
                    watcher,
                    meter,
                    NODE,
                    size,
                    emulator=bed.emulator,
                    provisioning_delay=spec["provisioning_delay"],
                    timeout=max(300.0, size * 0.6),
                    operator_log=bed.operator.log_path,
                )
        finally:
            watcher.close()
            meter.close()
        result["operator_rss_peak_mib"] = round(meter.peak, 1)
    return result


def run(profiles: Sequence[str], sizes: Sequence[int], work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"sizes": list(sizes)}
    for profile in profiles:
        result[profile] = run_profile(profile, sizes, work / profile)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,500,1000", help="comma-separated burst sizes")
    parser.add_argument("--profiles", default="zero,realistic", help=f"of {', '.join(PROFILES)}")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    profiles = [p for p in args.profiles.split(",") if p]
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profiles: {sorted(unknown)}")
    return stack.main("burst", lambda work: run(profiles, sizes, work))


if __name__ == "__main__":
    sys.exit(main())
