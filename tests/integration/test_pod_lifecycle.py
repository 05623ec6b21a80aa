"""Pods on a virtual node through their whole life, on the real control plane with `acinode run` and the emulator.

Container behaviour comes from the emulator's command convention (docs/emulator.md): ``sh -c "echo …; exit N"``
completes or crashes, no command is a long-running server, and images on ``unreachable.invalid`` cannot be pulled.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from acinode.mapping import names
from contract import emulated
from support import arm
from support.operator_process import OperatorProcess
from support.virtualnodes import emulator_hook
from support.waiting import wait_until

MakeVirtualNode = Callable[..., dict[str, Any]]


@pytest.fixture
def ready_node(make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api) -> dict[str, Any]:
    vn = make_virtual_node()
    name = vn["metadata"]["name"]
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True" for c in core_v1.read_node(name).status.conditions or []
        ),
        30,
        "the virtual node to be Ready",
    )
    return vn


def pod_on(
    node: dict[str, Any], name: str, container: dict[str, Any], restart_policy: str = "Always"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": "lifecycle"}},
        "spec": {
            "restartPolicy": restart_policy,
            "nodeSelector": {"type": "virtual-kubelet"},
            "nodeName": node["metadata"]["name"],
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [{"name": "main", "image": "nginx", **container}],  # serves unless given a command
        },
    }


def resource_group(node: dict[str, Any]) -> str:
    return str(node["spec"]["azure"]["resourceGroup"])


def read_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    try:
        return core.read_namespaced_pod(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def events_of(core: client.CoreV1Api, namespace: str, name: str) -> list[client.CoreV1Event]:
    return list(core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items)


def deployment(node: dict[str, Any], name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {
                        "type": "virtual-kubelet",
                        "acinode.dev/virtual-node": node["metadata"]["name"],
                    },
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ],
                },
            },
        },
    }


def running_pods(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def test_scale_up_to_30_and_back_to_zero(
    ready_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment(ready_node, "burst", 0))
    apps.patch_namespaced_deployment_scale("burst", namespace, {"spec": {"replicas": 30}})
    wait_until(lambda: len(running_pods(core_v1, namespace, "burst")) == 30, 120, "30 pods Running")
    groups = arm.list_groups(emulator, resource_group(ready_node))
    assert len(groups) == 30
    uids = {p.metadata.uid for p in running_pods(core_v1, namespace, "burst")}
    assert {g["tags"]["acinode.pod-uid"] for g in groups} == uids, "exactly one group per pod"

    apps.patch_namespaced_deployment_scale("burst", namespace, {"spec": {"replicas": 0}})
    # Each graceful deletion costs two ARM writes (stop, then delete) on top of the 30 creates: with the default
    # write budget (burst 50, then 0.3/s, ARM's hourly write limit) the last ones wait for it, about 2 minutes.
    wait_until(
        lambda: not core_v1.list_namespaced_pod(namespace, label_selector="app=burst").items,
        240,
        "all pods gone",
    )
    wait_until(lambda: not arm.list_groups(emulator, resource_group(ready_node)), 30, "all groups gone")


def test_completed_pod_ends_succeeded_with_its_exit_code(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    body = pod_on(ready_node, "job", {"command": ["sh", "-c", "echo done"]}, restart_policy="Never")
    core_v1.create_namespaced_pod(namespace, body)
    pod = wait_until(
        lambda: (p := read_pod(core_v1, namespace, "job")) and p.status.phase == "Succeeded" and p,
        60,
        "Succeeded",
    )
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"


def test_failed_pod_with_restart_policy_never_reports_its_exit_code(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    body = pod_on(ready_node, "fails", {"command": ["sh", "-c", "echo boom; exit 3"]}, restart_policy="Never")
    core_v1.create_namespaced_pod(namespace, body)
    pod = wait_until(
        lambda: (p := read_pod(core_v1, namespace, "fails")) and p.status.phase == "Failed" and p,
        60,
        "Failed",
    )
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3


def test_crashing_container_shows_restarts(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    body = pod_on(ready_node, "crasher", {"command": ["sh", "-c", "echo crash; exit 1"]})
    core_v1.create_namespaced_pod(namespace, body)

    def restarted() -> client.V1ContainerStatus | None:
        pod = read_pod(core_v1, namespace, "crasher")
        statuses = pod.status.container_statuses if pod else None
        return statuses[0] if statuses and statuses[0].restart_count >= 2 else None

    status = wait_until(restarted, 90, "the container to restart at least twice")
    assert status.last_state.terminated is not None
    assert status.last_state.terminated.exit_code == 1
    assert read_pod(core_v1, namespace, "crasher").status.phase == "Running"


def test_inaccessible_image_shows_the_pull_failure(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    body = pod_on(ready_node, "badimage", {"image": "unreachable.invalid/nope:1"})
    core_v1.create_namespaced_pod(namespace, body)

    def waiting_reason() -> str | None:
        pod = read_pod(core_v1, namespace, "badimage")
        statuses = (pod.status.container_statuses or []) if pod else []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

    wait_until(waiting_reason, 30, "the container to wait with ErrImagePull")
    assert read_pod(core_v1, namespace, "badimage").status.phase == "Pending"
    wait_until(
        lambda: [e for e in events_of(core_v1, namespace, "badimage") if e.type == "Warning"],
        10,
        "a Warning event",
    )


def test_unsupported_spec_shows_provider_failed_naming_every_field(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    body = pod_on(ready_node, "hostpath", {"volumeMounts": [{"name": "host", "mountPath": "/host"}]})
    body["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/etc"}}]
    body["spec"]["containers"][0]["livenessProbe"] = {"tcpSocket": {"port": 80}}
    core_v1.create_namespaced_pod(namespace, body)
    pod = wait_until(
        lambda: (p := read_pod(core_v1, namespace, "hostpath")) and p.status.reason == "ProviderFailed" and p,
        30,
        "reason ProviderFailed",
    )
    assert pod.status.phase == "Pending"
    events = wait_until(
        lambda: [e for e in events_of(core_v1, namespace, "hostpath") if e.reason == "ProviderCreateFailed"],
        10,
        "a ProviderCreateFailed event",
    )
    assert "hostPath" in events[0].message
    assert "tcpSocket" in events[0].message


def test_a_pod_waits_for_a_secret_created_after_it_then_runs(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    """A missing Secret is not a spec error: the pod waits, as with a kubelet, and runs once it exists."""
    body = pod_on(ready_node, "late-secret", {"envFrom": [{"secretRef": {"name": "applied-later"}}]})
    core_v1.create_namespaced_pod(namespace, body)

    def waiting_reason() -> str | None:
        pod = read_pod(core_v1, namespace, "late-secret")
        statuses = (pod.status.container_statuses if pod else None) or []
        return next((s.state.waiting.reason for s in statuses if s.state and s.state.waiting), None)

    wait_until(lambda: waiting_reason() == "CreateContainerConfigError", 30, "CreateContainerConfigError")
    pod = read_pod(core_v1, namespace, "late-secret")
    assert pod is not None and pod.status.phase == "Pending" and pod.status.reason != "ProviderFailed"
    wait_until(
        lambda: any(
            "applied-later" in (e.message or "") for e in events_of(core_v1, namespace, "late-secret")
        ),
        10,
        "an Event naming the missing Secret",
    )
    core_v1.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="applied-later"), string_data={"K": "v"})
    )
    wait_until(
        lambda: (
            (p := read_pod(core_v1, namespace, "late-secret")) is not None and p.status.phase == "Running"
        ),
        90,
        "Running once the Secret exists",
    )


def test_operator_killed_during_scale_up_converges_without_duplicates_or_orphans(
    ready_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    operator_process: OperatorProcess,
    namespace: str,
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment(ready_node, "killed", 20))
    wait_until(lambda: arm.list_groups(emulator, resource_group(ready_node)), 60, "the first groups")
    operator_process.stop(signal.SIGKILL)
    # While the operator is down, scale down a little: some groups become orphans.
    apps.patch_namespaced_deployment_scale("killed", namespace, {"spec": {"replicas": 12}})
    operator_process.start()
    wait_until(lambda: len(running_pods(core_v1, namespace, "killed")) == 12, 120, "12 pods Running")

    def converged() -> bool:
        pods = core_v1.list_namespaced_pod(namespace, label_selector="app=killed").items
        groups = arm.list_groups(emulator, resource_group(ready_node))
        return len(pods) == 12 and sorted(g["tags"]["acinode.pod-uid"] for g in groups) == sorted(
            p.metadata.uid for p in pods
        )

    wait_until(converged, 60, "one group per pod and no orphan")
    creates = arm.stats(emulator)["requests"].get("ContainerGroups_CreateOrUpdate", {})
    assert sum(creates.values()) >= 12


def test_group_deleted_behind_the_operators_back(
    ready_node: dict[str, Any], core_v1: client.CoreV1Api, emulator: emulated.Emulator, namespace: str
) -> None:
    """restartPolicy Always: the group is recreated; Never: the pod fails. Both with a ContainerGroupLost event."""
    core_v1.create_namespaced_pod(namespace, pod_on(ready_node, "keeps", {}))
    core_v1.create_namespaced_pod(namespace, pod_on(ready_node, "once", {}, restart_policy="Never"))
    for name in ("keeps", "once"):
        wait_until(
            lambda n=name: (p := read_pod(core_v1, namespace, n)) and p.status.phase == "Running",
            60,
            f"{name} Running",
        )
    rg = resource_group(ready_node)
    old_group_ids = {}
    for name in ("keeps", "once"):
        group_name = names.container_group_name(namespace, name)
        old_group_ids[name] = arm.get_group(emulator, rg, group_name)["id"]
        emulator_hook(emulator, "POST", f"groups/{emulated.SUBSCRIPTION}/{rg}/{group_name}/vanish")

    wait_until(
        lambda: (p := read_pod(core_v1, namespace, "once")) and p.status.phase == "Failed",
        60,
        "'once' to fail",
    )
    wait_until(
        lambda: arm.get_group(emulator, rg, names.container_group_name(namespace, "keeps")),
        60,
        "'keeps' recreated",
    )
    for name in ("keeps", "once"):
        wait_until(
            lambda n=name: [e for e in events_of(core_v1, namespace, n) if e.reason == "ContainerGroupLost"],
            10,
            f"a ContainerGroupLost event for {name}",
        )
    assert read_pod(core_v1, namespace, "keeps").status.phase == "Running"
