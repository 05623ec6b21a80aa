"""ARM calls whose answers acinode reads only a summary of: list, create, delete.

Why not the SDK's operation methods for these: they deserialise every answer into ``models`` (a list page of 100
groups; the PUT's and DELETE's answers twice over, in the initial call and again in the poller's output) only
for acinode to keep a name, tags and a state. In a 1,000-pod burst that was 57 % of the operator's CPU
(``docs/performance.md``, "CPU"). These requests still go through the SDK client's own pipeline
(``_send_request``, the generated client's documented way to send a request: its credential, policies, retries,
transport, limiter and request counter), are built as the SDK builds them (``tests/unit/aci/test_summaries.py``
compares them with its request builders), and fail with the exceptions the SDK raises, so ``translate`` sees no
difference. ``get`` keeps the SDK's models: the status mapping reads the whole instance view.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat

from acinode import types
from acinode.aci import api

# The SDK's error map for container group operations.
ERROR_MAP: Mapping[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}
PROVIDER = "Microsoft.ContainerInstance"


def groups_path(subscription_id: str, resource_group: str) -> str:
    return (
        f"/subscriptions/{_segment(subscription_id)}/resourceGroups/{_segment(resource_group)}"
        f"/providers/{PROVIDER}/containerGroups"
    )


def group_path(subscription_id: str, resource_group: str, name: str) -> str:
    return f"{groups_path(subscription_id, resource_group)}/{_segment(name)}"


def _segment(value: str) -> str:
    # As the SDK's serializer quotes a path argument: every reserved character, none left as a separator.
    return urllib.parse.quote(value, safe="")


def list_request(path: str, api_version: str) -> HttpRequest:
    return HttpRequest("GET", path, params={"api-version": api_version}, headers=_ACCEPT)


def next_page_request(next_link: str, api_version: str) -> HttpRequest:
    """The request for a list's ``nextLink``: its own query, with the client's api-version (as the SDK does)."""
    parsed = urllib.parse.urlparse(next_link)
    params: dict[str, Any] = {
        key: [urllib.parse.quote(v) for v in values]
        for key, values in urllib.parse.parse_qs(parsed.query).items()
        if key.lower() != "api-version"
    }
    params["api-version"] = api_version
    return HttpRequest("GET", urllib.parse.urljoin(next_link, parsed.path), params=params, headers=_ACCEPT)


def put_request(path: str, api_version: str, body: bytes) -> HttpRequest:
    headers = {**_ACCEPT, "Content-Type": "application/json"}
    return HttpRequest("PUT", path, params={"api-version": api_version}, headers=headers, content=body)


def delete_request(path: str, api_version: str) -> HttpRequest:
    return HttpRequest("DELETE", path, params={"api-version": api_version}, headers=_ACCEPT)


_ACCEPT = {"Accept": "application/json"}


def raise_unless(response: AsyncHttpResponse, expected: tuple[int, ...]) -> None:
    """Raise what the SDK's operation would for an answer it does not expect."""
    if response.status_code not in expected:
        map_error(status_code=response.status_code, response=response, error_map=dict(ERROR_MAP))
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)


def summary_from_json(entry: Mapping[str, Any]) -> api.GroupSummary | None:
    """A container group's summary from its ARM JSON (a list entry, or a PUT's answer); None without a name."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return None
    properties = entry.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    tags = entry.get("tags")
    ip_address = properties.get("ipAddress")
    ip = ip_address.get("ip") if isinstance(ip_address, Mapping) else None
    state = properties.get("provisioningState")
    location = entry.get("location")
    return api.GroupSummary(
        name=types.ContainerGroupName(name),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
        provisioning_state=state if isinstance(state, str) else None,
        location=location if isinstance(location, str) else None,
        ip_address=ip if isinstance(ip, str) else None,
    )


def list_page(body: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """A list page's entries and its ``nextLink`` (None on the last page)."""
    if not isinstance(body, Mapping):
        return [], None
    entries = body.get("value")
    next_link = body.get("nextLink")
    return (
        [e for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else [],
        next_link if isinstance(next_link, str) and next_link else None,
    )
