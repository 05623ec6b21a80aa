"""The builtins of the emulator's shell (``script``): echo, sleep, exit, cat, ls… all pure Python.

They only write lines through the shell and sleep through its injected clock; none touches the host.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from acinode.emulator import usage

if TYPE_CHECKING:
    from acinode.emulator import script

FS_ROOT = ("bin", "dev", "etc", "home", "lib", "proc", "root", "sys", "tmp", "usr", "var")


class ExitError(Exception):
    """`exit N`: unwinds the running script with that status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _seconds(text: str) -> float:
    if text == "infinity":
        return float("inf")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    factor = units.get(text[-1:], 1)
    return float(text[:-1] if text[-1:] in units else text) * factor


async def _echo(sh: script.Shell, args: list[str]) -> int:
    while args and args[0] in ("-n", "-e", "-E"):
        args = args[1:]
    for line in " ".join(args).replace("\\n", "\n").split("\n"):
        sh.write(line)
    return 0


async def _sleep(sh: script.Shell, args: list[str]) -> int:
    try:
        total = sum(_seconds(a) for a in args)
    except ValueError:
        sh.write(f"sleep: invalid time interval '{' '.join(args)}'")
        return 1
    sh.slept = True
    if sh.load is not None and sh.track_busy:
        sh.load.busy(False)
    if total == float("inf"):
        await asyncio.Event().wait()
    await sh.sleep(total)
    return 0


async def _exit(sh: script.Shell, args: list[str]) -> int:
    try:
        status = int(args[0]) if args else sh.status
    except ValueError:
        sh.write(f"sh: exit: Illegal number: {args[0]}")
        status = 2
    raise ExitError(status & 0xFF)


async def _true(sh: script.Shell, args: list[str]) -> int:
    return 0


async def _false(sh: script.Shell, args: list[str]) -> int:
    return 1


_FILES = {
    "/etc/os-release": 'NAME="Emulated Linux"\nID=acinode-emulator\nPRETTY_NAME="acinode ACI emulator"',
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh",
}


async def _cat(sh: script.Shell, args: list[str]) -> int:
    status = 0
    for path in args:
        if path == "/etc/hostname":
            sh.write(sh.hostname)
        elif path in _FILES:
            for line in _FILES[path].split("\n"):
                sh.write(line)
        else:
            sh.write(f"cat: {path}: No such file or directory")
            status = 1
    return status


async def _ls(sh: script.Shell, args: list[str]) -> int:
    paths = [a for a in args if not a.startswith("-")] or ["/"]
    for path in paths:
        if path in ("/", "."):
            for name in FS_ROOT:
                sh.write(name)
        elif path == "/etc":
            for name in ("hostname", "os-release", "passwd"):
                sh.write(name)
        elif path.strip("/") not in FS_ROOT:
            sh.write(f"ls: {path}: No such file or directory")
            return 1
    return 0


async def _hostname(sh: script.Shell, args: list[str]) -> int:
    sh.write(sh.hostname)
    return 0


async def _env(sh: script.Shell, args: list[str]) -> int:
    if args:
        if args[0] not in sh.env:
            return 1
        sh.write(sh.env[args[0]])
        return 0
    for name, value in sorted(sh.env.items()):
        sh.write(f"{name}={value}")
    return 0


async def _stty(sh: script.Shell, args: list[str]) -> int:
    """`stty size`: the exec session's terminal, ``rows cols`` (ACI's ``terminalSize``)."""
    if args != ["size"]:
        sh.write("stty: only 'stty size' is emulated")
        return 1
    sh.write(f"{sh.env.get('LINES', '24')} {sh.env.get('COLUMNS', '80')}")
    return 0


async def _date(sh: script.Shell, args: list[str]) -> int:
    sh.write(dt.datetime.now(dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y"))
    return 0


async def _constant(text: str, sh: script.Shell, args: list[str]) -> int:
    sh.write(text)
    return 0


async def _pwd(sh: script.Shell, args: list[str]) -> int:
    return await _constant("/", sh, args)


async def _whoami(sh: script.Shell, args: list[str]) -> int:
    return await _constant("root", sh, args)


async def _uname(sh: script.Shell, args: list[str]) -> int:
    text = f"Linux {sh.hostname} 5.15.0 #1 SMP x86_64 GNU/Linux" if "-a" in args else "Linux"
    return await _constant(text, sh, args)


async def _seq(sh: script.Shell, args: list[str]) -> int:
    try:
        nums = [int(a) for a in args]
    except ValueError:
        return 1
    first, last = (1, nums[0]) if len(nums) == 1 else (nums[0], nums[1])
    for i in range(first, last + 1):
        sh.write(str(i))
    return 0


async def _usage(sh: script.Shell, args: list[str]) -> int:
    """``usage cpu=250m memory=64Mi`` sets what the container uses (either alone); ``usage reset`` derives it
    again from what the command does. The emulator's own convention (docs/emulator.md, "Usage")."""
    if args == ["reset"]:
        if sh.load is not None:
            sh.load.reset()
        return 0
    cpu = memory = None
    try:
        for arg in args:
            key, _, value = arg.partition("=")
            if key == "cpu":
                cpu = usage.cpu_millicores(value)
            elif key == "memory":
                memory = usage.memory_bytes(value)
            else:
                raise ValueError(arg)
    except ValueError:
        sh.write("usage: usage cpu=<250m|0.25> memory=<64Mi|1Gi|bytes> | usage reset")
        return 2
    if not args:
        sh.write("usage: usage cpu=<250m|0.25> memory=<64Mi|1Gi|bytes> | usage reset")
        return 2
    if sh.load is not None:
        sh.load.set(cpu, memory)
    return 0


BUILTINS: dict[str, Callable[[script.Shell, list[str]], Awaitable[int]]] = {
    "usage": _usage,
    "echo": _echo,
    "print": _echo,
    "sleep": _sleep,
    "exit": _exit,
    "true": _true,
    "trap": _true,  # signals are not delivered; ``trap '' TERM`` is read by the stop (lifecycle.ignores_sigterm)
    ":": _true,
    "false": _false,
    "cat": _cat,
    "ls": _ls,
    "hostname": _hostname,
    "env": _env,
    "printenv": _env,
    "date": _date,
    "stty": _stty,
    "pwd": _pwd,
    "whoami": _whoami,
    "uname": _uname,
    "seq": _seq,
}
