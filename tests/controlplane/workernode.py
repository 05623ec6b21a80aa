"""A real worker node for the local control plane (opt-in: ``make cluster-up WORKER=1``). See docs/worker-node.md.

* Binaries: the kubelet and kube-proxy come from one Go binary (``tests/controlplane/kubeworker``, its own module
  pinned to the same Kubernetes modules as the control-plane binary, so it never rebuilds that one); the sandbox
  image's ``pause`` is a static Go binary from the same module, written into a one-layer OCI archive. containerd,
  runc and the CNI plugins are Debian's packages (``containerd runc containernetworking-plugins``).
* Network: the node lives in a network namespace this module creates (``acinode-<hash>``), joined to the host by
  one veth pair (host 10.250.0.1/30, node 10.250.0.2/30, the node's InternalIP) and a host route to the pod CIDR.
  Pods sit on a CNI bridge inside that namespace. The API server stays on 127.0.0.1: a forwarder listens inside the
  node namespace on 127.0.0.1:<port> (kubelet, kube-proxy) and 10.250.0.2:<port> (the ``kubernetes`` Service's
  endpoint, for pods) and connects to the host's 127.0.0.1:<port>. Nothing listens on a host address.
* Mounts: containerd and the kubelet share one mount namespace (a slave of the host's), where three sysctl files
  the kubelet insists on changing (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) are shadowed by files
  holding the values it wants, so it never writes the host's kernel settings; with ``protectKernelDefaults`` it
  refuses to start rather than write them.
* No CAP_SYS_RESOURCE (this sandbox's root lacks it): containerd's ``restrict_oom_score_adj``.
* cgroup v1: ``failCgroupV1: false`` and the cgroupfs driver (containerd 1.6 has no RuntimeConfig CRI call).
* Images: no registry anywhere. ``ctr images import`` loads OCI archives; every pull fails (the sandbox image is
  ``acinode.local/pause:3.10``, a name no registry serves).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import hashlib
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kubecluster
import ociarchive
import pki

from support import gobuild

WORKER_SOURCE_DIR = kubecluster.SOURCE_DIR / "kubeworker"
LOG_LABEL = "worker"


def log(message: str) -> None:
    gobuild.log(LOG_LABEL, message)


def _binary() -> gobuild.GoBinary:
    v = kubecluster.KUBE_VERSION
    return gobuild.GoBinary(
        path=kubecluster.cache_dir() / "kubeworker",
        module_dir=WORKER_SOURCE_DIR,
        package=".",
        ldflags=(
            f"-s -w -X k8s.io/component-base/version.gitVersion={v} "
            f"-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 "
            "-X k8s.io/component-base/version.gitTreeState=clean"
        ),
        sources=tuple(
            sorted(
                [*WORKER_SOURCE_DIR.glob("*.go"), WORKER_SOURCE_DIR / "go.mod", WORKER_SOURCE_DIR / "go.sum"]
            )
        ),
        description=f"the Kubernetes {v} kubelet and kube-proxy",
        log_label=LOG_LABEL,
        min_go=kubecluster.MIN_GO,
        expected_duration="first build: 3-10 min on 2 cores (packages shared with the control plane are cached)",
        low_priority=True,
    )


def build(force: bool = False) -> Path:
    try:
        return _binary().build(force=force)
    except gobuild.GoBuildError as err:
        raise kubecluster.ControlPlaneError(str(err)) from err


def _static_binary(name: str, description: str) -> gobuild.GoBinary:
    return gobuild.GoBinary(
        path=kubecluster.cache_dir() / name,
        module_dir=WORKER_SOURCE_DIR,
        package=f"./{name}",
        ldflags="-s -w",
        sources=(WORKER_SOURCE_DIR / name / "main.go",),
        description=description,
        log_label=LOG_LABEL,
        min_go=kubecluster.MIN_GO,
        expected_duration="seconds",
        cgo=False,
    )


def _one_binary_image(name: str, image: str, description: str, user: str) -> Path:
    binary = _static_binary(name, description).build()
    archive = binary.with_name(f"{name}.oci.tar")
    stamp = archive.with_name(f"{name}.oci.tar.source")
    digest = gobuild.stamp_path(binary).read_text().strip() + image
    if not archive.exists() or not stamp.exists() or stamp.read_text() != digest:
        ociarchive.write(
            archive, image, [ociarchive.File(name, binary.read_bytes())], [f"/{name}"], user=user
        )
        stamp.write_text(digest)
    return archive


def pause_archive() -> Path:
    """The sandbox image as an OCI archive (built once, reproducibly)."""
    return _one_binary_image("pause", PAUSE_IMAGE, "the sandbox image's pause binary", "65535:65535")


def netcheck_archive() -> Path:
    """A one-binary test image (serve / get / sleep), for the worker tests that do not need Debian's curl."""
    return _one_binary_image("netcheck", NETCHECK_IMAGE, "the netcheck test image", "65532:65532")


