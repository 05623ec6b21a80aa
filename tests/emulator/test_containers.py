"""What containers do: the command convention, exits and restarts, logs, exec and attach, the stand-in."""

from __future__ import annotations

import urllib.error
import urllib.request

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import models

from acinode.emulator import execsocket
from emulator.harness import async_wait_for, group_spec, wait_for


def container_view(client, rg: str, name: str):
    return client.container_groups.get(rg, name).containers[0].instance_view


def test_a_command_that_exits_0_completes_and_the_group_succeeds(client, rg) -> None:
    spec = group_spec(["/bin/sh", "-c", "echo done; exit 0"], restart_policy="Never")
    client.container_groups.begin_create_or_update(rg, "job", spec).result()
    group = wait_for(
        lambda: (g := client.container_groups.get(rg, "job")).instance_view.state == "Succeeded" and g,
        what="done",
    )
    state = group.containers[0].instance_view.current_state
    assert (state.state, state.exit_code, state.detail_status) == ("Terminated", 0, "Completed")
    assert state.finish_time >= state.start_time
    assert group.provisioning_state == "Succeeded"  # provisioningState tracks the deployment only


def test_a_crash_with_never_fails_the_group_without_restart(client, rg) -> None:
    spec = group_spec(["sh", "-c", "echo boom; exit 3"], restart_policy="Never")
    client.container_groups.begin_create_or_update(rg, "crash", spec).result()
    wait_for(lambda: client.container_groups.get(rg, "crash").instance_view.state == "Failed", what="failed")
    view = container_view(client, rg, "crash")
    assert view.current_state.exit_code == 3 and view.current_state.detail_status == "Error"
    assert view.restart_count == 0


def test_a_crash_with_on_failure_restarts_with_backoff(client, emu, rg) -> None:
    # A back-off long enough to observe: Azure shows the wait as Waiting/CrashLoopBackOff (test_container_create_
    # with_msi's recording), the ended run as previousState, restartCount already counting the restart.
    emu.hook("PATCH", "config", {"backoffBaseSeconds": 1.0, "backoffMaxSeconds": 1.0})
    spec = group_spec(["sh", "-c", "echo boom; exit 3"], restart_policy="OnFailure")
    client.container_groups.begin_create_or_update(rg, "crash", spec).result()
    view = wait_for(
        lambda: (
            (v := container_view(client, rg, "crash")).restart_count >= 2
            and v.current_state.state == "Waiting"
            and v
        ),
        what="a second back-off",
    )
    assert view.current_state.detail_status == "CrashLoopBackOff: Back-off 1s restarting failed"
    assert view.previous_state.state == "Terminated" and view.previous_state.exit_code == 3
    assert view.previous_state.detail_status == "Error"
    events = {e.name: e for e in view.events}
    assert events["BackOff"].type == "Warning" and events["BackOff"].count >= 2
    assert events["Started"].count >= 2 and events["Killing"].count >= 2
    assert events["Killing"].message.startswith("Killing container with id ")
    assert client.container_groups.get(rg, "crash").instance_view.state == "Running"


def test_on_failure_does_not_restart_a_success(client, rg) -> None:
    spec = group_spec(["echo", "hi"], restart_policy="OnFailure")
    client.container_groups.begin_create_or_update(rg, "ok", spec).result()
    wait_for(
        lambda: client.container_groups.get(rg, "ok").instance_view.state == "Succeeded", what="succeeded"
    )
    assert container_view(client, rg, "ok").restart_count == 0


def test_always_restarts_even_after_success(client, rg) -> None:
    spec = group_spec(["sh", "-c", "echo once"], restart_policy="Always")
    client.container_groups.begin_create_or_update(rg, "loop", spec).result()
    wait_for(lambda: container_view(client, rg, "loop").restart_count >= 1, what="restart after exit 0")


def test_logs_grow_over_time_and_honour_tail_and_timestamps(client, rg) -> None:
    spec = group_spec(["sh", "-c", "for i in {1..200}; do echo line $i; sleep 0.05; done; sleep 3600"])
    client.container_groups.begin_create_or_update(rg, "logger", spec).result()

    def lines():
        return client.containers.list_logs(rg, "logger", "app").content.splitlines()

    first = wait_for(lambda: (n := lines()) and len(n) >= 2 and n, what="some lines")
    later = wait_for(lambda: (n := lines()) and len(n) > len(first) + 2 and n, what="more lines")
    assert later[: len(first)] == first and later[0] == "line 1"
    assert client.containers.list_logs(rg, "logger", "app", tail=1).content.count("\n") == 1
    stamped = client.containers.list_logs(rg, "logger", "app", tail=2, timestamps=True).content.splitlines()
    assert all(
        line.split(" ", 1)[0].endswith("Z") and line.split(" ", 1)[1].startswith("line") for line in stamped
    )


def test_environment_variables_reach_the_script(client, rg) -> None:
    env = [
        models.EnvironmentVariable(name="GREETING", value="hello"),
        models.EnvironmentVariable(name="S", secure_value="x"),
    ]
    spec = group_spec(["sh", "-c", 'echo "$GREETING world $S"; sleep 3600'], env=env)
    client.container_groups.begin_create_or_update(rg, "env", spec).result()
    wait_for(lambda: client.containers.list_logs(rg, "env", "app").content == "hello world x\n", what="log")


