"""Keeping virtual nodes alive, tested against FakeKube and FakeBackendProbe with a fixed clock (2 s per test)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from node_builders import IDENTITY, MakeKeeper, fast_settings, virtual_node

from acinode import settings
from acinode.kube import resources
from acinode.mapping import virtualnode
from acinode.node import keeper
from fakes.changes import Changes
from fakes.fake_backend import FakeBackendProbe
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "unit/node" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(2))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def kube(changes: Changes, clock: FakeClock) -> FakeKube:
    """The API server, holding the VirtualNode vn-1 (whose status the keeper reports)."""
    fake = FakeKube(clock=clock.now, changes_signal=changes)
    fake.put(resources.VIRTUALNODES, virtual_node())
    return fake


@pytest.fixture
def probe(changes: Changes) -> FakeBackendProbe:
    return FakeBackendProbe(changes_signal=changes)


@pytest.fixture
def config() -> virtualnode.VirtualNodeConfig:
    return virtualnode.virtual_node_config_from_resource(virtual_node())


@pytest.fixture
def make_keeper(
    kube: FakeKube, probe: FakeBackendProbe, config: virtualnode.VirtualNodeConfig, clock: FakeClock
) -> MakeKeeper:
    """A keeper on the fakes; one-iteration tests use the fake clock, loop tests pass ``real_time=True``."""

    def make(
        operator_settings: settings.Settings | None = None,
        *,
        real_time: bool = False,
        **overrides: Any,
    ) -> keeper.NodeKeeper:
        arguments: dict[str, Any] = {
            "kube": kube,
            "config": config,
            "identity": IDENTITY,
            "probe": probe,
            "operator_settings": operator_settings or fast_settings(),
            "owner_uid": "vn-uid",
        }
        if not real_time:
            arguments.update(clock=clock.now, monotonic=clock.monotonic)
        arguments.update(overrides)
        return keeper.NodeKeeper(**arguments)

    return make
