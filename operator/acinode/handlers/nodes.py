"""Watch the Nodes acinode manages (and only those, by label) so a deleted one is registered again at once."""

from __future__ import annotations

from typing import Any

import kopf

from acinode import services
from acinode.mapping import node as node_mapping


@kopf.on.event("v1", "nodes", labels={node_mapping.MANAGED_BY_LABEL: kopf.PRESENT})
async def managed_node_changed(type: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    if type != "DELETED":
        return
    svc: services.Services = memo.services
    running = svc.runtimes.get(labels[node_mapping.MANAGED_BY_LABEL])
    if running is not None:
        running.keeper.poke()
