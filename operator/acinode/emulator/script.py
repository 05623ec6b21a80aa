"""A tiny, safe shell interpreter that decides what an emulated container (or an exec session) "does".

Nothing here ever runs on the host: commands are pure Python builtins writing lines to a log and sleeping.
Supported: ``;``/newline/``&&``/``||`` lists, ``while … do … done``, ``for v in … do … done`` (``{1..5}``),
``if … then … else … fi``, ``NAME=value``, ``$NAME``/``${NAME}``/``$?`` and the builtins of ``shellcmds``.
docs/emulator.md is the user-facing description.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from acinode.emulator import shellcmds, usage

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "busybox"})
_KEYWORDS_END = frozenset({"do", "done", "then", "else", "elif", "fi"})
_MIN_ITERATION_SECONDS = 0.01  # a loop body that never sleeps must not spin the event loop
_VAR = re.compile(r"\$(\?|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
_RANGE = re.compile(r"^\{(-?\d+)\.\.(-?\d+)\}$")


class ScriptError(Exception):
    """A script the interpreter cannot parse (the shell reports it and exits with status 2)."""


@dataclass(frozen=True)
class Simple:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AndOr:
    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class While:
    cond: Node
    body: Node


@dataclass(frozen=True)
class For:
    var: str
    words: tuple[str, ...]
    body: Node


@dataclass(frozen=True)
class If:
    cond: Node
    then: Node
    otherwise: Node | None


Node = Simple | Seq | AndOr | While | For | If


@dataclass(frozen=True)
class Behaviour:
    """What a container does: run ``program`` to its exit status, or serve forever (``program`` None)."""

    program: Node | None
    error: str | None = None


def _tokens(text: str) -> list[tuple[str, str]]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|\n")
    lexer.whitespace = " \t\r"
    lexer.wordchars += "$:{}[]!%+,@^"
    out: list[tuple[str, str]] = []
    try:
        for token in lexer:
            if lexer.punctuation_chars and token and set(token) <= set(";&|\n"):
                if "&&" in token:
                    out.append(("op", "&&"))
                elif "||" in token:
                    out.append(("op", "||"))
                elif "|" in token:
                    raise ScriptError("pipes are not supported")
                else:
                    out.append(("op", ";"))
            else:
                out.append(("word", token))
    except ValueError as exc:  # unbalanced quotes
        raise ScriptError(str(exc)) from exc
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ScriptError("unexpected end of script")
        self.pos += 1
        return tok

    def expect(self, word: str) -> None:
        self.skip_seps()
        if self.take() != ("word", word):
            raise ScriptError(f"expected '{word}'")

    def skip_seps(self) -> None:
        while self.peek() == ("op", ";"):
            self.pos += 1

    def parse_list(self) -> Node:
        items: list[Node] = []
        while True:
            self.skip_seps()
            tok = self.peek()
            if tok is None or (tok[0] == "word" and tok[1] in _KEYWORDS_END):
                break
            items.append(self.parse_and_or())
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def parse_and_or(self) -> Node:
        first = self.parse_command()
        rest: list[tuple[str, Node]] = []
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in ("&&", "||"):
            self.pos += 1
            self.skip_seps()
            rest.append((tok[1], self.parse_command()))
        return AndOr(first, tuple(rest)) if rest else first

    def parse_command(self) -> Node:
        kind, word = self.take()
        if kind == "op":
            raise ScriptError(f"syntax error near '{word}'")
        if word == "while":
            cond = self.parse_list()
            self.expect("do")
            body = self.parse_list()
            self.expect("done")
            return While(cond, body)
        if word == "for":
            var = self.take()[1]
            words: list[str] = []
            if self.peek() == ("word", "in"):
                self.pos += 1
                while (tok := self.peek()) is not None and tok[0] == "word":
                    words.append(self.take()[1])
            self.expect("do")
            body = self.parse_list()
            self.expect("done")
            return For(var, tuple(words), body)
        if word in ("if", "elif"):
            cond = self.parse_list()
            self.expect("then")
            then = self.parse_list()
            self.skip_seps()
            tok = self.peek()
            if tok == ("word", "elif"):
                return If(cond, then, self.parse_command())
            otherwise = None
            if tok == ("word", "else"):
                self.pos += 1
                otherwise = self.parse_list()
            self.expect("fi")
            return If(cond, then, otherwise)
        argv = [word]
        while (tok := self.peek()) is not None and tok[0] == "word":
            argv.append(self.take()[1])
        return Simple(tuple(argv))


def parse(text: str) -> Node:
    parser = _Parser(text)
    node = parser.parse_list()
    leftover = parser.peek()
    if leftover is not None:
        raise ScriptError(f"syntax error near '{leftover[1]}'")
    return node


def behaviour_from_command(command: list[str] | None) -> Behaviour:
    """The container-command convention: shells and builtins run as scripts; anything else serves forever."""
    if not command:
        return Behaviour(None)
    program = posixpath.basename(command[0])
    try:
        if program in SHELLS:
            args = command[1:]
            if program == "busybox" and args and args[0] in SHELLS:
                args = args[1:]
            if args[:1] == ["-c"]:
                return Behaviour(parse(args[1] if len(args) > 1 else ""))
            if not args:
                return Behaviour(Seq(()))  # a shell with no script and no stdin exits at once
            return Behaviour(None)  # `sh script.sh`: we cannot see the script, so it serves
        if program in shellcmds.BUILTINS:
            return Behaviour(Simple((program, *command[1:])))
    except ScriptError as exc:
        return Behaviour(Simple(("exit", "2")), error=f"sh: {exc}")
    return Behaviour(None)


Sleeper = Callable[[float], Awaitable[None]]


@dataclass
class Shell:
    """The state of one running script: its environment, its output sink and its hostname."""

    write: Callable[[str], None]
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = "localhost"
    sleep: Sleeper = asyncio.sleep
    status: int = 0
    slept: bool = False
    exited: bool = False
    """Set once ``exit`` ran (an interactive exec session then ends)."""
    load: usage.ContainerLoad | None = None
    """The container's usage model: busy loops mark it busy, ``sleep`` idle, ``usage`` sets it."""
    track_busy: bool = True

    async def run(self, node: Node) -> int:
        """Run ``node``; returns the exit status (``exit N`` ends the script with N)."""
        try:
            return await self._node(node)
        except shellcmds.ExitError as exc:
            self.status = exc.status
            self.exited = True
            return exc.status

    def expand(self, word: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip("{}")
            return str(self.status) if name == "?" else self.env.get(name, "")

        return _VAR.sub(one, word)

    async def _node(self, node: Node) -> int:
        if isinstance(node, Simple):
            self.status = await self._simple([self.expand(w) for w in node.argv])
        elif isinstance(node, Seq):
            for item in node.items:
                await self._node(item)
        elif isinstance(node, AndOr):
            await self._node(node.first)
            for op, item in node.rest:
                if (op == "&&") == (self.status == 0):
                    await self._node(item)
        elif isinstance(node, While):
            while await self._node(node.cond) == 0:
                await self._iteration(node.body)
            self.status = 0
        elif isinstance(node, For):
            for word in _expand_words([self.expand(w) for w in node.words]):
                self.env[node.var] = word
                await self._iteration(node.body)
        elif isinstance(node, If):
            if await self._node(node.cond) == 0:
                await self._node(node.then)
            elif node.otherwise is not None:
                await self._node(node.otherwise)
            else:
                self.status = 0
        return self.status

    async def _iteration(self, body: Node) -> None:
        self.slept = False
        await self._node(body)
        if not self.slept:
            if self.load is not None and self.track_busy:
                self.load.busy(True)  # a loop that never sleeps: a busy loop
            await self.sleep(_MIN_ITERATION_SECONDS)

    async def _simple(self, argv: list[str]) -> int:
        if not argv:
            return 0
        if "=" in argv[0] and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            name, _, value = argv[0].partition("=")
            self.env[name] = value
            return 0
        name = posixpath.basename(argv[0])
        if name in SHELLS:
            if argv[1:2] == ["-c"] and len(argv) > 2:
                try:
                    return await self._node(parse(argv[2]))
                except ScriptError as exc:
                    self.write(f"sh: {exc}")
                    return 2
            return 0
        builtin = shellcmds.BUILTINS.get(name)
        if builtin is None:
            self.write(f"sh: {argv[0]}: not found")
            return 127
        return await builtin(self, argv[1:])


def _expand_words(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        match = _RANGE.match(word)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            step = 1 if last >= first else -1
            out += [str(i) for i in range(first, last + step, step)]
        else:
            out += word.split()
    return out
