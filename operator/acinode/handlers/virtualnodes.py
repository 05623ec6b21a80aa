"""VirtualNode handlers: register its Node, keep it and its pods alive in a daemon, and clean up on deletion.

Kopf keeps its state (progress annotations, finalizer) on VirtualNodes only; pods and Nodes are handled by the
services the daemon runs, which write nothing of Kopf's onto them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from acinode import backends, errors, services
from acinode.aci import api
from acinode.mapping import virtualnode
from acinode.node import backend, keeper, registration
from acinode.pods import cleanup, reconciler

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
async def register_virtual_node(
    body: kopf.Body, memo: kopf.Memo, old: Any, new: Any, logger: Any, **_: Any
) -> None:
    """Make the Node match the spec now; the daemon keeps it that way (and reports a refusal)."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    running = svc.keepers.get(config.name)
    if running is not None:
        running.update_config(config)
    old_azure = (old or {}).get("spec", {}).get("azure") if isinstance(old, dict) else None
    new_azure = (new or {}).get("spec", {}).get("azure") if isinstance(new, dict) else None
    if old_azure is not None and old_azure != new_azure and config.name in svc.restarts:
        svc.restarts[config.name].set()  # new Azure settings: the daemon reconnects
    try:
        claim = await registration.claim_node(svc.kube, config, svc.identity, body.metadata.uid)
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"registering node {config.node_name}: {err}", delay=5) from err
    if claim.refusal is not None:
        # Not retried here: the daemon's keeper retries, and reports the refusal as a condition and an Event.
        logger.warning(f"node {config.node_name} not registered: {claim.refusal.message}")


async def _open_backend_or_raise(svc: services.Services, config: virtualnode.VirtualNodeConfig) -> api.AciApi:
    limiter = svc.limiter_for(config.azure.subscription_id)
    return await backends.open_backend(svc.kube, config, svc.settings, svc.operator_namespace, limiter)


async def _open_backend(svc: services.Services, config: virtualnode.VirtualNodeConfig) -> api.AciApi | None:
    try:
        return await _open_backend_or_raise(svc, config)
    except errors.AcinodeError:
        return None


async def _serve_node(svc: services.Services, body: kopf.Body, restart: asyncio.Event, logger: Any) -> None:
    """Run the node's keeper and pod reconciler until ``restart`` is set or the task is cancelled."""
    config = virtualnode.virtual_node_config_from_resource(body)
    aci: api.AciApi | None = None
    probe: Any
    try:
        secrets = await backends.placement_secrets(svc.kube, config, svc.settings, svc.operator_namespace)
        aci = await _open_backend_or_raise(svc, config)
        probe = backend.UsageProbe(
            aci, svc.settings.node.backend_check_ttl_seconds, svc.settings.node.api_timeout_seconds
        )
    except errors.AcinodeError as err:
        logger.warning(f"Azure settings of {config.name} cannot be used: {err}")
        probe = _MisconfiguredBackend(errors.ConfigurationError(f"Azure settings unusable: {err}"))
    # Built now, run only once the Node is confirmed ours: a VirtualNode whose nodeName is another's Node never
    # reads, patches or deletes the pods bound to it.
    pod_reconciler: reconciler.NodePodReconciler | None = None
    if aci is not None:
        where = virtualnode.group_placement_from_config(
            config, svc.cluster_id, svc.identity.internal_ip, secrets
        )
        pod_reconciler = reconciler.NodePodReconciler(svc.kube, aci, where, svc.settings.pods)
    node_keeper = keeper.NodeKeeper(
        svc.kube,
        config,
        svc.identity,
        probe,
        svc.settings,
        body.metadata.uid,
        pod_count=(lambda: len(pod_reconciler.view.pods)) if pod_reconciler is not None else None,
    )
    svc.keepers[config.name] = node_keeper
    tasks = [asyncio.create_task(node_keeper.run(), name=f"keeper:{config.name}")]
    try:
        if pod_reconciler is None:
            await restart.wait()
        elif await _first_set(restart, node_keeper.owned) is node_keeper.owned:
            svc.reconcilers[config.name] = pod_reconciler
            tasks.append(asyncio.create_task(pod_reconciler.run(), name=f"pods:{config.name}"))
            if await _first_set(restart, node_keeper.disowned) is node_keeper.disowned:
                logger.warning(
                    f"node {config.node_name} is no longer this VirtualNode's: its pods are not served"
                )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if svc.keepers.get(config.name) is node_keeper:
            del svc.keepers[config.name]
        svc.reconcilers.pop(config.name, None)
        if aci is not None:
            await aci.close()


async def _first_set(*events: asyncio.Event) -> asyncio.Event:
    """Wait until one of ``events`` is set; return it (the first of them, when several are)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return next(event for event in events if event.is_set())


@kopf.daemon(*VIRTUAL_NODES, cancellation_timeout=10)
async def keep_virtual_node(
    name: str, body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: Any, **_: Any
) -> None:
    """Heartbeats, lease renewal and the node's pods, for as long as the VirtualNode exists."""
    svc = _services(memo)
    restart = svc.restarts.setdefault(name, asyncio.Event())

    async def until_stopped() -> None:
        await stopped.wait()

    try:
        while not stopped:
            restart.clear()
            # Re-read the object on each (re)start: the daemon's own ``body`` is the live view of it.
            serving = asyncio.create_task(_serve_node(svc, body, restart, logger))
            stopping = asyncio.create_task(until_stopped())
            done, _pending = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
                return
            stopping.cancel()
            serving.result()
    finally:
        svc.restarts.pop(name, None)


@kopf.on.delete(*VIRTUAL_NODES)
async def release_virtual_node(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Delete every container group of the node, then its Node and Lease: only when they are this VirtualNode's.

    Groups are tagged with the node name, not the VirtualNode: a VirtualNode refused for a nodeName held by
    another removes nothing of it (see ``ownership.release_on_delete``).
    """
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    try:
        scope = await registration.release_scope(svc.kube, config.node_name, body.metadata.uid)
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"releasing node {config.node_name}: {err}", delay=5) from err
    if not scope.groups:
        logger.info(
            f"node {config.node_name} is not this VirtualNode's: nothing of it removed ({scope.reason})"
        )
        return
    aci = await _open_backend(svc, config)
    if aci is None:
        raise kopf.TemporaryError(
            f"cannot reach ACI to delete the container groups of {config.node_name}: fix the VirtualNode's Azure "
            "settings, or remove the finalizer to abandon them",
            delay=30,
        )
    try:
        await cleanup.delete_node_groups(aci, svc.cluster_id, config.node_name)
        if scope.node_uid is not None:
            await registration.remove_node(svc.kube, config.node_name, scope.node_uid)
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"releasing node {config.node_name}: {err}", delay=5) from err
    finally:
        await aci.close()
