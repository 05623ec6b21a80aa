"""Field tables: which keys of a Kubernetes object the mapping uses, tolerates or refuses.

Every object the mapping reads goes through ``check_fields`` so that nothing a user wrote is dropped
silently: a key is either mapped, accepted with a documented reason (scheduling hints, defaults the API
server fills in), or refused with a reason. A key this version of acinode does not know is refused too,
unless it is empty — a newer API server may add defaulted fields, and an empty value asks for nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import cast

from acinode.mapping import problems


def is_empty(value: object) -> bool:
    return value is None or value is False or value in ("", [], {})


def check_fields(
    obj: Mapping[str, object] | object,
    path: str,
    known: Collection[str],
    refused: Mapping[str, str],
    found: problems.Problems,
) -> None:
    """Add a problem for every refused key with a non-empty value and every unknown non-empty key."""
    values = cast(Mapping[str, object], obj)
    for key, value in values.items():
        if key in refused:
            if not is_empty(value):
                found.add(f"{path}.{key}", refused[key])
        elif key not in known and not is_empty(value):
            found.add(
                f"{path}.{key}", "this field is not known to acinode, so it cannot promise to honour it"
            )
