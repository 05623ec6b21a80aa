"""Container logs and exec through the real client and the emulator."""

from __future__ import annotations

import aiohttp
import pytest

from acinode import errors, types
from acinode.aci import azure
from contract import emulated

JOB = types.ContainerGroupName("job")


async def logs_with(aci: azure.AzureAciApi, text: str, **options: object) -> str:
    async def check() -> str | None:
        content = await aci.container_logs(JOB, "app", **options)  # type: ignore[arg-type]
        return content if text in content else None

    return await emulated.wait_for(check, within=15, what=f"log line {text!r}")


async def test_logs_return_what_the_container_printed(aci) -> None:
    command = ("sh", "-c", "echo one; echo two; echo three; sleep 3600")
    await aci.create_or_update(JOB, emulated.container_group(command=command))
    content = await logs_with(aci, "three")
    assert content.splitlines() == ["one", "two", "three"]


async def test_logs_tail_and_timestamps(aci) -> None:
    command = ("sh", "-c", "echo one; echo two; echo three; sleep 3600")
    await aci.create_or_update(JOB, emulated.container_group(command=command))
    await logs_with(aci, "three")
    assert await aci.container_logs(JOB, "app", tail=1) == "three\n"
    stamped = (await aci.container_logs(JOB, "app", tail=2, timestamps=True)).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["two", "three"]
    assert all(line[:4].isdigit() and "T" in line.split(" ", 1)[0] for line in stamped)


async def test_logs_of_a_missing_group_or_container_are_not_found(aci) -> None:
    with pytest.raises(errors.NotFoundError):
        await aci.container_logs(types.ContainerGroupName("missing"), "app")
    await aci.create_or_update(JOB, emulated.container_group())
    with pytest.raises(errors.NotFoundError):
        await aci.container_logs(JOB, "no-such-container")


async def test_exec_returns_a_websocket_that_runs_the_command(aci, clean_emulator) -> None:
    await aci.create_or_update(JOB, emulated.container_group())
    await logs_with(aci, "ready")

    session = await aci.exec_command(JOB, "app", "echo hello from exec", rows=40, cols=120)
    assert session.websocket_uri.startswith("wss://")
    assert session.password
    assert session.password not in repr(session)

    output: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(session.websocket_uri, ssl=clean_emulator.ssl_context()) as socket,
    ):
        await socket.send_str(session.password)
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            output.append(message.data)
        close_code = socket.close_code
    assert "".join(output) == "hello from exec\n"
    assert close_code == 4000  # the emulator closes with 4000 + the command's exit status


async def test_exec_into_a_group_that_is_not_running_is_refused(aci, clean_emulator) -> None:
    await clean_emulator.hook("PATCH", "config", {"provisioningDelaySeconds": 30.0})
    await aci.create_or_update(JOB, emulated.container_group())
    with pytest.raises((errors.ConflictError, errors.InvalidRequestError)):
        await aci.exec_command(JOB, "app", "echo hi")


async def test_a_container_exit_and_its_restarts_show_in_get(aci, clean_emulator) -> None:
    await clean_emulator.hook("PATCH", "config", {"backoffBaseSeconds": 0.1, "backoffMaxSeconds": 0.1})
    once = types.ContainerGroupName("once")
    looping = types.ContainerGroupName("looping")
    crash = ("sh", "-c", "echo bye; exit 3")
    await aci.create_or_update(once, emulated.container_group(command=crash, restart_policy="Never"))
    await aci.create_or_update(looping, emulated.container_group(command=crash, restart_policy="Always"))

    async def terminated() -> object:
        [container] = (await aci.get(once)).containers
        state = container.instance_view.current_state if container.instance_view else None
        return state if state is not None and state.state == "Terminated" else None

    state = await emulated.wait_for(terminated, within=15, what="the container to exit")
    assert state.exit_code == 3
    assert state.finish_time is not None

    async def restarted() -> object:
        [container] = (await aci.get(looping)).containers
        view = container.instance_view
        return view if view is not None and (view.restart_count or 0) >= 2 else None

    view = await emulated.wait_for(restarted, within=15, what="the container to be restarted twice")
    assert view.previous_state is not None and view.previous_state.exit_code == 3
