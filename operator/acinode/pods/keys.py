"""The controller's work keys: a pod (by uid) or a container group (by name), never a snapshot of either."""

from __future__ import annotations

import dataclasses

from acinode import types


@dataclasses.dataclass(frozen=True)
class PodKey:
    uid: str


@dataclasses.dataclass(frozen=True)
class GroupKey:
    name: types.ContainerGroupName


WorkKey = PodKey | GroupKey
