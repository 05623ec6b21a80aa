"""Test harness: the emulator in-process on its own event-loop thread, the real SDK clients on it, helpers.

Every server gets its own loopback range so that the HTTP stand-ins of different servers never collide.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from azure.core.credentials import AccessToken
from azure.mgmt.containerinstance import ContainerInstanceManagementClient, models
from azure.mgmt.containerinstance.aio import ContainerInstanceManagementClient as AsyncClient

from acinode.emulator import config, server

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000e1"
LOCATION = "westeurope"
TOKEN = "emulator-test-token"
T = TypeVar("T")
_ranges = itertools.count(1)


class FakeCredential:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class AsyncFakeCredential(FakeCredential):
    async def get_token(self, *scopes: str, **kw: Any) -> AccessToken:  # type: ignore[override]
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


class RunningEmulator:
    """An ``EmulatorServer`` on a private event loop in a daemon thread (so the sync SDK can block on it)."""

    def __init__(self, cfg: config.EmulatorConfig) -> None:
        self.cfg = cfg
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = server.EmulatorServer(cfg)
        self.run(self.server.start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_file(self) -> str:
        assert self.server.ca_file is not None
        return str(self.server.ca_file)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def hook(self, method: str, path: str, body: Any = None, token: str = TOKEN) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.ssl_context(), timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def client(self, **kw: Any) -> ContainerInstanceManagementClient:
        options: dict[str, Any] = {"polling_interval": 0, "retry_total": 0}
        options.update(kw)
        return ContainerInstanceManagementClient(
            FakeCredential(), SUBSCRIPTION, base_url=self.url, connection_verify=self.ca_file, **options
        )

    def aclient(self, **kw: Any) -> AsyncClient:
        options: dict[str, Any] = {"polling_interval": 0, "retry_total": 0}
        options.update(kw)
        return AsyncClient(
            AsyncFakeCredential(), SUBSCRIPTION, base_url=self.url, connection_verify=self.ca_file, **options
        )


def make_config(state_dir: Path, **overrides: Any) -> config.EmulatorConfig:
    n = next(_ranges)
    cfg = config.EmulatorConfig(
        state_dir=state_dir,
        token=TOKEN,
        provisioning_delay=0.0,
        pull_delay=0.0,
        backoff_base=0.05,
        backoff_max=0.2,
        ip_range=f"127.{200 + n // 256}.{n % 256}.0/24",
        log_level="warning",
    )
    cfg.throttle.enabled = False  # waits poll fast; the throttling tests switch it on
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def group_spec(
    command: list[str] | None = None,
    *,
    image: str = "mcr.microsoft.com/azuredocs/aci-helloworld:latest",
    restart_policy: str = "Always",
    cpu: float = 1.0,
    memory: float = 1.5,
    ports: list[int] | None = None,
    env: list[models.EnvironmentVariable] | None = None,
    credentials: list[models.ImageRegistryCredential] | None = None,
    tags: dict[str, str] | None = None,
    location: str = LOCATION,
) -> models.ContainerGroup:
    container = models.Container(
        name="app",
        image=image,
        command=command,
        environment_variables=env,
        ports=[models.ContainerPort(port=p) for p in ports or []],
        resources=models.ResourceRequirements(requests=models.ResourceRequests(cpu=cpu, memory_in_gb=memory)),
    )
    ip = (
        models.IpAddress(type="Public", ports=[models.Port(port=p, protocol="TCP") for p in ports])
        if ports
        else None
    )
    return models.ContainerGroup(
        location=location,
        tags=tags,
        os_type="Linux",
        restart_policy=restart_policy,
        containers=[container],
        ip_address=ip,
        image_registry_credentials=credentials,
    )


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition", interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


async def async_wait_for(predicate: Any, within: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = await predicate()
            if value:
                return value
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def raw(
    emu,
    method: str,
    path: str,
    body=None,
    *,
    token: str | None = TOKEN,
    query: str = "api-version=2023-05-01",
):
    """A plain HTTPS request, for what the SDK never sends (missing api-version, no token)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    url = f"{emu.url}{path}{'?' + query if query else ''}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, context=emu.ssl_context(), timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def group_path(rg: str, name: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/"
        f"containerGroups/{name}"
    )
