"""Collects every field the mapping cannot express, so one error names them all.

Each mapping function appends to the same ``Problems`` instead of raising at the first refusal: the user fixes
the whole spec in one go, and the Event on the pod lists every offending path.
"""

from __future__ import annotations

from acinode import errors


class Problems:
    """An ordered, duplicate-free list of :class:`errors.FieldProblem`."""

    def __init__(self) -> None:
        self._items: list[errors.FieldProblem] = []

    def add(self, path: str, reason: str, *, missing_object: bool = False) -> None:
        problem = errors.FieldProblem(path, reason, missing_object=missing_object)
        if problem not in self._items:
            self._items.append(problem)

    @property
    def items(self) -> list[errors.FieldProblem]:
        return list(self._items)

    def has_any(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise errors.UnsupportedPodSpecError(self._items)


def key_path(base: str, key: str) -> str:
    """``metadata.annotations['a/b']``: the notation kubectl and the API server use for map keys."""
    return f"{base}['{key}']"
