"""Small builders for pods, referenced objects and placements, so that each table row states only its point."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from azure.mgmt.containerinstance import models

from acinode import errors, types
from acinode.mapping import objects, placement, pods, references

NODE = types.NodeName("virtual-node-aci-linux")
CLUSTER = types.ClusterId("0b4e2a7c-1d2e-4f60-8a9b-c0d1e2f3a4b5")
SUBNET = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
NOW_TEXT = "2024-05-01T12:00:00Z"
EARLIER_TEXT = "2024-05-01T11:00:00Z"
IDENTITY = (
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"
)

ALLOW_IDENTITY = (
    placement.AllowedIdentity(IDENTITY),
    placement.AllowedIdentity(IDENTITY.replace("/app", "/metrics")),
)
"""An allow-list with IDENTITY and its sibling ``/metrics`` for every namespace."""


def vnet_placement(**changes: Any) -> placement.GroupPlacement:
    """The seed's setting: a virtual node in a subnet, with cluster DNS."""
    base = placement.GroupPlacement(
        node_name=NODE,
        cluster_id=CLUSTER,
        region="westeurope",
        subnet_id=SUBNET,
        host_ip="10.240.0.4",
        cluster_dns=placement.ClusterDnsSettings(nameserver="10.0.0.10"),
    )
    return _replace(base, changes)


def public_placement(**changes: Any) -> placement.GroupPlacement:
    """A virtual node on ACI's own network (no subnet): pods with ports get public IPs."""
    base = placement.GroupPlacement(node_name=NODE, cluster_id=CLUSTER, region="westeurope")
    return _replace(base, changes)


def _replace(base: placement.GroupPlacement, changes: dict[str, Any]) -> placement.GroupPlacement:
    return dataclasses.replace(base, **changes)


def container(name: str = "app", image: str = "nginx:1.27", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def pod(
    *containers: dict[str, Any],
    name: str = "web-0",
    namespace: str = "shop",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> objects.Pod:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": "11111111-2222-3333-4444-555555555555",
        "creationTimestamp": "2024-05-01T11:59:00Z",
    }
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": list(containers) or [container()], "nodeName": NODE, **spec},
    }
    if status is not None:
        body["status"] = status
    return copy.deepcopy(body)  # type: ignore[return-value]


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def secret(data: dict[str, str | bytes], kind: str = "Opaque") -> objects.Secret:
    return {"type": kind, "data": {key: b64(value) for key, value in data.items()}}


def config_map(data: dict[str, str], binary: dict[str, bytes] | None = None) -> objects.ConfigMap:
    result: objects.ConfigMap = {"data": dict(data)}
    if binary:
        result["binaryData"] = {key: b64(value) for key, value in binary.items()}
    return result


def refs(
    secrets: dict[str, objects.Secret] | None = None,
    config_maps: dict[str, objects.ConfigMap] | None = None,
    tokens: dict[str, str] | None = None,
    entrypoints: dict[str, tuple[str, ...]] | None = None,
    services: tuple[Any, ...] = (),
) -> references.ResolvedReferences:
    return references.ResolvedReferences(
        secrets=secrets or {},
        config_maps=config_maps or {},
        service_account_tokens=tokens or {},
        image_entrypoints=entrypoints or {},
        services=services,
    )


def group(
    the_pod: objects.Pod,
    where: placement.GroupPlacement | None = None,
    resolved: references.ResolvedReferences | None = None,
) -> dict[str, Any]:
    """The serialized group body (wire JSON) for a pod that must map."""
    result: dict[str, Any] = pods.container_group_from_pod(
        the_pod, where or vnet_placement(), resolved
    ).serialize()
    return result


def problems(
    the_pod: objects.Pod,
    where: placement.GroupPlacement | None = None,
    resolved: references.ResolvedReferences | None = None,
) -> dict[str, str]:
    """path → reason of every problem, for a pod that must not map."""
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        pods.container_group_from_pod(the_pod, where or vnet_placement(), resolved)
    return {problem.path: problem.reason for problem in caught.value.problems}


def first_container(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["properties"]["containers"][0]["properties"]
    return result


def aci_group(body: dict[str, Any]) -> models.ContainerGroup:
    return models.ContainerGroup.deserialize(body)


# --- the REST schema ----------------------------------------------------------------------------------------

SPEC = Path(__file__).parent / "testdata" / "aci-2023-05-01.json"


def _strict(schema: Any, definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """The schema with ``$ref`` and ``allOf`` resolved, read-only properties forbidden and no unknown
    properties allowed: stricter than ARM, so a misspelt or response-only field fails the test."""
    if isinstance(schema, list):
        return [_strict(item, definitions, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return {}
        return _strict(definitions[name], definitions, (*seen, name))
    result = {key: _strict(value, definitions, seen) for key, value in schema.items() if key != "allOf"}
    for part in schema.get("allOf", []):
        resolved = _strict(part, definitions, seen)
        result.setdefault("properties", {}).update(resolved.get("properties", {}))
        result["required"] = sorted({*result.get("required", []), *resolved.get("required", [])})
        result.setdefault("type", resolved.get("type", "object"))
    if "properties" in result:
        result["properties"] = {
            key: value
            for key, value in result["properties"].items()
            if not (isinstance(value, dict) and value.get("readOnly"))
        }
        result.setdefault("additionalProperties", False)
    return result


@functools.cache
def group_validator() -> jsonschema.Draft7Validator:
    definitions = json.loads(SPEC.read_text())["definitions"]
    return jsonschema.Draft7Validator(_strict(definitions["ContainerGroup"], definitions))


def schema_errors(body: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in group_validator().iter_errors(body)
    ]