# --- Run --------------------------------------------------------------------------------------------------

NODE_NAME = "acinode-worker"
POD_CIDR = "10.244.0.0/24"
HOST_LINK_IP = "10.250.0.1"
NODE_IP = "10.250.0.2"
PAUSE_IMAGE = "acinode.local/pause:3.10"
NETCHECK_IMAGE = "acinode.local/netcheck:1"
KUBELET_PORT = 10250
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
REQUIRED_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "ip": "iproute2",
    "iptables": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
}
# What the kubelet wants these kernel settings to be (container_manager_linux.go setupKernelTunables).
SHADOWED_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
WORKER_COMPONENTS = ("forwarder", "containerd", "kubelet", "kube-proxy", "standin-router")
STANDIN_RANGES = (
    "127.240.0.0/16",
)  # the emulator's default --ip-range (operator/acinode/emulator/config.py)
SOURCE_CNI_PLUGIN = kubecluster.SOURCE_DIR / "cni" / "acinode-standin"
CLONE_NEWNET = 0x40000000
VAR_LIB_KUBELET = Path("/var/lib/kubelet")
CNI_RESULTS = Path("/var/lib/cni/results")


class WorkerUnavailableError(RuntimeError):
    """This machine cannot run the worker node; the message says what is missing."""


def cni_bin_dir() -> str | None:
    return next((d for d in CNI_BIN_DIRS if (Path(d) / "bridge").exists()), None)


def unavailable_reason() -> str | None:
    """Why the worker node cannot run here, or None when it can (root, Linux, Debian's packages)."""
    if sys.platform != "linux":
        return "the worker node needs Linux"
    if os.geteuid() != 0:
        return "the worker node needs root (network and mount namespaces, cgroups, containerd)"
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if cni_bin_dir() is None:
        missing.append("containernetworking-plugins")
    if missing:
        return "missing packages: apt-get install " + " ".join(sorted(set(missing)))
    if not Path("/sys/fs/cgroup").exists():
        return "no /sys/fs/cgroup"
    return None


