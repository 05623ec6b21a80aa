"""``/containerLogs``: the kubelet's options as far as ACI allows, and ``follow`` writing each new line once until
the container ends or the client leaves. ``stream_logs`` runs on virtual time (its sleep advances a fake clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import aiohttp
import pytest
from kubelet_builders import T0, FakeAci, FakeNode, running_pod, stamp

from acinode import errors
from acinode.kubelet import logs

Url = Callable[[str], str]


class VirtualLog:
    """A container log that grows as virtual time passes: ``script`` maps a second to the lines printed then."""

    def __init__(self, script: dict[float, list[str]], ends_at: float | None = None) -> None:
        self.script = script
        self.ends_at = ends_at
        self.now = 0.0
        self.sleeps = 0
        self.fetches: list[int | None] = []

    def lines(self) -> list[tuple[float, str]]:
        return [(t, text) for t, texts in sorted(self.script.items()) if t <= self.now for text in texts]

    async def fetch(self, tail: int | None) -> str:
        self.fetches.append(tail)
        lines = self.lines()
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return "".join(f"{stamp(t)} {text}\n" for t, text in lines)

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds

    async def has_ended(self) -> bool:
        return self.ends_at is not None and self.now >= self.ends_at


async def collect(log: VirtualLog, options: logs.LogOptions, **kwargs: object) -> str:
    out = bytearray()

    async def write(data: bytes) -> None:
        out.extend(data)

    await logs.stream_logs(
        log.fetch,
        write,
        options,
        has_ended=log.has_ended,
        interval_seconds=1.0,
        state_interval_seconds=2.0,
        sleep=log.sleep,
        monotonic=lambda: log.now,
        **kwargs,  # type: ignore[arg-type]
    )
    return out.decode()


async def test_without_follow_the_log_is_written_once() -> None:
    log = VirtualLog({0: ["a", "b"]})
    assert await collect(log, logs.LogOptions()) == "a\nb\n"
    assert log.sleeps == 0


async def test_follow_writes_each_new_line_once_until_the_container_ends() -> None:
    log = VirtualLog({0: ["a"], 1: ["b"], 2: ["c", "d"], 4: ["e"]}, ends_at=4)
    assert await collect(log, logs.LogOptions(follow=True)) == "a\nb\nc\nd\ne\n"


async def test_follow_keeps_the_final_lines_printed_just_before_the_end() -> None:
    log = VirtualLog({0: ["a"], 3: ["last words"]}, ends_at=3)
    assert (await collect(log, logs.LogOptions(follow=True))).endswith("last words\n")


async def test_follow_with_tail_zero_writes_only_new_lines() -> None:
    log = VirtualLog({0: ["old", "older"], 1: ["new"]}, ends_at=2)
    assert await collect(log, logs.LogOptions(follow=True, tail_lines=0)) == "new\n"


async def test_follow_with_tail_starts_from_the_last_lines() -> None:
    log = VirtualLog({0: ["1", "2", "3"], 1: ["4"]}, ends_at=2)
    assert await collect(log, logs.LogOptions(follow=True, tail_lines=1)) == "3\n4\n"
    assert log.fetches[0] == logs.FOLLOW_TAIL, (
        "one window, cut locally, so lines sharing a timestamp count right"
    )


async def test_lines_with_the_same_timestamp_are_not_lost_or_repeated() -> None:
    log = VirtualLog({0: ["x", "x"], 1: ["x"]}, ends_at=2)
    assert await collect(log, logs.LogOptions(follow=True)) == "x\nx\nx\n"


async def test_follow_stops_when_the_client_has_gone() -> None:
    log = VirtualLog({0: ["a"], 1: ["b"]})
    gone = iter([False, True])
    assert await collect(log, logs.LogOptions(follow=True), client_gone=lambda: next(gone)) == "a\nb\n"


async def test_follow_ends_when_the_group_is_gone() -> None:
    log = VirtualLog({0: ["a"]})
    fetches = 0

    async def fetch_until_deleted(tail: int | None) -> str:
        nonlocal fetches
        fetches += 1
        if fetches > 2:
            raise errors.NotFoundError("the group is gone")
        return await log.fetch(tail)

    out: list[bytes] = []

    async def write(data: bytes) -> None:
        out.append(data)

    await logs.stream_logs(fetch_until_deleted, write, logs.LogOptions(follow=True), sleep=log.sleep)
    assert out == [b"a\n"]
    assert fetches == 3


async def test_a_transient_fault_skips_a_poll_without_ending_the_stream() -> None:
    log = VirtualLog({0: ["a"], 1: ["b"], 2: ["c"]}, ends_at=3)
    faults = iter([None, errors.TransientError("ARM 503"), errors.ThrottledError("429", 0.5)])

    async def flaky(tail: int | None) -> str:
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return await log.fetch(tail)

    out = bytearray()

    async def write(data: bytes) -> None:
        out.extend(data)

    await logs.stream_logs(
        flaky,
        write,
        logs.LogOptions(follow=True),
        has_ended=log.has_ended,
        sleep=log.sleep,
        monotonic=lambda: log.now,
    )
    assert out == b"a\nb\nc\n"


async def test_limit_bytes_cuts_the_output_and_ends_a_follow() -> None:
    log = VirtualLog({0: ["abcdef"], 1: ["ghij"]})
    assert await collect(log, logs.LogOptions(follow=True, limit_bytes=9)) == "abcdef\ngh"


async def test_timestamps_are_acis_own() -> None:
    log = VirtualLog({0: ["a"]})
    assert await collect(log, logs.LogOptions(timestamps=True)) == f"{stamp(0)} a\n"


async def test_since_keeps_the_lines_from_that_time() -> None:
    log = VirtualLog({0: ["early"], 5: ["late"]})
    log.now = 5
    since = T0 + dt.timedelta(seconds=3)
    assert await collect(log, logs.LogOptions(since=since)) == "late\n"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, logs.LogOptions()),
        ({"follow": "true", "tailLines": "10", "timestamps": "1"}, logs.LogOptions(True, 10, True)),
        ({"sinceSeconds": "60"}, logs.LogOptions(since=T0 - dt.timedelta(seconds=60))),
        ({"sinceTime": "2026-01-01T11:00:00Z"}, logs.LogOptions(since=T0 - dt.timedelta(hours=1))),
        ({"limitBytes": "100"}, logs.LogOptions(limit_bytes=100)),
    ],
)
def test_log_options_come_from_the_kubelets_query(query: dict[str, str], expected: logs.LogOptions) -> None:
    assert logs.log_options_from_query(query, T0) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"previous": "true"},
        {"tailLines": "-1"},
        {"limitBytes": "0"},
        {"sinceSeconds": "x"},
        {"sinceTime": "yesterday"},
        {"sinceSeconds": "5", "sinceTime": "2026-01-01T11:00:00Z"},
        {"follow": "maybe"},
    ],
)
def test_options_aci_cannot_serve_or_malformed_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidRequestError):
        logs.log_options_from_query(query, T0)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-01-01T12:00:00Z", T0),
        ("2026-01-01T12:00:00.1234567Z", T0 + dt.timedelta(microseconds=123456)),
        ("2026-01-01T13:00:00+01:00", T0),
        ("2026-01-01T12:00:00.5+0000", T0 + dt.timedelta(microseconds=500000)),
        ("hello", None),
    ],
)
def test_acis_timestamps_parse_with_any_fraction(text: str, parsed: dt.datetime | None) -> None:
    assert logs.parse_timestamp(text) == parsed


# --- over HTTPS ---------------------------------------------------------------------------------------------


async def test_the_route_streams_new_lines_and_ends_when_the_group_is_gone(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    aci: FakeAci = node.aci
    aci.logs["main"] = [(0, "first")]
    async with http.get(url("/containerLogs/default/web/main?follow=true")) as response:
        assert response.status == 200
        assert await response.content.readline() == b"first\n"
        aci.logs["main"].append((1, "second"))
        assert await response.content.readline() == b"second\n"
        aci.gone.add("default-web")
        assert await asyncio.wait_for(response.content.read(), 1) == b""


@pytest.mark.parametrize("end", ["terminated", "restarted"])
async def test_the_route_ends_a_follow_when_the_container_ends(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, end: str
) -> None:
    node.add(running_pod("web"))
    aci: FakeAci = node.aci
    aci.logs["main"] = [(0, "first")]
    async with http.get(url("/containerLogs/default/web/main?follow=true")) as response:
        assert await response.content.readline() == b"first\n"
        await asyncio.wait_for(aci.group_read.wait(), 1)  # the follower has seen the container running
        aci.logs["main"].append((1, "bye"))
        if end == "terminated":
            aci.ended.add("main")
        else:
            aci.restarts += 1
        assert await asyncio.wait_for(response.content.read(), 1) == b"bye\n"


async def test_the_route_passes_tail_to_aci_and_always_asks_for_timestamps(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    node.aci.logs["main"] = [(0, "a"), (1, "b"), (2, "c")]
    async with http.get(url("/containerLogs/default/web/main?tailLines=2")) as response:
        assert await response.text() == "b\nc\n"
    assert node.aci.log_calls == [("default-web", "main", 2, True)]


async def test_previous_is_refused_with_a_reason(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    async with http.get(url("/containerLogs/default/web/main?previous=true")) as response:
        assert response.status == 400
        assert "current run" in (await response.json())["message"]
