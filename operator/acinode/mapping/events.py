"""ACI events (Pulling, Pulled, Started, Failed, BackOff…) as Kubernetes Events on the pod.

ACI keeps a running list per group and per container, aggregating repeats into one entry whose ``count`` and
``lastTimestamp`` grow. Each entry gets a dedupe ``key`` that stays the same across polls, so the reconciler
creates an Event for a new key and only patches count and last time for a known one — instead of virtual-kubelet's
single global "last checked" timestamp, which loses events when clocks or polls disagree.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from azure.mgmt.containerinstance import models

from acinode import errors
from acinode.mapping import conditions, names, objects

REPORTING_COMPONENT = "acinode.dev/aci"
SOURCE_COMPONENT = "acinode"
EVENT_TYPES = ("Normal", "Warning")
MAX_NAME_LENGTH = 253
PROVIDER_CREATE_FAILED = "ProviderCreateFailed"


@dataclasses.dataclass(frozen=True)
class PodEvent:
    key: str
    """Stable for one ACI event entry across polls; new key → create, known key → patch count/lastTimestamp."""
    body: objects.Event
    """The core/v1 Event to create in the pod's namespace (its name is derived from ``key``)."""


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _event_name(pod_name: str, key: str) -> str:
    suffix = "." + key[:16]
    # A cut name must still end a DNS label with a letter or digit.
    return pod_name[: MAX_NAME_LENGTH - len(suffix)].rstrip(".-") + suffix


def _body(
    pod: objects.Pod,
    key: str,
    *,
    reason: str,
    message: str,
    kind: str,
    count: int,
    first: str,
    last: str,
    field_path: str | None,
) -> objects.Event:
    metadata = pod.get("metadata", {})
    node = pod.get("spec", {}).get("nodeName", "")
    involved = objects.ObjectReference(
        apiVersion="v1",
        kind="Pod",
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", "default"),
        uid=metadata.get("uid", ""),
    )
    if field_path:
        involved["fieldPath"] = field_path
    return objects.Event(
        apiVersion="v1",
        kind="Event",
        metadata=objects.ObjectMeta(
            name=_event_name(metadata.get("name", ""), key), namespace=metadata.get("namespace", "default")
        ),
        involvedObject=involved,
        reason=reason,
        message=message,
        type=kind if kind in EVENT_TYPES else "Warning",
        count=max(count, 1),
        firstTimestamp=first,
        lastTimestamp=last,
        source=objects.EventSource(component=SOURCE_COMPONENT, host=node),
        reportingComponent=REPORTING_COMPONENT,
        reportingInstance=node,
    )


def _from_aci(pod: objects.Pod, event: models.Event, field_path: str | None) -> PodEvent:
    epoch = datetime.datetime.fromtimestamp(0, datetime.UTC)
    first = conditions.timestamp(event.first_timestamp or event.last_timestamp or epoch)
    last = conditions.timestamp(event.last_timestamp or event.first_timestamp or epoch)
    reason = event.name or "Unknown"
    message = event.message or ""
    key = _key(pod.get("metadata", {}).get("uid", ""), field_path or "", reason, first, message)
    body = _body(
        pod,
        key,
        reason=reason,
        message=message,
        kind=event.type or "Warning",
        count=event.count or 1,
        first=first,
        last=last,
        field_path=field_path,
    )
    return PodEvent(key=key, body=body)


def pod_events_from_container_group(group: models.ContainerGroup, pod: objects.Pod) -> list[PodEvent]:
    """Every event of the group and its containers, oldest first. Empty for a group without instance view."""
    found: list[tuple[models.Event, str | None]] = []
    if group.instance_view is not None:
        found.extend((event, None) for event in group.instance_view.events or [])
    spec = pod.get("spec", {})
    for kind, spec_items, aci_items in (
        ("initContainers", spec.get("initContainers", []), group.init_containers or []),
        ("containers", spec.get("containers", []), group.containers or []),
    ):
        by_name = {item.name: item for item in aci_items}
        for container in spec_items:
            aci = by_name.get(names.aci_container_name(container.get("name", "")))
            view = aci.instance_view if aci is not None else None
            if view is not None:
                field_path = f"spec.{kind}{{{container.get('name', '')}}}"
                found.extend((event, field_path) for event in view.events or [])
    events = [_from_aci(pod, event, field_path) for event, field_path in found]
    return sorted(events, key=lambda e: (e.body.get("firstTimestamp", ""), e.key))


def pod_event(
    pod: objects.Pod,
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    kind: str = "Warning",
    field_path: str | None = None,
) -> PodEvent:
    """An event acinode itself reports (a refused spec, an inaccessible image, a quota). Its key depends on
    reason and message only, so repeating the same failure counts up one Event."""
    stamp = conditions.timestamp(now)
    key = _key(pod.get("metadata", {}).get("uid", ""), field_path or "", reason, message)
    body = _body(
        pod,
        key,
        reason=reason,
        message=message,
        kind=kind,
        count=1,
        first=stamp,
        last=stamp,
        field_path=field_path,
    )
    return PodEvent(key=key, body=body)


def pod_event_for_mapping_failure(
    pod: objects.Pod, error: errors.UnsupportedPodSpecError, *, now: datetime.datetime
) -> PodEvent:
    """``ProviderCreateFailed`` naming every offending field, one per line."""
    lines = "\n".join(f"- {problem}" for problem in error.problems)
    return pod_event(
        pod, reason=PROVIDER_CREATE_FAILED, message=f"ACI cannot run this pod as written:\n{lines}", now=now
    )
