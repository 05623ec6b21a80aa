"""The VirtualNode handlers, Kopf's way: called in-process as Kopf calls them (body, memo, logger), on the fake API.
They stay thin: hand the spec to the runtime, or release what the VirtualNode owns and map errors to Kopf's."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

from acinode import errors, services, settings, types
from acinode.handlers import virtualnodes as handlers
from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode
from fakes.fake_kube import FakeKube

pytestmark = pytest.mark.timeout(5)

LOG = logging.getLogger("test")
IDENTITY = node_mapping.NodeIdentity(internal_ip="10.0.0.7", kubelet_port=10250, kubelet_version="v1")
AZURE = {
    "subscriptionId": "00000000-0000-0000-0000-000000000001",
    "resourceGroup": "rg",
    "region": "westeurope",
}


def body(uid: str = "vn-uid", **spec: Any) -> kopf.Body:
    return kopf.Body(
        {"metadata": {"name": "vn-1", "uid": uid, "generation": 2}, "spec": {"azure": AZURE, **spec}}
    )


def memo(kube: FakeKube) -> kopf.Memo:
    svc = services.Services(
        kube=kube,
        settings=settings.Settings(),
        identity=IDENTITY,
        operator_namespace="acinode-system",
        cluster_id=types.ClusterId("cluster"),
    )
    return kopf.Memo(services=svc)


class RecordingRuntime:
    def __init__(self) -> None:
        self.applied: list[virtualnode.VirtualNodeConfig] = []

    async def apply(self, config: virtualnode.VirtualNodeConfig) -> virtualnode.Effect:
        self.applied.append(config)
        return virtualnode.Effect.PLACEMENT


async def test_an_update_hands_the_whole_object_to_the_running_runtime() -> None:
    the_memo = memo(FakeKube())
    runtime = RecordingRuntime()
    the_memo.services.runtimes["vn-1"] = runtime
    await handlers.apply_virtual_node(body=body(dns={"clusterDNS": ["10.0.0.99"]}), memo=the_memo, logger=LOG)
    [config] = runtime.applied
    assert config.dns.cluster_dns == ("10.0.0.99",)  # the spec, read from the whole object (not field="spec")
    assert config.generation == 2


async def test_an_update_without_a_runtime_waits_for_the_daemon() -> None:
    # Nothing to do: the daemon starts the runtime from the latest object.
    await handlers.apply_virtual_node(body=body(), memo=memo(FakeKube()), logger=LOG)


async def test_deleting_a_virtual_node_whose_node_is_another_owners_removes_nothing() -> None:
    kube = FakeKube()
    kube.put(
        "/api/v1/nodes",
        {"metadata": {"name": "vn-1", "annotations": {"acinode.dev/virtual-node-uid": "someone-else"}}},
    )
    await handlers.release_virtual_node(body=body(), memo=memo(kube), logger=LOG)
    assert kube.stored("/api/v1/nodes/vn-1") is not None
    assert kube.count("DELETE") == 0


async def test_deleting_with_unusable_azure_settings_is_retried_with_the_reason() -> None:
    kube = FakeKube()  # no Node: the groups may still exist, and the Secret is missing
    spec_azure = {**AZURE, "credentials": {"type": "StaticToken", "secretRef": {"name": "gone"}}}
    with pytest.raises(kopf.TemporaryError, match="Secret acinode-system/gone not found"):
        await handlers.release_virtual_node(body=body(azure=spec_azure), memo=memo(kube), logger=LOG)


async def test_a_transient_api_failure_while_releasing_is_retried_soon() -> None:
    kube = FakeKube()
    kube.fail("/api/v1/nodes/vn-1", errors.TransientError("503"))
    with pytest.raises(kopf.TemporaryError) as caught:
        await handlers.release_virtual_node(body=body(), memo=memo(kube), logger=LOG)
    assert caught.value.delay == 5
