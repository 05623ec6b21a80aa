"""Chaos tests: the long ones (marker ``chaos_long``) run only under `make chaos` (``ACINODE_CHAOS_LONG=1``);
`make test` keeps a few minutes of chaos."""

from __future__ import annotations

import contextlib
import os

import pytest

from chaos import invariants

LONG = os.environ.get("ACINODE_CHAOS_LONG") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_long: a long chaos scenario, run by `make chaos` only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if LONG:
        return
    skip = pytest.mark.skip(reason="long chaos scenario: run with `make chaos` (ACINODE_CHAOS_LONG=1)")
    for item in items:
        if "chaos_long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def fresh_chaos_results() -> None:
    """One table per run."""
    with contextlib.suppress(FileNotFoundError):
        invariants.RESULTS.unlink()
