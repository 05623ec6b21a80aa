"""``kube/`` owns every REST path: no module outside it names an API server path or hands one to the client.

import-linter sees imports only, and every layer may hold a ``KubeClient`` (it is passed down from the composition
root), so this walks the syntax tree of every operator module outside ``acinode/kube/`` and ``acinode/emulator/``
(the emulator serves ARM, not Kubernetes) and fails on:

1. a string literal (or an f-string's literal part) that is an API server path: ``/api``, ``/apis``, ``/api/…``,
   ``/apis/…``;
2. a call of a ``KubeClient`` verb (``get``, ``create``, ``replace``, ``patch``, ``delete``, ``watch``, ``request``)
   on a receiver named like the client (``kube``, ``self.kube``, ``svc.kube``, ``kube_client``…), whatever the path;
3. a call of such a verb (but ``replace``, which strings have too) on any receiver whose path argument is built
   on the spot (an f-string, a ``+``/``%`` concatenation, ``str.format``) or is a literal like ``/word…``.

Rule 3 is a heuristic for receivers with other names (``dict.get("key")`` must stay legal); rules 1 and 2 catch
every form used so far. Run by ``make test`` and ``make lint``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "acinode"
EXEMPT = ("kube", "emulator")
"""Packages under ``acinode/`` that may speak REST paths: the Kubernetes adapters, and the ARM emulator."""

VERBS = frozenset({"get", "create", "replace", "patch", "delete", "watch", "request"})
API_PATH = re.compile(r"/apis?(/|$)")
RELATIVE = re.compile(r"/\w")
CLIENT_NAME = re.compile(r"(^|_)kube($|_)|kube_?client", re.IGNORECASE)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_built_string(node: ast.expr) -> bool:
    """An f-string, a concatenation or ``%``-formatting with a string, or ``"...".format(...)``."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return any(
            _is_built_string(side) or (isinstance(side, ast.Constant) and isinstance(side.value, str))
            for side in (node.left, node.right)
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    )


def _path_argument(call: ast.Call, verb: str) -> ast.expr | None:
    position = 1 if verb == "request" else 0
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == "path"), None)


def violations(source: str, filename: str = "<source>") -> Iterator[str]:
    """Each REST path or client call in ``source`` that belongs in ``kube/``, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and API_PATH.match(node.value):
            yield f"{filename}:{node.lineno}: API server path {node.value[:60]!r} (use a function in kube/)"
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        verb = node.func.attr
        if verb not in VERBS:
            continue
        receiver = _dotted(node.func.value)
        path = _path_argument(node, verb)
        last = receiver.rsplit(".", 1)[-1]
        if last and CLIENT_NAME.search(last):
            yield f"{filename}:{node.lineno}: {receiver}.{verb}(…) outside kube/ (use a function in kube/)"
        elif (
            path is not None
            and verb != "replace"  # str.replace: its first argument is often a built string or "/"
            and (
                _is_built_string(path)
                or (
                    isinstance(path, ast.Constant)
                    and isinstance(path.value, str)
                    and RELATIVE.match(path.value)
                )
            )
        ):
            yield f"{filename}:{node.lineno}: {receiver or '…'}.{verb}() with a path built outside kube/"


def operator_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in EXEMPT and "__pycache__" not in path.parts
    )


def test_only_kube_speaks_rest_paths() -> None:
    modules = operator_modules()
    assert len(modules) > 50, "the operator's modules were not found"
    found = [
        problem
        for module in modules
        for problem in violations(module.read_text(), str(module.relative_to(PACKAGE.parent)))
    ]
    assert not found, "REST paths or client calls outside acinode/kube/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "offending",
    [
        'LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"',
        'async def f(kube):\n    await kube.get("/api/v1/namespaces/kube-system")',
        'x = f"/api/v1/nodes/{name}"',
        'p = "/api" + suffix',
        "async def f(self, path):\n    await self.kube.patch(path, {}, 'merge')",
        "async def f(svc):\n    await svc.kube.create(collection, {})",
        'async def f(client):\n    await client.get(f"{base}/status")',
        'async def f(c, name):\n    await c.delete("/namespaces/x/pods/%s" % name)',
        "async def f(c):\n    await c.request('GET', '/version')",
        'async def f(c, n):\n    await c.patch(path="{}/status".format(n), body={})',
    ],
)
def test_the_check_catches(offending: str) -> None:
    assert list(violations(offending)), f"not caught: {offending}"


@pytest.mark.parametrize(
    "legal",
    [
        'name = metadata.get("name")',
        'value = headers.get("Authorization", "")',
        'tag = label_key.replace("/", "_")',
        "node = await resources.get_node(kube, name)",
        "await pods.patch_status(kube, namespace, name, uid, status)",
        'route = app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", handler)',
        '"""Docs may say that the Node lives at /api/v1/nodes/<name>."""',
    ],
)
def test_the_check_leaves_alone(legal: str) -> None:
    assert not list(violations(legal)), f"wrongly flagged: {legal}"
