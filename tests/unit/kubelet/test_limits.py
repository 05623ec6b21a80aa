"""What one caller can make the kubelet API hold is bounded: SPDY header bombs and oversized frames are refused
before memory is spent on them, stdin and unread replies stop the reading of the connection instead of queueing,
half-open and slow connections are dropped, connections are capped in total and per client, long-lived calls
per user and per namespace, and the kubelet's ARM calls run in their own lane.

SPDY sessions are driven directly over a fake transport where the test needs to see what is held; the rest runs
against the real server on loopback (TLS and all), with short limits. Nothing sleeps to synchronise: tests wait
on conditions, with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp
import pytest
from kubelet_builders import FakeAciExecServer, FakeNode, FakeReviewer, KubeletPki, client_ssl, running_pod

from acinode import settings
from acinode.aci import ratelimit
from acinode.kubelet import channels, server, spdy, spdysession

MIB = 1024 * 1024
ADMIN = "kube-apiserver-kubelet-client"
EXEC = "/exec/default/web/main?command=sh&stdin=true&stdout=true"


# --- helpers --------------------------------------------------------------------------------------------------


def bomb_block(inflated_mib: int) -> bytes:
    """A SPDY header block (one header, ``x``, whose value is ``inflated_mib`` MiB of ``a``) compressed with the
    SPDY dictionary as a client would send it, made without ever holding the inflated bytes: each MiB is flushed
    to a byte boundary with a fresh window, so its 1,038 compressed bytes repeat."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zdict=spdy.HEADER_DICTIONARY)
    head = struct.pack(">II", 1, 1) + b"x" + struct.pack(">I", inflated_mib * MIB)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    pieces = [deflate.compress(b"a" * MIB) + deflate.flush(zlib.Z_FULL_FLUSH) for _ in range(2)]
    assert pieces[0] == pieces[1]
    return start + pieces[0] * inflated_mib


def inflated_size(block: bytes) -> int:
    """How large ``block`` inflates, counted a MiB at a time."""
    inflate = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY)
    total, pending = 0, block
    while pending:
        total += len(inflate.decompress(pending, MIB))
        pending = inflate.unconsumed_tail
    return total


def frames_in(data: bytes) -> list[spdy.Frame]:
    reader = spdy.FrameReader()
    reader.feed(data)
    return reader.frames()


def control(frames: list[spdy.Frame], kind: int) -> list[tuple[int, int]]:
    """(stream id, status) of each RST_STREAM or GOAWAY frame."""
    return [
        struct.unpack(">II", f.payload[:8])
        for f in frames
        if isinstance(f, spdy.ControlFrame) and f.kind == kind
    ]


