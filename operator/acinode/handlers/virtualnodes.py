"""VirtualNode handlers: thin. Each VirtualNode's life is its ``VirtualNodeRuntime`` (runtime/virtualnode.py),
run by a Kopf daemon; spec edits are handed to it; deletion releases what it owns.

Kopf keeps its state (progress annotations, finalizer) on VirtualNodes only; pods and Nodes are handled by the
runtime, which writes nothing of Kopf's onto them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from acinode import errors, services
from acinode.mapping import virtualnode
from acinode.runtime import virtualnode as runtime

VIRTUAL_NODES = ("acinode.dev", "v1alpha1", "virtualnodes")


def _services(memo: Any) -> services.Services:
    result: services.Services = memo.services
    return result


@kopf.on.resume(*VIRTUAL_NODES)
@kopf.on.create(*VIRTUAL_NODES)
@kopf.on.update(*VIRTUAL_NODES)
async def apply_virtual_node(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Hand the spec to the node's runtime (the daemon starts one with the latest spec if none runs yet)."""
    running = _services(memo).runtimes.get(body.metadata.name)
    if running is not None:
        effects = await running.apply(virtualnode.virtual_node_config_from_resource(body))
        if effects != virtualnode.Effect.NONE:
            logger.info(f"spec applied: {effects}")


@kopf.daemon(*VIRTUAL_NODES, cancellation_timeout=10)
async def keep_virtual_node(
    name: str, body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """The node's runtime (heartbeats, lease, backend, pods), for as long as the VirtualNode exists."""
    svc = _services(memo)
    node = runtime.VirtualNodeRuntime(
        svc.runtime_deps(), virtualnode.virtual_node_config_from_resource(body), body.metadata.uid or ""
    )
    svc.runtimes[name] = node
    running = asyncio.create_task(node.run(), name=f"runtime:{name}")
    try:
        # Until Kopf says stop (the VirtualNode is being deleted, or the operator exits): then at once.
        await asyncio.wait(
            [running, asyncio.create_task(_until(stopped))], return_when=asyncio.FIRST_COMPLETED
        )
        if running.done():
            running.result()  # a crashed runtime: Kopf logs it and restarts the daemon
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        if svc.runtimes.get(name) is node:
            del svc.runtimes[name]


async def _until(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


@kopf.on.delete(*VIRTUAL_NODES)
async def release_virtual_node(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Delete the node's container groups, then its Node and Lease: only when they are this VirtualNode's."""
    svc = _services(memo)
    config = virtualnode.virtual_node_config_from_resource(body)
    try:
        logger.info(await runtime.release(svc.runtime_deps(), config, body.metadata.uid or ""))
    except errors.ConfigurationError as err:
        raise kopf.TemporaryError(
            f"cannot reach ACI to delete the container groups of {config.node_name} ({err}): fix the "
            "VirtualNode's Azure settings, or remove the finalizer to abandon them",
            delay=30,
        ) from err
    except errors.AcinodeError as err:
        raise kopf.TemporaryError(f"releasing node {config.node_name}: {err}", delay=5) from err
