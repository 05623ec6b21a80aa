"""Fixtures: one in-process emulator for the session, SDK clients (sync, aio) and throwaway resource groups.

Each test works in its own resource group and the hooks it touches are reset afterwards; tests that need other
settings start their own emulator with ``start_emulator``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.aio import ContainerInstanceManagementClient as AsyncClient

from emulator.harness import RunningEmulator, make_config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "emulator/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(30))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = RunningEmulator(make_config(tmp_path_factory.mktemp("emulator")))
    yield running
    running.stop()


@pytest.fixture
def emu(emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The session's emulator; faults, runtime settings and throttles are reset after the test."""
    before = emulator.hook("GET", "config")
    yield emulator
    emulator.hook("DELETE", "faults")
    emulator.hook("PATCH", "config", before)
    emulator.hook("POST", "throttle/reset")


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Any]:
    """Start extra emulators with other settings; all are stopped after the test."""
    started: list[RunningEmulator] = []

    def start(state_dir: Path | None = None, **overrides: Any) -> RunningEmulator:
        running = RunningEmulator(make_config(state_dir or tmp_path / f"emu{len(started)}", **overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        if running.loop.is_running():
            running.stop()


@pytest.fixture
def rg() -> str:
    return f"rg-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[ContainerInstanceManagementClient]:
    with emu.client() as sdk:
        yield sdk


@pytest.fixture
async def aclient(emu: RunningEmulator) -> AsyncIterator[AsyncClient]:
    async with emu.aclient() as sdk:
        yield sdk
