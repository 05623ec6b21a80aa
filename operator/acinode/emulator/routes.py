"""The ARM paths of Microsoft.ContainerInstance (SDK 10.1's operations) and the api-versions accepted.

Matching is case-insensitive, as ARM's is. Each route carries its swagger operationId, used for stats, fault
rules and throttling. The pipeline around the handlers (auth, faults, throttling) lives in ``server``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from acinode.emulator import containers, context, groups, locations, metrics, wire

SUPPORTED_API_VERSIONS = frozenset(
    {
        "2017-08-01-preview", "2017-10-01-preview", "2017-12-01-preview", "2018-02-01-preview", "2018-04-01",
        "2018-06-01", "2018-09-01", "2018-10-01", "2019-12-01", "2020-11-01", "2021-03-01", "2021-07-01",
        "2021-09-01", "2021-10-01", "2022-04-01-preview", "2022-09-01", "2022-10-01-preview",
        "2023-02-01-preview",
        "2023-05-01", "2024-05-01-preview", "2024-09-01-preview", "2024-10-01-preview", "2024-11-01-preview",
        "2025-09-01", "2026-05-01", "2026-06-01-preview", "2026-07-01",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: context.Handler
    aci_kind: str | None = None
    """'create' or 'delete' for ACI's own per-subscription limits."""
    any_api_version: bool = False
    api_versions: frozenset[str] = SUPPORTED_API_VERSIONS
    """The api-versions this route's provider accepts (Microsoft.ContainerInstance's by default)."""


_SEG = "([^/]+)"
_SUB = "/subscriptions/(?P<sub>[^/]+)"
_PROV = f"/providers/{wire.PROVIDER}"
_GROUPS = f"{_SUB}/resourceGroups/(?P<rg>[^/]+){_PROV}/containerGroups"
_GROUP = f"{_GROUPS}/(?P<name>[^/]+)"
_LOC = f"{_SUB}{_PROV}/locations/(?P<loc>[^/]+)"


def _route(method: str, path: str, operation: str, handler: context.Handler, **kw: Any) -> Route:
    return Route(method, re.compile(f"^{path}/?$", re.IGNORECASE), operation, handler, **kw)


ROUTES: list[Route] = [
    _route("GET", f"{_SUB}{_PROV}/containerGroups", "ContainerGroups_List", groups.list_groups),
    _route("GET", _GROUPS, "ContainerGroups_ListByResourceGroup", groups.list_groups),
    _route("GET", _GROUP, "ContainerGroups_Get", groups.get_group),
    _route("PUT", _GROUP, "ContainerGroups_CreateOrUpdate", groups.put_group, aci_kind="create"),
    _route("PATCH", _GROUP, "ContainerGroups_Update", groups.patch_group),
    _route("DELETE", _GROUP, "ContainerGroups_Delete", groups.delete_group, aci_kind="delete"),
    _route("POST", f"{_GROUP}/restart", "ContainerGroups_Restart", groups.restart_group),
    _route("POST", f"{_GROUP}/stop", "ContainerGroups_Stop", groups.stop_group),
    _route("POST", f"{_GROUP}/start", "ContainerGroups_Start", groups.start_group),
    _route(
        "GET",
        f"{_GROUP}/outboundNetworkDependenciesEndpoints",
        "ContainerGroups_GetOutboundNetworkDependenciesEndpoints",
        groups.outbound_endpoints,
    ),
    _route(
        "GET",
        f"{_GROUP}/containers/(?P<container>[^/]+)/logs",
        "Containers_ListLogs",
        containers.container_logs,
    ),
    _route(
        "POST",
        f"{_GROUP}/containers/(?P<container>[^/]+)/exec",
        "Containers_ExecuteCommand",
        containers.exec_command,
    ),
    _route(
        "POST",
        f"{_GROUP}/containers/(?P<container>[^/]+)/attach",
        "Containers_Attach",
        containers.attach_container,
    ),
    _route(
        "GET",
        f"{_GROUP}/providers/Microsoft.Insights/metrics",
        "Metrics_List",
        metrics.list_metrics,
        api_versions=metrics.API_VERSIONS,
    ),
    _route("GET", f"{_LOC}/usages", "Location_ListUsage", locations.list_usages),
    _route("GET", f"{_LOC}/cachedImages", "Location_ListCachedImages", locations.list_cached_images),
    _route("GET", f"{_LOC}/capabilities", "Location_ListCapabilities", locations.list_capabilities),
    _route(
        "GET",
        f"{_LOC}/operations/(?P<op>[^/]+)",
        "Operations_Status",
        locations.operation_status,
        any_api_version=True,
    ),
    _route("GET", f"{_PROV}/operations", "Operations_List", locations.list_operations),
    _route(
        "DELETE",
        f"{_SUB}/resourcegroups/(?P<rg>[^/]+)/providers/Microsoft.Network/virtualNetworks/{_SEG}/subnets/{_SEG}"
        f"{_PROV}/serviceAssociationLinks/default",
        "SubnetServiceAssociationLink_Delete",
        locations.delete_service_association_link,
    ),
]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for this request; raises 405 when the path exists for other methods only."""
    path_matched = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
        path_matched = True
    if path_matched:
        raise wire.ArmError(
            405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'."
        )
    return None
