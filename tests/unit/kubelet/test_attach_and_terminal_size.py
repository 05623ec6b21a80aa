"""``/attach`` (ACI's output-only attach) and the exec terminal size (the client's first resize → ACI's
``terminalSize``), over websocket and SPDY, on fakes."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import pytest
from kubelet_builders import FakeAciExecServer, FakeNode, KubeletPki, running_pod
from test_exec_streams import SpdyClient, read_until_closed

from acinode import errors
from acinode.kubelet import channels, remotecommand, server, spdy

Url = Callable[[str], str]
V5 = ("v5.channel.k8s.io",)


@pytest.fixture(autouse=True)
def pod(node: FakeNode) -> None:
    node.add(running_pod("web"))


def resize(width: int, height: int) -> bytes:
    return json.dumps({"Width": width, "Height": height}).encode() + b"\n"


# --- terminal size ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b'{"Width":101,"Height":33}\n', channels.TerminalSize(rows=33, cols=101)),
        (b'{"Width":80,"Height":24}{"Width":90,"Height":30}', channels.TerminalSize(rows=24, cols=80)),
        (b'{"Width":0,"Height":24}', None),
        (b'{"Width":true,"Height":24}', None),
        (b'{"Width":70000,"Height":24}', None),
        (b"not json", None),
        (b"[1, 2]", None),
    ],
)
def test_a_resize_message_gives_the_first_size_it_holds(
    data: bytes, size: channels.TerminalSize | None
) -> None:
    assert channels.terminal_size(data) == size


async def test_a_tty_exec_starts_acis_session_with_the_clients_first_terminal_size(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, exec_server: FakeAciExecServer
) -> None:
    exec_server.scripts["stty size"] = (["33 101"], 0)
    path = "/exec/default/web/main?command=stty&command=size&stdin=true&stdout=true&tty=true"
    async with http.ws_connect(url(path), protocols=V5) as ws:
        await ws.send_bytes(channels.frame(channels.RESIZE, resize(101, 33)))
        await ws.send_bytes(channels.frame(channels.RESIZE, resize(120, 40)))  # later sizes: ignored
        received = await read_until_closed(ws)
    assert received[channels.STDOUT] == b"33 101\n"
    assert node.aci.exec_sizes == [(33, 101)]


async def test_stdin_sent_before_the_terminal_size_reaches_the_command_in_order(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, exec_server: FakeAciExecServer
) -> None:
    path = "/exec/default/web/main?command=sh&stdin=true&stdout=true&tty=true"
    async with http.ws_connect(url(path), protocols=V5) as ws:
        await ws.send_bytes(channels.frame(channels.STDIN, b"early\n"))
        await ws.send_bytes(channels.frame(channels.RESIZE, resize(132, 50)))
        await ws.send_bytes(channels.frame(channels.STDIN, b"late\nexit 0\n"))
        received = await read_until_closed(ws)
    assert received[channels.STDOUT] == b"you said early\nyou said late\n"
    assert exec_server.received == ["early", "late", "exit 0"]
    assert node.aci.exec_sizes == [(50, 132)]


async def test_a_tty_exec_without_a_size_in_time_starts_at_24_by_80(
    http: aiohttp.ClientSession,
    url: Url,
    node: FakeNode,
    exec_server: FakeAciExecServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remotecommand, "RESIZE_WAIT_SECONDS", 0.05)
    exec_server.scripts["hostname"] = (["web"], 0)
    async with http.ws_connect(
        url("/exec/default/web/main?command=hostname&stdout=true&tty=true"), protocols=V5
    ) as ws:
        received = await read_until_closed(ws)
    assert received[channels.STDOUT] == b"web\n"
    assert node.aci.exec_sizes == [(24, 80)]


async def test_without_tty_exec_is_asked_of_aci_before_the_upgrade_at_24_by_80(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.aci.exec_error = errors.InvalidRequestError(
        "The container 'main' is not running.", code="ContainerNotRunning"
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url("/exec/default/web/main?command=ls&stdout=true"), protocols=V5)
    assert refused.value.status == 400
    assert node.aci.exec_sizes == [(24, 80)]


@pytest.mark.parametrize("kind", ["exec", "attach"])
async def test_a_container_the_pod_shows_ended_is_refused_before_asking_aci(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, kind: str
) -> None:
    ended = running_pod("done")
    ended["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    node.add(ended)
    query = "command=ls&stdout=true" if kind == "exec" else "stdout=true"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url(f"/{kind}/default/done/main?{query}"), protocols=V5)
    assert refused.value.status == 400
    assert node.aci.exec_sizes == [] and node.aci.attach_calls == [], "ACI is not asked for a session"


async def test_acis_refusal_of_a_tty_exec_is_the_error_status_on_the_stream(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.aci.exec_error = errors.InvalidRequestError(
        "The container 'main' is not running.", code="ContainerNotRunning"
    )
    async with http.ws_connect(
        url("/exec/default/web/main?command=sh&stdout=true&tty=true"), protocols=V5
    ) as ws:
        await ws.send_bytes(channels.frame(channels.RESIZE, resize(80, 24)))
        received = await read_until_closed(ws)
    status = json.loads(received[channels.ERROR])
    assert status["status"] == "Failure"
    assert "is not running" in status["message"]


async def test_a_spdy_tty_exec_takes_its_size_from_the_resize_stream(
    kubelet: server.KubeletServer, pki: KubeletPki, node: FakeNode, exec_server: FakeAciExecServer
) -> None:
    exec_server.scripts["stty size"] = (["40 120"], 0)
    assert kubelet.port is not None
    path = "/exec/default/web/main?command=stty&command=size&stdin=true&stdout=true&tty=true"
    client, head = await SpdyClient.upgrade(kubelet.port, pki, path, "v4.channel.k8s.io")
    assert head.startswith("HTTP/1.1 101")
    for stream_id, stream_type in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")):
        client.open_stream(stream_id, stream_type)
    client.writer.write(spdy.data_frames(7, resize(120, 40)))
    frames = await client.read_all()
    stdout = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 5)
    assert stdout == b"40 120\n"
    assert node.aci.exec_sizes == [(40, 120)]


# --- attach -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tty", ["false", "true"])
async def test_websocket_attach_streams_the_containers_output_then_success(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, exec_server: FakeAciExecServer, tty: str
) -> None:
    exec_server.scripts["attach"] = (["line one", "line two"], 0)
    path = f"/attach/default/web/main?stdout=true&stderr=true&tty={tty}"
    async with http.ws_connect(url(path), protocols=V5) as ws:
        if tty == "true":
            await ws.send_bytes(channels.frame(channels.RESIZE, resize(100, 30)))
        received = await read_until_closed(ws)
    assert received[channels.STDOUT] == b"line one\nline two\n"
    assert json.loads(received[channels.ERROR]) == {"metadata": {}, "status": "Success"}
    assert node.aci.attach_calls == [("default-web", "main")]
    assert node.aci.exec_calls == []


async def test_spdy_attach_streams_the_containers_output(
    kubelet: server.KubeletServer, pki: KubeletPki, node: FakeNode, exec_server: FakeAciExecServer
) -> None:
    exec_server.scripts["attach"] = (["from attach"], 0)
    assert kubelet.port is not None
    path = "/attach/default/web/main?stdout=true&stderr=true"
    client, head = await SpdyClient.upgrade(kubelet.port, pki, path, "v4.channel.k8s.io")
    assert head.startswith("HTTP/1.1 101")
    for stream_id, stream_type in ((1, "error"), (3, "stdout"), (5, "stderr")):
        client.open_stream(stream_id, stream_type)
    frames = await client.read_all()
    stdout = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 3)
    assert stdout == b"from attach\n"


async def test_attach_with_stdin_is_refused_before_aci_is_asked(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url("/attach/default/web/main?stdin=true&stdout=true"), protocols=V5)
    assert refused.value.status == 400
    async with http.post(url("/attach/default/web/main?stdin=true&stdout=true")) as response:
        body = await response.json()
    assert "output only" in body["message"]
    assert node.aci.attach_calls == []


async def test_acis_refusal_to_attach_is_an_http_status(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.aci.exec_error = errors.InvalidRequestError(
        "The container group is transitioning.", code="Transitioning"
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url("/attach/default/web/main?stdout=true"), protocols=V5)
    assert refused.value.status == 400


async def test_attach_to_an_unknown_container_is_not_found(http: aiohttp.ClientSession, url: Url) -> None:
    async with http.post(url("/attach/default/web/nope?stdout=true")) as response:
        assert response.status == 404


async def test_attach_counts_as_a_session(
    http: aiohttp.ClientSession, url: Url, kubelet: server.KubeletServer, exec_server: FakeAciExecServer
) -> None:
    exec_server.scripts["attach"] = (["x"], 0)
    kubelet.sessions._caps["namespace"] = 0
    async with http.post(url("/attach/default/web/main?stdout=true")) as response:
        assert response.status == 429
