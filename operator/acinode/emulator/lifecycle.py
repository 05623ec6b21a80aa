"""The container-group state machine: provisioning, image pulls, containers running their scripts, restarts.

Each deployment (create, update, start, restart) is a new *generation* of the group with its own tasks;
stopping or deleting cancels them. Time only advances through ``asyncio.sleep`` with the configured delays, so
tests that set them to 0 see a group reach Running within a few loop turns.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

from acinode.emulator import config, images, netstandin, script, store, usage, wire

logger = logging.getLogger(__name__)

LroFailure = Callable[[], "tuple[str, str] | None"]
_TRANSIENT = frozenset({"Pending", "Updating", "Creating"})


def listener_key(group: store.GroupRecord) -> str:
    return "/".join(group.key)


def exposed_ports(group: store.GroupRecord) -> list[int]:
    ip = group.properties.get("ipAddress") or {}
    return [int(p["port"]) for p in ip.get("ports") or [] if str(p.get("protocol", "TCP")).upper() == "TCP"]


def has_subnet(group: store.GroupRecord) -> bool:
    """In a virtual network: ACI gives such a group a private IP from the subnet, ``ipAddress`` or not."""
    return bool(group.properties.get("subnetIds"))


def kill_message(group: store.GroupRecord, runtime: store.ContainerRuntime) -> str:
    """Azure's ``Killing`` event names the run's container id (64 hex digits)."""
    started = runtime.current.start_time if runtime.current else None
    seed = f"{group.resource_id}/{runtime.name}/{runtime.restart_count}/{started}"
    return f"Killing container with id {hashlib.sha256(seed.encode()).hexdigest()}."


_TRAP_TERM = re.compile(r"""\btrap\s+(?:''|"")\s+[^;\n]*\b(?:SIG)?(?:TERM|15)\b""")


def effective_command(spec: wire.Json) -> list[str]:
    """The container's command, or its image's default when it gives none (``images``)."""
    props = spec.get("properties", {})
    command = props.get("command")
    if command:
        return [str(word) for word in command]
    return images.default_command(str(props.get("image", "")))


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (kubelet's back-off message): 10s, 1m20s, 5m0s, 500ms."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def ignores_sigterm(spec: wire.Json) -> bool:
    """The container's command ignores SIGTERM: ``trap '' TERM`` (or ``trap "" SIGTERM``, ``trap '' 15``)."""
    words = [str(w) for w in (spec.get("properties", {}).get("command") or [])]
    return any(_TRAP_TERM.search(word) for word in words)


