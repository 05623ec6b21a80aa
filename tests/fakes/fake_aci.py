"""FakeAciApi: the ``AciApi`` role in memory, for unit tests of everything that talks to ACI.

It holds container groups as ARM would: a PUT stores the group (provisioningState ``Pending`` until the test
moves it on with ``provision``), ``list_groups`` returns summaries without instance views filtered by tags,
``get`` returns the group with its containers' instance views (``run``, ``exit`` set them), ``delete`` removes
it (a missing group is success, as the contract says). Faults: ``fail(method, error, times=…)`` makes the next
calls of a method raise; ``hold(method)`` makes them wait for an event the test sets. Every call is counted
(``calls``) and recorded in ``arm_requests`` as ARM counts them (operation, result), so tests can count reads and
writes. Each call yields to the event loop once, like real I/O. No clock, no sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from azure.mgmt.containerinstance import models

from acinode import errors, types
from acinode.aci import api, counting

_OPERATIONS = {
    "create_or_update": "create_or_update",
    "get": "get",
    "delete": "delete",
    "list_groups": "list",
    "container_logs": "logs",
    "exec_command": "exec",
    "stop": "stop",
    "start": "start",
    "restart": "restart",
    "location_usage": "usage",
}


@dataclasses.dataclass
class StoredGroup:
    group: models.ContainerGroup
    provisioning_state: str = "Pending"
    container_states: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Container name → ACI ``currentState`` (``{"state": "Running", "startTime": …}``)."""
    restart_count: int = 0
    logs: dict[str, str] = dataclasses.field(default_factory=dict)


