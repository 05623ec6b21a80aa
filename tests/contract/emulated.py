"""The acinode emulator as a subprocess, and the small builders the contract tests share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from azure.mgmt.containerinstance import models

from acinode import settings, types
from acinode.aci import azure, counting, ratelimit, target

ACINODE = Path(sys.executable).with_name("acinode")
SUBSCRIPTION = types.SubscriptionId("00000000-0000-0000-0000-0000000000c1")
REGION = "westeurope"
TOKEN = "contract-test-token"
T = TypeVar("T")


@dataclass
class Emulator:
    """A running emulator: where it listens, the CA to trust, the token it wants, and its test hooks."""

    url: str
    ca_file: str
    token: str
    pid: int
    state_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def cloud(self) -> target.AzureCloud:
        # The emulator stands in for public ARM: tokens are asked for public ARM's scope.
        return target.custom_cloud(
            self.url,
            ca_bundle_path=self.ca_file,
            credential_scope=target.PUBLIC.credential_scope,
            name="Emulator",
        )

    def target(self, resource_group: str, *, token: str | None = None) -> target.AciTarget:
        return target.AciTarget(
            SUBSCRIPTION,
            types.ResourceGroup(resource_group),
            REGION,
            cloud=self.cloud(),
            credential=target.StaticToken(token or self.token),
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    async def hook(self, method: str, path: str, body: Any = None) -> Any:
        """Call a test hook under ``/_emulator/``; returns its JSON answer (None if empty)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, f"{self.url}/_emulator/{path}", json=body, headers=headers, ssl=self.ssl_context()
            ) as response,
        ):
            text = await response.text()
            if response.status >= 400:
                raise AssertionError(f"emulator hook {method} {path} failed: {response.status} {text}")
            return json.loads(text) if text.strip() else None

    def log_tail(self, lines: int = 40) -> str:
        log = self.state_dir / "emulator.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def start_emulator(state_dir: Path, *flags: str, timeout: float = 30.0) -> Emulator:
    """Start ``acinode emulator`` and wait (bounded) for the endpoint.json it writes when ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoint = state_dir / "endpoint.json"
    log = (state_dir / "emulator.log").open("wb")
    command = [
        str(ACINODE),
        "emulator",
        "--state-dir",
        str(state_dir),
        "--port",
        "0",
        "--token",
        TOKEN,
        *flags,
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while True:
        if endpoint.exists():
            with contextlib.suppress(ValueError):  # written but not yet complete
                info = json.loads(endpoint.read_text())
                if info.get("url"):
                    break
        if process.poll() is not None:
            raise AssertionError(f"emulator exited with {process.returncode}:\n{_tail(state_dir)}")
        if time.monotonic() > deadline:
            stop_emulator(process)
            raise AssertionError(f"emulator not ready after {timeout}s:\n{_tail(state_dir)}")
        time.sleep(0.05)  # polling a file for readiness; nothing else to wait on
    return Emulator(
        url=info["url"].rstrip("/"),
        ca_file=info["ca_file"],
        token=info.get("token") or TOKEN,
        pid=int(info.get("pid") or process.pid),
        state_dir=state_dir,
        process=process,
    )


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(state_dir: Path) -> str:
    log = state_dir / "emulator.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def make_client(
    emulator: Emulator,
    resource_group: str,
    aci_settings: settings.AciSettings,
    *,
    token: str | None = None,
    counter: counting.ArmRequestCounter | None = None,
    limiter: ratelimit.ArmRateLimiter | None = None,
) -> azure.AzureAciApi:
    return azure.AzureAciApi(
        emulator.target(resource_group, token=token), settings=aci_settings, counter=counter, limiter=limiter
    )


def container_group(
    *,
    command: Sequence[str] = ("sh", "-c", "echo ready; sleep 3600"),
    image: str = "mcr.microsoft.com/azurelinux/base/core:3.0",
    cpu: float = 0.5,
    memory_gb: float = 0.5,
    tags: dict[str, str] | None = None,
    restart_policy: str = "Always",
    container_name: str = "app",
    credentials: list[models.ImageRegistryCredential] | None = None,
) -> models.ContainerGroup:
    """A small Linux group with one container, as the mapping module would build it."""
    return models.ContainerGroup(
        location=REGION,
        tags=tags or {"acinode.dev/cluster": "contract"},
        os_type="Linux",
        restart_policy=restart_policy,
        image_registry_credentials=credentials,
        containers=[
            models.Container(
                name=container_name,
                image=image,
                command=list(command),
                resources=models.ResourceRequirements(
                    requests=models.ResourceRequests(cpu=cpu, memory_in_gb=memory_gb)
                ),
            )
        ],
    )


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]], within: float, what: str, interval: float = 0.05
) -> T:
    """Await ``predicate()`` until it returns something truthy, and return that; fail after ``within`` s."""
    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while True:
        try:
            value = await predicate()
            if value:
                return value
        except Exception as err:  # the condition may raise until it holds (e.g. NotFound)
            last_error = err
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {within}s waiting for {what}{detail}")
        await asyncio.sleep(interval)
