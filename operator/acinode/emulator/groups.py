"""Container-group operations: list (paged), get, create-or-update, tags, delete, restart, stop, start."""

from __future__ import annotations

import logging
import time
import urllib.parse

from aiohttp import web

from acinode.emulator import context, core, render, store, validation, wire

logger = logging.getLogger(__name__)


async def list_groups(ctx: context.Context) -> web.StreamResponse:
    emulator = ctx.emulator
    groups = sorted(
        emulator.store.in_scope(ctx.sub, ctx.params.get("rg")),
        key=lambda g: (g.resource_group.lower(), g.name),
    )
    token = ctx.request.query.get("$skiptoken")
    if token:
        groups = [g for g in groups if f"{g.resource_group.lower()}/{g.name}" > token]
    page = groups[: max(1, emulator.cfg.page_size)]
    body: wire.Json = {"value": [render.group_body(g, list_view=True) for g in page]}
    if len(groups) > len(page):
        last = page[-1]
        query = urllib.parse.urlencode(
            {
                "api-version": ctx.request.query["api-version"],
                "$skiptoken": f"{last.resource_group.lower()}/{last.name}",
            }
        )
        body["nextLink"] = f"{ctx.base_url}{ctx.request.path}?{query}"
    return context.json_response(ctx, body)


async def get_group(ctx: context.Context) -> web.StreamResponse:
    return context.json_response(ctx, render.group_body(ctx.group()))


def _normalized(body: wire.Json) -> wire.Json:
    props = {k: v for k, v in body["properties"].items() if k not in ("provisioningState", "instanceView")}
    out: wire.Json = {"location": wire.normalize_location(str(body["location"])), "properties": props}
    for key in ("tags", "zones", "identity"):
        if body.get(key) is not None:
            out[key] = body[key]
    return out


def quota_name(props: wire.Json) -> str:
    for container in props["containers"]:
        gpu = container["properties"]["resources"]["requests"].get("gpu")
        if gpu:
            return f"{gpu['sku']}Cores"
    return "StandardSpotCores" if props.get("priority") == "Spot" else "StandardCores"


def check_quota(
    emulator: core.Emulator, sub: str, location: str, body: wire.Json, replacing: store.GroupRecord | None
) -> None:
    quota = emulator.cfg.quota
    others = [g for g in emulator.store.in_region(sub, location) if g is not replacing]
    if replacing is None and len(others) + 1 > quota.container_groups:
        raise wire.quota_reached("ContainerGroups", location, quota.container_groups, len(others), 1)
    name = quota_name(body["properties"])
    limit = {"StandardCores": quota.cores, "StandardSpotCores": quota.spot_cores}.get(name, quota.gpu_cores)
    usage = sum(
        g.total_cpu()
        for g in others
        if g.state in ("Pending", "Running") and quota_name(g.properties) == name
    )
    requested = sum(
        float(c["properties"]["resources"]["requests"]["cpu"]) for c in body["properties"]["containers"]
    )
    if usage + requested > limit + 1e-9:
        raise wire.quota_reached(name, location, limit, usage, requested)