def _run(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise kubecluster.ControlPlaneError(
            f"{' '.join(cmd)} failed: {result.stderr.strip() or result.stdout}"
        )
    return result


def _setns(path: str) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


@dataclasses.dataclass
class WorkerNode:
    """The node's namespaces, files and processes, beside a control plane in ``cp_state_dir``."""

    cp_state_dir: Path
    server: str  # https://127.0.0.1:<port> of the control plane
    detach: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.cp_state_dir / "worker"

    @property
    def tag(self) -> str:
        return hashlib.sha256(str(self.cp_state_dir.resolve()).encode()).hexdigest()[:6]

    @property
    def netns(self) -> str:
        return f"acinode-{self.tag}"

    @property
    def host_veth(self) -> str:
        return f"acw{self.tag}"

    @property
    def mntns(self) -> Path:
        return self.state_dir / "ns" / "mnt"

    @property
    def api_port(self) -> int:
        return int(self.server.rsplit(":", 1)[1])

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "run" / "containerd.sock"

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        cmd = ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args]
        return _run(*cmd, check=check, timeout=timeout).stdout

    # -- lifecycle

    def start(self, kubectl: Any, timeout: float = 180.0) -> None:
        """Start the node and wait until it is Ready; ``kubectl(*args, input_text=...)`` runs admin kubectl."""
        reason = unavailable_reason()
        if reason:
            raise WorkerUnavailableError(reason)
        started = time.monotonic()
        binary = build()
        pause = pause_archive()
        for sub in ("logs", "run", "ns", "cni/net.d", "cni/ipam", "cni/bin", "kubelet", "pod-logs", "sysctl"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._write_credentials()
            self._setup_network()
            self._setup_mount_namespace()
            self._write_configs()
            self._spawn_forwarder()
            self._spawn("containerd", ["containerd", "--config", str(self.state_dir / "containerd.toml")])
            self._wait("containerd", lambda: self.ctr("version", check=False, timeout=10) != "", timeout)
            log(f"importing the sandbox image {PAUSE_IMAGE} from {pause}")
            self.ctr("images", "import", "--no-unpack", str(pause))
            self.ctr("images", "import", str(netcheck_archive()))
            self._apply_cluster_objects(kubectl)
            self._spawn("kubelet", [str(binary), "kubelet", *self._kubelet_args()])
            self._spawn(
                "kube-proxy", [str(binary), "kube-proxy", f"--config={self.state_dir / 'kube-proxy.yaml'}"]
            )
            self._spawn_standin_router()
            self._wait_node_ready(kubectl, timeout)
        except BaseException:
            self.stop()
            raise
        self._write_state()
        log(f"worker node {NODE_NAME} Ready in {time.monotonic() - started:.1f}s (InternalIP {NODE_IP})")

    def import_image(self, archive: Path, name: str | None = None) -> None:
        """Load an OCI (or docker-save) archive into the node's containerd; ``name`` tags it."""
        before = set(self.ctr("images", "list", "-q").split())
        self.ctr("images", "import", "--all-platforms", str(archive))
        if name:
            after = set(self.ctr("images", "list", "-q").split())
            new = sorted(after - before) or sorted(after)
            if name not in after:
                source = next((n for n in new if not n.startswith("sha256:")), new[0])
                self.ctr("images", "tag", "--force", source, name)

    def stop(self) -> None:
        # The kubelet first: it would recreate every sandbox killed under it.
        for name in ("kube-proxy", "kubelet"):
            self._terminate(name)
        with contextlib.suppress(Exception):
            self._remove_pods()
        self._kill_shims()
        for name in ("containerd", "forwarder", "standin-router"):
            self._terminate(name)
        self._teardown()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "pids.json").unlink()

    # -- set-up steps

    def _write_credentials(self) -> None:
        pki_dir = self.cp_state_dir / "pki"
        ca = pki._ca(pki_dir, "ca")
        pki._leaf(pki_dir, "kubelet", ca, f"system:node:{NODE_NAME}", ("system:nodes",))
        pki._leaf(pki_dir, "kube-proxy", ca, "system:kube-proxy")
        pki._leaf(
            pki_dir,
            "kubelet-serving",
            ca,
            f"system:node:{NODE_NAME}",
            server_names=(NODE_NAME,),
            server_ips=(NODE_IP,),
        )
        cp = kubecluster.ControlPlane(self.cp_state_dir)
        cp.ports = {"apiserver": self.api_port}
        for name, user in (("kubelet.kubeconfig", "kubelet"), ("kube-proxy.kubeconfig", "kube-proxy")):
            path = self.state_dir / name
            path.write_text(json.dumps(cp._kubeconfig_for(user), indent=2))
            path.chmod(0o600)

    def _setup_network(self) -> None:
        self._teardown_network()  # a previous run killed hard
        other = _run("ip", "route", "show", POD_CIDR, check=False).stdout.strip()
        if other:
            raise WorkerUnavailableError(
                f"another worker node runs on this machine (host route {other!r}): one at a time; stop it first "
                "(make cluster-down, or workernode.py --state-dir <its dir> down)"
            )
        ns = self.netns
        _run("ip", "netns", "add", ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", self.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "addr", "add", f"{HOST_LINK_IP}/30", "dev", self.host_veth)
        _run("ip", "link", "set", self.host_veth, "up")
        _run("ip", "-n", ns, "addr", "add", f"{NODE_IP}/30", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "route", "add", "default", "via", HOST_LINK_IP)
        # The host reaches pods (the API server calling an in-cluster kubelet API) through the node.
        _run("ip", "route", "add", POD_CIDR, "via", NODE_IP, "dev", self.host_veth)
        # Inside the node only: forwarding between pods, bridged traffic through iptables (kube-proxy's rules).
        if not Path("/proc/sys/net/bridge").exists() and shutil.which("modprobe"):
            # Service replies between pods on one bridge must pass iptables (conntrack) to be un-DNATed.
            _run("modprobe", "br_netfilter", check=False)
        # route_localnet: the node forwards the emulator's loopback stand-in IPs (see cni/acinode-standin).
        keys = (
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.route_localnet=1",
            "net.bridge.bridge-nf-call-iptables=1",
        )
        for key in keys:
            _run("ip", "netns", "exec", ns, "sysctl", "-w", key, check=key.startswith("net.ipv4"))

    def _setup_mount_namespace(self) -> None:
        # The kubelet creates /var/lib/kubelet/device-plugins whatever its --root-dir: remove it after if it is ours.
        if not VAR_LIB_KUBELET.exists():
            (self.state_dir / "created-var-lib-kubelet").touch()
        ns_dir = self.state_dir / "ns"
        if not _is_mountpoint(ns_dir):
            _run("mount", "--bind", str(ns_dir), str(ns_dir))
            _run("mount", "--make-private", str(ns_dir))
        self.mntns.touch()
        binds = []
        for key, value in SHADOWED_SYSCTLS.items():
            fake = self.state_dir / "sysctl" / key.replace("/", ".")
            fake.write_text(value + "\n")
            binds.append(f"mount --bind {fake} /proc/sys/{key}")
        _run("unshare", f"--mount={self.mntns}", "--propagation", "slave", "sh", "-ec", "; ".join(binds))

    def _write_configs(self) -> None:
        s = self.state_dir
        # containerd 1.6 takes one CNI folder: Debian's plugins and acinode-standin, linked side by side.
        cni_dir = s / "cni" / "bin"
        debian_cni = Path(cni_bin_dir() or CNI_BIN_DIRS[0])
        for plugin in [*debian_cni.iterdir(), SOURCE_CNI_PLUGIN]:
            link = cni_dir / plugin.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(plugin)
        pki_dir = self.cp_state_dir / "pki"
        (s / "containerd.toml").write_text(
            f"""version = 2
root = "{s / "containerd" / "root"}"
state = "{s / "run" / "containerd"}"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
oom_score = 0
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{s / "run" / "containerd-ttrpc.sock"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{s / "containerd" / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # This host withholds CAP_SYS_RESOURCE even from root: a negative oom_score_adj (the kubelet asks -998 for
  # sandboxes) is refused ("failed to update /proc/self/oom_score_adj: Permission denied"), so clamp to ours.
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{s / "run" / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_dir}"
    conf_dir = "{s / "cni" / "net.d"}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
"""
        )
        (s / "cni" / "net.d" / "10-acinode.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "acinode-pods",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "cni0",
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(s / "cni" / "ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                        {
                            "type": "acinode-standin",
                            "standinRanges": list(STANDIN_RANGES),
                            "netnsRecord": str(s / "cni" / "netns.txt"),
                            "api": {
                                "server": f"https://127.0.0.1:{self.api_port}",
                                "caFile": str(pki_dir / "ca.crt"),
                                "certFile": str(pki_dir / "kubelet.crt"),
                                "keyFile": str(pki_dir / "kubelet.key"),
                            },
                        },
                    ],
                },
                indent=2,
            )
        )
        (s / "resolv.conf").write_text("# no DNS on the acinode worker node\n")
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "tlsCertFile": str(pki_dir / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki_dir / "kubelet-serving.key"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "protectKernelDefaults": True,
            "podLogsDir": str(s / "pod-logs"),
            "resolvConf": str(s / "resolv.conf"),
            "clusterDomain": "cluster.local",
            "podCIDR": POD_CIDR,
            "maxPods": 50,
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "nodeStatusReportFrequency": "10s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "shutdownGracePeriod": "0s",
            "enableServer": True,
            "registerNode": True,
            "localStorageCapacityIsolation": False,
        }
        (s / "kubelet.yaml").write_text(json.dumps(kubelet_config, indent=2))
        proxy_config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(s / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "bindAddress": NODE_IP,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # 0: leave the host's conntrack table size and timeouts alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        (s / "kube-proxy.yaml").write_text(json.dumps(proxy_config, indent=2))

    def _kubelet_args(self) -> list[str]:
        s = self.state_dir
        return [
            f"--config={s / 'kubelet.yaml'}",
            f"--kubeconfig={s / 'kubelet.kubeconfig'}",
            f"--root-dir={s / 'kubelet'}",
            f"--cert-dir={s / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ]

    def _apply_cluster_objects(self, kubectl: Any) -> None:
        """The ``kubernetes`` Service's endpoint (the forwarder inside the node) and the API server's kubelet RBAC."""
        objects = [
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {
                        "kubernetes.io/service-name": "kubernetes",
                        "endpointslice.kubernetes.io/managed-by": "acinode-worker",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": self.api_port, "protocol": "TCP"}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "acinode-worker:kubelet-api-admin"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:kubelet-api-admin",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubelet-api-admin"}
                ],
            },
        ]
        kubectl(
            "apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        )

    # -- processes

    def _spawn(self, component: str, cmd: Sequence[str], in_namespaces: bool = True) -> None:
        logfile = open(self.state_dir / "logs" / f"{component}.log", "ab")  # noqa: SIM115
        prefix = ["nsenter", f"--net=/var/run/netns/{self.netns}", f"--mount={self.mntns}", "--"]
        env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
        try:
            self.processes[component] = subprocess.Popen(
                [*(prefix if in_namespaces else []), *cmd],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=None if self.detach else kubecluster._die_with_parent,  # noqa: PLW1509
            )
        finally:
            logfile.close()

    def _spawn_forwarder(self) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "forward", "--netns", self.netns]
        cmd += ["--port", str(self.api_port), "--listen", "127.0.0.1", "--listen", NODE_IP]
        self._spawn("forwarder", cmd, in_namespaces=False)

    def _spawn_standin_router(self) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "standin-routes", "--netns", self.netns]
        cmd += ["--state-dir", str(self.cp_state_dir), "--port", str(self.api_port)]
        self._spawn("standin-router", cmd, in_namespaces=False)

    def _terminate(self, name: str, timeout: float = 15.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                logfile = self.state_dir / "logs" / f"{name}.log"
                tail = logfile.read_text(errors="replace").splitlines()[-15:]
                raise kubecluster.ControlPlaneError(
                    f"{name} exited with {proc.returncode}; {logfile}:\n" + "\n".join(tail)
                )

    def _wait(self, what: str, predicate: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(Exception):
                if predicate():
                    return
            time.sleep(0.5)
        raise kubecluster.ControlPlaneError(
            f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.state_dir}/logs"
        )

    def _wait_node_ready(self, kubectl: Any, timeout: float) -> None:
        """Ready, as posted by this kubelet (a Node object left by an earlier run may still say Ready)."""
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'

        def ready() -> bool:
            status, _, heartbeat = kubectl(
                "get", "node", NODE_NAME, "-o", f"jsonpath={jsonpath}", check=False
            ).partition(" ")
            return status == "True" and heartbeat >= since

        self._wait(f"node {NODE_NAME} Ready", ready, timeout)

    # -- tear-down

    def _remove_pods(self) -> None:
        """Kill and delete every task, so that each shim exits and removes its socket (in /run/containerd/s)."""
        if not self.containerd_socket.exists():
            return
        tasks = self.ctr("tasks", "list", "-q", check=False, timeout=30).split()
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False, timeout=30)
        for task in tasks:
            self.ctr("tasks", "delete", "--force", task, check=False, timeout=30)
        # libcni caches each ADD's result in /var/lib/cni/results, whatever containerd's folders.
        for container in self.ctr("containers", "list", "-q", check=False, timeout=30).split():
            for prefix in ("acinode-pods", "cni-loopback"):
                for cached in CNI_RESULTS.glob(f"{prefix}-{container}-*"):
                    cached.unlink(missing_ok=True)

    def _kill_shims(self) -> None:
        """containerd's shims outlive containerd: kill those serving this node (found by their -address)."""
        needle = str(self.state_dir / "run")
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
                if (
                    cmdline
                    and cmdline[0].endswith(b"containerd-shim-runc-v2")
                    and any(needle.encode() in arg for arg in cmdline)
                ):
                    os.kill(int(proc_dir.name), signal.SIGKILL)

    def _teardown(self) -> None:
        self._unmount_under(self.state_dir / "kubelet")
        self._unmount_under(self.state_dir / "run")
        self._unmount_under(self.state_dir / "containerd")
        self._teardown_network()
        ns_dir = self.state_dir / "ns"
        for path in (self.mntns, ns_dir):
            if _is_mountpoint(path):
                _run("umount", "-l", str(path), check=False)
        self._remove_cgroups()
        marker = self.state_dir / "created-var-lib-kubelet"
        if marker.exists():
            shutil.rmtree(VAR_LIB_KUBELET, ignore_errors=True)
            marker.unlink()

    def _teardown_network(self) -> None:
        # Pod network namespaces containerd made for this node's sandboxes (their veths die with the node's).
        for netns in self._pod_netns():
            _run("ip", "netns", "delete", netns, check=False)
        _run("ip", "route", "del", POD_CIDR, "via", NODE_IP, check=False)
        _run("ip", "link", "del", self.host_veth, check=False)
        if Path(f"/var/run/netns/{self.netns}").exists():
            _run("ip", "netns", "delete", self.netns, check=False)

    def _pod_netns(self) -> list[str]:
        """Pod network namespaces containerd made for this node: cni/acinode-standin records each one on ADD.
        They are mounted inside the node's mount namespace (gone with it); the host keeps their empty files."""
        record = self.state_dir / "cni" / "netns.txt"
        names = set(record.read_text().split()) if record.exists() else set()
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
        return sorted(n for n in names if n.startswith("cni-") and Path(f"/var/run/netns/{n}").exists())

    def _unmount_under(self, root: Path) -> None:
        prefix = str(root.resolve()) + "/"
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            _run("umount", "-l", mount, check=False)

    def _remove_cgroups(self) -> None:
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            root = hierarchy / "kubepods"
            if not root.is_dir():
                continue
            for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda w: len(w[0]), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)

    def _write_state(self) -> None:
        state = {"netns": self.netns, "pids": {n: p.pid for n, p in self.processes.items()}}
        (self.state_dir / "pids.json").write_text(json.dumps(state, indent=2))


