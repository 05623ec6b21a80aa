"""What ARM holds for one virtual node: its container groups as last listed, with our own writes laid over.

A listing that began before one of our PUTs or DELETEs completed may not show it. Believed as it is, it would
undo the write: a group just created would look missing and be created again (the burst benchmark once saw 1.37
PUTs per pod), a group just deleted would be deleted twice. So every write is remembered with the time it
completed, and a listing is laid under every write that completed after the listing *began*; a write is forgotten
once a listing that began after it has been believed. Only groups carrying this cluster's tag are kept: a group
acinode does not own never enters the cache, so nothing downstream can touch it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Iterator, Mapping

from acinode import types
from acinode.aci import api
from acinode.mapping import tags
from acinode.pods import clock


class GroupCache:
    def __init__(
        self, aci: api.AciApi, cluster_id: types.ClusterId, node_name: types.NodeName, clock_: clock.Clock
    ) -> None:
        self.aci = aci
        self.cluster_id = cluster_id
        self.node_name = node_name
        self.clock = clock_
        self._groups: dict[types.ContainerGroupName, api.GroupSummary] = {}
        self._owners: dict[types.ContainerGroupName, tuple[api.GroupSummary, types.PodUid | None]] = {}
        """The pod uid each summary's tags name, read once per summary (every status pass asks for each group)."""
        self._writes: dict[types.ContainerGroupName, tuple[float, api.GroupSummary | None]] = {}
        """Our PUTs (summary) and DELETEs (None) by completion time (monotonic)."""
        self.listing_began = -float("inf")
        """Monotonic time the last listing call began."""
        self.serial = 0
        """How many listings have been believed (the orphan rule compares listings by it)."""
        self.listed_event = asyncio.Event()
        """Set once a first listing has been believed (no pod is judged before ARM's side is known)."""

    @property
    def listed(self) -> bool:
        return self.listed_event.is_set()

    @property
    def own_tags(self) -> dict[str, str]:
        return {tags.TAG_CLUSTER_ID: self.cluster_id, tags.TAG_NODE: self.node_name}

    async def refresh(self) -> list[api.GroupSummary]:
        """One list call: which of our groups exist, and which are still provisioning. Our writes that completed
        after the call began are laid over its answer. Returns the listing as ARM gave it."""
        began = self.listing_began = self.clock.monotonic()
        summaries = await self.aci.list_groups(self.own_tags)
        listed = {s.name: s for s in summaries if tags.is_managed_group(s.tags, self.cluster_id)}
        for name, (completed, written) in list(self._writes.items()):
            if completed < began:
                del self._writes[name]  # the listing saw it
            elif written is None:
                listed.pop(name, None)
            else:
                listed.setdefault(name, written)
        self._groups = listed
        self._owners = {n: owner for n, owner in self._owners.items() if listed.get(n) is owner[0]}
        self.serial += 1
        self.listed_event.set()
        return summaries

    def wrote(self, name: types.ContainerGroupName, summary: api.GroupSummary | None) -> None:
        """Record our completed PUT (its answer) or DELETE (None)."""
        if summary is None:
            self._groups.pop(name, None)
        else:
            self._groups[name] = summary
        self._writes[name] = (self.clock.monotonic(), summary)

    def observed(self, name: types.ContainerGroupName, provisioning_state: str | None) -> None:
        """A GET showed the group's provisioningState: fresher than the last listing (which, for a node of many
        groups in transition, is up to a few seconds old), so a group seen provisioned leaves the transition at
        once. A later listing that began before the GET may say the older state again: that costs one more GET,
        never a wrong status (the status comes from GETs only)."""
        summary = self._groups.get(name)
        if summary is not None and summary.provisioning_state != provisioning_state:
            self._groups[name] = dataclasses.replace(summary, provisioning_state=provisioning_state)

    def vanished(self, name: types.ContainerGroupName) -> None:
        """A GET found no such group: forget it until a listing shows it again."""
        self._groups.pop(name, None)

    def get(self, name: types.ContainerGroupName) -> api.GroupSummary | None:
        return self._groups.get(name)

    def owner_uid(self, name: types.ContainerGroupName) -> types.PodUid | None:
        """The uid of the pod the group's tags name; None when the group is unknown or carries no pod identity."""
        summary = self._groups.get(name)
        if summary is None:
            return None
        known = self._owners.get(name)
        if known is not None and known[0] is summary:
            return known[1]
        identity = tags.pod_identity_from_tags(summary.tags)
        uid = identity.uid if identity is not None else None
        self._owners[name] = (summary, uid)
        return uid

    def __contains__(self, name: object) -> bool:
        return name in self._groups

    def __len__(self) -> int:
        return len(self._groups)

    def names(self) -> list[types.ContainerGroupName]:
        return list(self._groups)

    def items(self) -> Iterator[tuple[types.ContainerGroupName, api.GroupSummary]]:
        """A snapshot of (name, summary) pairs: safe while the cache changes."""
        return iter(list(self._groups.items()))

    def snapshot(self) -> Mapping[types.ContainerGroupName, api.GroupSummary]:
        return dict(self._groups)

    def by_provisioning_state(self) -> dict[str, int]:
        return dict(
            collections.Counter(s.provisioning_state or "Unknown" for s in list(self._groups.values()))
        )