class Lifecycle:
    def __init__(
        self,
        state: store.Store,
        cfg: config.EmulatorConfig,
        pool: netstandin.AddressPool,
        listeners: netstandin.Listeners,
        take_lro_failure: LroFailure,
        usage_book: usage.UsageBook | None = None,
    ) -> None:
        self.store = state
        self.usage = usage_book or usage.UsageBook()
        """What each container uses over time (the Azure Monitor metrics route reads it)."""
        self.cfg = cfg
        self.pool = pool
        self.listeners = listeners
        self.take_lro_failure = take_lro_failure
        self._tasks: dict[store.Key, set[asyncio.Task[None]]] = {}

    # -- entry points used by the routes --

    def deploy(self, group: store.GroupRecord, op: store.Operation | None, reason: str) -> None:
        """A new generation: provisioning delay, pulls, then the containers (create/update/start/restart)."""
        self._cancel(group.key)
        group.generation += 1
        if reason in ("create", "update"):
            group.provisioning_state = "Pending" if reason == "create" else "Updating"
        group.state = "Pending"
        group.operation_id = op.id if op else None
        for init in (False, True):
            runtimes = group.init_containers if init else group.containers
            old = dict(runtimes)
            runtimes.clear()
            for spec in group.container_specs(init):
                runtime = store.ContainerRuntime(spec["name"])
                if spec["name"] in old and reason == "update":
                    runtime.events = old[spec["name"]].events
                runtimes[spec["name"]] = runtime
        self.store.touch()
        self._spawn(group.key, self._provision(group, group.generation, op))

    async def stop(self, group: store.GroupRecord, state: str = "Stopped") -> None:
        """Kill every container (Killing event, Terminated) and release the listeners.

        A stop (``state`` Stopped) spares, for ``stop_timeout_seconds``, the running containers whose command
        ignores SIGTERM (``trap '' TERM``): they stay Running (the group too) until then, then are killed."""
        self._cancel(group.key)
        group.generation += 1
        now = time.time()
        spared: set[str] = set()
        if state == "Stopped" and self.cfg.stop_timeout_seconds > 0:
            spared = {
                spec["name"]
                for spec in group.container_specs()
                if ignores_sigterm(spec)
                and (runtime := group.containers.get(spec["name"])) is not None
                and runtime.current is not None
                and runtime.current.state == "Running"
            }
        for runtime in list(group.init_containers.values()) + list(group.containers.values()):
            current = runtime.current
            if runtime.name in spared and runtime in group.containers.values():
                if current is not None:
                    store.add_event(
                        runtime.events, now, "Killing", kill_message(group, runtime), by_name=True
                    )
                continue
            if current is not None and current.state != "Terminated":
                if current.state == "Running":
                    store.add_event(
                        runtime.events, now, "Killing", kill_message(group, runtime), by_name=True
                    )
                runtime.current = store.ContainerState(
                    "Terminated",
                    current.start_time or now,
                    now,
                    137 if current.state == "Running" else 0,
                    "Killed",
                )
        if spared:
            self._spawn(group.key, self._kill_after(group, group.generation, state))
        else:
            group.state = state
        self._finish_operation(
            group, "Canceled", {"code": "Canceled", "message": "The operation was canceled."}
        )
        await self.listeners.close(listener_key(group))
        self.store.touch()

    async def _kill_after(self, group: store.GroupRecord, gen: int, state: str) -> None:
        """The end of a stop's wait for containers that ignore SIGTERM: kill them."""
        await asyncio.sleep(self.cfg.stop_timeout_seconds)
        if group.generation != gen:
            return
        current = asyncio.current_task()
        self._tasks.get(group.key, set()).discard(current)
        await self.stop(group, state="Killed")
        group.state = state
        self.store.touch()

    async def remove(self, group: store.GroupRecord) -> None:
        await self.stop(group, state=group.state)
        self.usage.forget(group.key)
        self.pool.release(group.ip)
        group.ip = None

    def resume(self, group: store.GroupRecord) -> None:
        """After a restart with --persist: pick each restored group up where the saved state left it."""
        if group.ip is not None:
            self.pool.reserve(group.ip)
        op = self.store.operations.get(group.operation_id or "")
        if group.provisioning_state in _TRANSIENT or group.state == "Pending":
            self.deploy(group, op if op and op.status == "InProgress" else None, "resume")
            return
        if group.state != "Running":
            return
        for spec in group.container_specs():
            runtime = group.containers.get(spec["name"])
            if runtime is not None and runtime.current is not None:
                self._spawn(
                    group.key, self._run_container(group, group.generation, runtime, spec, resumed=True)
                )
        self._spawn(group.key, self._open_network(group))

    async def shutdown(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self.listeners.close_all()

    # -- internals --

    def _spawn(self, key: store.Key, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        tasks = self._tasks.setdefault(key, set())
        tasks.add(task)
        task.add_done_callback(lambda t: self._reap(key, t))

    def _reap(self, key: store.Key, task: asyncio.Task[None]) -> None:
        tasks = self._tasks.get(key)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                self._tasks.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("lifecycle task failed", exc_info=task.exception())

    def _cancel(self, key: store.Key) -> None:
        for task in self._tasks.pop(key, set()):
            task.cancel()

    def _finish_operation(
        self, group: store.GroupRecord, status: str, error: wire.Json | None = None
    ) -> None:
        op = self.store.operations.get(group.operation_id or "")
        if op is not None:
            op.finish(time.time(), status, error)

    async def _provision(self, group: store.GroupRecord, gen: int, op: store.Operation | None) -> None:
        # Azure: Pending, then Creating while the group is placed (no container views yet, as test_container_
        # create_with_msi_scope recorded), then the pulls; the provisioning delay is split between the two.
        await asyncio.sleep(self.cfg.provisioning_delay / 2)
        if group.provisioning_state == "Pending":
            group.provisioning_state = "Creating"
            self.store.touch()
        await asyncio.sleep(self.cfg.provisioning_delay / 2)
        failure = self.take_lro_failure() if op is not None else None
        if failure is not None:
            code, message = failure
            now = time.time()
            store.add_event(group.events, now, "Failed", message, "Warning")
            group.provisioning_state = "Failed"
            group.state = "Failed"
            self._finish_operation(group, "Failed", {"code": code, "message": message})
            self.store.touch()
            return
        now = time.time()
        every = list(group.init_containers.values()) + list(group.containers.values())
        specs = {c["name"]: c for c in group.container_specs(True) + group.container_specs()}
        for runtime in every:
            image = specs[runtime.name]["properties"].get("image", "")
            runtime.current = store.ContainerState("Waiting", detail_status="Pulling")
            store.add_event(runtime.events, now, "Pulling", f'pulling image "{image}"')
        self.store.touch()
        await asyncio.sleep(self.cfg.pull_delay)
        now = time.time()
        for runtime in every:
            image = specs[runtime.name]["properties"].get("image", "")
            runtime.current = store.ContainerState("Waiting", detail_status="Pulled")
            store.add_event(runtime.events, now, "Pulled", f'Successfully pulled image "{image}"')
        for spec in group.container_specs(True):
            if not await self._run_init(group, gen, group.init_containers[spec["name"]], spec):
                return
        group.state = "Running"
        if group.provisioning_state in _TRANSIENT:
            group.provisioning_state = "Succeeded"
        for spec in group.container_specs():
            runtime = group.containers[spec["name"]]
            self._start(runtime)
            self._spawn(group.key, self._run_container(group, gen, runtime, spec))
        self._finish_operation(group, "Succeeded")
        self.store.touch()
        await self._open_network(group)

    async def _open_network(self, group: store.GroupRecord) -> None:
        ports = exposed_ports(group)
        if not group.properties.get("ipAddress") and not has_subnet(group):
            return
        if group.ip is None:
            group.ip = self.pool.allocate()
            self.store.touch()
        images = [str(c["properties"].get("image", "")) for c in group.container_specs()]
        await self.listeners.open(listener_key(group), group.ip, ports, group.name, images)

    def _start(self, runtime: store.ContainerRuntime) -> None:
        now = time.time()
        runtime.current = store.ContainerState("Running", start_time=now)
        store.add_event(runtime.events, now, "Created", "Created container")
        store.add_event(runtime.events, now, "Started", "Started container")

    def _shell(
        self, group: store.GroupRecord, runtime: store.ContainerRuntime, spec: wire.Json
    ) -> script.Shell:
        env = {
            str(e["name"]): str(e.get("value", e.get("secureValue", "")))
            for e in spec["properties"].get("environmentVariables") or []
        }
        return script.Shell(write=lambda line: runtime.write(time.time(), line), env=env, hostname=group.name)

    async def _run_once(
        self, group: store.GroupRecord, runtime: store.ContainerRuntime, spec: wire.Json
    ) -> int:
        behaviour = script.behaviour_from_command(effective_command(spec))
        if behaviour.error:
            runtime.write(time.time(), behaviour.error)
        load = self.usage.for_run(group.key, runtime.name, spec, is_server=behaviour.program is None)
        load.start()
        try:
            if behaviour.program is None:
                await asyncio.Event().wait()  # a server: runs until stopped
            assert behaviour.program is not None
            shell = self._shell(group, runtime, spec)
            shell.load = load
            code = await shell.run(behaviour.program)
        finally:
            load.end()
        now = time.time()
        start = runtime.current.start_time if runtime.current else now
        # Azure reports the ended run's container being killed (aggregated, the latest container id named).
        store.add_event(runtime.events, now, "Killing", kill_message(group, runtime), by_name=True)
        runtime.current = store.ContainerState(
            "Terminated", start, now, code, "Completed" if code == 0 else "Error"
        )
        self.store.touch()
        return code

    def _backoff(self, failures: int) -> float:
        return float(min(self.cfg.backoff_base * (2 ** min(max(failures, 0), 20)), self.cfg.backoff_max))

    async def _restart_after_backoff(self, runtime: store.ContainerRuntime) -> None:
        """A crash loop's wait, as Azure shows it: the ended run becomes ``previousState``, ``restartCount``
        counts the coming restart, and the container is ``Waiting`` (``CrashLoopBackOff: Back-off 10s
        restarting failed``) until the back-off ends and it starts again."""
        delay = self._backoff(runtime.restart_count)
        now = time.time()
        store.add_event(runtime.events, now, "BackOff", "Back-off restarting failed container", "Warning")
        runtime.previous = runtime.current
        runtime.restart_count += 1
        runtime.current = store.ContainerState(
            "Waiting", detail_status=f"CrashLoopBackOff: Back-off {go_duration(delay)} restarting failed"
        )
        self.store.touch()
        await self._start_after(runtime, delay)

    async def _start_after(self, runtime: store.ContainerRuntime, delay: float) -> None:
        await asyncio.sleep(delay)
        runtime.clear_logs()  # like the real service, logs show the current run only
        self._start(runtime)
        self.store.touch()

    def _should_restart(self, group: store.GroupRecord, code: int) -> bool:
        policy = group.properties.get("restartPolicy", "Always")
        return bool(policy == "Always" or (policy == "OnFailure" and code != 0))

    async def _run_init(
        self, group: store.GroupRecord, gen: int, runtime: store.ContainerRuntime, spec: wire.Json
    ) -> bool:
        self._start(runtime)
        while True:
            code = await self._run_once(group, runtime, spec)
            if code == 0:
                return True
            if group.properties.get("restartPolicy", "Always") == "Never":
                group.state = "Failed"
                if group.provisioning_state in _TRANSIENT:
                    group.provisioning_state = "Succeeded"
                self._finish_operation(group, "Succeeded")
                self.store.touch()
                return False
            await self._restart_after_backoff(runtime)

    async def _run_container(
        self,
        group: store.GroupRecord,
        gen: int,
        runtime: store.ContainerRuntime,
        spec: wire.Json,
        resumed: bool = False,
    ) -> None:
        current = runtime.current
        if resumed and current is not None and current.state == "Terminated":
            if not self._should_restart(group, current.exit_code or 0):
                return
            await self._restart_after_backoff(runtime)
        elif resumed and current is not None and current.state == "Waiting":
            await self._start_after(runtime, self._backoff(runtime.restart_count - 1))  # back-off in progress
        while True:
            code = await self._run_once(group, runtime, spec)
            if not self._should_restart(group, code):
                self._settle(group)
                return
            await self._restart_after_backoff(runtime)

    def _settle(self, group: store.GroupRecord) -> None:
        """Once every container has terminated for good, the group ends Succeeded or Failed."""
        runtimes = list(group.containers.values())
        if any(r.current is None or r.current.state != "Terminated" for r in runtimes):
            return
        failed = any((r.current.exit_code or 0) != 0 for r in runtimes if r.current is not None)
        group.state = "Failed" if failed else "Succeeded"
        self.store.touch()
        self._spawn(group.key, self.listeners.close(listener_key(group)))
