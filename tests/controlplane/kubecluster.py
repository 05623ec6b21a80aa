"""Build and run a real Kubernetes control plane on loopback, for acinode's tests and demo.

One Go binary (``tests/controlplane``, built from the published Kubernetes modules) runs as etcd,
kube-apiserver, kube-controller-manager, kube-scheduler or kubectl. This launcher builds it once into a cache
folder, starts the four components on free loopback ports with their state under one folder (``.cluster/``
by default), writes an admin kubeconfig there and waits until the cluster can serve pods.

Command line::

    python tests/controlplane/kubecluster.py build     # build the binary (once; again when the Go sources change)
    python tests/controlplane/kubecluster.py up        # start in the background, print the KUBECONFIG line
    python tests/controlplane/kubecluster.py status    # components, pids and memory
    python tests/controlplane/kubecluster.py down      # stop everything started by `up`

From Python (pytest fixtures): ``with ControlPlane(state_dir) as cp: cp.kubeconfig ...``; the components are
then tied to the calling process and die with it, even when it is killed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# tests/, for support.gobuild when this file is run as a script
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pki

from support import gobuild

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parent.parent
KUBE_VERSION = "v1.37.2"
MIN_GO = (1, 26)
LOG_LABEL = "controlplane"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CIDR = "10.0.0.0/24"


def log(message: str) -> None:
    gobuild.log(LOG_LABEL, message)


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says why and where to look."""


# --- Build ------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("ACINODE_KUBE_CACHE", REPO_ROOT / ".cache" / "kube")) / KUBE_VERSION


def _binary() -> gobuild.GoBinary:
    return gobuild.GoBinary(
        path=cache_dir() / "kube",
        module_dir=SOURCE_DIR,
        package=".",
        ldflags=(
            f"-s -w -X k8s.io/component-base/version.gitVersion={KUBE_VERSION} "
            f"-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 "
            "-X k8s.io/component-base/version.gitTreeState=clean"
        ),
        sources=tuple(sorted([*SOURCE_DIR.glob("*.go"), SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"])),
        # No digest_extras: the ldflags only stamp KUBE_VERSION, which already names the cache folder.
        description=f"the Kubernetes {KUBE_VERSION} control plane",
        log_label=LOG_LABEL,
        min_go=MIN_GO,
        expected_duration="first build: 10-25 min on 2 cores",
        go_hint="or set ACINODE_TEST_KUBECONFIG to use an existing cluster",
    )


def source_digest() -> str:
    return _binary().digest()


def build(force: bool = False) -> Path:
    """Return the control-plane binary, building it first if it is missing or its sources changed."""
    try:
        return _binary().build(force=force)
    except gobuild.GoBuildError as err:
        raise ControlPlaneError(str(err)) from err


# --- Run --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Make a component die when the process that started it dies (Linux PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


@dataclasses.dataclass
class ControlPlane:
    """A running (or startable) control plane whose state lives in ``state_dir``."""

    state_dir: Path
    node_monitor_grace_period: str = "20s"
    detach: bool = False
    """True: components outlive this process (``up`` from the command line); False: they die with it."""
    binary: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    ports: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        assert self.binary is not None
        result = subprocess.run(
            [str(self.binary), "kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- lifecycle

    def start(self, timeout: float = 120.0) -> None:
        self.binary = self.binary or build()
        started = time.monotonic()
        for sub in ("logs", "etcd"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        pki.ensure_pki(self.pki_dir)
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver")}
        try:
            self._spawn("etcd", self._etcd_args())
            self._wait_tcp("etcd", self.ports["etcd"], timeout)
            self._spawn("kube-apiserver", self._apiserver_args())
            self._write_kubeconfigs()
            self._wait_ready(timeout)
            self._spawn("kube-controller-manager", self._controller_manager_args())
            self._spawn("kube-scheduler", self._scheduler_args())
            self._wait_default_service_account(timeout)
        except BaseException:
            self.stop()
            raise
        self._write_state()
        log(f"control plane ready in {time.monotonic() - started:.1f}s at {self.server}")

    def stop(self, timeout: float = 15.0) -> None:
        for name in reversed(list(self.processes)):
            proc = self.processes[name]
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "pids.json").unlink()

    def restart_apiserver(self, timeout: float = 120.0) -> None:
        """Stop the kube-apiserver (SIGTERM, cutting every watch stream) and start it again on the same port,
        with the same etcd: what a rolling control-plane upgrade does. Waits until it is ready again."""
        proc = self.processes["kube-apiserver"]
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait_ready(timeout)
        self._write_state()

    # -- components

    def _spawn(self, component: str, args: Sequence[str]) -> None:
        assert self.binary is not None
        logfile = open(self.state_dir / "logs" / f"{component}.log", "ab")  # noqa: SIM115
        try:
            self.processes[component] = subprocess.Popen(
                [str(self.binary), component, *args],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent,  # noqa: PLW1509 (no threads yet)
            )
        finally:
            logfile.close()

    def _etcd_args(self) -> list[str]:
        return [
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-url=http://127.0.0.1:{self.ports['etcd']}",
            f"--listen-peer-url=http://127.0.0.1:{self.ports['etcd-peer']}",
        ]

    def _apiserver_args(self) -> list[str]:
        p = self.pki_dir
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={self.state_dir / 'apiserver-certs'}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # Loopback addresses are not valid endpoints of the `kubernetes` Service, so don't reconcile it.
            "--endpoint-reconciler-type=none",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            # The aggregation layer, as kubeadm sets it up (extension API servers such as metrics-server).
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
            "--profiling=false",
            "--v=1",
        ]

    def _controller_manager_args(self) -> list[str]:
        p = self.pki_dir
        return [
            f"--kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            "--secure-port=0",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--node-monitor-period=2s",
            f"--node-monitor-grace-period={self.node_monitor_grace_period}",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_args(self) -> list[str]:
        kubeconfig = self.state_dir / "scheduler.kubeconfig"
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--secure-port=0",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    # -- kubeconfigs and readiness

    def _write_kubeconfigs(self) -> None:
        for name, user in (
            ("kubeconfig", "admin"),
            ("controller-manager.kubeconfig", "controller-manager"),
            ("scheduler.kubeconfig", "scheduler"),
        ):
            path = self.state_dir / name
            path.write_text(json.dumps(self._kubeconfig_for(user), indent=2))
            path.chmod(0o600)

    def _kubeconfig_for(self, user: str) -> dict[str, Any]:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki_dir / name).read_bytes()).decode()

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "acinode-test",
                    "cluster": {"server": self.server, "certificate-authority-data": b64("ca.crt")},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(f"{user}.crt"),
                        "client-key-data": b64(f"{user}.key"),
                    },
                }
            ],
            "contexts": [{"name": "acinode-test", "context": {"cluster": "acinode-test", "user": user}}],
            "current-context": "acinode-test",
        }

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return ctx

    def api_get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.server + path, context=self._ssl_context(), timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                logfile = self.state_dir / "logs" / f"{name}.log"
                tail = logfile.read_text(errors="replace").splitlines()[-15:]
                raise ControlPlaneError(
                    f"{name} exited with {proc.returncode}; {logfile}:\n" + "\n".join(tail)
                )

    def _wait(self, what: str, predicate: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, ssl.SSLError):
                if predicate():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.state_dir}/logs"
        )

    def _wait_tcp(self, what: str, port: int, timeout: float) -> None:
        def connects() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        self._wait(what, connects, timeout)

    def _wait_ready(self, timeout: float) -> None:
        self._wait("kube-apiserver /readyz", lambda: self.api_get("/readyz")[0] == 200, timeout)

    def _wait_default_service_account(self, timeout: float) -> None:
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        self._wait("the default ServiceAccount", lambda: self.api_get(path)[0] == 200, timeout)

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "binary": str(self.binary),
            "pids": {name: proc.pid for name, proc in self.processes.items()},
        }
        (self.state_dir / "pids.json").write_text(json.dumps(state, indent=2))


