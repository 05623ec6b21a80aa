"""The stack every benchmark runs on: the local control plane, the ACI emulator and `acinode run`, torn down
together. Benchmarks differ only in what they do with it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controlplane")]

import kubecluster  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.watch.watch import iter_resp_lines  # noqa: E402

from contract import emulated  # noqa: E402
from support.operator_process import ACINODE, OperatorProcess  # noqa: E402
from support.virtualnodes import TOKEN_SECRET  # noqa: E402


@dataclasses.dataclass
class Stack:
    control_plane: kubecluster.ControlPlane
    emulator: emulated.Emulator
    api: client.ApiClient
    operator: OperatorProcess

    @property
    def operator_pid(self) -> int:
        assert self.operator.process is not None
        return self.operator.process.pid


# Budgets far above the emulator's: a benchmark of acinode's own cost, not of ARM's limits.
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
# Emulator quotas high enough for any burst (ACI's defaults are 100 groups and 100 cores per region).
NO_QUOTA = ("--quota-container-groups", "100000", "--quota-cores", "1000000")


class BenchOperator(OperatorProcess):
    """``acinode run`` with the command-line arguments a benchmark asks for (the tests always pass --verbose;
    the Helm chart runs ``--log-format=json`` without it, which is what the burst benchmarks measure)."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, env: Mapping[str, str] | None, args: Sequence[str]
    ) -> None:
        super().__init__(kubeconfig, log_path, env=env)
        self.args = list(args)

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        # ACINODE_BENCH_LAUNCHER: a command that runs acinode's CLI in place of the `acinode` script (for
        # example a Python wrapper that turns tracemalloc on); the arguments follow it.
        launcher = os.environ.get("ACINODE_BENCH_LAUNCHER", "").split() or [str(ACINODE)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*launcher, "run", "--kubeconfig", str(self.kubeconfig), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )


PRODUCTION_ARGS = ("--log-format", "json")
"""How the chart runs the operator: JSON logs at INFO, no --verbose."""
PRODUCTION_ENV = {
    "ACINODE_NODE_PROBE_INTERVAL_SECONDS": "10",
    "ACINODE_NODE_BACKEND_CHECK_TTL_SECONDS": "30",
    "ACINODE_NODE_API_TIMEOUT_SECONDS": "10",
    "ACINODE_METRICS_PORT": "0",
}
"""The settings' defaults in place of the tests' fast probe timings (``FAST_SETTINGS``: an ARM usage read every
second), and the metrics endpoint off, so that runs sharing the machine do not fight over its port (unscraped,
it costs nothing; older operators ignore the variable)."""


@contextlib.contextmanager
def running_stack(
    work: Path,
    emulator_flags: Sequence[str],
    operator_env: Mapping[str, str] | None = None,
    operator_args: Sequence[str] | None = None,
) -> Iterator[Stack]:
    """The control plane, the emulator and the operator. ``operator_args`` replaces the tests' ``--verbose``
    (``PRODUCTION_ARGS`` runs it as the chart does)."""
    with kubecluster.ControlPlane(work / "cluster", node_monitor_grace_period="40s") as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds" / "virtualnodes.acinode.dev.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev")
        emu = emulated.start_emulator(work / "emulator", *emulator_flags, "--log-level", "warning")
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        operator = (
            OperatorProcess(cp.kubeconfig, work / "operator.log", env=operator_env)
            if operator_args is None
            else BenchOperator(cp.kubeconfig, work / "operator.log", operator_env, operator_args)
        )
        try:
            client.CoreV1Api(api).create_namespaced_secret(
                "default",
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name=TOKEN_SECRET),
                    data={"token": base64.b64encode(emu.token.encode()).decode()},
                ),
            )
            operator.start()
            yield Stack(cp, emu, api, operator)
        finally:
            operator.stop()
            emulated.stop_emulator(emu.process)
            api.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- measuring ------------------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds_precise(pid: int) -> float:
    """CPU time of a process's live threads, in nanoseconds' precision (/proc/<pid>/task/*/schedstat): for
    comparing near-idle windows, where /proc/<pid>/stat's 10 ms ticks are too coarse. Threads that ended are
    not counted."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def distribution(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """p50 / p99 / max (and the count) of a list of durations in seconds."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 0.50), digits),
        "p99": round(percentile(values, 0.99), digits),
        "max": round(max(values), digits),
    }


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Poll ``check`` until it is true; returns the seconds it took, or stops the benchmark at ``timeout``."""
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


class ProcessMeter:
    """CPU seconds and resident memory of one process over a phase: ``with meter.phase() as phase: ...``.

    A sampler thread reads RSS every ``interval`` seconds; each phase keeps its own peak and mean, and the CPU
    time the process used between its start and its end."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._phases: list[Phase] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"meter-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> float:
        try:
            value = rss_mib(self.pid)
        except OSError:
            return 0.0
        self.peak = max(self.peak, value)
        for phase in self._phases:
            phase.samples.append(value)
        return value

    @contextlib.contextmanager
    def phase(self) -> Iterator[Phase]:
        phase = Phase(
            cpu_before=cpu_seconds(self.pid),
            began=time.monotonic(),
            precise_before=cpu_seconds_precise(self.pid),
        )
        self._phases.append(phase)
        self.sample()
        try:
            yield phase
        finally:
            self.sample()
            self._phases.remove(phase)
            phase.cpu_seconds = cpu_seconds(self.pid) - phase.cpu_before
            phase.cpu_seconds_precise = cpu_seconds_precise(self.pid) - phase.precise_before
            phase.wall_seconds = time.monotonic() - phase.began

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@dataclasses.dataclass
class Phase:
    cpu_before: float
    began: float
    precise_before: float = 0.0
    samples: list[float] = dataclasses.field(default_factory=list)
    cpu_seconds: float = 0.0
    cpu_seconds_precise: float = 0.0
    wall_seconds: float = 0.0

    @property
    def rss_peak_mib(self) -> float:
        return round(max(self.samples, default=0.0), 1)

    @property
    def rss_mean_mib(self) -> float:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "cpu_seconds": round(self.cpu_seconds, 2),
            "cpu_percent_of_one_core": round(100 * self.cpu_seconds / max(self.wall_seconds, 1e-9), 1),
            "rss_peak_mib": self.rss_peak_mib,
            "rss_mean_mib": self.rss_mean_mib,
        }


