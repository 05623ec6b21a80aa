"""ACI events as Kubernetes Events, with keys that stay stable across polls."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import NOW, NOW_TEXT, aci_group, container, pod

from acinode import errors
from acinode.mapping import events

pytestmark = pytest.mark.timeout(2)

PULLING = {
    "name": "Pulling",
    "message": 'pulling image "nginx:1.27"',
    "type": "Normal",
    "count": 1,
    "firstTimestamp": "2024-05-01T11:59:01Z",
    "lastTimestamp": "2024-05-01T11:59:01Z",
}
BACKOFF = {
    "name": "BackOff",
    "message": "Back-off restarting failed container",
    "type": "Whatever",
    "count": 3,
    "firstTimestamp": "2024-05-01T11:59:05Z",
    "lastTimestamp": "2024-05-01T11:59:40Z",
}


def _group(
    container_events: list[dict[str, Any]],
    group_events: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
) -> Any:
    def entry(name: str, evts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": name,
            "properties": {
                "image": "nginx:1.27",
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
                "instanceView": {"restartCount": 0, "events": evts},
            },
        }

    props: dict[str, Any] = {
        "osType": "Linux",
        "containers": [entry("app", container_events)],
        "instanceView": {"state": "Running", "events": group_events or []},
    }
    if init is not None:
        props["initContainers"] = [entry("migrate", init)]
    return aci_group({"name": "shop-web-0", "properties": props})


def test_container_events_become_pod_events() -> None:
    the_pod = pod()
    [pulling, backoff] = events.pod_events_from_container_group(_group([BACKOFF, PULLING]), the_pod)
    assert pulling.body["reason"] == "Pulling"
    assert pulling.body["type"] == "Normal"
    assert pulling.body["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-0",
        "namespace": "shop",
        "uid": "11111111-2222-3333-4444-555555555555",
        "fieldPath": "spec.containers{app}",
    }
    assert (backoff.body["type"], backoff.body["count"]) == ("Warning", 3)
    assert (backoff.body["firstTimestamp"], backoff.body["lastTimestamp"]) == (
        "2024-05-01T11:59:05Z",
        "2024-05-01T11:59:40Z",
    )
    assert backoff.body["metadata"]["name"] == f"web-0.{backoff.key[:16]}"
    assert backoff.body["source"] == {"component": "acinode", "host": "virtual-node-aci-linux"}


def test_keys_are_stable_while_an_event_repeats() -> None:
    first = events.pod_events_from_container_group(_group([BACKOFF]), pod())
    repeated = {**BACKOFF, "count": 7, "lastTimestamp": "2024-05-01T12:05:00Z"}
    later = events.pod_events_from_container_group(_group([repeated]), pod())
    assert first[0].key == later[0].key
    assert later[0].body["count"] == 7


def test_group_and_init_container_events() -> None:
    found = events.pod_events_from_container_group(
        _group([], group_events=[PULLING], init=[BACKOFF]), pod(initContainers=[container("migrate")])
    )
    paths = [e.body["involvedObject"].get("fieldPath") for e in found]
    assert paths == [None, "spec.initContainers{migrate}"]


def test_a_group_without_instance_view_has_no_events() -> None:
    group = aci_group(
        {
            "name": "g",
            "properties": {
                "osType": "Linux",
                "containers": [
                    {
                        "name": "app",
                        "properties": {"image": "x", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}},
                    }
                ],
            },
        }
    )
    assert events.pod_events_from_container_group(group, pod()) == []


def test_mapping_failure_event() -> None:
    error = errors.UnsupportedPodSpecError([errors.FieldProblem("spec.hostNetwork", "no host network")])
    event = events.pod_event_for_mapping_failure(pod(), error, now=NOW)
    assert event.body["reason"] == "ProviderCreateFailed"
    assert event.body["type"] == "Warning"
    assert "- spec.hostNetwork: no host network" in event.body["message"]
    assert event.body["firstTimestamp"] == NOW_TEXT
    assert event.key == events.pod_event_for_mapping_failure(pod(), error, now=NOW).key


@pytest.mark.parametrize("name", ["x" * 253, "a" * 235 + "-" + "b" * 17])
def test_event_names_fit_the_api(name: str) -> None:
    event_name = events.pod_event(pod(name=name), reason="Failed", message="m", now=NOW).body["metadata"][
        "name"
    ]
    assert len(event_name) <= 253
    assert "-." not in event_name
