"""The Kubernetes adapters' unit tests: fast (2 s each), no API server (loopback aiohttp servers, FakeKube)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "unit/kube" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(2))