# --- Detached processes (command line) ---------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def stop_detached(state_dir: Path, timeout: float = 15.0) -> bool:
    state_file = state_dir / "pids.json"
    if not state_file.exists():
        return False
    pids = json.loads(state_file.read_text())["pids"]
    for pid in reversed(list(pids.values())):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids.values():
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    state_file.unlink()
    return True


@contextlib.contextmanager
def peak_memory_sampler(pids: Sequence[int], interval: float = 0.5) -> Iterator[dict[str, int]]:
    """Sample the summed RSS of ``pids`` until the block ends; yields a dict whose ``peak_kib`` fills in."""
    result = {"peak_kib": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            result["peak_kib"] = max(result["peak_kib"], sum(_rss_kib(p) for p in pids))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("build", "up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".cluster")
    parser.add_argument("--force", action="store_true", help="build: rebuild even if up to date")
    parser.add_argument("--node-monitor-grace-period", default="20s")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    try:
        if args.command == "build":
            print(build(force=args.force))
        elif args.command == "up":
            if (state_dir / "pids.json").exists():
                stop_detached(state_dir)
            cp = ControlPlane(
                state_dir, node_monitor_grace_period=args.node_monitor_grace_period, detach=True
            )
            cp.start()
            print(f"export KUBECONFIG={cp.kubeconfig}")
        elif args.command == "down":
            print("stopped" if stop_detached(state_dir) else f"nothing running in {state_dir}")
        elif args.command == "status":
            state_file = state_dir / "pids.json"
            if not state_file.exists():
                print(f"not running ({state_dir})")
                return 1
            state = json.loads(state_file.read_text())
            print(f"server {state['server']}  kubeconfig {state['kubeconfig']}")
            for name, pid in state["pids"].items():
                status = "running" if _pid_alive(pid) else "gone"
                print(f"  {name:<25} pid {pid:<8} {status:<8} rss {_rss_kib(pid) / 1024:.0f} MiB")
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
