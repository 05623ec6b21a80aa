"""VirtualNode handlers: thin. Each VirtualNode's life is its ``VirtualNodeRuntime`` (runtime/virtualnode.py),
run by a Kopf daemon on every replica, but only while that replica holds the VirtualNode's Lease
(runtime/ownership.py); spec edits are handed to it where it runs; deletion releases what it owns, on exactly one
replica (the one that holds, or takes, the Lease).

Kopf runs standalone on every replica. Its state (finalizer, progress and last-handled annotations) stays on
VirtualNodes: every replica writes the same last-handled configuration, and create/update/resume only hand the
spec to a runtime running here, so whichever replica records it first, the others find nothing left to do. Pods
and Nodes are handled by the runtime, which writes nothing of Kopf's onto them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from acinode import errors, services
from acinode.kube import resources
from acinode.mapping import virtualnode
from acinode.runtime import ownership
from acinode.runtime import virtualnode as runtime

VIRTUAL_NODES = ("acinode.dev", "v1alpha1", "virtualnodes")


def _services(memo: Any) -> services.Services:
    result: services.Services = memo.services
    return result


@kopf.on.resume(*VIRTUAL_NODES)
@kopf.on.create(*VIRTUAL_NODES)
@kopf.on.update(*VIRTUAL_NODES)
async def apply_virtual_node(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Hand the spec to the node's runtime if it runs on this replica (the daemon starts one with the latest spec
    when this replica takes the VirtualNode's Lease)."""
    running = _services(memo).runtimes.get(body.metadata.name)
    if running is not None:
        effects = await running.apply(virtualnode.virtual_node_config_from_resource(body))
        if effects != virtualnode.Effect.NONE:
            logger.info(f"spec applied: {effects}")


@kopf.daemon(*VIRTUAL_NODES, cancellation_timeout=10)
async def keep_virtual_node(
    name: str, body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """The node's runtime (heartbeats, lease, backend, pods) while this replica holds the VirtualNode's Lease, for
    as long as the VirtualNode exists."""
    svc = _services(memo)
    uid = body.metadata.uid or ""

    async def serve() -> None:
        # Built from the latest spec at each acquisition (Kopf keeps ``body`` current for daemons).
        node = runtime.VirtualNodeRuntime(
            svc.runtime_deps(), virtualnode.virtual_node_config_from_resource(body), uid
        )
        svc.runtimes[name] = node
        try:
            await node.run()
        finally:
            if svc.runtimes.get(name) is node:
                del svc.runtimes[name]

    if svc.ownership is None:
        stopping = asyncio.create_task(_until(stopped))
        serving = asyncio.create_task(serve())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if serving.done():
                serving.result()  # a crashed runtime: Kopf logs it and restarts the daemon
        finally:
            stopping.cancel()
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        return

    stop = asyncio.Event()
    relay = asyncio.create_task(_relay(stopped, stop))

    def deleted() -> bool:
        # Deleted: keep the Lease, so this replica's delete handler resumes it at once to release the node.
        reason = stopped.reason
        return reason is not None and bool(reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)

    try:
        await ownership.serve_virtual_node(svc.ownership, name, uid, serve, stop, keep_lease_on_stop=deleted)
    finally:
        relay.cancel()


async def _until(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


async def _relay(stopped: kopf.DaemonStopped, stop: asyncio.Event) -> None:
    await stopped.wait()
    stop.set()


@kopf.on.delete(*VIRTUAL_NODES)
async def release_virtual_node(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Delete the node's container groups, then its Node and Lease: only when they are this VirtualNode's, and on
    one replica only (the holder of its Lease; another once the Lease is free). The others wait until it is done
    and return, so that Kopf removes the finalizer only after the release."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    name, uid = body.metadata.name or "", body.metadata.uid or ""

    async def release() -> str:
        return await runtime.release(svc.runtime_deps(), config, uid)

    async def still_there() -> bool:
        current = await resources.get_virtual_node(svc.kube, name)
        return current is not None and (current.get("metadata") or {}).get("uid") == uid

    try:
        if svc.ownership is None:
            logger.info(await release())
        else:
            logger.info(
                await ownership.release_deleted_virtual_node(
                    svc.ownership, name, uid, release, still_there, serving_here=lambda: name in svc.runtimes
                )
            )
    except errors.ConfigurationError as err:
        raise kopf.TemporaryError(
            f"cannot reach ACI to delete the container groups of {config.node_name} ({err}): fix the "
            "VirtualNode's Azure settings, or remove the finalizer to abandon them",
            delay=30,
        ) from err
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"releasing node {config.node_name}: {err}", delay=5) from err
