"""Builders for the pod controller's tests: bound pods, our groups' tags, and a controller on fakes."""

from __future__ import annotations

import copy
from typing import Any, cast

from acinode import settings, types
from acinode.aci import api
from acinode.kube import pods as kube_pods
from acinode.mapping import objects, placement, tags
from acinode.mapping import pods as pod_mapping
from acinode.pods import controller, protocols
from fakes.fake_aci import FakeAciApi
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube

CLUSTER = types.ClusterId("cluster-1")
NODE = types.NodeName("vn-a")
WHERE = placement.GroupPlacement(node_name=NODE, cluster_id=CLUSTER, region="westeurope")
SETTINGS = settings.PodSettings(concurrent_actions=2)


def pod(
    name: str = "web",
    namespace: str = "shop",
    *,
    uid: str | None = None,
    node: str = NODE,
    restart_policy: str = "Always",
    env_from_secret: str | None = None,
    image: str = "busybox",
    generation: int = 1,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
    }
    if env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": env_from_secret}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{namespace}-{name}",
            "generation": generation,
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "containers": [container],
        },
        "status": {"phase": "Pending"},
    }


def ran(body: dict[str, Any]) -> dict[str, Any]:
    """The pod as it looks once its group has run (phase Running, a running container)."""
    body = copy.deepcopy(body)
    body["status"] = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "main",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2025-01-01T12:00:00Z"}},
            }
        ],
    }
    return body


def group_name(body: dict[str, Any]) -> types.ContainerGroupName:
    return pod_mapping.container_group_name_from_pod(cast(objects.Pod, body))


def own_tags(name: str = "web", namespace: str = "shop", uid: str | None = None) -> dict[str, str]:
    return {
        tags.TAG_CLUSTER_ID: CLUSTER,
        tags.TAG_NODE: NODE,
        tags.TAG_NAMESPACE: namespace,
        tags.TAG_POD: name,
        tags.TAG_POD_UID: uid or f"uid-{namespace}-{name}",
    }


def summary(name: str, uid: str = "u1", state: str = "Succeeded") -> api.GroupSummary:
    return api.GroupSummary(
        name=types.ContainerGroupName(name), tags=own_tags(name, uid=uid), provisioning_state=state
    )


class RecordingObserver:
    def __init__(self) -> None:
        self.reconciles: list[tuple[str, float]] = []
        self.syncs: list[tuple[str, float]] = []

    def on_reconcile(self, node: str, seconds: float) -> None:
        self.reconciles.append((node, seconds))

    def on_sync(self, node: str, seconds: float) -> None:
        self.syncs.append((node, seconds))


class Stack:
    """A controller on FakeKube, FakeAciApi and a FakeClock; pods are bound through the API (and the view)."""

    def __init__(self, kube: FakeKube, aci: FakeAciApi, clock: FakeClock) -> None:
        self.kube = kube
        self.aci = aci
        self.clock = clock
        self.observer = RecordingObserver()
        self.controller = controller.PodController(
            kube, aci, WHERE, SETTINGS, clock=clock, observer=self.observer
        )

    def _served(self) -> protocols.ServedNode:
        return self.controller  # mypy (when run on tests) proves the controller serves the kubelet's role

    def bind(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the pod in the API and deliver it to the view as the watch would."""
        metadata = body["metadata"]
        stored = self.kube.put(kube_pods.pod_path(metadata["namespace"], metadata["name"]), body)
        self.controller.view.apply_event({"type": "ADDED", "object": stored})
        return stored

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body["metadata"]
        stored = self.kube.put(kube_pods.pod_path(metadata["namespace"], metadata["name"]), body)
        self.controller.view.apply_event({"type": "MODIFIED", "object": stored})
        return stored

    def current(self, body: dict[str, Any]) -> dict[str, Any] | None:
        metadata = body["metadata"]
        return self.kube.stored(kube_pods.pod_path(metadata["namespace"], metadata["name"]))

    async def start(self) -> None:
        """The view's first list and ARM's first listing, as ``run`` does before any worker acts; every key
        queued (the first sync pass queues the listed groups)."""
        await self.controller.view.relist()
        await self.controller.groups.refresh()
        self.controller.enqueue_all()

    async def drain(self) -> list[object]:
        """Reconcile every queued key (each once), as the workers would; returns the keys."""
        handled: list[object] = []
        queue = self.controller.queue
        while len(queue):
            key = await queue.get()
            try:
                await self.controller.reconcile_key(key)
            finally:
                queue.done(key)
            handled.append(key)
        return handled

    def later(self, seconds: float) -> None:
        """Let ``seconds`` pass: scheduled retries that are due now are queued."""
        self.clock.advance(seconds)
        self.controller.queue.fire_due()