class FakeAciApi:
    def __init__(self, *, ca_bundle_path: str | None = None) -> None:
        self.groups: dict[str, StoredGroup] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.counter = counting.ArmRequestCounter()
        self._ca_bundle_path = ca_bundle_path
        self._faults: dict[str, list[tuple[BaseException, int | None]]] = collections.defaultdict(list)
        self._holds: dict[str, asyncio.Event] = {}
        self.closed = False
        self.stopped: list[str] = []
        """Names of the groups ``stop`` was called for, in order."""
        self.stop_kills = False
        """Whether ``stop`` terminates the group's containers at once (137); else they ignore it (SIGTERM)."""

    # --- test controls ------------------------------------------------------------------------------------------

    def fail(self, method: str, error: BaseException, *, times: int | None = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (None: every call until ``clear_faults``)."""
        self._faults[method].append((error, times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def hold(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait (after recording themselves, before answering) until the event is set."""
        gate = self._holds[method] = asyncio.Event()
        return gate

    def put_group(
        self, name: str, tags: Mapping[str, str], provisioning_state: str = "Succeeded"
    ) -> StoredGroup:
        """A group that exists in ARM already (made by someone else, or by an earlier operator)."""
        group = models.ContainerGroup(location="westeurope", os_type="Linux", containers=[], tags=dict(tags))
        stored = self.groups[name] = StoredGroup(group, provisioning_state)
        return stored

    def provision(self, name: str, state: str = "Succeeded") -> None:
        self.groups[name].provisioning_state = state

    def run(self, name: str, start_time: str = "2025-01-01T12:00:00Z") -> None:
        """Provisioned, with every container running."""
        stored = self.groups[name]
        stored.provisioning_state = "Succeeded"
        for container in stored.group.containers or []:
            stored.container_states[container.name] = {"state": "Running", "startTime": start_time}

    def exit(self, name: str, exit_code: int = 0, finish_time: str = "2025-01-01T12:05:00Z") -> None:
        stored = self.groups[name]
        for container in stored.group.containers or []:
            started = stored.container_states.get(container.name, {}).get("startTime", finish_time)
            stored.container_states[container.name] = {
                "state": "Terminated",
                "startTime": started,
                "finishTime": finish_time,
                "exitCode": exit_code,
            }

    def vanish(self, name: str) -> None:
        """The group is gone from ARM (deleted outside acinode, or lost)."""
        self.groups.pop(name, None)

    def count(self, method: str) -> int:
        return self.calls[method]

    # --- AciApi -----------------------------------------------------------------------------------------------

    @property
    def arm_requests(self) -> counting.ArmRequestCounter:
        return self.counter

    @property
    def ca_bundle_path(self) -> str | None:
        return self._ca_bundle_path

    async def _call(self, method: str) -> None:
        self.calls[method] += 1
        await asyncio.sleep(0)
        gate = self._holds.get(method)
        if gate is not None:
            await gate.wait()
        faults = self._faults.get(method)
        if faults:
            error, times = faults[0]
            if times is not None:
                if times <= 1:
                    faults.pop(0)
                else:
                    faults[0] = (error, times - 1)
            self.counter.record(_OPERATIONS[method], type(error).__name__)
            raise error
        self.counter.record(_OPERATIONS[method], "200")

    def _summary(self, name: str, stored: StoredGroup) -> api.GroupSummary:
        return api.GroupSummary(
            name=types.ContainerGroupName(name),
            tags=dict(stored.group.tags or {}),
            provisioning_state=stored.provisioning_state,
            location=stored.group.location,
        )

    async def create_or_update(
        self, name: types.ContainerGroupName, group: models.ContainerGroup
    ) -> api.GroupSummary:
        await self._call("create_or_update")
        stored = self.groups.get(name)
        if stored is None:
            stored = self.groups[name] = StoredGroup(copy.deepcopy(group))
        else:
            stored.group = copy.deepcopy(group)
            stored.provisioning_state = "Pending"
        return self._summary(name, stored)

    async def get(self, name: types.ContainerGroupName) -> models.ContainerGroup:
        await self._call("get")
        stored = self.groups.get(name)
        if stored is None:
            raise errors.NotFoundError(f"container group {name} not found")
        body = stored.group.serialize(keep_readonly=True)
        body["name"] = name
        properties = body.setdefault("properties", {})
        properties["provisioningState"] = stored.provisioning_state
        properties["instanceView"] = {
            "state": "Running" if stored.container_states else "Pending",
            "events": [],
        }
        for container in properties.get("containers", []):
            current = stored.container_states.get(container["name"])
            if current is not None:
                container["properties"]["instanceView"] = {
                    "restartCount": stored.restart_count,
                    "currentState": current,
                    "events": [],
                }
        return models.ContainerGroup.deserialize(body)

    async def delete(self, name: types.ContainerGroupName) -> bool:
        await self._call("delete")
        return self.groups.pop(name, None) is not None

    async def list_groups(self, tags: Mapping[str, str] | None = None) -> list[api.GroupSummary]:
        wanted = dict(tags or {})
        answer = [
            self._summary(name, stored)
            for name, stored in self.groups.items()
            if all((stored.group.tags or {}).get(k) == v for k, v in wanted.items())
        ]
        await self._call("list_groups")  # the answer is fixed when the call begins, as ARM's would be
        return answer

    async def container_logs(
        self,
        name: types.ContainerGroupName,
        container: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> str:
        await self._call("container_logs")
        stored = self.groups.get(name)
        if stored is None:
            raise errors.NotFoundError(f"container group {name} not found")
        lines = stored.logs.get(container, "").splitlines(keepends=True)
        return "".join(lines[-tail:] if tail else lines)

    async def exec_command(
        self, name: types.ContainerGroupName, container: str, command: str, *, rows: int = 24, cols: int = 80
    ) -> api.ExecSession:
        await self._call("exec_command")
        if name not in self.groups:
            raise errors.NotFoundError(f"container group {name} not found")
        return api.ExecSession(f"wss://aci.invalid/exec/{name}/{container}", "password")

    async def attach(self, name: types.ContainerGroupName, container: str) -> api.ExecSession:
        await self._call("attach")
        if name not in self.groups:
            raise errors.NotFoundError(f"container group {name} not found")
        return api.ExecSession(f"wss://aci.invalid/attach/{name}/{container}", "password")

    async def stop(self, name: types.ContainerGroupName) -> None:
        await self._call("stop")
        self.stopped.append(name)
        if self.stop_kills and name in self.groups:
            self.exit(name, exit_code=137)

    async def start(self, name: types.ContainerGroupName) -> None:
        await self._call("start")

    async def restart(self, name: types.ContainerGroupName) -> None:
        await self._call("restart")
        self.groups[name].restart_count += 1

    async def location_usage(self) -> list[api.UsageEntry]:
        await self._call("location_usage")
        return []

    async def close(self) -> None:
        self.closed = True


def _conforms(fake: FakeAciApi) -> api.AciApi:
    return fake  # mypy (when run on tests) proves the fake fulfils the role
