"""The seed's story with the operator in the cluster (``make demo-helm``; also tests/e2e/test_worker_helm.py).

On the local control plane with its worker node (``make cluster-up WORKER=1``), with no registry anywhere:

1. load the operator image (``make image``: dist/acinode-image.oci.tar) and the test image (``make test-image``,
   Debian with curl; the worker's own ``netcheck`` image when that archive is missing) into the node's containerd;
2. ``helm install`` the chart with that image and the emulator sidecar; the operator pods Running and Ready (their
   probes pass) on the worker node, under the chart's ServiceAccount, which RBAC lets do its work;
3. the seed's Deployment (examples/seed/virtual-node.yaml) Running on the virtual node with its stand-in IP;
4. a real pod on the worker node curls that IP and gets the page (seed: ``kubectl run … --image=debian``, curl);
5. ``kubectl logs`` and ``kubectl exec`` through the API server to the operator pod (the worker's kubelet);
6. ``helm upgrade`` to a changed value rolls every operator pod; the seed's pod is never lost (same uid, Running);
7. the documented clean-up (``kubectl delete -f`` the seed, ``kubectl delete vn --all``) leaves 0 container
   groups in every replica's emulator; ``helm uninstall`` leaves no operator pod.

Exit status 0 when every step held; otherwise the failed step and why, and 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kubecluster
import workernode

from helm import helmbin  # tests/helm: helm built from its pinned Go module, once

REPO_ROOT = kubecluster.REPO_ROOT
SEED = REPO_ROOT / "examples" / "seed" / "virtual-node.yaml"
CHART = REPO_ROOT / "helm" / "acinode"
DEFAULT_IMAGE_ARCHIVE = REPO_ROOT / "dist" / "acinode-image.oci.tar"
TEST_IMAGE_ARCHIVES = ("acinode-test-image.oci.tar", "test-image.oci.tar", "acinode-test.oci.tar")
PAGE_MARKER = "Welcome to Azure Container Instances"
T = TypeVar("T")


class StepFailedError(AssertionError):
    """A step of the story did not hold; the message says which and why."""


def say(message: str) -> None:
    print(f"[demo-helm {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (subprocess.SubprocessError, kubecluster.ControlPlaneError, ValueError, KeyError) as err:
            value, last_error = None, str(err)
        if value:
            return value
        time.sleep(interval)
    raise StepFailedError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last_error})" if last_error else "")
    )


def archive_image_name(archive: Path) -> str:
    """The image name an OCI archive's index declares (io.containerd.image.name or the ref name)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise StepFailedError(f"{archive} has no index.json: not an OCI image archive")
        index = json.load(member)
    for manifest in index.get("manifests", []):
        annotations = manifest.get("annotations", {})
        name = annotations.get("io.containerd.image.name") or annotations.get(
            "org.opencontainers.image.ref.name"
        )
        if name and ("/" in name or ":" in name):
            return str(name)
    raise StepFailedError(f"{archive}: its index names no image (annotation io.containerd.image.name)")


def find_test_image_archive() -> Path | None:
    explicit = os.environ.get("ACINODE_TEST_IMAGE_ARCHIVE")
    if explicit:
        return Path(explicit)
    return next(
        (REPO_ROOT / "dist" / n for n in TEST_IMAGE_ARCHIVES if (REPO_ROOT / "dist" / n).exists()), None
    )


