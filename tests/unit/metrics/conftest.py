"""The operator's metrics on fakes (2 s per test)."""

from __future__ import annotations

import pytest

from fakes.fake_aci import FakeAciApi
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "unit/metrics" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(2))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aci() -> FakeAciApi:
    return FakeAciApi()


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()
