"""VirtualNodeRuntime on the fakes: the backend retried until its Secrets exist, the pod controller gated on the
Node being ours, and spec edits applied in place or by a rebuild, as the effects table says."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "node"))

from node_builders import IDENTITY, fast_settings, node_path, virtual_node

from acinode import errors, types
from acinode.aci import ratelimit
from acinode.kube import resources
from acinode.mapping import placement, virtualnode
from acinode.runtime import virtualnode as runtime
from fakes.changes import Changes
from fakes.fake_kube import FakeKube

pytestmark = pytest.mark.timeout(5)


class FakeAci:
    def __init__(self, changes: Changes) -> None:
        self.closed = False
        self.changes = changes
        changes.wake()

    async def location_usage(self) -> list[Any]:
        return []

    async def close(self) -> None:
        self.closed = True
        self.changes.wake()


class FakeController:
    def __init__(self, aci: FakeAci, where: placement.GroupPlacement) -> None:
        self.aci = aci
        self.changes = aci.changes
        self.placements = [where]
        self.running = asyncio.Event()
        self.stopped = False

    def update_placement(self, where: placement.GroupPlacement) -> None:
        self.placements.append(where)

    def pod_count(self) -> int:
        return 0

    async def run(self) -> None:
        self.running.set()
        self.changes.wake()
        try:
            await asyncio.Event().wait()
        finally:
            self.stopped = True
            self.changes.wake()


@dataclasses.dataclass
class Harness:
    kube: FakeKube
    runtime: runtime.VirtualNodeRuntime
    opened: list[FakeAci]
    controllers: list[FakeController]
    secret_ready: asyncio.Event

    async def until(self, predicate: Any, what: str) -> None:
        """Re-checked on every fake API call and every change of the fake backend and controllers."""
        await self.kube.wait_until(predicate, 3.0, what)


@contextlib.asynccontextmanager
async def harness(
    secret_ready: bool = True, nodes: tuple[dict[str, Any], ...] = (), **spec: Any
) -> AsyncIterator[Harness]:
    changes = Changes()
    kube = FakeKube(changes_signal=changes)
    for existing in nodes:
        kube.put("/api/v1/nodes", existing)
    body = virtual_node(**spec)
    kube.put("/apis/acinode.dev/v1alpha1/virtualnodes", body)
    settings = fast_settings()
    settings = dataclasses.replace(
        settings, node=dataclasses.replace(settings.node, config_retry_seconds=0.05)
    )
    deps = runtime.RuntimeDeps(
        kube=kube,
        settings=settings,
        identity=IDENTITY,
        operator_namespace="acinode-system",
        cluster_id=types.ClusterId("cluster"),
        limiter_for=lambda sub: ratelimit.ArmRateLimiter(settings.aci),
    )
    opened: list[FakeAci] = []
    controllers: list[FakeController] = []
    ready = asyncio.Event()
    if secret_ready:
        ready.set()

    async def open_backend(config: virtualnode.VirtualNodeConfig) -> Any:
        if not ready.is_set():
            raise errors.ConfigurationError("Secret acinode-system/sp not found")
        opened.append(FakeAci(changes))
        return opened[-1]

    async def read_secrets(config: virtualnode.VirtualNodeConfig) -> virtualnode.PlacementSecrets:
        return virtualnode.PlacementSecrets()

    def make_controller(aci: Any, where: placement.GroupPlacement) -> Any:
        controllers.append(FakeController(aci, where))
        return controllers[-1]

    node = runtime.VirtualNodeRuntime(
        deps,
        virtualnode.virtual_node_config_from_resource(body),
        "vn-uid",
        open_backend=open_backend,
        read_placement_secrets=read_secrets,
        make_controller=make_controller,
    )
    task = asyncio.create_task(node.run())
    try:
        yield Harness(kube, node, opened, controllers, ready)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def ready_reason(kube: FakeKube) -> str | None:
    node = kube.stored(node_path())
    for condition in (node or {}).get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return f"{condition['status']}:{condition.get('message', '')}"
    return None


async def test_a_secret_created_later_is_picked_up_and_the_node_turns_ready() -> None:
    async with harness(secret_ready=False) as h:
        await h.until(lambda: (ready_reason(h.kube) or "").startswith("False:"), "NotReady")
        assert "Secret acinode-system/sp not found" in (ready_reason(h.kube) or "")
        assert h.controllers == []  # no pods served without a backend
        h.secret_ready.set()
        await h.until(lambda: (ready_reason(h.kube) or "").startswith("True"), "Ready once the Secret exists")
        await h.until(
            lambda: h.controllers and h.controllers[0].running.is_set(), "the pod controller running"
        )


async def test_the_pod_controller_waits_for_the_node_to_be_ours() -> None:
    real_node = {"metadata": {"name": "vn-1", "labels": {"kubernetes.io/hostname": "vn-1"}}, "spec": {}}
    async with harness(nodes=(real_node,)) as h:
        await h.until(h.runtime.connected.is_set, "the backend open")
        await h.until(lambda: h.runtime.keeper.refusal is not None, "the name refused")
        assert h.controllers == [] or not h.controllers[0].running.is_set()
        h.kube.remove(node_path())  # the real node goes: the name is free
        await h.until(
            lambda: h.controllers and h.controllers[0].running.is_set(), "served once the Node is ours"
        )


async def test_placement_edits_reach_the_running_controller_in_place() -> None:
    async with harness() as h:
        await h.until(lambda: h.controllers and h.controllers[0].running.is_set(), "served")
        changed = virtualnode.virtual_node_config_from_resource(
            virtual_node(dns={"clusterDNS": ["10.0.0.99"]})
        )
        assert await h.runtime.apply(changed) == virtualnode.Effect.PLACEMENT
        [controller] = h.controllers
        assert controller.placements[-1].cluster_dns == placement.ClusterDnsSettings(nameserver="10.0.0.99")
        assert len(h.opened) == 1 and not h.opened[0].closed  # no rebuild


async def test_a_placement_edit_reports_its_generation_without_touching_the_node() -> None:
    async with harness() as h:
        await h.until(lambda: h.controllers and h.controllers[0].running.is_set(), "served")
        await h.until(lambda: observed_generation(h.kube) == 1, "generation 1 observed")
        h.kube.reset_calls()
        changed = virtualnode.virtual_node_config_from_resource(
            virtual_node(generation=2, dns={"clusterDNS": ["10.0.0.99"]})
        )
        assert await h.runtime.apply(changed) == virtualnode.Effect.PLACEMENT
        await h.until(lambda: observed_generation(h.kube) == 2, "generation 2 observed")
        assert h.kube.count(path=node_path()) == 0, "a placement edit needs no Node request"


def observed_generation(kube: FakeKube) -> object:
    stored = kube.stored(resources.virtual_node_path("vn-1")) or {}
    return stored.get("status", {}).get("observedGeneration")


async def test_label_edits_reach_the_node() -> None:
    async with harness() as h:
        await h.until(lambda: h.kube.stored(node_path()) is not None, "registered")
        await h.runtime.apply(
            virtualnode.virtual_node_config_from_resource(virtual_node(labels={"team": "burst"}))
        )
        await h.until(
            lambda: (
                (h.kube.stored(node_path()) or {}).get("metadata", {}).get("labels", {}).get("team")
                == "burst"
            ),
            "the label on the Node",
        )


async def test_credential_edits_rebuild_backend_and_controller() -> None:
    async with harness() as h:
        await h.until(lambda: h.controllers and h.controllers[0].running.is_set(), "served")
        changed = virtualnode.virtual_node_config_from_resource(
            virtual_node(
                azure={**virtual_node()["spec"]["azure"], "credentials": {"type": "WorkloadIdentity"}}
            )
        )
        assert await h.runtime.apply(changed) == virtualnode.Effect.BACKEND
        await h.until(lambda: len(h.controllers) == 2 and h.controllers[1].running.is_set(), "rebuilt")
        assert h.opened[0].closed and h.controllers[0].stopped
        assert not h.opened[1].closed