def test_logs_of_an_unknown_container_are_container_not_found(client, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    with pytest.raises(HttpResponseError) as info:
        client.containers.list_logs(rg, "web", "nope")
    assert info.value.status_code == 404 and info.value.error.code == "ContainerNotFound"


def test_stop_start_and_restart(client, rg) -> None:
    client.container_groups.begin_create_or_update(rg, "web", group_spec()).result()
    client.container_groups.stop(rg, "web")
    group = client.container_groups.get(rg, "web")
    assert group.instance_view.state == "Stopped" and group.provisioning_state == "Succeeded"
    assert group.containers[0].instance_view.current_state.state == "Terminated"
    assert "Killing" in [e.name for e in group.containers[0].instance_view.events]
    client.container_groups.begin_start(rg, "web").result()
    assert client.container_groups.get(rg, "web").instance_view.state == "Running"
    client.container_groups.begin_restart(rg, "web").result()
    wait_for(lambda: client.container_groups.get(rg, "web").instance_view.state == "Running", what="running")


async def _exec(aclient, emu, rg: str, command: str, send: list[str] | None = None):
    response = await aclient.containers.execute_command(
        rg, "web", "app", models.ContainerExecRequest(command=command, terminal_size={"rows": 24, "cols": 80})
    )
    assert response.web_socket_uri.startswith("wss://")
    output: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(response.web_socket_uri, ssl=emu.ssl_context()) as socket,
    ):
        await socket.send_str(response.password)
        for line in send or []:
            await socket.send_str(line)
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            output.append(message.data)
        return "".join(output), socket.close_code


async def test_exec_runs_commands_and_reports_the_exit_status_in_the_close_code(aclient, emu, rg) -> None:
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    await poller.result()
    assert await _exec(aclient, emu, rg, "echo hi") == ("hi\n", 4000)
    assert await _exec(aclient, emu, rg, "cat /etc/hostname") == ("web\n", 4000)
    listing, code = await _exec(aclient, emu, rg, "ls")
    assert "etc" in listing.split() and code == 4000
    assert await _exec(aclient, emu, rg, "exit 3") == ("", 4003)
    assert await _exec(aclient, emu, rg, 'sh -c "echo a; echo b; exit 1"') == ("a\nb\n", 4001)
    assert await _exec(aclient, emu, rg, "nosuchtool") == ("sh: nosuchtool: not found\n", 4127)


async def test_exec_of_a_bare_shell_is_interactive(aclient, emu, rg) -> None:
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    await poller.result()
    output, code = await _exec(aclient, emu, rg, "/bin/sh", send=["echo one\n", "hostname\r", "exit 7\n"])
    assert output == "one\nweb\n" and code == 4007


async def test_exec_with_a_wrong_password_is_closed(aclient, emu, rg) -> None:
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", group_spec())
    await poller.result()
    response = await aclient.containers.execute_command(
        rg, "web", "app", models.ContainerExecRequest(command="ls")
    )
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(response.web_socket_uri, ssl=emu.ssl_context()) as socket,
    ):
        await socket.send_str("not-the-password")
        message = await socket.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert socket.close_code == 4401


async def test_attach_streams_the_log(aclient, emu, rg) -> None:
    spec = group_spec(["sh", "-c", "echo first; sleep 0.2; echo second; exit 0"], restart_policy="Never")
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", spec)
    await poller.result()
    response = await aclient.containers.attach(rg, "web", "app")
    received: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(response.web_socket_uri, ssl=emu.ssl_context()) as socket,
    ):
        await socket.send_str(response.password)
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            received.append(message.data)
    assert received == ["first\n", "second\n"]


async def test_exec_into_an_ended_container_gets_a_session_that_ends_at_once(aclient, emu, rg) -> None:
    # Azure answers 200 {webSocketUri, password} for a Terminated container (test_container_exec's recording).
    spec = group_spec(["sh", "-c", "exit 0"], restart_policy="Never")
    poller = await aclient.container_groups.begin_create_or_update(rg, "web", spec)
    await poller.result()

    async def finished():
        return (await aclient.container_groups.get(rg, "web")).instance_view.state == "Succeeded"

    await async_wait_for(finished, what="succeeded")
    answer = await aclient.containers.execute_command(
        rg, "web", "app", models.ContainerExecRequest(command="ls")
    )
    assert answer.web_socket_uri.startswith("wss://") and answer.password
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(answer.web_socket_uri, ssl=emu.ssl_context()) as ws,
    ):
        await ws.send_str(answer.password)
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == execsocket.NOT_RUNNING_CLOSE


def test_the_stand_in_serves_http_on_the_group_ip_until_stopped(client, rg) -> None:
    group = client.container_groups.begin_create_or_update(rg, "web", group_spec(ports=[80, 8080])).result()
    ip = group.ip_address.ip
    assert ip.startswith("127.")
    for port in (80, 8080):
        page = wait_for(
            lambda p=port: urllib.request.urlopen(f"http://{ip}:{p}/", timeout=5).read().decode(), what="page"
        )
        assert "Welcome to Azure Container Instances!" in page and "web" in page
    client.container_groups.stop(rg, "web")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{ip}/", timeout=2)
    client.container_groups.begin_start(rg, "web").result()
    assert client.container_groups.get(rg, "web").ip_address.ip == ip  # kept until deleted
    wait_for(lambda: urllib.request.urlopen(f"http://{ip}/", timeout=5).status == 200, what="page again")
    client.container_groups.begin_delete(rg, "web").result()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{ip}/", timeout=2)


def test_other_images_get_a_page_naming_the_group(client, rg) -> None:
    spec = group_spec(ports=[80], image="nginx:latest")
    ip = client.container_groups.begin_create_or_update(rg, "nginx", spec).result().ip_address.ip
    page = wait_for(lambda: urllib.request.urlopen(f"http://{ip}/", timeout=5).read().decode(), what="page")
    assert "Container group nginx" in page and "nginx:latest" in page
