"""The opt-in worker node (docs/worker-node.md): a real kubelet, kube-proxy and containerd beside the control plane.

These tests start their own control plane with a worker node (the session's control plane has none: other tests
rely on pods staying Pending there). They skip, saying why, where the worker cannot run: not root, not Linux,
Debian's containerd/runc/containernetworking-plugins missing, another worker node already running, or
ACINODE_WORKER_TESTS=0. The seed's story with helm (tests/controlplane/demo_helm.py, ``make demo-helm``) also
needs the operator image archive (``make image``: dist/acinode-image.oci.tar) and skips without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import demo_helm
import kubecluster
import pytest
import workernode

from support.waiting import wait_until

pytestmark = pytest.mark.timeout(900)


def _unavailable(reason: str) -> None:
    """Skip, saying why; but fail where the worker is required (CI sets ACINODE_WORKER_TESTS=required after
    installing what it needs, so a worker that cannot start is a red build, not a silent skip)."""
    if os.environ.get("ACINODE_WORKER_TESTS") == "required":
        pytest.fail(f"ACINODE_WORKER_TESTS=required, but {reason}")
    pytest.skip(reason)


def _skip_reason() -> str | None:
    if os.environ.get("ACINODE_WORKER_TESTS", "") in ("0", "no", "false"):
        return "ACINODE_WORKER_TESTS=0"
    if os.environ.get("ACINODE_TEST_KUBECONFIG"):
        return "ACINODE_TEST_KUBECONFIG names an existing cluster: the worker node joins only the local one"
    reason = workernode.unavailable_reason()
    if reason:
        return f"worker node unavailable: {reason}"
    route = subprocess.run(
        ["ip", "route", "show", workernode.POD_CIDR], capture_output=True, text=True, check=False
    )
    if route.stdout.strip():
        return f"another worker node runs on this machine ({route.stdout.strip()}); one at a time"
    return None


@pytest.fixture(scope="module")
def worker_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubecluster.ControlPlane]:
    reason = _skip_reason()
    if reason:
        _unavailable(reason)
    state_dir = tmp_path_factory.mktemp("worker-cluster")
    with kubecluster.ControlPlane(state_dir) as cp:
        node = workernode.WorkerNode(state_dir, server=cp.server)
        try:
            node.start(cp.kubectl)
        except workernode.WorkerUnavailableError as err:
            _unavailable(f"worker node unavailable: {err}")
        try:
            yield cp
        finally:
            node.stop()
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert node.netns not in leftovers, "the worker's network namespace outlived it"


def _pod_phase(cp: kubecluster.ControlPlane, name: str) -> str:
    return cp.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)


def test_pods_run_on_the_worker_with_bridge_networking_services_logs_and_exec(
    worker_cluster: kubecluster.ControlPlane,
) -> None:
    cp = worker_cluster
    image = workernode.NETCHECK_IMAGE
    server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "web", "image": image, "imagePullPolicy": "Never", "args": ["serve", ":8080"]}
            ]
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    cp.kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": [server, service]}),
    )
    wait_until(lambda: _pod_phase(cp, "web") == "Running", 90, "the server pod Running on the worker node")
    pod = json.loads(cp.kubectl("get", "pod", "web", "-o", "json"))
    assert pod["spec"]["nodeName"] == workernode.NODE_NAME
    pod_ip = pod["status"]["podIP"]
    assert pod_ip.startswith("10.244.0."), "an address of the CNI bridge's range"
    cluster_ip = cp.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")

    for name, url in (
        ("by-pod-ip", f"http://{pod_ip}:8080/pod"),
        ("by-service", f"http://{cluster_ip}/service"),
    ):
        cp.kubectl(
            "run", name, f"--image={image}", "--image-pull-policy=Never", "--restart=Never", "--", "get", url
        )
        wait_until(lambda n=name: _pod_phase(cp, n) in ("Succeeded", "Failed"), 90, f"pod {name} to finish")
        assert _pod_phase(cp, name) == "Succeeded", cp.kubectl("logs", name, check=False)
        assert cp.kubectl("logs", name).strip() == "netcheck web"

    # Through the API server to the worker's kubelet (10.250.0.2:10250) and containerd's streaming server.
    assert "GET /service" in cp.kubectl("logs", "web")
    assert (
        cp.kubectl("exec", "web", "--", "/netcheck", "get", "http://127.0.0.1:8080/exec").strip()
        == "netcheck web"
    )


def test_a_missing_image_is_never_pulled_from_a_registry(worker_cluster: kubecluster.ControlPlane) -> None:
    cp = worker_cluster
    cp.kubectl(
        "run",
        "nopull",
        "--image=registry.invalid/nothing:1",
        "--image-pull-policy=IfNotPresent",
        "--restart=Never",
    )

    def reason() -> str:
        return cp.kubectl(
            "get",
            "pod",
            "nopull",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
            check=False,
        )

    wait_until(lambda: reason() in ("ErrImagePull", "ImagePullBackOff"), 90, "the pull to fail")
    cp.kubectl("delete", "pod", "nopull", "--wait=false")


def test_seed_story_with_helm_on_the_worker_node(
    worker_cluster: kubecluster.ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = Path(os.environ.get("ACINODE_IMAGE_ARCHIVE", demo_helm.DEFAULT_IMAGE_ARCHIVE))
    if not archive.exists():
        _unavailable(f"{archive} is missing: make image (the operator image, built without a registry)")
    story = demo_helm.Story(worker_cluster.state_dir, archive, demo_helm.find_test_image_archive())
    try:
        story.run()
    except demo_helm.StepFailedError:
        with contextlib.suppress(Exception):
            story.abort_cleanup()
        raise
