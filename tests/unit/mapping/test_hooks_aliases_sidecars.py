"""Lifecycle hooks, host aliases and native sidecars: ACI has no exact equivalent, so each is refused by field."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import container, group, pod, problems

pytestmark = pytest.mark.timeout(2)

SIDECAR = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}


@pytest.mark.parametrize(
    ("the_pod", "path", "reason"),
    [
        (
            pod(container(lifecycle={"postStart": {"exec": {"command": ["touch", "/ready"]}}})),
            "spec.containers[0].lifecycle.postStart",
            "no postStart hook",
        ),
        (
            pod(container(lifecycle={"preStop": {"sleep": {"seconds": 5}}})),
            "spec.containers[0].lifecycle.preStop",
            "no preStop hook",
        ),
        (
            pod(container(lifecycle={"stopSignal": "SIGUSR1"})),
            "spec.containers[0].lifecycle.stopSignal",
            "its own signal",
        ),
        (
            pod(initContainers=[container("init", lifecycle={"preStop": {"exec": {"command": ["x"]}}})]),
            "spec.initContainers[0].lifecycle.preStop",
            "no preStop hook",
        ),
        (pod(initContainers=[SIDECAR]), "spec.initContainers[0].restartPolicy", "native sidecars"),
        (
            pod(initContainers=[container("migrate"), SIDECAR]),
            "spec.initContainers[1].restartPolicy",
            "init containers must exit",
        ),
        (
            pod(hostAliases=[{"ip": "10.0.0.1", "hostnames": ["db"]}]),
            "spec.hostAliases",
            "no /etc/hosts setting",
        ),
    ],
)
def test_refused(the_pod: Any, path: str, reason: str) -> None:
    found = problems(the_pod)
    assert reason in found.get(path, ""), found


@pytest.mark.parametrize(
    "the_pod",
    [
        pod(container(lifecycle={})),
        pod(hostAliases=[]),
        pod(initContainers=[container("init", restartPolicy=None)]),
    ],
)
def test_empty_values_are_accepted(the_pod: Any) -> None:
    group(the_pod)
