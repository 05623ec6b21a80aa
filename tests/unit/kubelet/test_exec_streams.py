"""``/exec`` end to end on fakes: the client speaks websocket (v4/v5) or SPDY/3.1 to the kubelet server, which
bridges to a fake ACI exec websocket (password first, text output, close code 4000 + status)."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable

import aiohttp
import pytest
from kubelet_builders import FakeAciExecServer, FakeNode, KubeletPki, client_ssl, running_pod

from acinode import errors
from acinode.kubelet import channels, server, spdy

Url = Callable[[str], str]
EXEC = "/exec/default/web/main?command=sh&command=-c&command=echo+hello%3B+exit+3&stdout=true&stderr=true"
SCRIPT = "sh -c 'echo hello; exit 3'"


async def read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    received: dict[int, bytes] = {}
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            channel, payload = channels.parse_frame(message.data)
            received[channel] = received.get(channel, b"") + payload
    return received


@pytest.fixture(autouse=True)
def pod(node: FakeNode) -> None:
    node.add(running_pod("web"))


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_websocket_exec_returns_output_then_the_exit_status(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, exec_server: FakeAciExecServer, protocol: str
) -> None:
    exec_server.scripts[SCRIPT] = (["hello"], 3)
    async with http.ws_connect(url(EXEC), protocols=(protocol, "v3.channel.k8s.io")) as ws:
        assert ws.protocol == protocol
        received = await read_until_closed(ws)
    assert received[channels.STDOUT] == b"hello\n"
    status = json.loads(received[channels.ERROR])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert node.aci.exec_calls == [("default-web", "main", SCRIPT)]


async def test_websocket_stdin_reaches_the_command_and_closing_it_ends_a_shell(
    http: aiohttp.ClientSession, url: Url, exec_server: FakeAciExecServer
) -> None:
    path = "/exec/default/web/main?command=sh&stdin=true&stdout=true"
    async with http.ws_connect(url(path), protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(channels.frame(channels.STDIN, b"hi there\n"))
        echoed = await ws.receive()
        assert echoed.data == channels.frame(channels.STDOUT, b"you said hi there\n")
        await ws.send_bytes(bytes([channels.CLOSE_SIGNAL, channels.STDIN]))
        received = await read_until_closed(ws)
    assert json.loads(received[channels.ERROR]) == {"metadata": {}, "status": "Success"}
    assert exec_server.received == ["hi there", "exit"]


async def test_a_websocket_without_a_supported_protocol_is_refused(
    http: aiohttp.ClientSession, url: Url, exec_server: FakeAciExecServer
) -> None:
    exec_server.scripts[SCRIPT] = (["hello"], 3)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url(EXEC), protocols=("channel.k8s.io",))
    assert refused.value.status == 400


async def test_acis_refusal_to_exec_is_an_http_status_before_any_upgrade(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.aci.exec_error = errors.InvalidRequestError(
        "The container 'main' is not running.", code="ContainerNotRunning"
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url(EXEC), protocols=("v5.channel.k8s.io",))
    assert refused.value.status == 400


# --- SPDY ---------------------------------------------------------------------------------------------------


class SpdyClient:
    """Just enough of Go's spdystream client: upgrade, one stream per channel, read until the server closes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.headers = spdy.HeaderCodec()
        self.frames = spdy.FrameReader()

    @classmethod
    async def upgrade(cls, port: int, pki: KubeletPki, path: str, versions: str) -> tuple[SpdyClient, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl(pki.client))
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            f"X-Stream-Protocol-Version: {versions}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        return cls(reader, writer), head

    def open_stream(self, stream_id: int, stream_type: str) -> None:
        self.writer.write(spdy.syn_stream(stream_id, self.headers.encode({"streamtype": [stream_type]})))

    async def read_all(self) -> list[spdy.Frame]:
        frames: list[spdy.Frame] = []
        while chunk := await self.reader.read(65536):
            self.frames.feed(chunk)
            frames += self.frames.frames()
        return frames


@pytest.mark.parametrize("versions", ["v5.channel.k8s.io, v4.channel.k8s.io", "v4.channel.k8s.io"])
async def test_spdy_exec_replies_to_each_stream_and_finishes_them_with_the_status(
    kubelet: server.KubeletServer, pki: KubeletPki, exec_server: FakeAciExecServer, versions: str
) -> None:
    exec_server.scripts[SCRIPT] = (["hello"], 3)
    assert kubelet.port is not None
    client, head = await SpdyClient.upgrade(kubelet.port, pki, EXEC, versions)
    assert head.startswith("HTTP/1.1 101")
    assert "Upgrade: SPDY/3.1" in head
    assert f"X-Stream-Protocol-Version: {versions.split(',', maxsplit=1)[0]}" in head
    for stream_id, stream_type in ((1, "error"), (3, "stdout"), (5, "stderr")):
        client.open_stream(stream_id, stream_type)
    frames = await client.read_all()

    replies = [f for f in frames if isinstance(f, spdy.ControlFrame) and f.kind == spdy.SYN_REPLY]
    assert sorted(struct.unpack(">I", f.payload[:4])[0] for f in replies) == [1, 3, 5]
    data: dict[int, bytes] = {}
    finished = set()
    for frame in frames:
        if isinstance(frame, spdy.DataFrame):
            data[frame.stream_id] = data.get(frame.stream_id, b"") + frame.data
            if frame.flags & spdy.FLAG_FIN:
                finished.add(frame.stream_id)
    assert data[3] == b"hello\n"
    assert json.loads(data[1])["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert finished == {1, 3, 5}
    assert any(isinstance(f, spdy.ControlFrame) and f.kind == spdy.GOAWAY for f in frames)


async def test_spdy_pings_are_answered_and_stdin_is_forwarded(
    kubelet: server.KubeletServer, pki: KubeletPki, exec_server: FakeAciExecServer
) -> None:
    assert kubelet.port is not None
    path = "/exec/default/web/main?command=sh&stdin=true&stdout=true"
    client, _head = await SpdyClient.upgrade(kubelet.port, pki, path, "v4.channel.k8s.io")
    for stream_id, stream_type in ((1, "error"), (3, "stdin"), (5, "stdout")):
        client.open_stream(stream_id, stream_type)
    client.writer.write(spdy.control_frame(spdy.PING, struct.pack(">I", 7)))
    client.writer.write(spdy.data_frames(3, b"one\nexit 2\n", fin=True))
    frames = await client.read_all()
    pings = [f for f in frames if isinstance(f, spdy.ControlFrame) and f.kind == spdy.PING]
    assert [p.payload for p in pings] == [struct.pack(">I", 7)]
    stdout = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 5)
    assert stdout == b"you said one\n"
    status = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 1)
    assert json.loads(status)["details"]["causes"][0]["message"] == "2"