def _is_mountpoint(path: Path) -> bool:
    target = str(path.resolve())
    return any(line.split()[1] == target for line in Path("/proc/self/mounts").read_text().splitlines())


# --- The API server forwarder (runs as its own process) ---------------------------------------------------


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 3600)
            if not readable:
                continue
            for src in readable:
                data = src.recv(65536)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def forward(netns: str, port: int, listen: Sequence[str]) -> None:
    """Listen inside ``netns`` on each address:port; connect each client to the host's 127.0.0.1:port."""
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    _setns(f"/var/run/netns/{netns}")
    servers = []
    for address in listen:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((address, port))
        server.listen(128)
        servers.append(server)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(host_ns, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(host)")
    os.close(host_ns)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"forwarding {', '.join(f'{a}:{port}' for a in listen)} in {netns} to 127.0.0.1:{port}", flush=True)
    while True:
        readable, _, _ = select.select(servers, [], [])
        for server in readable:
            client, _ = server.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()


# --- Stand-in routes (runs as its own process) ---------------------------------------------------------------


def standin_routes(cp_state_dir: Path, netns: str, port: int, interval: float = 1.0) -> None:
    """Keep one route per virtual-node pod in the node: ``<stand-in IP>/32 via <its Node's InternalIP>``.

    A virtual Node's InternalIP is the IP of the operator pod serving it, whose emulator answers on the stand-in
    IP; routes go in table ``local`` (they must beat ``local 127.0.0.0/8``). Stale routes are removed."""
    pki_dir = cp_state_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    pod_net = ipaddress.ip_network(POD_CIDR)
    standin = [ipaddress.ip_network(r) for r in STANDIN_RANGES]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=10) as resp:
            return json.load(resp)

    while True:
        time.sleep(interval)
        try:
            via: dict[str, str] = {}
            for node in get("/api/v1/nodes")["items"]:
                for addr in node.get("status", {}).get("addresses", []):
                    if addr["type"] == "InternalIP" and ipaddress.ip_address(addr["address"]) in pod_net:
                        via[node["metadata"]["name"]] = addr["address"]
            wanted: dict[str, str] = {}
            for pod in get("/api/v1/pods")["items"]:
                ip, node_name = pod.get("status", {}).get("podIP"), pod["spec"].get("nodeName")
                if ip and node_name in via and any(ipaddress.ip_address(ip) in r for r in standin):
                    wanted[ip] = via[node_name]
            table = _run("ip", "-n", netns, "route", "show", "table", "local", check=False).stdout
            present = {}
            for line in table.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[1] == "via":
                    present[parts[0].removesuffix("/32")] = parts[2]
            for ip, gateway in wanted.items():
                if present.get(ip) != gateway:
                    _run(
                        "ip",
                        "-n",
                        netns,
                        "route",
                        "replace",
                        f"{ip}/32",
                        "via",
                        gateway,
                        "dev",
                        "cni0",
                        "table",
                        "local",
                        check=False,
                    )
                    print(f"route {ip} via {gateway}", flush=True)
            for ip in present.keys() - wanted.keys():
                _run("ip", "-n", netns, "route", "del", f"{ip}/32", "table", "local", check=False)
                print(f"route {ip} removed", flush=True)
        except (OSError, ValueError, KeyError) as err:
            print(f"standin-routes: {err}", flush=True)


