"""``args`` without ``command`` on a virtual node run the image's ENTRYPOINT with those args, as on a kubelet.

The ENTRYPOINT lives in the image's config in its registry: here go-containerregistry's registry (its
``pkg/registry``, served on loopback by ``tests/ociregistry``), the image pushed and given its ENTRYPOINT by
``crane``, both code acinode did not write. ``acinode run`` reads the config through the registry API and the
container group's command in the ACI emulator is ENTRYPOINT + args; a missing image is an image pull failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from contract import emulated
from ociregistry import ocibin
from support import arm
from support.operator_process import OperatorProcess
from support.virtualnodes import wait_node_ready
from support.waiting import wait_until

TOLERATIONS = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
ENTRYPOINT = ["sh", "-c"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry's host:port, with ``demo/shell:1`` pushed: an image whose ENTRYPOINT is ``sh -c``."""
    server, crane = ocibin.build()
    log = (tmp_path_factory.mktemp("registry") / "registry.log").open("w")
    process = subprocess.Popen([str(server)], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        host = process.stdout.readline().strip()
        assert host.startswith("127."), host
        image = f"{host}/demo/shell:1"

        def crane_run(*args: str) -> None:
            done = subprocess.run(
                [str(crane), *args, "--insecure"], check=False, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr

        crane_run(
            "append", "--oci-empty-base", "-f", str(_layer(tmp_path_factory.mktemp("layer"))), "-t", image
        )
        crane_run("mutate", image, f"--entrypoint={','.join(ENTRYPOINT)}", "--cmd=echo default", "-t", image)
        yield host
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _layer(directory: Path) -> Path:
    """A one-file layer (crane appends layers; the emulator never runs the files)."""
    (directory / "hello.txt").write_text("hello\n")
    archive = directory / "layer.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(directory), "hello.txt"], check=True)
    return archive


@pytest.fixture
def operator_process(
    cluster: Any, tmp_path: Path, crd_installed: None, registry: str
) -> Iterator[OperatorProcess]:
    """``acinode run`` that may read the test registry over plain HTTP (as containerd's insecure registries)."""
    process = OperatorProcess(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        env={"ACINODE_REGISTRY_INSECURE_HOSTS": registry, "ACINODE_REGISTRY_READ_IMAGE_CONFIGS": "true"},
    )
    process.start()
    yield process
    process.stop()
    print(process.log_text()[-5000:])


def _pod(node: dict[str, Any], name: str, image: str, args: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node["metadata"]["name"],
            "tolerations": TOLERATIONS,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "args": args,
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                }
            ],
        },
    }


def _ready_node(make_virtual_node: Any, core: client.CoreV1Api) -> dict[str, Any]:
    node: dict[str, Any] = make_virtual_node()
    wait_node_ready(core, node["metadata"]["name"])
    return node


def _group_of(emulator: emulated.Emulator, node: dict[str, Any], pod_uid: str) -> dict[str, Any] | None:
    resource_group = node["spec"]["azure"]["resourceGroup"]
    for group in arm.list_groups(emulator, resource_group):
        if (group.get("tags") or {}).get("acinode.pod-uid") == pod_uid:
            return arm.get_group(emulator, resource_group, group["name"])
    return None


def test_args_without_command_run_the_images_entrypoint_read_from_its_registry(
    registry: str,
    make_virtual_node: Any,
    core_v1: client.CoreV1Api,
    namespace: str,
    emulator: emulated.Emulator,
) -> None:
    node = _ready_node(make_virtual_node, core_v1)
    script = "echo from-the-entrypoint; sleep 3600"
    core_v1.create_namespaced_pod(namespace, _pod(node, "shell", f"{registry}/demo/shell:1", [script]))
    wait_until(
        lambda: core_v1.read_namespaced_pod("shell", namespace).status.phase == "Running",
        60,
        "the pod Running",
    )
    uid = core_v1.read_namespaced_pod("shell", namespace).metadata.uid
    group = wait_until(lambda: _group_of(emulator, node, uid), 10, "the pod's container group")
    [container] = group["properties"]["containers"]
    assert container["properties"]["command"] == [*ENTRYPOINT, script]


def test_an_image_the_registry_does_not_have_is_an_image_pull_failure(
    registry: str, make_virtual_node: Any, core_v1: client.CoreV1Api, namespace: str
) -> None:
    node = _ready_node(make_virtual_node, core_v1)
    core_v1.create_namespaced_pod(namespace, _pod(node, "missing", f"{registry}/demo/absent:1", ["true"]))

    def waiting_reason() -> tuple[str, str] | None:
        statuses = core_v1.read_namespaced_pod("missing", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return (waiting.reason, waiting.message or "") if waiting else None

    _, message = wait_until(
        lambda: (w := waiting_reason()) and w[0] in ("ErrImagePull", "ImagePullBackOff") and w,
        60,
        "the pod waiting on its image",
    )
    assert "demo/absent:1 not found" in message, message
