"""The pod controller in parts, on fakes (FakeKube, FakeAciApi) and a FakeClock: no real sleeps (2 s per test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pods_builders import Stack

from fakes.fake_aci import FakeAciApi
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "unit/pods" in item.nodeid.replace("\\", "/"):
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


@pytest.fixture
def stack(kube: FakeKube, aci: FakeAciApi, clock: FakeClock) -> Stack:
    return Stack(kube, aci, clock)
