"""``VirtualNodeRuntime``: everything one VirtualNode runs, built from its spec once and kept in line with it.

- The keeper (Node registration, Lease, status) runs from the start and for as long as the VirtualNode exists.
- The backend (the Secrets the spec names, the ACI client, the usage probe) is opened in a loop: a Secret created
  after its VirtualNode, or credentials fixed later, are picked up within ``NodeSettings.config_retry_seconds``.
- The pod controller runs only while the backend is open and the keeper holds the Node (ownership gate).
- ``apply(new_config)`` decides per field (``virtualnode.change_effects``): the Node is patched in place, the next
  pods' placement is replaced in place, or the backend and controller are rebuilt. Running groups are never
  touched by an edit: ACI cannot change a running group without restarting it.
- ``release`` (module function) removes what a deleted VirtualNode owns, whether or not a runtime is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from acinode import backends, errors, settings, types
from acinode.aci import api, ratelimit
from acinode.kube import client
from acinode.mapping import node as node_mapping
from acinode.mapping import placement, virtualnode
from acinode.node import backend, keeper, registration
from acinode.pods import cleanup, lifecycle, protocols, reconciler

logger = logging.getLogger(__name__)


class PodController(Protocol):
    """What the runtime needs of a node's pod controller."""

    def update_placement(self, where: placement.GroupPlacement) -> None: ...

    def pod_count(self) -> int: ...

    async def run(self) -> None: ...


ControllerFactory = Callable[[api.AciApi, placement.GroupPlacement], PodController]
BackendOpener = Callable[[virtualnode.VirtualNodeConfig], Awaitable[api.AciApi]]
SecretsReader = Callable[[virtualnode.VirtualNodeConfig], Awaitable[virtualnode.PlacementSecrets]]


@dataclasses.dataclass(frozen=True)
class RuntimeDeps:
    """What every runtime shares: built once by the composition root."""

    kube: client.KubeClient
    settings: settings.Settings
    identity: node_mapping.NodeIdentity
    operator_namespace: str
    cluster_id: types.ClusterId
    limiter_for: Callable[[str], ratelimit.ArmRateLimiter]
    pod_observer: protocols.PodObserver | None = None
    """Told how long each reconcile and sync takes (the metrics); None: nobody listens."""
    on_serving: Callable[[str, Any], None] = lambda name, controller: None
    """Called when a node's pods start being served (the kubelet API and metrics find the controller)."""
    on_stopped: Callable[[str, Any], None] = lambda name, controller: None
    images: lifecycle.ImageEntrypoints | None = None
    """Reads image ENTRYPOINTs from registries, shared by every node (its caches too)."""
    probe_results: backend.ProbeResults = dataclasses.field(default_factory=backend.ProbeResults)
    """Backend checks shared by the nodes that reach ARM the same way (one read per TTL for all of them)."""


class SwitchableProbe:
    """The keeper's backend probe: the open backend's, or the reason there is none."""

    def __init__(self) -> None:
        self.current: backend.UsageProbe | None = None
        self.error: errors.AcinodeError = errors.ConfigurationError("connecting to Azure Container Instances")

    async def check(self) -> None:
        if self.current is None:
            raise self.error
        await self.current.check()