# --- Command line ------------------------------------------------------------------------------------------


def stop_detached(cp_state_dir: Path) -> bool:
    """Stop a detached worker node (``make cluster-down``); also cleans up after one killed hard."""
    state_file = cp_state_dir / "worker" / "pids.json"
    node = WorkerNode(cp_state_dir, server="https://127.0.0.1:0")
    if not (cp_state_dir / "worker").exists():
        return False
    pids = json.loads(state_file.read_text())["pids"] if state_file.exists() else {}
    # The kubelet first: it would recreate every sandbox killed under it.
    for name in ("kube-proxy", "kubelet"):
        if name in pids:
            _stop_pid(pids[name])
    with contextlib.suppress(Exception):
        node._remove_pods()
    node._kill_shims()
    for name in ("containerd", "forwarder", "standin-router"):
        if name in pids:
            _stop_pid(pids[name])
    node._teardown()
    with contextlib.suppress(FileNotFoundError):
        state_file.unlink()
    return True


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while kubecluster._pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=("build", "up", "down", "status", "import", "check", "forward", "standin-routes")
    )
    parser.add_argument("--state-dir", type=Path, default=kubecluster.REPO_ROOT / ".cluster")
    parser.add_argument(
        "--with-control-plane",
        action="store_true",
        help="build/up/down/status: the control plane too (kubecluster.py), then the worker (make ... WORKER=1)",
    )
    parser.add_argument("--node-monitor-grace-period", default="20s")
    parser.add_argument("--netns")
    parser.add_argument("--port", type=int)
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("archives", nargs="*", type=Path, help="import: OCI archives [name=archive]")
    args = parser.parse_intermixed_args(argv)
    state_dir: Path = args.state_dir.resolve()
    cp_args = ["--state-dir", str(state_dir)]
    try:
        if args.with_control_plane and args.command in ("up", "down", "build"):
            if args.command == "down":
                if stop_detached(state_dir):
                    print("worker stopped")
                return kubecluster.main(["down", *cp_args])
            if args.command == "build" and kubecluster.main(["build"]) != 0:
                return 1
            if args.command == "up":
                stop_detached(state_dir)  # `up` restarts the control plane: never orphan a worker
                grace = f"--node-monitor-grace-period={args.node_monitor_grace_period}"
                if kubecluster.main(["up", *cp_args, grace]) != 0:
                    return 1
        if args.command == "forward":
            forward(args.netns, args.port, args.listen)
        elif args.command == "standin-routes":
            standin_routes(state_dir, args.netns, args.port)
        elif args.command == "check":
            reason = unavailable_reason()
            print(reason or "ok")
            return 1 if reason else 0
        elif args.command == "build":
            print(build())
            print(pause_archive())
            print(netcheck_archive())
        elif args.command == "status":
            if args.with_control_plane:
                kubecluster.main(["status", *cp_args])
            state_file = state_dir / "worker" / "pids.json"
            if not state_file.exists():
                print(f"no worker node ({state_dir})")
                return 1
            state = json.loads(state_file.read_text())
            print(f"worker node {NODE_NAME}  netns {state['netns']}  InternalIP {NODE_IP}")
            for name, pid in state["pids"].items():
                status = "running" if kubecluster._pid_alive(pid) else "gone"
                print(f"  {name:<25} pid {pid:<8} {status:<8} rss {kubecluster._rss_kib(pid) / 1024:.0f} MiB")
        elif args.command == "up":
            cp_state = json.loads((state_dir / "pids.json").read_text())
            stop_detached(state_dir)
            node = WorkerNode(state_dir, server=cp_state["server"], detach=True)
            cp = kubecluster.ControlPlane(state_dir, binary=Path(cp_state["binary"]))
            node.start(cp.kubectl)
            print(f"export KUBECONFIG={cp.kubeconfig}")
        elif args.command == "down":
            print("worker stopped" if stop_detached(state_dir) else f"no worker in {state_dir}")
        elif args.command == "import":
            node = WorkerNode(state_dir, server="https://127.0.0.1:0")
            for item in args.archives:
                name, _, path = str(item).rpartition("=")
                node.import_image(Path(path), name or None)
                log(f"imported {path}" + (f" as {name}" if name else ""))
    except (kubecluster.ControlPlaneError, WorkerUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
