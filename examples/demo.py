"""`make demo`: the seed article's walkthrough of AKS virtual nodes, run locally with acinode.

A real Kubernetes control plane (built from the Kubernetes Go modules), the acinode operator, and the ACI
emulator standing in for Azure: declare a virtual node, deploy the article's sample app onto it, see it Running
with its own IP, fetch its page, delete it, and watch the pod and its container group disappear.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "controlplane"))
import kubecluster  # noqa: E402

ACINODE = Path(sys.executable).with_name("acinode")
SEED = REPO / "examples" / "seed" / "virtual-node.yaml"
VIRTUAL_NODE = REPO / "examples" / "emulator" / "virtualnode.yaml"
NODE = "virtual-node-aci-linux"
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"\n[{time.monotonic() - STARTED:6.1f}s] == {message}", flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with contextlib.suppress(Exception):
            result = check()
            if result:
                print(f"   ({what}: {time.monotonic() - began:.1f}s)", flush=True)
                return result
        time.sleep(0.25)
    raise SystemExit(f"demo failed: timed out after {timeout:.0f}s waiting for {what}")


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[subprocess.Popen[bytes]] = []
        self.cluster = kubecluster.ControlPlane(work / "cluster")
        self.emulator: dict[str, Any] = {}

    def kubectl(self, *args: str, show: bool = True, input_text: str | None = None) -> str:
        if show:
            print(f"$ kubectl {' '.join(args)}", flush=True)
        out = self.cluster.kubectl(*args, input_text=input_text)
        if show and out.strip():
            print(out.rstrip(), flush=True)
        return out

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.work / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [str(ACINODE), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        )

    def start(self) -> None:
        say(
            "Building (once) and starting a local Kubernetes control plane: etcd, apiserver, controller-manager, scheduler"
        )
        self.cluster.start()
        say("Starting the ACI emulator (ARM-compatible, HTTPS, on loopback) in place of Azure")
        state = self.work / "emulator"
        self.spawn(
            "emulator", "emulator", "--state-dir", str(state), "--port", "0", "--provisioning-delay", "2"
        )
        self.emulator = wait_for(
            "emulator ready", lambda: json.loads((state / "endpoint.json").read_text()), timeout=30
        )
        print(f"   ARM endpoint {self.emulator['url']} (CA {self.emulator['ca_file']})")
        say("Installing the VirtualNode CRD and starting the acinode operator")
        self.kubectl("apply", "-f", str(REPO / "crds" / "virtualnodes.acinode.dev.yaml"))
        self.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev", show=False)
        self.spawn("operator", "run", "--kubeconfig", str(self.cluster.kubeconfig))

    def declare_virtual_node(self) -> None:
        say("Declaring a VirtualNode: the 'virtual nodes' option, added automatically (seed step 3)")
        ca = Path(self.emulator["ca_file"]).read_text()
        manifest = string.Template(VIRTUAL_NODE.read_text()).substitute(
            EMULATOR_URL=self.emulator["url"],
            EMULATOR_TOKEN=self.emulator.get("token") or "demo-token",
            EMULATOR_CA="\n".join("        " + line for line in ca.strip().splitlines()),
        )
        self.kubectl("apply", "-f", "-", input_text=manifest)
        wait_for(
            "node Ready",
            lambda: (
                "True"
                in self.kubectl(
                    "get",
                    "node",
                    NODE,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                    show=False,
                )
            ),
            timeout=60,
        )
        self.kubectl("get", "nodes", "-o", "wide")
        self.kubectl("get", "virtualnodes")

    def deploy_seed(self) -> str:
        say("Deploying the article's sample app with its nodeSelector and tolerations (seed step 4)")
        self.kubectl("apply", "-f", str(SEED))
        wait_for(
            "pod Running on the virtual node",
            lambda: (
                "Running"
                in self.kubectl(
                    "get",
                    "pods",
                    "-l",
                    "app=aci-helloworld",
                    "-o",
                    "jsonpath={.items[*].status.phase}",
                    show=False,
                )
            ),
            timeout=120,
        )
        self.kubectl("get", "pods", "-o", "wide")
        ip = self.kubectl(
            "get", "pods", "-l", "app=aci-helloworld", "-o", "jsonpath={.items[0].status.podIP}", show=False
        )
        return ip.strip()

    def curl(self, ip: str) -> None:
        say(f"Checking it works: curl http://{ip} (seed step 6; loopback stands in for the cluster network)")
        with urllib.request.urlopen(f"http://{ip}/", timeout=10) as response:
            print(response.read().decode())

    def list_groups(self) -> list[str]:
        url = (
            f"{self.emulator['url']}/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/acinode-demo"
            "/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01"
        )
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.emulator.get('token') or 'demo-token'}"}
        )
        context = ssl.create_default_context(cafile=self.emulator["ca_file"])
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return [g["name"] for g in json.loads(response.read())["value"]]

    def show_groups(self) -> None:
        groups = self.list_groups()
        print(f"ACI container groups in resource group acinode-demo: {groups or 'none'}")

    def delete_seed(self) -> None:
        say("The resource group shows the app's ACI container group (seed step 7)")
        self.show_groups()
        say("Cleaning up: kubectl delete -f (seed step 8) - the pod and the container group vanish at once")
        began = time.monotonic()
        self.kubectl("delete", "-f", str(SEED))
        wait_for(
            "pod gone",
            lambda: (
                not self.kubectl("get", "pods", "-l", "app=aci-helloworld", "-o", "name", show=False).strip()
            ),
            timeout=30,
        )
        wait_for("container group gone", lambda: not self.list_groups(), timeout=30)
        print(f"   pod and container group gone {time.monotonic() - began:.1f}s after the delete")
        self.kubectl("get", "pods", "-o", "wide")
        self.show_groups()

    def stop(self) -> None:
        say("Tearing down: VirtualNode, operator, emulator, control plane")
        with contextlib.suppress(Exception):
            self.kubectl("delete", "virtualnode", NODE, "--timeout=30s")
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.cluster.stop()


@contextlib.contextmanager
def demo_workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="acinode-demo-") as folder:
        yield Path(folder)


def main() -> int:
    with demo_workspace() as work:
        demo = Demo(work)
        try:
            demo.start()
            demo.declare_virtual_node()
            ip = demo.deploy_seed()
            demo.curl(ip)
            demo.delete_seed()
        except BaseException:
            for log in ("operator.log", "emulator.log"):
                path = work / log
                if path.exists():
                    print(f"--- last lines of {log}:\n" + "\n".join(path.read_text().splitlines()[-20:]))
            raise
        finally:
            demo.stop()
    say("Done: the seed story ran end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
