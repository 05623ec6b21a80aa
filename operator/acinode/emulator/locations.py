"""Location and provider operations: usages, cached images, capabilities, LRO status, operations list."""

from __future__ import annotations

import math

from aiohttp import web

from acinode.emulator import context, groups, render, store, wire


async def list_usages(ctx: context.Context) -> web.StreamResponse:
    emulator = ctx.emulator
    location = wire.normalize_location(ctx.params["loc"])
    records = emulator.store.in_region(ctx.sub, location)
    quota = emulator.cfg.quota
    active = [g for g in records if g.state in ("Pending", "Running")]
    rows = [
        ("ContainerGroups", "Container Groups", len(records), quota.container_groups),
        ("StandardCores", "Standard Cores", _cores(active, "StandardCores"), quota.cores),
        ("StandardSpotCores", "Standard Spot Cores", _cores(active, "StandardSpotCores"), quota.spot_cores),
        ("V100Cores", "V100 GPU Cores", _cores(active, "V100Cores"), quota.gpu_cores),
    ]
    value = [
        {
            "id": f"/subscriptions/{ctx.sub}/providers/{wire.PROVIDER}/locations/{location}/usages/{name}",
            "unit": "Count",
            "currentValue": current,
            "limit": limit,
            "name": {"value": name, "localizedValue": label},
        }
        for name, label, current, limit in rows
    ]
    return context.json_response(ctx, {"value": value})


def _cores(records: list[store.GroupRecord], quota: str) -> int:
    return math.ceil(sum(g.total_cpu() for g in records if groups.quota_name(g.properties) == quota) - 1e-9)


async def list_cached_images(ctx: context.Context) -> web.StreamResponse:
    images = [
        "mcr.microsoft.com/azuredocs/aci-helloworld:latest",
        "mcr.microsoft.com/cbl-mariner/base/core:2.0",
    ]
    return context.json_response(ctx, {"value": [{"osType": "Linux", "image": i} for i in images]})


async def list_capabilities(ctx: context.Context) -> web.StreamResponse:
    limits = ctx.emulator.cfg.limits
    location = wire.normalize_location(ctx.params["loc"])
    value = []
    for os_type in ("Linux", "Windows"):
        for ip_type in ("Public", "Private"):
            value.append(
                {
                    "resourceType": "containerGroups",
                    "osType": os_type,
                    "location": location,
                    "ipAddressType": ip_type,
                    "gpu": "None",
                    "capabilities": {
                        "maxMemoryInGB": limits.max_memory,
                        "maxCpu": limits.max_cpu,
                        "maxGpuCount": 0,
                    },
                }
            )
    value.append(
        {
            "resourceType": "containerGroups",
            "osType": "Linux",
            "location": location,
            "ipAddressType": "Public",
            "gpu": "V100",
            "capabilities": {"maxMemoryInGB": 448.0, "maxCpu": 24.0, "maxGpuCount": 4},
        }
    )
    return context.json_response(ctx, {"value": value})


async def operation_status(ctx: context.Context) -> web.StreamResponse:
    op = ctx.emulator.store.operations.get(ctx.params["op"])
    if op is None or op.subscription.lower() != ctx.sub.lower():
        raise wire.ArmError(
            404, "OperationNotFound", f"The operation '{ctx.params['op']}' could not be found."
        )
    group = next((g for g in ctx.emulator.store.groups.values() if g.resource_id == op.resource_id), None)
    return context.json_response(ctx, render.operation_body(op, group))


_OPERATIONS = [
    ("containerGroups/read", "Container Group", "Get Container Group", "Get all container goups."),
    (
        "containerGroups/write",
        "Container Group",
        "Create or Update Container Group",
        "Create or update a group.",
    ),
    ("containerGroups/delete", "Container Group", "Delete Container Group", "Delete a container group."),
    (
        "containerGroups/restart/action",
        "Container Group",
        "Restart Container Group",
        "Restart a container group.",
    ),
    ("containerGroups/stop/action", "Container Group", "Stop Container Group", "Stop a container group."),
    ("containerGroups/start/action", "Container Group", "Start Container Group", "Start a container group."),
    (
        "containerGroups/containers/logs/read",
        "Container",
        "Get Container Logs",
        "Get the logs of a container.",
    ),
    ("containerGroups/containers/exec/action", "Container", "Container Exec", "Exec into a container."),
    ("containerGroups/containers/attach/action", "Container", "Container Attach", "Attach to a container."),
    ("locations/usages/read", "Usage", "Get Usage", "Get the usage of a region."),
    ("locations/operations/read", "Operation", "Get Operation", "Get an async operation."),
]


async def list_operations(ctx: context.Context) -> web.StreamResponse:
    value = [
        {
            "name": f"{wire.PROVIDER}/{name}",
            "display": {
                "provider": "Microsoft Container Instance",
                "resource": res,
                "operation": op,
                "description": d,
            },
            "origin": "User",
        }
        for name, res, op, d in _OPERATIONS
    ]
    return context.json_response(ctx, {"value": value})


async def delete_service_association_link(ctx: context.Context) -> web.StreamResponse:
    return context.empty(ctx, 204)