async def wait_for(condition: Callable[[], object], within: float = 1.0) -> None:
    """Until ``condition()`` (a count kept by the server under test) holds; fails after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  (the counts have no event to wait on)
            await asyncio.sleep(0.005)


async def closed_by_server(reader: asyncio.StreamReader) -> float:
    """Read until the server closes the connection (EOF or reset); when that happened."""
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, ssl.SSLError):
        pass
    return time.monotonic()


def is_closed(reader: asyncio.StreamReader) -> bool:
    return reader.at_eof() or reader.exception() is not None


class FakeTransport:
    """What a SPDY session writes to and pauses; ``stalled`` makes written bytes pile up unread."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.stalled = False
        self.unread = 0

    def write(self, data: bytes) -> None:
        self.written += data
        if self.stalled:
            self.unread += len(data)

    def get_write_buffer_size(self) -> int:
        return self.unread

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class FakeProtocol:
    """aiohttp's protocol as the session uses it: ``_drain_helper`` returns once the client has read."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.drained = asyncio.Event()

    async def _drain_helper(self) -> None:
        await self.drained.wait()

    def client_reads(self) -> None:
        self.transport.unread = 0
        self.drained.set()


def spdy_session(
    kubelet: settings.KubeletSettings, options: channels.StreamOptions | None = None
) -> tuple[spdysession.SpdyStreams, FakeTransport, FakeProtocol]:
    transport = FakeTransport()
    protocol = FakeProtocol(transport)
    session = spdysession.SpdyStreams(
        cast(Any, None),
        protocol,
        transport,
        options or channels.StreamOptions(stdin=True, stdout=True, stderr=False),
        channels.V4,
        kubelet,
    )
    return session, transport, protocol


def open_streams(session: spdysession.SpdyStreams, codec: spdy.HeaderCodec, *types: str) -> None:
    for index, stream_type in enumerate(types):
        session.feed(spdy.syn_stream(2 * index + 1, codec.encode({"streamtype": [stream_type]})))


@contextlib.asynccontextmanager
async def serving(
    nodes: list[FakeNode], reviewer: FakeReviewer, kubelet: settings.KubeletSettings
) -> AsyncIterator[server.KubeletServer]:
    running = server.KubeletServer(
        lambda: list(nodes), None, kubelet, internal_ip="127.0.0.1", port=0, reviewer=reviewer
    )
    assert await running.start()
    try:
        yield running
    finally:
        await running.stop()


def limited(pki: KubeletPki, **limits: Any) -> settings.KubeletSettings:
    return settings.KubeletSettings(
        address="127.0.0.1",
        client_ca_path=str(pki.ca_path),
        log_follow_interval_seconds=0.01,
        log_follow_state_interval_seconds=0.01,
        **limits,
    )


@pytest.fixture(autouse=True)
def pod(node: FakeNode) -> None:
    node.add(running_pod("web"))
    node.aci.logs["main"] = [(0, "hello")]


# --- SPDY: header bombs, frame sizes, streams, queues ------------------------------------------------------


def test_a_header_block_inflating_to_64_mib_is_refused_while_at_most_the_limit_is_inflated() -> None:
    block = bomb_block(64)
    assert len(block) < 70 * 1024 and inflated_size(block) > 64 * MIB  # a real bomb: 64 KiB → 64 MiB
    codec = spdy.HeaderCodec(max_block_bytes=256 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(spdy.FrameTooLargeError, match="inflates past 262144 bytes"):
            codec.decode(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"64 MiB header bomb: peak traced memory while refusing it {peak / 1024:.0f} KiB")
    assert peak < 1 * MIB


def test_a_header_bomb_gets_rst_stream_frame_too_large_then_goaway_and_the_connection_closes() -> None:
    session, transport, _ = spdy_session(settings.KubeletSettings())
    session.feed(spdy.syn_stream(1, bomb_block(64)))
    frames = frames_in(bytes(transport.written))
    assert control(frames, spdy.RST_STREAM) == [(1, spdy.RST_FRAME_TOO_LARGE)]
    assert control(frames, spdy.GOAWAY) == [(0, spdy.GOAWAY_PROTOCOL_ERROR)]
    assert transport.closing


def test_a_frame_longer_than_the_limit_is_refused_from_its_head_before_it_is_buffered() -> None:
    reader = spdy.FrameReader(max_frame_bytes=64 * 1024)
    reader.feed(struct.pack(">II", 3, 0xFFFFFF))  # a DATA frame announcing 16 MiB: only its head is here
    with pytest.raises(spdy.FrameTooLargeError, match="DATA frame of 16777215 bytes"):
        reader.next_frame()

    session, transport, _ = spdy_session(settings.KubeletSettings(spdy_max_frame_bytes=64 * 1024))
    session.feed(spdy.control_frame(spdy.SYN_STREAM, b"\0" * (64 * 1024 + 1))[:4096])
    assert control(frames_in(bytes(transport.written)), spdy.GOAWAY) == [(0, spdy.GOAWAY_PROTOCOL_ERROR)]
    assert transport.closing
    assert session.buffered_bytes <= 4096


def test_streams_beyond_the_cap_are_refused_and_the_header_state_stays_in_step() -> None:
    session, transport, _ = spdy_session(settings.KubeletSettings(spdy_max_streams=3))
    codec = spdy.HeaderCodec()
    open_streams(session, codec, "error", "stdout", "unknown", "stdin", "resize")
    frames = frames_in(bytes(transport.written))
    replies = [f for f in frames if isinstance(f, spdy.ControlFrame) and f.kind == spdy.SYN_REPLY]
    assert [spdy.stream_id_of(f.payload) for f in replies] == [1, 3, 5]
    assert control(frames, spdy.RST_STREAM) == [(7, spdy.RST_REFUSED_STREAM), (9, spdy.RST_REFUSED_STREAM)]
    assert not transport.closing  # refusing a stream is not a connection error: the zlib state was kept


async def test_stdin_beyond_the_buffer_limit_stops_reading_the_connection_until_aci_takes_it() -> None:
    kubelet = settings.KubeletSettings(spdy_max_buffered_bytes=64 * 1024, spdy_max_frame_bytes=16 * 1024)
    session, transport, _ = spdy_session(kubelet)
    open_streams(session, spdy.HeaderCodec(), "error", "stdin", "stdout")
    chunks = [bytes([65 + i]) * (16 * 1024) for i in range(12)]
    session.feed(b"".join(spdy.data_frames(3, chunk) for chunk in chunks))  # 192 KiB arrive at once

    assert not transport.reading
    queued = session.buffered_bytes - (12 - 4) * (16 * 1024 + 8)  # what is queued, not left unparsed
    assert queued <= 64 * 1024 + 4 * 64  # four chunks queued, the other eight wait in the reader
    received = []
    for _ in range(12):
        item = await asyncio.wait_for(session.receive(), 1)
        assert item is not None
        received.append(item[1])
    assert received == chunks
    assert transport.reading
    assert session.buffered_bytes == 0


async def test_replies_the_client_leaves_unread_stop_the_reading_of_the_connection() -> None:
    session, transport, protocol = spdy_session(settings.KubeletSettings(spdy_max_buffered_bytes=1024))
    transport.stalled = True
    pings = b"".join(spdy.control_frame(spdy.PING, struct.pack(">I", n)) for n in range(200))
    session.feed(pings)
    answered = len(frames_in(bytes(transport.written)))
    assert not transport.reading
    assert answered < 200 and transport.unread <= 1024 + 12  # it stopped once a KiB went unread
    protocol.client_reads()  # from now on the client keeps up: every ping is answered, reading goes on
    await wait_for(lambda: len(frames_in(bytes(transport.written))) == 200 and transport.reading)


# --- the server: the issue's SPDY bomb, end to end -----------------------------------------------------------


async def test_the_254_kib_syn_stream_of_the_issue_is_refused_by_the_server_with_memory_bounded(
    kubelet: server.KubeletServer, pki: KubeletPki, exec_server: FakeAciExecServer
) -> None:
    block = bomb_block(250)  # 254 KiB on the wire, 250 MiB once inflated
    assert 250 * 1024 < len(block) < 256 * 1024
    assert kubelet.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", kubelet.port, ssl=client_ssl(pki.client))
    writer.write(
        f"POST {EXEC} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    tracemalloc.start()
    try:
        started = time.monotonic()
        writer.write(spdy.syn_stream(1, block))
        received = bytearray()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                received += chunk
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        writer.close()
    frames = frames_in(bytes(received))
    assert control(frames, spdy.RST_STREAM) == [(1, spdy.RST_FRAME_TOO_LARGE)]
    assert control(frames, spdy.GOAWAY) == [(0, spdy.GOAWAY_PROTOCOL_ERROR)]
    print(f"254 KiB SYN_STREAM: refused in {elapsed:.3f} s; peak traced memory {peak / MIB:.2f} MiB")
    assert peak < 4 * MIB  # client and server together, TLS included; unbounded, it was 250 MiB


# --- the server: slow and half-open connections, connection caps, head size --------------------------------


async def test_half_open_connections_are_dropped_after_the_header_timeout(
    nodes: list[FakeNode], reviewer: FakeReviewer, pki: KubeletPki
) -> None:
    kubelet = limited(pki, header_timeout_seconds=0.3)
    async with serving(nodes, reviewer, kubelet) as running:
        assert running.port is not None and running.site is not None
        site = running.site
        opened: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        for _ in range(30):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", running.port, ssl=client_ssl(pki.client)
            )
            writer.write(b"GET /healthz HTT")  # half a request line, never finished
            opened.append((time.monotonic(), reader, writer))
        for _ in range(100):  # TCP only: never a TLS handshake
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            opened.append((time.monotonic(), reader, writer))
        async with asyncio.timeout(1.5):
            closed = await asyncio.gather(*(closed_by_server(reader) for _, reader, _ in opened))
        held = [end - start for end, (start, _, _) in zip(closed, opened, strict=True)]
        await wait_for(lambda: site.limits.open == 0)
        print(f"130 half-open connections (timeout 0.3 s) held {min(held):.2f}-{max(held):.2f} s each")
        assert min(held) >= 0.3 and max(held) < 1.2
        assert site.failed_handshakes == 100 and site.limits.refused == 0
        for _, _, writer in opened:
            writer.close()


async def test_the_connection_cap_refuses_extra_connections_while_another_client_is_served(
    nodes: list[FakeNode], reviewer: FakeReviewer, pki: KubeletPki
) -> None:
    kubelet = limited(pki, header_timeout_seconds=1.5, max_connections=40, max_connections_per_client=20)
    async with serving(nodes, reviewer, kubelet) as running:
        assert running.port is not None and running.site is not None
        limits = running.site.limits
        hogs = [await asyncio.open_connection("127.0.0.1", running.port) for _ in range(30)]
        await wait_for(lambda: limits.open == 20 and limits.refused == 10)
        # The ten refused ones were closed at once; the twenty admitted are still held.
        await wait_for(lambda: sum(is_closed(r) for r, _ in hogs) == 10)

        connector = aiohttp.TCPConnector(ssl=client_ssl(pki.client), local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as other,
            other.get(f"https://127.0.0.1:{running.port}/healthz") as response,
        ):
            assert (response.status, await response.text()) == (200, "ok")
        assert limits.open_from("127.0.0.1") == 20

        crowd = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", running.port, local_addr=("127.0.0.3", 0)
            )
            crowd.append((reader, writer))
        await wait_for(lambda: limits.open == 40)
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port, local_addr=("127.0.0.4", 0))
        assert await asyncio.wait_for(closed_by_server(reader), 0.5)  # the total cap: refused at once
        assert limits.refused == 11
        for _, w in [*hogs, *crowd, (reader, writer)]:
            w.close()
        await wait_for(lambda: limits.open == 0, within=1.5)


async def test_a_request_head_beyond_the_limit_closes_the_connection(
    nodes: list[FakeNode], reviewer: FakeReviewer, pki: KubeletPki, http: aiohttp.ClientSession
) -> None:
    kubelet = limited(pki, max_request_head_bytes=4096)
    async with serving(nodes, reviewer, kubelet) as running:
        assert running.port is not None and running.site is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port, ssl=client_ssl(pki.client))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for n in range(100):
            writer.write(f"X-Pad-{n}: {'p' * 100}\r\n".encode())
        assert await asyncio.wait_for(closed_by_server(reader), 1)
        assert running.site.oversized_heads == 1
        writer.close()
        # Requests within the limit, several on one kept-alive connection, are served.
        for _ in range(3):
            async with http.get(f"https://127.0.0.1:{running.port}/healthz") as response:
                assert response.status == 200


# --- long-lived calls per user and per namespace ----------------------------------------------------------


async def follow(session: aiohttp.ClientSession, port: int, namespace: str, **headers: str) -> Any:
    url = f"https://127.0.0.1:{port}/containerLogs/{namespace}/web/main?follow=true"
    response = await session.get(url, headers=headers)
    if response.status == 200:
        assert await response.content.readline() == b"hello\n"
    return response


async def test_long_lived_calls_beyond_the_per_namespace_per_user_and_total_caps_get_429(
    nodes: list[FakeNode],
    node: FakeNode,
    reviewer: FakeReviewer,
    pki: KubeletPki,
    http: aiohttp.ClientSession,
    bare_http: aiohttp.ClientSession,
) -> None:
    for namespace in ("a", "b", "c"):
        node.add(running_pod("web", namespace))
    reviewer.tokens["alice-token"] = ("alice", [])
    reviewer.allowed |= {("alice", "get", "*", "proxy"), ("alice", "get", "*", "log")}
    alice = {"Authorization": "Bearer alice-token"}
    kubelet = limited(pki, max_sessions=5, max_sessions_per_user=3, max_sessions_per_namespace=2)
    async with serving(nodes, reviewer, kubelet) as running:
        assert running.port is not None
        port, sessions = running.port, running.sessions
        held = [await follow(http, port, "a"), await follow(http, port, "a")]
        assert [r.status for r in held] == [200, 200]

        third = await follow(http, port, "a")  # namespace a is full
        assert third.status == 429 and third.headers["Retry-After"] == "5"
        body = json.loads(await third.text())
        assert body["reason"] == "TooManyRequests" and "in namespace a (at most 2)" in body["message"]

        held.append(await follow(http, port, "b"))  # another namespace: served
        refused = await follow(http, port, "c")  # but the API server's user now has 3
        assert refused.status == 429 and f"for user {ADMIN} (at most 3)" in await refused.text()

        held += [await follow(bare_http, port, "b", **alice), await follow(bare_http, port, "c", **alice)]
        assert [r.status for r in held] == [200] * 5
        total = await follow(bare_http, port, "c", **alice)  # five in all
        assert total.status == 429 and "in all (at most 5)" in await total.text()

        # Short calls are not sessions: logs without follow, stats, health all still answer.
        async with http.get(f"https://127.0.0.1:{port}/containerLogs/a/web/main") as response:
            assert response.status == 200

        # A slot comes back when its call ends, however it ends (here: the client goes away).
        held[0].close()
        await wait_for(lambda: sessions.count("namespace", "a") == 1)
        again = await follow(http, port, "a")
        assert again.status == 200
        for response in [*held[1:], again, third, refused, total]:
            response.close()
        await wait_for(lambda: sessions.count("total") == 0)
        assert sessions.refused == 3


async def test_exec_beyond_the_cap_is_refused_before_aci_is_asked(
    nodes: list[FakeNode],
    node: FakeNode,
    reviewer: FakeReviewer,
    pki: KubeletPki,
    http: aiohttp.ClientSession,
    exec_server: FakeAciExecServer,
) -> None:
    kubelet = limited(pki, max_sessions_per_namespace=1)
    async with serving(nodes, reviewer, kubelet) as running:
        url = f"https://127.0.0.1:{running.port}{EXEC}"
        async with http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as shell:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, protocols=("v5.channel.k8s.io",))
            assert refused.value.status == 429
            assert len(node.aci.exec_calls) == 1
            await shell.send_bytes(channels.frame(channels.STDIN, b"exit 0\n"))
            async for _ in shell:
                pass


async def test_a_websocket_message_beyond_the_limit_ends_the_session(
    nodes: list[FakeNode],
    reviewer: FakeReviewer,
    pki: KubeletPki,
    http: aiohttp.ClientSession,
    exec_server: FakeAciExecServer,
) -> None:
    kubelet = limited(pki, websocket_max_message_bytes=4096)
    async with serving(nodes, reviewer, kubelet) as running:
        url = f"https://127.0.0.1:{running.port}{EXEC}"
        async with http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
            await ws.send_bytes(channels.frame(channels.STDIN, b"y" * 3000 + b"\n"))
            echoed = await asyncio.wait_for(ws.receive(), 1)
            assert echoed.data == channels.frame(channels.STDOUT, b"you said " + b"y" * 3000 + b"\n")
            await ws.send_bytes(channels.frame(channels.STDIN, b"x" * 8192 + b"\n"))
            async with asyncio.timeout(1):
                async for _ in ws:
                    pass
            # aiohttp drops the connection on an oversized message (no close frame: 1006 here).
            assert ws.closed
        assert exec_server.received == ["y" * 3000]


# --- ARM: the kubelet's calls run in the interactive lane ---------------------------------------------------


async def test_the_kubelets_aci_calls_draw_from_the_interactive_lane(
    kubelet: server.KubeletServer, node: FakeNode, http: aiohttp.ClientSession, url: Callable[[str], str]
) -> None:
    subscription = ratelimit.ArmRateLimiter.from_settings(settings.AciSettings())
    routed: list[ratelimit.ArmRateLimiter] = []
    fetch = node.aci.container_logs

    async def container_logs(*args: Any, **kwargs: Any) -> str:
        routed.append(ratelimit.route(subscription, (ratelimit.Budget.READ,))[0])
        return await fetch(*args, **kwargs)

    node.aci.container_logs = container_logs  # type: ignore[method-assign]
    async with http.get(url("/containerLogs/default/web/main")) as response:
        assert await response.text() == "hello\n"
    assert routed == [kubelet.lanes.lane_for(subscription)]
    # Outside the kubelet, the same call draws from the subscription's own budgets.
    assert ratelimit.route(subscription, (ratelimit.Budget.READ,))[0] is subscription
