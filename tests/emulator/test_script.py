"""The container-command interpreter: what a command makes a container do (pure, nothing runs on the host)."""

from __future__ import annotations

import pytest

from acinode.emulator import script


async def run(command: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    behaviour = script.behaviour_from_command(command)
    assert behaviour.program is not None
    out: list[str] = []
    if behaviour.error:
        out.append(behaviour.error)
    shell = script.Shell(write=out.append, env=env or {}, hostname="grp")
    return await shell.run(behaviour.program), out


@pytest.mark.parametrize(
    ("command", "status", "lines"),
    [
        (["/bin/sh", "-c", "echo hello; exit 3"], 3, ["hello"]),
        (["echo", "a", "b"], 0, ["a b"]),
        (["sh", "-c", "for i in {1..3}; do echo $i; done"], 0, ["1", "2", "3"]),
        (["sh", "-c", "for w in x y; do print $w; done"], 0, ["x", "y"]),
        (["sh", "-c", "false || echo fallback; true && echo ok"], 0, ["fallback", "ok"]),
        (["sh", "-c", "if false; then echo a; elif true; then echo b; else echo c; fi"], 0, ["b"]),
        (["sh", "-c", "X=1; echo ${X}$X $?"], 0, ["11 0"]),
        (["sh", "-c", 'echo "quoted; not split"'], 0, ["quoted; not split"]),
        (["sh", "-c", "cat /etc/hostname; hostname"], 0, ["grp", "grp"]),
        (["sh", "-c", "nosuch"], 127, ["sh: nosuch: not found"]),
        (["sh", "-c", "echo a | grep a"], 2, ["sh: pipes are not supported"]),
        (["sh", "-c", "while true; do echo once; exit 4; done"], 4, ["once"]),
        (["sh", "-c", "echo one\necho two"], 0, ["one", "two"]),
        (["/bin/sh"], 0, []),
        (["bash", "-c", "sh -c 'echo nested'"], 0, ["nested"]),
        (["busybox", "sh", "-c", "exit 5"], 5, []),
    ],
)
async def test_scripts(command, status, lines) -> None:
    assert await run(command) == (status, lines)


async def test_environment_is_expanded() -> None:
    assert await run(["sh", "-c", "echo $GREETING"], {"GREETING": "hi"}) == (0, ["hi"])


@pytest.mark.parametrize(
    "command", [None, [], ["nginx", "-g", "daemon off;"], ["/app/server"], ["sh", "x.sh"]]
)
def test_unknown_programs_serve_forever(command) -> None:
    assert script.behaviour_from_command(command).program is None


async def test_sleep_uses_the_injected_clock() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    shell = script.Shell(write=lambda line: None, sleep=fake_sleep)
    await shell.run(script.parse("sleep 2; sleep 1m; for i in 1 2; do echo x; done"))
    assert slept == [2.0, 60.0, 0.01, 0.01]  # loop bodies that never sleep still yield
