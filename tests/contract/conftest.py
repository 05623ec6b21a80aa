"""The real ACI client against the acinode emulator, over HTTPS with the emulator's own CA.

One emulator process serves the whole session (starting one costs a CA and a server certificate); each test
works in its own resource group, and the test hooks' faults and runtime settings are reset after every test.
Tests that need the emulator started differently call ``emulated.start_emulator`` themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from acinode import settings
from acinode.aci import azure
from contract import emulated

# Fast lifecycle, no loopback listeners (tests here talk only to ARM routes), small pages to exercise paging.
# Throttling is off unless a test turns it on: the session creates more groups than ACI allows per 5 min.
DEFAULT_FLAGS = (
    "--provisioning-delay",
    "0.3",
    "--no-network",
    "--no-throttle",
    "--page-size",
    "3",
    "--log-level",
    "warning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "contract/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(60))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulated.Emulator]:
    if not emulated.ACINODE.exists():
        pytest.skip(f"{emulated.ACINODE} not installed")
    running = emulated.start_emulator(tmp_path_factory.mktemp("emulator"), *DEFAULT_FLAGS)
    try:
        yield running
    finally:
        emulated.stop_emulator(running.process)


@pytest.fixture
async def clean_emulator(emulator: emulated.Emulator) -> AsyncIterator[emulated.Emulator]:
    """The session's emulator, with faults and runtime settings reset after the test."""
    before = await emulator.hook("GET", "config")
    try:
        yield emulator
    finally:
        await emulator.hook("DELETE", "faults")
        await emulator.hook("PATCH", "config", before)


@pytest.fixture
def resource_group() -> str:
    return f"rg-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client_settings() -> settings.AciSettings:
    """Generous budgets (the emulator's own limits are ARM's), no backoff sleeps, fast pauses."""
    return settings.AciSettings(
        reads_per_second=200.0,
        read_burst=200,
        writes_per_second=200.0,
        write_burst=200,
        creates_per_second=200.0,
        create_burst=200,
        deletes_per_second=200.0,
        delete_burst=200,
        max_queue_seconds=30.0,
        throttle_retries=3,
        throttle_default_pause_seconds=0.2,
        transient_retries=3,
        transient_backoff_seconds=0.0,
        request_timeout_seconds=10.0,
    )


@pytest.fixture
async def aci(
    clean_emulator: emulated.Emulator, resource_group: str, client_settings: settings.AciSettings
) -> AsyncIterator[azure.AzureAciApi]:
    async with azure.AzureAciApi(clean_emulator.target(resource_group), settings=client_settings) as api:
        yield api
        # Leave nothing running: quotas are per subscription and region, shared by every test.
        await clean_emulator.hook("DELETE", "faults")
        for group in await api.list_groups():
            await api.delete(group.name)
