"""Fields newer than the SDK's models (2023-05-01), sent with the API version that has them.

The pinned ``azure-mgmt-containerinstance`` knows ACI's 2023-05-01 API. Key Vault references (``secretReferences``
on the group, ``secretReference`` on a secret volume) arrived in 2024-11-01-preview and are stable in 2025-09-01.
The mapping puts such fields in the models' ``additional_properties`` (on the group, shaped like the ARM body; on
a volume, the volume's own keys); this module serialises the model as the SDK does and merges them in, and the
client then PUTs that body with ``API_VERSION``. Groups without them go out exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azure.mgmt.containerinstance import models

API_VERSION = "2025-09-01"


def has_newer_fields(group: models.ContainerGroup) -> bool:
    return bool(group.additional_properties) or any(v.additional_properties for v in group.volumes or [])


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def request_body_json(group: models.ContainerGroup) -> dict[str, Any]:
    """The group's JSON as the SDK would send it, with the newer fields merged in."""
    body: dict[str, Any] = dict(group.serialize())
    _merge(body, group.additional_properties or {})
    sent_volumes = body.get("properties", {}).get("volumes") or []
    for volume, sent in zip(group.volumes or [], sent_volumes, strict=True):
        _merge(sent, volume.additional_properties or {})
    return body


def request_body(group: models.ContainerGroup) -> bytes:
    return json.dumps(request_body_json(group)).encode()
