"""The kubelet API tested on fakes (ACI, the reviews API, node views) over real HTTPS on loopback (2 s per test)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kubelet_builders import (
    FakeAciExecServer,
    FakeNode,
    FakeReviewer,
    KubeletPki,
    client_ssl,
    fake_node,
    make_pki,
)

from acinode import settings
from acinode.kubelet import server

ADMIN = "kube-apiserver-kubelet-client"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "unit/kubelet" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(2))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> KubeletPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def reviewer() -> FakeReviewer:
    """Allows the API server's kubelet client everything (as system:kubelet-api-admin does)."""
    fake = FakeReviewer()
    for verb in ("get", "create"):
        for subresource in ("proxy", "log", "stats", "metrics", "pods", "healthz"):
            fake.allowed.add((ADMIN, verb, "*", subresource))
    return fake


@pytest.fixture
def node() -> FakeNode:
    return fake_node()


@pytest.fixture
def nodes(node: FakeNode) -> list[FakeNode]:
    return [node]


@pytest.fixture
def kubelet_settings(pki: KubeletPki) -> settings.KubeletSettings:
    return settings.KubeletSettings(
        address="127.0.0.1",
        client_ca_path=str(pki.ca_path),
        log_follow_interval_seconds=0.01,
        log_follow_state_interval_seconds=0.01,
    )


@pytest.fixture
async def kubelet(
    nodes: list[FakeNode], reviewer: FakeReviewer, kubelet_settings: settings.KubeletSettings
) -> AsyncIterator[server.KubeletServer]:
    running = server.KubeletServer(
        lambda: list(nodes), None, kubelet_settings, internal_ip="127.0.0.1", port=0, reviewer=reviewer
    )
    assert await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def exec_server(node: FakeNode) -> AsyncIterator[FakeAciExecServer]:
    fake = FakeAciExecServer()
    await fake.start()
    node.aci.exec_server = fake
    yield fake
    await fake.stop()


@pytest.fixture
async def http(pki: KubeletPki) -> AsyncIterator[aiohttp.ClientSession]:
    """A client presenting the API server's kubelet client certificate."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(pki.client))) as session:
        yield session


@pytest.fixture
async def bare_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client without a certificate (a token or nothing)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl())) as session:
        yield session


@pytest.fixture
def url(kubelet: server.KubeletServer) -> Iterator[Any]:
    def make(path: str) -> str:
        return f"https://127.0.0.1:{kubelet.port}{path}"

    yield make
