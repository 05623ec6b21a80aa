"""Lifecycle hooks, host aliases and native sidecars: ACI has no exact equivalent, so each is refused by field."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import container, group, pod, problems

from acinode.mapping import containers

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
            pod(container(lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}})),
            "spec.containers[0].lifecycle.preStop.exec",
            "single process without arguments",
        ),
        (
            pod(container(lifecycle={"preStop": {"httpGet": {"path": "/drain", "port": 8080}}})),
            "spec.containers[0].lifecycle.preStop.httpGet",
            "does not send preStop HTTP requests",
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


def test_a_pre_stop_sleep_maps_and_delays_the_stop_by_the_longest_sleep() -> None:
    the_pod = pod(
        container("web", lifecycle={"preStop": {"sleep": {"seconds": 5}}}),
        container("sidecar", lifecycle={"preStop": {"sleep": {"seconds": 12}}}),
        container("plain"),
    )
    group(the_pod)  # maps: nothing refused
    assert containers.pre_stop_sleep(the_pod) == 12
    assert containers.pre_stop_sleep(pod(container())) == 0


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