class Story:
    def __init__(
        self,
        state_dir: Path,
        image_archive: Path,
        test_image_archive: Path | None,
        chart: Path = CHART,
        namespace: str = "acinode-system",
        release: str = "acinode",
        app_namespace: str = "default",
    ) -> None:
        self.state_dir = state_dir
        state = json.loads((state_dir / "pids.json").read_text())
        self.cp = kubecluster.ControlPlane(state_dir, binary=Path(state["binary"]))
        self.node = workernode.WorkerNode(state_dir, server=state["server"])
        self.image_archive = image_archive
        self.test_image_archive = test_image_archive
        self.chart = chart
        self.namespace = namespace
        self.release = release
        self.app_namespace = app_namespace
        self.helm_home = state_dir / "helm-home"
        self.helm_binary: Path | None = None
        self.image = ""
        self.test_image = workernode.NETCHECK_IMAGE
        self.fetch_command: list[str] = []
        self.blocked: list[str] = []
        """Steps that could not hold because of something outside this story (the chart); the rest still ran."""

    # -- helpers

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        return self.cp.kubectl(*args, check=check, input_text=input_text)

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str) -> str:
        if self.helm_binary is None:
            self.helm_binary = helmbin.build()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cp.kubeconfig),
            "HELM_CACHE_HOME": str(self.helm_home / "cache"),
            "HELM_CONFIG_HOME": str(self.helm_home / "config"),
            "HELM_DATA_HOME": str(self.helm_home / "data"),
        }
        result = subprocess.run(
            [str(self.helm_binary), *args], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        if result.returncode != 0:
            raise StepFailedError(f"helm {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result.stdout

    def helm_values(self, **extra: Any) -> list[str]:
        repository, _, tag = self.image.rpartition(":")
        values: dict[str, Any] = {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "emulator": {"enabled": True},
            # The emulator's stand-in serves each group's ports (80 for the seed) as uid 65532 without
            # capabilities: unprivileged ports from 0 in the pod (a safe sysctl, allowed by every kubelet).
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
            },
            **extra,
        }
        args: list[str] = []
        for key, value in values.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return args

    def operator_pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.release}"
        items: list[dict[str, Any]] = self.kubectl_json("get", "pods", "-n", self.namespace, "-l", selector)[
            "items"
        ]
        return items

    def seed_pod(self) -> dict[str, Any] | None:
        pods = self.kubectl_json("get", "pods", "-n", self.app_namespace, "-l", "app=aci-helloworld")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return live[0] if live else None

    def emulator_group_count(self, pod: str) -> int:
        script = (
            "import json, os, ssl, urllib.request\n"
            "ctx = ssl.create_default_context(cafile='/var/lib/acinode-emulator/ca.pem')\n"
            "ctx.check_hostname = False\n"
            "sub = os.environ.get('SUBSCRIPTION', '00000000-0000-0000-0000-000000000000')\n"
            "url = f'https://127.0.0.1:8443/subscriptions/{sub}/providers/Microsoft.ContainerInstance/"
            "containerGroups?api-version=2023-05-01'\n"
            "req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + os.environ['EMULATOR_TOKEN']})\n"
            "print(len(json.load(urllib.request.urlopen(req, context=ctx, timeout=10)).get('value', [])))\n"
        )
        out = self.kubectl(
            "exec", "-n", self.namespace, pod, "-c", "emulator", "--", "/usr/bin/python3.11", "-c", script
        )
        return int(out.strip())

    # -- the steps

    def step_preflight(self) -> None:
        ready = self.kubectl(
            "get",
            "node",
            workernode.NODE_NAME,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        )
        if ready != "True":
            raise StepFailedError(
                f"node {workernode.NODE_NAME} is not Ready: start it with make cluster-up WORKER=1"
            )
        say(f"worker node {workernode.NODE_NAME} Ready")

    def step_load_images(self) -> None:
        if not self.image_archive.exists():
            raise StepFailedError(f"{self.image_archive} is missing: build it with make image")
        self.image = archive_image_name(self.image_archive)
        self.node.import_image(self.image_archive, self.image)
        say(f"loaded {self.image} from {self.image_archive} into the worker's containerd (no registry)")
        if self.test_image_archive is not None:
            self.test_image = archive_image_name(self.test_image_archive)
            self.node.import_image(self.test_image_archive, self.test_image)
            self.fetch_command = [
                "curl",
                "-sS",
                "-L",
                "--max-time",
                "10",
                "--retry",
                "5",
                "--retry-connrefused",
            ]
            say(f"loaded the test image {self.test_image} from {self.test_image_archive}")
        else:
            self.node.import_image(workernode.netcheck_archive(), workernode.NETCHECK_IMAGE)
            self.fetch_command = ["/netcheck", "get"]
            say(
                f"no test image archive in dist/ (make test-image): using {workernode.NETCHECK_IMAGE} to fetch"
            )

    def step_helm_install(self) -> None:
        started = time.monotonic()
        wait_for(
            f"namespace {self.namespace} from an earlier run to finish terminating",
            lambda: (
                "Terminating"
                not in self.kubectl(
                    "get", "namespace", self.namespace, "-o", "jsonpath={.status.phase}", check=False
                )
            ),
            180,
        )
        self.helm(
            "install",
            self.release,
            str(self.chart),
            "-n",
            self.namespace,
            "--create-namespace",
            *self.helm_values(),
        )
        say(
            f"helm install {self.release} {self.chart.relative_to(REPO_ROOT) if self.chart.is_relative_to(REPO_ROOT) else self.chart}"
        )
        self.wait_operator_ready("the operator pods Running and Ready on the worker node", timeout=240)
        pods = self.operator_pods()
        for pod in pods:
            name, sa = pod["metadata"]["name"], pod["spec"]["serviceAccountName"]
            if pod["spec"]["nodeName"] != workernode.NODE_NAME:
                raise StepFailedError(f"{name} runs on {pod['spec']['nodeName']}, not the worker node")
            owner = self.kubectl_json("get", "serviceaccount", "-n", self.namespace, sa)["metadata"].get(
                "annotations", {}
            )
            if owner.get("meta.helm.sh/release-name") != self.release:
                raise StepFailedError(f"{name} runs as ServiceAccount {sa}, which the chart did not create")
        sa = pods[0]["spec"]["serviceAccountName"]
        user = f"system:serviceaccount:{self.namespace}:{sa}"
        checks = (
            ("yes", "create", "nodes"),
            ("yes", "list", "pods"),
            ("yes", "patch", "pods", "--subresource=status"),
        )
        checks += (("no", "create", "virtualnodes.acinode.dev"), ("no", "delete", "namespaces"))
        for expected, *query in checks:
            answer = self.kubectl("auth", "can-i", *query, "--as", user, check=False).strip()
            if answer != expected:
                raise StepFailedError(
                    f"kubectl auth can-i {' '.join(query)} --as {user}: {answer}, expected {expected}"
                )
        vn = "acinode-emulator"
        wait_for(
            f"the virtual node {vn} Ready (the in-cluster operator at work under {sa})",
            lambda: (
                self.kubectl(
                    "get",
                    "node",
                    vn,
                    "-o",
                    'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
                    check=False,
                )
                == "True"
            ),
            120,
        )
        names = ", ".join(p["metadata"]["name"] for p in pods)
        say(
            f"operator pods {names} Running and Ready on {workernode.NODE_NAME} as {user} ({time.monotonic() - started:.0f}s); node {vn} Ready"
        )

    def wait_operator_ready(
        self, what: str, timeout: float, exclude_uids: frozenset[str] = frozenset()
    ) -> None:
        def ready() -> bool:
            pods = self.operator_pods()
            sts = self.kubectl_json(
                "get", "statefulset", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.release}"
            )["items"]
            want = sum(int(s["spec"].get("replicas", 1)) for s in sts)
            good = [
                p
                for p in pods
                if p["status"].get("phase") == "Running"
                and p["metadata"]["uid"] not in exclude_uids
                and not p["metadata"].get("deletionTimestamp")
                and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
            ]
            if not good and pods:
                self._explain_not_ready(pods)
            return want > 0 and len(good) == want and len(pods) == want

        wait_for(what, ready, timeout, interval=2)

    def _explain_not_ready(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            for status in [
                *pod["status"].get("initContainerStatuses", []),
                *pod["status"].get("containerStatuses", []),
            ]:
                waiting = status.get("state", {}).get("waiting", {})
                if waiting.get("reason") in (
                    "RunContainerError",
                    "CreateContainerError",
                    "ErrImageNeverPull",
                    "CrashLoopBackOff",
                ):
                    raise StepFailedError(
                        f"{pod['metadata']['name']} container {status['name']}: {waiting.get('reason')}: {waiting.get('message', '')}"
                    )

    def step_seed_deployment(self) -> str:
        self.kubectl("apply", "-n", self.app_namespace, "-f", str(SEED))
        pod = wait_for(
            "the seed's pod Running on the virtual node with an IP",
            lambda: (
                (p := self.seed_pod())
                and p["status"].get("phase") == "Running"
                and p["status"].get("podIP")
                and p
            ),
            120,
        )
        node = pod["spec"]["nodeName"]
        if node == workernode.NODE_NAME:
            raise StepFailedError("the seed's pod runs on the worker node, not on the virtual node")
        say(
            f"kubectl apply -f {SEED.relative_to(REPO_ROOT)}: {pod['metadata']['name']} Running on {node}, IP {pod['status']['podIP']}"
        )
        return str(pod["status"]["podIP"])

    def chart_disables_standin(self) -> bool:
        """Whether the release runs its emulators with --no-network (group IPs reported, never served)."""
        for pod in self.operator_pods():
            for container in pod["spec"]["containers"]:
                if container["name"] == "emulator" and "--no-network" in container.get("args", []):
                    return True
        return False

    def step_curl_from_a_real_pod(self, ip: str, name: str = "virtual-node-test") -> None:
        if self.chart_disables_standin():
            reason = (
                f"the chart runs the emulator with --no-network ({self.chart.name}/templates/statefulset.yaml): "
                f"nothing answers on the stand-in IP {ip}, so no pod can fetch the seed's page; drop the flag "
                "(the worker node routes stand-in IPs to the operator pod, docs/worker-node.md)"
            )
            self.blocked.append(reason)
            say(f"BLOCKED: {reason}")
            return
        self.kubectl("delete", "pod", "-n", self.app_namespace, name, "--ignore-not-found", "--wait=true")
        self.kubectl(
            "run",
            name,
            "-n",
            self.app_namespace,
            f"--image={self.test_image}",
            "--image-pull-policy=Never",
            "--restart=Never",
            "--overrides",
            json.dumps({"spec": {"nodeName": workernode.NODE_NAME}}),
            "--command",
            "--",
            *self.fetch_command,
            f"http://{ip}/",
        )
        try:
            phase = wait_for(
                f"pod {name} to finish",
                lambda: (
                    self.kubectl(
                        "get", "pod", "-n", self.app_namespace, name, "-o", "jsonpath={.status.phase}"
                    )
                    in ("Succeeded", "Failed")
                    and self.kubectl(
                        "get", "pod", "-n", self.app_namespace, name, "-o", "jsonpath={.status.phase}"
                    )
                ),
                90,
            )
            page = self.kubectl("logs", "-n", self.app_namespace, name)
            if phase != "Succeeded" or PAGE_MARKER not in page:
                raise StepFailedError(
                    f"pod {name} ({self.test_image}) could not fetch http://{ip}/ ({phase}): {page[-400:]}"
                )
        finally:
            self.kubectl(
                "delete", "pod", "-n", self.app_namespace, name, "--ignore-not-found", "--wait=false"
            )
        title = next((line.strip() for line in page.splitlines() if "<h1>" in line), PAGE_MARKER)
        say(
            f"real pod {name} on {workernode.NODE_NAME}: {' '.join(self.fetch_command[:1])} http://{ip}/ -> {title}"
        )

    def step_logs_and_exec(self) -> None:
        pod = self.operator_pods()[0]["metadata"]["name"]
        logs = self.kubectl("logs", "-n", self.namespace, pod, "-c", "operator", "--tail=20")
        if not logs.strip():
            raise StepFailedError(f"kubectl logs {pod}: no output")
        version = self.kubectl(
            "exec", "-n", self.namespace, pod, "-c", "operator", "--", "/usr/bin/acinode", "--version"
        ).strip()
        if not version:
            raise StepFailedError(f"kubectl exec {pod} -- acinode --version: no output")
        say(
            f"kubectl logs {pod}: {len(logs.splitlines())} lines; kubectl exec {pod} -- acinode --version: {version}"
        )

    def step_helm_upgrade(self) -> None:
        seed = self.seed_pod()
        assert seed is not None
        seed_uid = seed["metadata"]["uid"]
        old = frozenset(p["metadata"]["uid"] for p in self.operator_pods())
        marker = uuid.uuid4().hex[:8]
        self.helm(
            "upgrade",
            self.release,
            str(self.chart),
            "-n",
            self.namespace,
            *self.helm_values(podAnnotations={"acinode.dev/demo-upgrade": marker}),
        )
        say(f"helm upgrade {self.release} --set podAnnotations.acinode.dev/demo-upgrade={marker}")
        lost: list[str] = []

        def rolled() -> bool:
            current = self.seed_pod()
            if current is None or current["metadata"]["uid"] != seed_uid:
                lost.append("deleted or replaced")
            elif current["status"].get("phase") != "Running":
                lost.append(f"phase {current['status'].get('phase')}")
            pods = self.operator_pods()
            return bool(pods) and not (old & {p["metadata"]["uid"] for p in pods})

        wait_for("every operator pod replaced by the upgrade", rolled, 300, interval=2)
        self.wait_operator_ready("the upgraded operator pods Ready", 240, exclude_uids=old)
        if lost:
            raise StepFailedError(f"the seed's pod was lost during the upgrade: {lost[0]}")
        time.sleep(5)
        current = self.seed_pod()
        if (
            current is None
            or current["metadata"]["uid"] != seed_uid
            or current["status"].get("phase") != "Running"
        ):
            raise StepFailedError("the seed's pod did not survive the upgrade")
        say(
            f"operator rolled ({len(old)} pods replaced); seed pod {current['metadata']['name']} kept (same uid, Running)"
        )

    def step_cleanup(self) -> None:
        self.kubectl(
            "delete", "-n", self.app_namespace, "-f", str(SEED), "--ignore-not-found", "--wait=false"
        )
        wait_for("the seed's pod gone", lambda: self.seed_pod() is None, 60)
        self.kubectl("delete", "virtualnodes.acinode.dev", "--all", "--wait=true", "--timeout=120s")
        wait_for(
            "the virtual Node gone",
            lambda: "acinode-emulator" not in self.kubectl("get", "nodes", "-o", "name"),
            60,
        )
        pods = [p["metadata"]["name"] for p in self.operator_pods()]
        counts: dict[str, int] = {}

        def no_groups() -> bool:
            counts.update({pod: self.emulator_group_count(pod) for pod in pods})
            return not any(counts.values())

        try:
            wait_for("0 container groups in every emulator", no_groups, 60, interval=3)
        except StepFailedError as err:
            raise StepFailedError(f"container groups left after the clean-up: {counts}") from err
        say(
            f"kubectl delete -f seed; kubectl delete vn --all: 0 container groups in {len(counts)} emulator(s)"
        )
        self.helm("uninstall", self.release, "-n", self.namespace, "--wait", "--timeout", "120s")
        wait_for("the operator pods gone", lambda: not self.operator_pods() or None, 120)
        self.kubectl("delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false")
        say(f"helm uninstall {self.release}: no operator pod left; namespace {self.namespace} deleted")

    def abort_cleanup(self) -> None:
        """After a failed step: remove what the story created, best effort."""
        with contextlib.suppress(Exception):
            self.kubectl(
                "delete", "-n", self.app_namespace, "-f", str(SEED), "--ignore-not-found", "--wait=false"
            )
        with contextlib.suppress(Exception):
            self.kubectl(
                "delete", "virtualnodes.acinode.dev", "--all", "--wait=true", "--timeout=60s", check=False
            )
        with contextlib.suppress(Exception):
            self.helm(
                "uninstall",
                self.release,
                "-n",
                self.namespace,
                "--ignore-not-found",
                "--wait",
                "--timeout",
                "90s",
            )
        with contextlib.suppress(Exception):
            self.kubectl("delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false")

    def run(self) -> None:
        started = time.monotonic()
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("worker node", self.step_preflight),
            ("images from OCI archives", self.step_load_images),
            ("helm install", self.step_helm_install),
        ]
        ip = ""
        for title, step in steps:
            say(f"-- {title}")
            step()
        say("-- seed Deployment on the virtual node")
        ip = self.step_seed_deployment()
        say("-- curl from a real pod")
        self.step_curl_from_a_real_pod(ip)
        say("-- kubectl logs / exec to the operator pod")
        self.step_logs_and_exec()
        say("-- helm upgrade")
        self.step_helm_upgrade()
        say("-- curl again after the upgrade")
        pod = self.seed_pod()
        assert pod is not None
        wait_for("the seed pod's IP", lambda: (p := self.seed_pod()) and p["status"].get("podIP"), 60)
        self.step_curl_from_a_real_pod(str(self.seed_pod()["status"]["podIP"]))  # type: ignore[index]
        say("-- clean-up and helm uninstall")
        self.step_cleanup()
        if self.blocked:
            raise StepFailedError(
                f"every other step held ({time.monotonic() - started:.0f}s), but: "
                + "; ".join(dict.fromkeys(self.blocked))
            )
        say(f"every step held ({time.monotonic() - started:.0f}s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".cluster")
    parser.add_argument(
        "--image-archive",
        type=Path,
        default=Path(os.environ.get("ACINODE_IMAGE_ARCHIVE", DEFAULT_IMAGE_ARCHIVE)),
    )
    parser.add_argument("--test-image-archive", type=Path, default=None)
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--namespace", default="acinode-system")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    if not (state_dir / "pids.json").exists() or not (state_dir / "worker" / "pids.json").exists():
        print(
            f"error: no control plane with a worker node in {state_dir}: run make cluster-up WORKER=1",
            file=sys.stderr,
        )
        return 1
    story = Story(
        state_dir,
        args.image_archive,
        args.test_image_archive or find_test_image_archive(),
        chart=args.chart,
        namespace=args.namespace,
    )
    try:
        story.run()
    except (StepFailedError, kubecluster.ControlPlaneError) as err:
        print(f"demo-helm: FAILED: {err}", file=sys.stderr)
        story.abort_cleanup()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