async def put_group(ctx: context.Context) -> web.StreamResponse:
    emulator = ctx.emulator
    name, rg = ctx.params["name"], ctx.params["rg"]
    validation.check_name("group", name)
    raw = await ctx.json()
    validation.check_schema(raw, name)
    validation.check_rules(name, raw, emulator.cfg.limits)
    body = _normalized(raw)
    location = body["location"]
    existing = emulator.store.groups.get(store.group_key(ctx.sub, rg, name))
    if existing is not None and existing.location != location:
        raise wire.ArmError(
            409,
            "InvalidResourceLocation",
            f"The resource '{name}' already exists in location '{existing.location}' in resource group "
            f"'{rg}'. A "
            f"resource with the same name cannot be created in location '{location}'. Please select a new "
            "resource "
            "name.",
        )
    validation.check_images(name, body["properties"])
    emulator.networks.check(name, body["properties"], emulator.cfg.strict_networks)
    if (
        existing is not None
        and existing.properties == body["properties"]
        and existing.provisioning_state != "Failed"
    ):
        # An idempotent PUT: keep the group as it is (only tags and identity may change); a failed one retries.
        existing.body = {**body, "properties": existing.properties}
        emulator.store.touch()
        op = emulator.store.operations.get(existing.operation_id or "")
        if op is None or op.status != "InProgress":
            op = emulator.new_operation(ctx.sub, location, existing.resource_id)
            op.finish(op.start_time, "Succeeded")
        ctx.headers["Azure-AsyncOperation"] = emulator.operation_url(ctx.base_url, op)
        return context.json_response(ctx, render.group_body(existing), 200)
    check_quota(emulator, ctx.sub, location, body, existing)
    if existing is None:
        group = store.GroupRecord(ctx.sub, rg, name, location, body, created_at=time.time())
        emulator.store.groups[group.key] = group
        reason, status = "create", 201
    else:
        group, reason, status = existing, "update", 200
        group.body = body
    op = emulator.new_operation(ctx.sub, location, group.resource_id)
    emulator.lifecycle.deploy(group, op, reason)
    logger.info(
        f"container group {reason}",
        extra={"container_group": name, "resource_group": rg, "subscription": ctx.sub},
    )
    ctx.headers["Azure-AsyncOperation"] = emulator.operation_url(ctx.base_url, op)
    return context.json_response(ctx, render.group_body(group), status)


async def patch_group(ctx: context.Context) -> web.StreamResponse:
    group = ctx.group()
    raw = await ctx.json()
    validation.check_schema(raw, group.name, "Resource")
    if "tags" in raw:
        group.body["tags"] = raw["tags"]
        ctx.emulator.store.touch()
    return context.json_response(ctx, render.group_body(group))


async def delete_group(ctx: context.Context) -> web.StreamResponse:
    emulator = ctx.emulator
    group = emulator.store.groups.get(store.group_key(ctx.sub, ctx.params["rg"], ctx.params["name"]))
    if group is None:
        return context.empty(ctx, 204)
    await emulator.lifecycle.remove(group)
    body = render.group_body(group)
    emulator.store.groups.pop(group.key, None)
    emulator.store.touch()
    logger.info(
        "container group delete",
        extra={
            "container_group": group.name,
            "resource_group": group.resource_group,
            "subscription": ctx.sub,
        },
    )
    return context.json_response(ctx, body)


def _not_transitioning(group: store.GroupRecord) -> None:
    if group.provisioning_state in ("Pending", "Updating", "Creating") or group.state == "Pending":
        raise wire.transitioning(group.name)


async def restart_group(ctx: context.Context) -> web.StreamResponse:
    group = ctx.group()
    _not_transitioning(group)
    await ctx.emulator.lifecycle.stop(group, state="Pending")
    # Azure answers 204 with Azure-AsyncOperation: the restart can be awaited (Succeeded once running again).
    op = ctx.emulator.new_operation(ctx.sub, group.location, group.resource_id)
    ctx.emulator.lifecycle.deploy(group, op, "restart")
    ctx.headers["Azure-AsyncOperation"] = ctx.emulator.operation_url(ctx.base_url, op)
    return context.empty(ctx, 204)


async def stop_group(ctx: context.Context) -> web.StreamResponse:
    group = ctx.group()
    _not_transitioning(group)
    await ctx.emulator.lifecycle.stop(group)
    return context.empty(ctx, 204)


async def start_group(ctx: context.Context) -> web.StreamResponse:
    emulator = ctx.emulator
    group = ctx.group()
    _not_transitioning(group)
    if group.state == "Running":
        return context.empty(ctx, 204)
    check_quota(emulator, ctx.sub, group.location, group.body, group)
    op = emulator.new_operation(ctx.sub, group.location, group.resource_id)
    emulator.lifecycle.deploy(group, op, "start")
    ctx.headers["Azure-AsyncOperation"] = emulator.operation_url(ctx.base_url, op)
    return context.empty(ctx, 202)


async def outbound_endpoints(ctx: context.Context) -> web.StreamResponse:
    ctx.group()
    return context.json_response(ctx, [])


# -- containers --
