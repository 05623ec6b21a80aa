"""Azure's own recorded ACI traffic, replayed against the emulator: every recorded Microsoft.ContainerInstance
request of every cassette in ``recordings/`` (SOURCES.md) gets the answer Azure gave, up to the differences
``azure_replay.TOLERATED`` lists with their reasons (ids, times, IPs, message text, api-version and timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from acinode.emulator import config, server
from contract import azure_replay

CASSETTES = sorted(azure_replay.RECORDINGS.glob("*.yaml"))
TOKEN = "replay-token"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[server.EmulatorServer]:
    # Azure's pace where the recordings show intermediate states (Pending, then Creating while the images pull)
    # and kubelet's crash-loop back-off (10 s doubling to 5 min); HTTP and no listeners (ports 80, 8000 need root).
    cfg = config.EmulatorConfig(
        state_dir=tmp_path,
        tls=False,
        token=TOKEN,
        provisioning_delay=0.3,
        pull_delay=0.3,
        backoff_base=10.0,
        backoff_max=300.0,
        network=False,
        log_level="warning",
    )
    running = server.EmulatorServer(cfg)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def test_the_cassettes_are_here_and_hold_aci_traffic() -> None:
    names = {c.name for c in CASSETTES}
    assert {"cli2020_test_container_create.yaml", "cli2021_test_container_exec.yaml"} <= names
    assert all(azure_replay.load(c) for c in CASSETTES)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cassette", CASSETTES, ids=[c.stem for c in CASSETTES])
async def test_the_emulator_answers_as_azure_did(cassette: Path, emulator: server.EmulatorServer) -> None:
    interactions = azure_replay.load(cassette)
    async with aiohttp.ClientSession() as session:
        outcomes = await azure_replay.Replayer(session, emulator.url, TOKEN).replay(interactions)
    report = [
        f"#{i} {o.interaction.method} {o.interaction.path.split('?')[0].rsplit('/', 2)[-2:]}: {d}"
        for i, o in enumerate(outcomes)
        for d in o.comparison.diffs
    ]
    assert not report, "\n".join(report)
    assert len(outcomes) == len(interactions)


def test_every_tolerated_difference_is_needed_by_some_cassette_and_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()
    for name in azure_replay.TOLERATED:
        assert f"`{name}`" in docs, f"docs/emulator.md does not list the tolerated difference {name!r}"


@pytest.mark.parametrize(
    ("recorded", "actual", "expected"),
    [
        ({"status": "Succeeded"}, {"status": "Succeeded"}, []),
        ({"status": "Succeeded"}, {"status": "InProgress"}, ["$.status"]),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, ["$.a.c"]),
        ({"a": {"b": 1}}, {"a": {}}, ["$.a.b"]),
        ({"secret": {}}, {"secret": {"k": "djE="}}, ["$.secret.k"]),
        ({"x": {"events": [{"name": "Started", "type": "Normal"}]}}, {"x": {"events": []}}, ["$.x.events"]),
    ],
)
def test_the_comparison_sees_differences(recorded: object, actual: object, expected: list[str]) -> None:
    cmp = azure_replay.Comparison("2023-05-01")
    azure_replay.compare_body(recorded, actual, cmp)
    assert [d.split(":")[0] for d in cmp.diffs] == expected