class VirtualNodeRuntime:
    def __init__(
        self,
        deps: RuntimeDeps,
        config: virtualnode.VirtualNodeConfig,
        owner_uid: str,
        *,
        open_backend: BackendOpener | None = None,
        read_placement_secrets: SecretsReader | None = None,
        make_controller: ControllerFactory | None = None,
    ) -> None:
        self.deps = deps
        self.config = config
        self.owner_uid = owner_uid
        self._open_backend = open_backend or self._open_azure_backend
        self._read_secrets = read_placement_secrets or self._read_placement_secrets
        self._make_controller = make_controller or self._make_reconciler
        self.probe = SwitchableProbe()
        self.controller: PodController | None = None
        self.keeper = keeper.NodeKeeper(
            deps.kube,
            config,
            deps.identity,
            self.probe,
            deps.settings,
            owner_uid,
            pod_count=lambda: self.controller.pod_count() if self.controller is not None else 0,
        )
        self._secrets = virtualnode.PlacementSecrets()
        self._rebuild = asyncio.Event()
        self.connected = asyncio.Event()
        """Set while the backend is open (tests and the keeper's readiness wait on it)."""

    @property
    def name(self) -> str:
        return self.config.name

    def _log(self) -> dict[str, str]:
        return {"node": self.config.node_name}

    # --- building blocks (replaceable in tests) ----------------------------------------------------------------

    async def _open_azure_backend(self, config: virtualnode.VirtualNodeConfig) -> api.AciApi:
        deps = self.deps
        return await backends.open_backend(
            deps.kube,
            config,
            deps.settings,
            deps.operator_namespace,
            deps.limiter_for(config.azure.subscription_id),
        )

    async def _read_placement_secrets(
        self, config: virtualnode.VirtualNodeConfig
    ) -> virtualnode.PlacementSecrets:
        deps = self.deps
        return await backends.placement_secrets(deps.kube, config, deps.settings, deps.operator_namespace)

    def _make_reconciler(self, aci: api.AciApi, where: placement.GroupPlacement) -> PodController:
        deps = self.deps
        return reconciler.NodePodReconciler(
            deps.kube, aci, where, deps.settings.pods, observer=deps.pod_observer, images=deps.images
        )

    def placement(self) -> placement.GroupPlacement:
        deps = self.deps
        return virtualnode.group_placement_from_config(
            self.config, deps.cluster_id, deps.identity.internal_ip, self._secrets
        )

    # --- spec edits -------------------------------------------------------------------------------------------

    async def apply(self, config: virtualnode.VirtualNodeConfig) -> virtualnode.Effect:
        """Make a running node follow an edited spec; returns what had to happen (docs/architecture.md).

        Placement changes are in force when this returns; only then does the keeper report the new generation as
        ``status.observedGeneration``, so a client that waits for it knows the next pod follows the new spec."""
        effects = virtualnode.change_effects(self.config, config)
        self.config = config
        if effects == virtualnode.Effect.NONE:
            self.keeper.update_config(config, reclaim=False)  # the new generation is observed all the same
            return effects
        logger.info("spec changed: %s", effects, extra=self._log())
        if effects & virtualnode.Effect.BACKEND:
            self._rebuild.set()
        elif self.controller is not None and effects & virtualnode.Effect.PLACEMENT:
            if effects & virtualnode.Effect.PLACEMENT_SECRETS:
                await self._reload_placement_secrets()
            if not self._rebuild.is_set():
                self.controller.update_placement(self.placement())
        # A Node-shaping edit also re-checks the spec's labels and the Node's ownership (a claim: one Node GET).
        self.keeper.update_config(config, reclaim=bool(effects & virtualnode.Effect.NODE))
        return effects

    async def _reload_placement_secrets(self) -> None:
        try:
            self._secrets = await self._read_secrets(self.config)
        except errors.AcinodeError as err:
            # A Secret the new spec names is not there (yet): rebuild, which retries until it is.
            logger.warning("placement secrets of %s unusable: %s", self.name, err, extra=self._log())
            self._rebuild.set()

    # --- running ----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the node and its pods until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.keeper.run(), name=f"keeper:{self.name}")
            tasks.create_task(self._run_backend(), name=f"backend:{self.name}")

    async def _connect(self) -> api.AciApi:
        """Read the spec's Secrets and open the ACI client, retrying until they can be used."""
        failures = 0
        retry = self.deps.settings.node.config_retry_seconds
        while True:
            config = self.config
            try:
                self._secrets = await self._read_secrets(config)
                aci = await self._open_backend(config)
            except errors.AcinodeError as err:
                failures += 1
                self.probe.error = errors.ConfigurationError(f"Azure settings unusable: {err}")
                self.probe.current = None
                self.keeper.poke()
                if failures == 1:
                    logger.warning(
                        "Azure settings of %s cannot be used: %s", self.name, err, extra=self._log()
                    )
                self._rebuild.clear()
                with contextlib.suppress(TimeoutError):
                    # Back off (1, 2, 4 … s), but at once when the spec changes.
                    async with asyncio.timeout(min(retry, 2.0 ** (failures - 1))):
                        await self._rebuild.wait()
                continue
            if failures:
                logger.info("Azure settings of %s usable now", self.name, extra=self._log())
            node = self.deps.settings.node
            azure = self.config.azure
            self.probe.current = backend.UsageProbe(
                aci,
                node.backend_check_ttl_seconds,
                node.api_timeout_seconds,
                shared=self.deps.probe_results,
                key=(azure.cloud, azure.subscription_id, azure.region, azure.credentials),
            )
            self.keeper.poke()
            return aci

    async def _run_backend(self) -> None:
        while True:
            self._rebuild.clear()
            aci = await self._connect()
            self.connected.set()
            try:
                await self._serve(aci)
            finally:
                self.connected.clear()
                self.probe.current = None
                self.probe.error = errors.ConfigurationError("reconnecting to Azure Container Instances")
                await aci.close()

    async def _serve(self, aci: api.AciApi) -> None:
        """Run the pod controller while the Node is ours, until the backend must be rebuilt."""
        controller = self._make_controller(aci, self.placement())
        self.controller = controller
        try:
            while not self._rebuild.is_set():
                if not self.keeper.owned.is_set():
                    await _first_set(self._rebuild, self.keeper.owned)
                    continue
                running = asyncio.create_task(controller.run(), name=f"pods:{self.name}")
                self.deps.on_serving(self.name, controller)
                try:
                    await _first_set(self._rebuild, self.keeper.disowned, running)
                    if running.done():
                        running.result()  # a crashed controller crashes the runtime (the daemon restarts it)
                    if self.keeper.disowned.is_set():
                        logger.warning(
                            "node %s is no longer this VirtualNode's: its pods are not served",
                            self.config.node_name,
                            extra=self._log(),
                        )
                        self.keeper.disowned.clear()
                finally:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
                    self.deps.on_stopped(self.name, controller)
        finally:
            self.controller = None


