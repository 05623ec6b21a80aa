"""Proof that the test bed is a real Kubernetes: controllers, scheduler and node lifecycle all act.

These tests do by hand what acinode automates (register a node, renew its lease), to show that the control plane
the other tests rely on reacts like a real cluster does.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_MANIFEST = REPO_ROOT / "examples" / "seed" / "virtual-node.yaml"
VIRTUAL_KUBELET_TAINT = client.V1Taint(key="virtual-kubelet.io/provider", value="azure", effect="NoSchedule")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _seed_deployment(name: str) -> dict[str, object]:
    manifest = yaml.safe_load(SEED_MANIFEST.read_text())
    manifest["metadata"]["name"] = name
    return manifest


def _pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector="app=aci-helloworld").items)


class HandRenewedNode:
    """A Node registered through the API, with a Lease renewed by a thread, like a minimal kubelet."""

    def __init__(self, core: client.CoreV1Api, coordination: client.CoordinationV1Api, name: str) -> None:
        self.core, self.coordination, self.name = core, coordination, name
        self.stop_renewing = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True)

    def register(self) -> None:
        labels = {
            "type": "virtual-kubelet",
            "kubernetes.io/role": "agent",
            "kubernetes.io/os": "linux",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/hostname": self.name,
        }
        node = self.core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(name=self.name, labels=labels),
                spec=client.V1NodeSpec(taints=[VIRTUAL_KUBELET_TAINT]),
            )
        )
        capacity = {"cpu": "100", "memory": "400Gi", "pods": "200"}
        now = _now()
        self.core.patch_node_status(
            self.name,
            {
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "test kubelet",
                            "lastHeartbeatTime": now.isoformat(),
                            "lastTransitionTime": now.isoformat(),
                        }
                    ],
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                }
            },
        )
        self.coordination.create_namespaced_lease(
            "kube-node-lease",
            client.V1Lease(
                metadata=client.V1ObjectMeta(
                    name=self.name,
                    owner_references=[
                        client.V1OwnerReference(
                            api_version="v1", kind="Node", name=self.name, uid=node.metadata.uid
                        )
                    ],
                ),
                spec=client.V1LeaseSpec(holder_identity=self.name, lease_duration_seconds=40, renew_time=now),
            ),
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self.stop_renewing.wait(2.0):
            self.coordination.patch_namespaced_lease(
                self.name, "kube-node-lease", {"spec": {"renewTime": _now().isoformat()}}
            )

    def remove(self) -> None:
        self.stop_renewing.set()
        self._thread.join(timeout=10)
        self.core.delete_node(self.name)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def hand_node(core_v1: client.CoreV1Api, api_client: client.ApiClient) -> Iterator[HandRenewedNode]:
    node = HandRenewedNode(core_v1, client.CoordinationV1Api(api_client), f"vk-{uuid.uuid4().hex[:6]}")
    yield node
    node.remove()


def test_seed_deployment_gets_pods_that_stay_pending_without_a_matching_node(
    core_v1: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _seed_deployment("aci-helloworld"))

    pods = wait_until(lambda: _pods(core_v1, namespace), 30, "the ReplicaSet controller to create a pod")
    assert apps.list_namespaced_replica_set(namespace).items, "the deployment controller made no ReplicaSet"

    def failed_scheduling() -> list[client.CoreV1Event]:
        events = core_v1.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pods[0].metadata.name}"
        )
        return [e for e in events.items if e.reason == "FailedScheduling"]

    events = wait_until(failed_scheduling, 30, "the scheduler's FailedScheduling event")
    assert "node" in events[0].message
    pod = core_v1.read_namespaced_pod(pods[0].metadata.name, namespace)
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name


def test_scheduler_binds_seed_pods_to_a_registered_virtual_kubelet_node(
    core_v1: client.CoreV1Api, apps: client.AppsV1Api, namespace: str, hand_node: HandRenewedNode
) -> None:
    hand_node.register()
    apps.create_namespaced_deployment(namespace, _seed_deployment("aci-helloworld"))

    def bound_pods() -> list[client.V1Pod]:
        return [p for p in _pods(core_v1, namespace) if p.spec.node_name == hand_node.name]

    bound = wait_until(bound_pods, 60, f"the scheduler to bind the seed pod to {hand_node.name}")
    assert len(bound) == 1


def test_node_lifecycle_controller_marks_a_node_unknown_when_its_lease_expires(
    core_v1: client.CoreV1Api, hand_node: HandRenewedNode
) -> None:
    hand_node.register()
    ready = wait_until(
        lambda: core_v1.read_node(hand_node.name).status.conditions,
        10,
        "the node's conditions",
    )
    assert any(c.type == "Ready" and c.status == "True" for c in ready)

    hand_node.stop_renewing.set()

    def ready_status() -> str | None:
        node = core_v1.read_node(hand_node.name)
        taints = {t.key for t in node.spec.taints or []}
        status = next(c.status for c in node.status.conditions if c.type == "Ready")
        return status if status == "Unknown" and "node.kubernetes.io/unreachable" in taints else None

    # Grace period (20 s in the test control plane) after the last renewal, plus the monitor period.
    assert wait_until(ready_status, 90, "the node lifecycle controller to mark the node Unknown") == "Unknown"
