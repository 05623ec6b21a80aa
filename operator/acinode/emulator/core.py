"""The emulator's parts wired together (no HTTP here): what the ARM routes and the test hooks act upon."""

from __future__ import annotations

import time
import uuid

from acinode.emulator import (
    config,
    execsocket,
    faults,
    lifecycle,
    netstandin,
    networks,
    store,
    throttle,
    usage,
    wire,
)


class Emulator:
    def __init__(self, cfg: config.EmulatorConfig, state: store.Store | None = None) -> None:
        self.cfg = cfg
        self.store = state or store.Store()
        self.faults = faults.Faults()
        self.stats = faults.Stats()
        self.throttle = throttle.Throttle(cfg.throttle)
        self.pool = netstandin.AddressPool(cfg.ip_range)
        self.listeners = netstandin.Listeners(cfg.network)
        self.usage = usage.UsageBook()
        self.networks = networks.Networks(subnets={subnet.lower(): True for subnet in cfg.subnets})
        self.lifecycle = lifecycle.Lifecycle(
            self.store, cfg, self.pool, self.listeners, self.faults.take_lro_failure, self.usage
        )
        self.sessions = execsocket.ExecSessions(self.store, self.usage)

    def new_operation(self, subscription: str, location: str, resource_id: str) -> store.Operation:
        op = store.Operation(str(uuid.uuid4()), subscription, location, resource_id, time.time())
        self.store.add_operation(op)
        return op

    def operation_url(self, base_url: str, op: store.Operation) -> str:
        return (
            f"{base_url}/subscriptions/{op.subscription}/providers/{wire.PROVIDER}/locations/{op.location}"
            f"/operations/{op.id}?api-version={wire.OPERATION_API_VERSION}"
        )

    def check_scope(self, subscription: str, resource_group: str | None) -> None:
        """Subscriptions and resource groups exist implicitly, unless configured or hooked otherwise."""
        if self.cfg.strict_subscription and subscription.lower() != self.cfg.subscription_id.lower():
            raise wire.subscription_not_found(subscription)
        if resource_group is not None and (subscription.lower(), resource_group.lower()) in (
            self.store.missing_resource_groups
        ):
            raise wire.resource_group_not_found(resource_group)

    def group_or_404(self, subscription: str, resource_group: str, name: str) -> store.GroupRecord:
        group = self.store.groups.get(store.group_key(subscription, resource_group, name))
        if group is None:
            raise wire.group_not_found(resource_group, name)
        return group

    def resume_all(self) -> None:
        for group in list(self.store.groups.values()):
            self.lifecycle.resume(group)

    def summary(self) -> dict[str, object]:
        by_state: dict[str, int] = {}
        by_provisioning: dict[str, int] = {}
        for group in self.store.groups.values():
            by_state[group.state] = by_state.get(group.state, 0) + 1
            by_provisioning[group.provisioning_state] = by_provisioning.get(group.provisioning_state, 0) + 1
        return {
            "total": len(self.store.groups),
            "byState": by_state,
            "byProvisioningState": by_provisioning,
            "operationsInProgress": sum(
                1 for o in self.store.operations.values() if o.status == "InProgress"
            ),
        }