async def _first_set(*waitables: asyncio.Event | asyncio.Task[Any]) -> asyncio.Event | asyncio.Task[Any]:
    """Wait until one event is set or one task is done; return it (the first given, when several are)."""

    def ready(item: asyncio.Event | asyncio.Task[Any]) -> bool:
        return item.is_set() if isinstance(item, asyncio.Event) else item.done()

    for item in waitables:
        if ready(item):
            return item
    waiters = [asyncio.create_task(item.wait()) for item in waitables if isinstance(item, asyncio.Event)]
    tasks = [item for item in waitables if isinstance(item, asyncio.Task)]
    try:
        await asyncio.wait([*waiters, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return next(item for item in waitables if ready(item))


# --- deletion ---------------------------------------------------------------------------------------------------


async def release(
    deps: RuntimeDeps,
    config: virtualnode.VirtualNodeConfig,
    owner_uid: str,
    open_backend: BackendOpener | None = None,
) -> str:
    """Delete the node's container groups, then its Node and Lease: only what this VirtualNode owns. Returns what
    was done. Raises TransientError to be retried; ConfigurationError when ARM cannot be reached with the spec."""
    scope = await registration.release_scope(deps.kube, config.node_name, owner_uid)
    if not scope.groups:
        return f"node {config.node_name} is not this VirtualNode's: nothing of it removed ({scope.reason})"
    if open_backend is None:
        limiter = deps.limiter_for(config.azure.subscription_id)
        aci = await backends.open_backend(deps.kube, config, deps.settings, deps.operator_namespace, limiter)
    else:
        aci = await open_backend(config)
    try:
        deleted = await cleanup.delete_node_groups(aci, deps.cluster_id, config.node_name)
        if scope.node_uid is not None:
            await registration.remove_node(deps.kube, config.node_name, scope.node_uid)
    finally:
        await aci.close()
    return f"deleted {deleted} container groups and node {config.node_name}"
