"""The ``AciApi`` role: what the operator may ask of Azure Container Instances, and each call's contract.

One ``AciApi`` serves one ``target.AciTarget`` (a resource group in a region). Every method:
- raises only ``acinode.errors`` types (``ThrottledError`` when the budget or ARM says wait, with how long);
- is safe to repeat: a create is a PUT of the whole group under a deterministic name, a delete of a missing
  group succeeds;
- never waits for a long-running operation: it returns when ARM has accepted the request. What happens next
  (provisioning, a container start, a failure) is seen by a later ``get`` or ``list_groups``;
- may wait for the client-side rate budget, at most ``AciSettings.max_queue_seconds``, then fails fast.

Groups go in and come out as the SDK's ``ContainerGroup`` model (the mapping module builds and reads those);
the listing and small results come back as frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from acinode import types
from acinode.aci import counting

if TYPE_CHECKING:
    from typing import TypeAlias

    from azure.mgmt.containerinstance.models import ContainerGroup

    GroupModel: TypeAlias = ContainerGroup
    """The SDK's group model, for roles outside ``aci`` that pass groups on (annotations only: no import)."""


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """What ARM says of a group without a GET of it: what a list entry or a PUT's answer carries.

    There is no instance view here (the real list omits it): container states need ``get``.
    """

    name: types.ContainerGroupName
    tags: Mapping[str, str] = dataclasses.field(hash=False)
    provisioning_state: str | None
    """ARM's provisioningState (Pending, Creating, Succeeded, Failed, Deleting…). It tracks the create or
    update only: it stays Succeeded after the containers stop or exit."""
    location: str | None = None
    ip_address: str | None = None

    def is_provisioning(self) -> bool:
        """Provisioning is still under way (the status sync looks at such groups first)."""
        state = self.provisioning_state
        # ARM spells the states so; the lower-casing is for anything else (every status pass asks each group).
        return state not in _SETTLED_STATES and (state or "").lower() not in _SETTLED_STATES_LOWER


_SETTLED_STATES = frozenset({"Succeeded", "Failed", "Canceled"})
_SETTLED_STATES_LOWER = frozenset(state.lower() for state in _SETTLED_STATES)


@dataclasses.dataclass(frozen=True)
class ExecSession:
    """Where to attach a terminal to a command started by ``exec_command`` (or to a container's output, after
    ``attach``): connect to ``websocket_uri`` and send ``password`` as the first message."""

    websocket_uri: str
    password: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class UsageEntry:
    """One quota of the region, e.g. ``StandardCores``: ``current_value`` used out of ``limit``."""

    name: str
    unit: str | None
    current_value: int
    limit: int


@dataclasses.dataclass(frozen=True)
class UsagePoint:
    """One interval of an Azure Monitor metric: its start (Azure stamps an interval by its start) and average."""

    start: dt.datetime
    average: float


@dataclasses.dataclass(frozen=True)
class ContainerUsage:
    """Azure Monitor's ``CpuUsage`` (millicores) and ``MemoryUsage`` (bytes) of one container, oldest first,
    only the intervals that carry a value (the newest minutes usually have none yet: Azure Monitor lags)."""

    cpu_millicores: tuple[UsagePoint, ...] = ()
    memory_bytes: tuple[UsagePoint, ...] = ()


@dataclasses.dataclass(frozen=True)
class GroupUsage:
    """What one metrics read returned for a container group: per container (by ACI container name)."""

    grain_seconds: float
    """Length of each interval (the query's time grain, 60 s for ``PT1M``)."""
    containers: Mapping[str, ContainerUsage] = dataclasses.field(hash=False)


class AciApi(Protocol):
    """Azure Container Instances as the operator sees it: container groups of one resource group."""

    async def create_or_update(self, name: types.ContainerGroupName, group: ContainerGroup) -> GroupSummary:
        """Submit the whole group (PUT). Returns ARM's first answer (usually provisioningState Pending)
        without waiting for provisioning. Repeating it with the same spec is harmless. Synchronous refusals
        raise at once (InvalidRequestError, ImageInaccessibleError, QuotaExceededError); a failure later in
        provisioning shows as provisioningState Failed in a later ``get``/``list_groups``."""
        ...

    async def get(self, name: types.ContainerGroupName) -> ContainerGroup:
        """The group with its instance views (container states, exit codes, restarts, events).
        Raises NotFoundError when it does not exist."""
        ...

    async def delete(self, name: types.ContainerGroupName) -> bool:
        """Ask ARM to delete the group; returns False if it was not there. Delete may repeat: a missing group
        is success, and a group already being deleted is asked again harmlessly. Does not wait for the
        deletion."""
        ...

    async def list_groups(self, tags: Mapping[str, str] | None = None) -> list[GroupSummary]:
        """Every group of the resource group carrying all of ``tags`` (all pages). Never includes groups
        without them, so callers can never touch groups acinode does not own."""
        ...

    async def container_logs(
        self,
        name: types.ContainerGroupName,
        container: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """A container's log (its last ``tail`` lines if given). ACI keeps 4 MB while running, less once
        stopped."""
        ...

    async def exec_command(
        self,
        name: types.ContainerGroupName,
        container: str,
        command: str,
        *,
        rows: int = 24,
        cols: int = 80,
    ) -> ExecSession:
        """Start ``command`` in a running container; returns where to attach to it."""
        ...

    async def attach(self, name: types.ContainerGroupName, container: str) -> ExecSession:
        """Attach to a container's output (ACI's attach: output only, no stdin, no terminal size); returns
        where to read it, as ``exec_command`` does."""
        ...

    async def stop(self, name: types.ContainerGroupName) -> None:
        """Stop every container of the group (it keeps its definition and logs, and costs no compute)."""
        ...

    async def start(self, name: types.ContainerGroupName) -> None:
        """Start a stopped group again. Does not wait for the containers to run."""
        ...

    async def restart(self, name: types.ContainerGroupName) -> None:
        """Restart every container in place. Does not wait for the containers to run."""
        ...

    async def location_usage(self) -> Sequence[UsageEntry]:
        """The region's quotas and usage. Cheap: the heartbeat uses it to check reachability and
        credentials."""
        ...

    async def container_usage(
        self, name: types.ContainerGroupName, *, start: dt.datetime, end: dt.datetime
    ) -> GroupUsage:
        """The group's per-container CPU and memory usage between ``start`` and ``end`` from Azure Monitor
        (metrics ``CpuUsage`` and ``MemoryUsage`` split by ``containerName``, averages per time grain): one ARM
        read. Azure Monitor lags the containers by about 1-3 minutes. Raises NotFoundError for a missing group."""
        ...

    async def close(self) -> None:
        """Release connections and the credential."""
        ...

    @property
    def arm_requests(self) -> counting.ArmRequestCounter:
        """Every ARM request this client sent, by operation and result (the metrics export it). Clients of one
        subscription may share one counter."""
        ...

    @property
    def ca_bundle_path(self) -> str | None:
        """The CA bundle this client trusts for ACI's endpoints (a private cloud's), or None for the system's:
        the exec websocket ACI hands out is trusted the same way."""
        ...
