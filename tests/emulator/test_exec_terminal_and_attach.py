"""Exec's terminal size (ACI's ``terminalSize``: the session's ``stty size``, recorded for tests) and attach as ACI
serves it: the container's output only, what the client sends dropped, ended by the client too."""

from __future__ import annotations

import aiohttp
from azure.mgmt.containerinstance import models

from emulator.harness import async_wait_for, group_spec


async def _run(aclient, emu, rg: str, request: models.ContainerExecRequest) -> str:
    response = await aclient.containers.execute_command(rg, "web", "app", request)
    output: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(response.web_socket_uri, ssl=emu.ssl_context()) as socket,
    ):
        await socket.send_str(response.password)
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            output.append(message.data)
    return "".join(output)


async def test_exec_runs_with_the_requested_terminal_size_and_records_it(aclient, emu, rg) -> None:
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    await poller.result()
    sized = models.ContainerExecRequest(command="stty size", terminal_size={"rows": 33, "cols": 101})
    assert await _run(aclient, emu, rg, sized) == "33 101\n"
    assert (
        await _run(aclient, emu, rg, models.ContainerExecRequest(command="echo $LINES $COLUMNS")) == "24 80\n"
    )
    sessions = emu.hook("GET", "sessions")["sessions"]
    mine = [s for s in sessions if s["resourceGroup"] == rg]
    assert [(s["kind"], s["command"], s["terminalSize"]) for s in mine] == [
        ("exec", "stty size", {"rows": 33, "cols": 101}),
        ("exec", "echo $LINES $COLUMNS", {"rows": 24, "cols": 80}),
    ]
    assert mine[0]["containerGroup"] == "web" and mine[0]["container"] == "app"


async def test_attach_ignores_input_and_ends_when_the_client_leaves(aclient, emu, rg) -> None:
    spec = group_spec(["sh", "-c", "echo first; sleep infinity"])
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", spec)
    await poller.result()
    response = await aclient.containers.attach(rg, "web", "app")
    async with aiohttp.ClientSession() as http:
        socket = await http.ws_connect(response.web_socket_uri, ssl=emu.ssl_context())
        await socket.send_str(response.password)
        await socket.send_str("ignored input\n")
        first = await socket.receive()
        assert first.data == "first\n"
        await socket.close()
    sessions = emu.hook("GET", "sessions")["sessions"]
    attached = [s for s in sessions if s["resourceGroup"] == rg and s["kind"] == "attach"]
    assert attached == [
        {
            "kind": "attach",
            "resourceGroup": rg,
            "containerGroup": "web",
            "container": "app",
            "command": "",
            "terminalSize": None,
        }
    ]

    async def group_still_running() -> bool:
        return (await aclient.container_groups.get(rg, "web")).instance_view.state == "Running"

    await async_wait_for(group_still_running, what="the container unaffected by the attach ending")