@dataclasses.dataclass
class PodTimes:
    """When the benchmark saw each step of one pod (``time.time()``, the clock the emulator stamps with)."""

    name: str
    seen: float
    node: str = ""
    bound: float | None = None
    running: float | None = None
    terminal: float | None = None
    """When the pod was first seen Succeeded or Failed."""
    finished_at: float | None = None
    """The last container's ``finishedAt`` in that status (whole seconds: the API's resolution)."""
    deleting: float | None = None
    deleted: float | None = None


class PodWatcher:
    """Watches the pods of one namespace from a thread and stamps when each was bound, Running and gone.

    It reads the watch stream as raw JSON lines (the kubernetes client's models are too slow for thousands of
    events), so what it measures is close to what the node's own watch sees."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.pods: dict[str, PodTimes] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = self.core.list_namespaced_pod(self.namespace, _preload_content=False)
                    body = json.loads(listed.data)
                    for item in body["items"]:
                        self._observe("ADDED", item)
                    version = body["metadata"]["resourceVersion"]
                response = self.core.list_namespaced_pod(
                    self.namespace,
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=5,
                    _preload_content=False,
                    _request_timeout=30,
                )
                try:
                    for line in iter_resp_lines(response):
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            version = ""  # 410 Gone: relist
                            break
                        version = event["object"]["metadata"].get("resourceVersion", version)
                        if event["type"] != "BOOKMARK":
                            self._observe(event["type"], event["object"])
                finally:
                    response.release_conn()
            except Exception:  # a dropped watch: resume from the last version seen
                if self._stop.wait(0.5):
                    return

    def _observe(self, kind: str, pod: dict[str, Any]) -> None:
        now = time.time()
        metadata, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        with self.changed:
            times = self.pods.get(metadata["uid"])
            if times is None:
                times = self.pods[metadata["uid"]] = PodTimes(metadata["name"], now)
            if spec.get("nodeName") and times.bound is None:
                times.bound, times.node = now, spec["nodeName"]
            if status.get("phase") == "Running" and times.running is None:
                times.running = now
            if status.get("phase") in ("Succeeded", "Failed") and times.terminal is None:
                times.terminal = now
                finished = [
                    s["state"]["terminated"].get("finishedAt")
                    for s in status.get("containerStatuses", [])
                    if "terminated" in s.get("state", {})
                ]
                stamps = [parse_time(f) for f in finished if f]
                times.finished_at = max(stamps) if stamps else None
            if metadata.get("deletionTimestamp") and times.deleting is None:
                times.deleting = now
            if kind == "DELETED":
                times.deleted = now
            self.changed.notify_all()

    def count(self, predicate: Callable[[PodTimes], bool]) -> int:
        with self.lock:
            return sum(1 for times in self.pods.values() if predicate(times))

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        """Block until ``predicate()`` (evaluated under the lock) holds; stops the benchmark at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"benchmark failed: {what} not reached within {timeout:.0f}s")
                self.changed.wait(min(left, 1.0))

    def snapshot(self) -> list[PodTimes]:
        with self.lock:
            return [dataclasses.replace(times) for times in self.pods.values()]

    def forget(self) -> None:
        """Drop every pod already deleted (between two bursts)."""
        with self.lock:
            self.pods = {uid: t for uid, t in self.pods.items() if t.deleted is None}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def profiled(pid: int, label: str) -> Iterator[None]:
    """With ACINODE_BENCH_PYSPY=<folder>, sample the process with py-spy (``pip install py-spy`` into .venv)
    for the duration of the block: ``<folder>/<label>.txt`` gets collapsed stacks (flamegraph.pl or
    speedscope read them), ``<folder>/<label>.top`` the functions by own and total samples."""
    folder = os.environ.get("ACINODE_BENCH_PYSPY")
    spy = Path(sys.executable).with_name("py-spy")
    if not folder or not spy.exists():
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    raw = Path(folder) / f"{label}.txt"
    command = [str(spy), "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "-o", str(raw)]
    process = subprocess.Popen(
        [*command, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        if raw.exists():
            (Path(folder) / f"{label}.top").write_text(top_functions(raw.read_text()))


def top_functions(collapsed: str, limit: int = 40) -> str:
    """Functions by total (inclusive) and own samples from py-spy's collapsed stacks."""
    total: dict[str, int] = {}
    own: dict[str, int] = {}
    samples = 0
    for line in collapsed.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack_text.split(";")
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{samples} samples", "", "total% own%  function"]
    for frame, count in sorted(total.items(), key=lambda kv: -kv[1])[:limit]:
        lines.append(f"{100 * count / samples:5.1f} {100 * own.get(frame, 0) / samples:5.1f}  {frame}")
    lines += ["", "own%  function"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:limit]:
        lines.append(f"{100 * count / samples:5.1f}  {frame}")
    return "\n".join(lines) + "\n"


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp (Kubernetes' or ARM's) as ``time.time()`` seconds."""
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def emulator_hook(emulator: emulated.Emulator, method: str, path: str, body: Any = None) -> Any:
    return asyncio.run(emulator.hook(method, path, body))


def arm_requests(emulator: emulated.Emulator) -> dict[str, dict[str, int]]:
    """The emulator's request counts by operation and status (its hooks are not counted)."""
    result: dict[str, dict[str, int]] = emulator_hook(emulator, "GET", "stats")["requests"]
    return result


def requests_delta(
    after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    delta: dict[str, dict[str, int]] = {}
    for operation, codes in after.items():
        for code, count in codes.items():
            diff = count - before.get(operation, {}).get(code, 0)
            if diff:
                delta.setdefault(operation, {})[code] = diff
    return delta


def throttled(requests: Mapping[str, Mapping[str, int]]) -> int:
    return sum(codes.get("429", 0) for codes in requests.values())


# --- the cluster around the node ----------------------------------------------------------------------------


def register_plain_node(core: client.CoreV1Api, name: str, pods: int = 100000) -> None:
    """An ordinary Node with no kubelet behind it (its Lease is kept by ``LeaseKeeper``)."""
    capacity = {"cpu": "1000", "memory": "4000Gi", "pods": str(pods)}
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


class LeaseKeeper:
    """Renews the Leases of kubelet-less Nodes every 10 s, so the node lifecycle controller keeps them Ready
    and never taints or evicts their pods during a long benchmark."""

    def __init__(self, api: client.ApiClient, nodes: Sequence[str]) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.nodes = list(nodes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            now = datetime.datetime.now(datetime.UTC)
            for node in self.nodes:
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(name=node, namespace="kube-node-lease"),
                    spec=client.V1LeaseSpec(holder_identity=node, lease_duration_seconds=40, renew_time=now),
                )
                try:
                    self.coordination.replace_namespaced_lease(node, "kube-node-lease", body)
                except client.ApiException as err:
                    if err.status == 404:
                        with contextlib.suppress(client.ApiException):
                            self.coordination.create_namespaced_lease("kube-node-lease", body)
            if self._stop.wait(10):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def main(name: str, run: Callable[[Path], dict[str, Any]]) -> int:
    """Run one benchmark in a scratch folder and print its JSON summary (with the machine's load average
    before and after: the machine may be shared, and a loaded one slows everything down)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    if os.environ.get("ACINODE_BENCH_KEEP"):  # keep the logs and state for a post-mortem
        folder = tempfile.mkdtemp(prefix=f"acinode-bench-{name}-")
        print(f"[{name}] work folder kept: {folder}", file=sys.stderr, flush=True)
        result = run(Path(folder))
    else:
        with tempfile.TemporaryDirectory(prefix="acinode-bench-") as scratch:
            result = run(Path(scratch))
    load = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps({"benchmark": name, **result, "load_average": load}, indent=2))
    return 0
