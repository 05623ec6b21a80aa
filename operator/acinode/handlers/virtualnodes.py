"""VirtualNode handlers: register its Node, keep it alive in a daemon, and clean up on deletion."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from acinode import backends, errors, services
from acinode.aci import api
from acinode.mapping import virtualnode
from acinode.node import backend, keeper, registration

VIRTUAL_NODES = ("acinode.dev", "v1alpha1", "virtualnodes")


class _MisconfiguredBackend:
    """Stands in for the backend probe while the VirtualNode's Azure settings cannot be used."""

    def __init__(self, error: errors.AcinodeError) -> None:
        self.error = error

    async def check(self) -> None:
        raise self.error


def _services(memo: Any) -> services.Services:
    result: services.Services = memo.services
    return result


@kopf.on.resume(*VIRTUAL_NODES)
@kopf.on.create(*VIRTUAL_NODES)
@kopf.on.update(*VIRTUAL_NODES, field="spec")
async def register_virtual_node(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Make the Node match the spec now; the daemon keeps it that way."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    running = svc.keepers.get(config.name)
    if running is not None:
        running.update_config(config)
    try:
        await registration.ensure_node(svc.kube, config, svc.identity, body.metadata.uid)
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"registering node {config.node_name}: {err}", delay=5) from err


@kopf.daemon(*VIRTUAL_NODES, cancellation_timeout=10)
async def keep_virtual_node(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Heartbeats and lease renewal for as long as the VirtualNode exists."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    aci: api.AciApi | None = None
    probe: Any
    try:
        aci = await backends.open_backend(svc.kube, config, svc.settings, svc.operator_namespace)
        probe = backend.UsageProbe(aci, svc.settings.node.backend_check_ttl_seconds, svc.settings.node.api_timeout_seconds)
    except errors.AcinodeError as err:
        probe = _MisconfiguredBackend(errors.ConfigurationError(f"Azure settings unusable: {err}"))
    node_keeper = keeper.NodeKeeper(svc.kube, config, svc.identity, probe, svc.settings, body.metadata.uid)
    svc.keepers[config.name] = node_keeper
    task = asyncio.create_task(node_keeper.run(), name=f"keeper:{config.name}")
    try:
        await stopped.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if svc.keepers.get(config.name) is node_keeper:
            del svc.keepers[config.name]
        if aci is not None:
            await aci.close()


@kopf.on.delete(*VIRTUAL_NODES)
async def release_virtual_node(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Remove the Node and its Lease once nothing of the node is left in ACI."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    try:
        await registration.remove_node(svc.kube, config.node_name)
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"removing node {config.node_name}: {err}", delay=5) from err
