"""Benchmark: the same burst on acinode and on virtual-kubelet's mock provider, on one control plane (issue 9).

virtual-kubelet's reference binary (`cmd/virtual-kubelet` v1.14.1, built from its pinned Go module by
`bench/virtualkubelet/vkbin.py` on first use, never in CI) registers its own Node with the `mock` provider,
which sets every pod Running the moment it is created. acinode runs against a zero-latency emulator. The same
Deployment (selecting its node by hostname, tolerating the virtual-kubelet taint) is scaled 0 → N → 0 on
acinode's node; then the operator is stopped and the same is done on virtual-kubelet's node, then on a second
virtual-kubelet peer. Each is measured the same way (`burst.burst`: a watch in the benchmark stamps bindings,
Running and deletions; CPU and RSS of the node's process); the result gives acinode ÷ peer ratios (≤ 1.0:
acinode no slower, no hungrier).

The peers:
- `virtual_kubelet_mock`: the reference binary as published. It keeps client-go's default client rate limit
  (5 requests/s, burst 10: `nodeutil.ClientsetFromEnv` never sets QPS), which is what its users get, and which
  alone decides how fast it reports a burst;
- `virtual_kubelet_tuned`: `bench/virtualkubelet/tunedmock`, the same node library (same version) with the
  mock's behaviour and the limit tensile-kube uses (500/s, burst 1,000): virtual-kubelet's own machinery.

Prints one JSON object; each burst carries its `timeline` (pods Running, pods left, over time), which
`bench/plots.py` draws for the three nodes. Bounded: every wait has a timeout; all traffic stays on loopback.

    .venv/bin/python bench/peer.py --sizes 100,500,1000 > bench/results/peer-1000.json
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

import burst
import stack

sys.path.insert(0, str(Path(__file__).resolve().parent / "virtualkubelet"))
import vkbin

VK_NODE = "vk-mock"
VK_TUNED_NODE = "vk-tuned"


def serving_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed serving certificate for virtual-kubelet's HTTPS port (it refuses to start without one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, VK_NODE)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "vk.crt", folder / "vk.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def start_virtual_kubelet(binary: Path, kubeconfig: Path, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = serving_certificate(folder)
    config = folder / "mock.json"
    # Capacity high enough for the largest burst (the mock's default is 20 pods).
    config.write_text(json.dumps({VK_NODE: {"cpu": "10000", "memory": "100Ti", "pods": "5000"}}))
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "APISERVER_CERT_LOCATION": str(cert),
        "APISERVER_KEY_LOCATION": str(key),
        "KUBELET_PORT": str(stack.kubecluster.free_port()),
        "VKUBELET_POD_IP": "127.0.0.1",
    }
    command = [
        str(binary),
        "--provider",
        "mock",
        "--provider-config",
        str(config),
        "--nodename",
        VK_NODE,
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-addr",
        f"127.0.0.1:{stack.kubecluster.free_port()}",
        "--log-level",
        "warn",
    ]
    with open(folder / "virtual-kubelet.log", "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def start_tuned(binary: Path, kubeconfig: Path, folder: Path) -> subprocess.Popen[bytes]:
    """virtual-kubelet's node library with the mock's behaviour and tensile-kube's client limit (500/s)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [str(binary), "--nodename", VK_TUNED_NODE, "--kubeconfig", str(kubeconfig)]
    command += ["--kube-api-qps", "500", "--kube-api-burst", "1000"]
    with open(folder / "tunedmock.log", "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def ratios(acinode: dict[str, Any], vk: dict[str, Any]) -> dict[str, Any]:
    """acinode ÷ virtual-kubelet for each size both completed."""
    out: dict[str, Any] = {}
    for size, ours in acinode.items():
        theirs = vk.get(size)
        if not isinstance(ours, dict) or not isinstance(theirs, dict) or "error" in theirs:
            continue
        out[size] = {
            "all_running": ratio(ours["all_running_seconds"], theirs["all_running_seconds"]),
            "all_gone": ratio(ours["all_gone_seconds"], theirs["all_gone_seconds"]),
            "binding_to_running_p50": ratio(
                ours["binding_to_running_seconds"].get("p50"), theirs["binding_to_running_seconds"].get("p50")
            ),
            "binding_to_running_p99": ratio(
                ours["binding_to_running_seconds"].get("p99"), theirs["binding_to_running_seconds"].get("p99")
            ),
            "cpu_seconds": ratio(ours["cpu_seconds"], theirs["cpu_seconds"]),
            "rss_peak": ratio(ours["rss_peak_mib"], theirs["rss_peak_mib"]),
        }
    return out


def run_peer(
    bed: stack.Stack,
    watcher: stack.PodWatcher,
    process: subprocess.Popen[bytes],
    node: str,
    sizes: Sequence[int],
    log: Path,
) -> dict[str, Any]:
    """The bursts on one virtual-kubelet node; an error (it crashed, it timed out) ends its series."""
    core = client.CoreV1Api(bed.api)
    out: dict[str, Any] = {}
    try:
        stack.wait_until(f"{node} Ready", lambda: burst.node_ready(core, node), 120, interval=0.5)
        burst.prepare_namespace(bed.api, node)
        meter = stack.ProcessMeter(process.pid)
        with meter.phase() as idle:
            time.sleep(5)
        out["idle"] = idle.summary()
        for size in sizes:
            print(f"[peer] {node}: {size} pods", file=sys.stderr, flush=True)
            if process.poll() is not None:
                out[str(size)] = {"error": f"{node} exited with {process.returncode}"}
                break
            try:
                out[str(size)] = burst.burst(
                    bed.api, watcher, meter, node, size, timeout=max(600.0, size * 1.2)
                )
            except SystemExit as err:
                out[str(size)] = {"error": str(err)}
                break
        meter.close()
    finally:
        stack.stop_process(process)
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        out["log_warnings"] = sum(1 for line in lines if "level=warning" in line)
        out["log_errors"] = [line[:300] for line in lines if "level=error" in line or "fatal" in line][-3:]
    return out


def run(sizes: Sequence[int], work: Path) -> dict[str, Any]:
    reference, tuned = vkbin.build("virtual-kubelet"), vkbin.build("tunedmock")
    spec = burst.PROFILES["zero"]
    env = {**stack.UNTHROTTLED, **stack.PRODUCTION_ENV}
    result: dict[str, Any] = {"sizes": list(sizes), "virtual_kubelet": vkbin.version()}
    acinode: dict[str, Any] = {}
    with stack.running_stack(work, spec["flags"], env, stack.PRODUCTION_ARGS) as bed:
        kubeconfig = bed.control_plane.kubeconfig
        # --- acinode, zero-latency emulator
        burst.declare_virtual_node(bed)
        burst.prepare_namespace(bed.api, burst.NODE)
        meter = stack.ProcessMeter(bed.operator_pid)
        watcher = stack.PodWatcher(bed.api, burst.NAMESPACE)
        try:
            for size in sizes:
                print(f"[peer] acinode: {size} pods", file=sys.stderr, flush=True)
                acinode[str(size)] = burst.burst(
                    bed.api,
                    watcher,
                    meter,
                    burst.NODE,
                    size,
                    emulator=bed.emulator,
                    timeout=600,
                    operator_log=bed.operator.log_path,
                )
            meter.close()
            bed.operator.stop()  # the peers run alone on the machine, as acinode did
            # --- the reference binary, mock provider
            folder = work / "virtual-kubelet"
            process = start_virtual_kubelet(reference, kubeconfig, folder)
            reference_result = run_peer(bed, watcher, process, VK_NODE, sizes, folder / "virtual-kubelet.log")
            # --- the node library with the mock's behaviour, client limit lifted
            folder = work / "tunedmock"
            process = start_tuned(tuned, kubeconfig, folder)
            tuned_result = run_peer(bed, watcher, process, VK_TUNED_NODE, sizes, folder / "tunedmock.log")
        finally:
            watcher.close()
    result["acinode"] = acinode
    result["virtual_kubelet_mock"] = reference_result
    result["virtual_kubelet_tuned"] = tuned_result
    result["ratio_acinode_to_virtual_kubelet"] = ratios(acinode, reference_result)
    result["ratio_acinode_to_virtual_kubelet_tuned"] = ratios(acinode, tuned_result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,500,1000", help="comma-separated burst sizes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    return stack.main("peer", lambda work: run(sizes, work))


if __name__ == "__main__":
    sys.exit(main())
