"""Test hooks under ``/_emulator/`` (authenticated like ARM calls; not counted in the stats).

| method and path | effect |
|---|---|
| GET health | ``{"status": "ok"}`` |
| GET stats / POST stats/reset | requests per operation and status, current groups |
| GET, PUT, POST, DELETE faults | list, replace (``{"rules": [...], "seed": n}``), add one rule, clear |
| POST lro/fail-next | ``{"code", "message", "count"}``: the next LROs end Failed with that error |
| POST groups/{sub}/{rg}/{name}/vanish | the group disappears without any delete call |
| POST, DELETE resource-groups/{sub}/{rg}/missing | the resource group is (no longer) ResourceGroupNotFound |
| GET, PATCH config | runtime settings (delays, quotas, throttles) by JSON name |
| POST throttle/reset | refill every bucket and window |
| GET sessions | the last exec and attach sessions started (kind, group, container, command, terminalSize) |
| GET, PUT networks | the subnets (``{"id", "delegated"}``) and network profiles that exist (``networks``) |
| GET groups/{sub}/{rg}/{name}/secrets | what the group was created with but Azure never returns (secure env values,
  secret volumes, storage keys, registry passwords, protected settings) |
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from acinode.emulator import config, core, faults, store, wire

PREFIX = "/_emulator/"
Hook = Callable[[core.Emulator, web.Request, dict[str, str]], Awaitable[Any]]


def _ok(body: Any = None, status: int = 200) -> web.Response:
    if body is None:
        return web.Response(status=204)
    return web.json_response(body, status=status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw) if raw else {}
    except ValueError as exc:
        raise wire.invalid_content(str(exc)) from exc


async def health(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok({"status": "ok"})


async def get_stats(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok({**emu.stats.to_wire(), "groups": emu.summary()})


async def reset_stats(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    emu.stats.reset()
    return _ok()


def _faults_view(emu: core.Emulator) -> dict[str, Any]:
    return {
        "rules": [r.to_wire() for r in emu.faults.rules],
        "lroFailures": [{"code": c, "message": m} for c, m in emu.faults.lro_failures],
    }


async def get_faults(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok(_faults_view(emu))


async def put_faults(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    body = await _body(request)
    rules = [faults.FaultRule.from_wire(r) for r in body.get("rules", [])]
    if "seed" in body:
        emu.faults.seed(int(body["seed"]))
    emu.faults.rules = rules
    return _ok(_faults_view(emu))


async def add_fault(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    emu.faults.rules.append(faults.FaultRule.from_wire(await _body(request)))
    return _ok(_faults_view(emu), 201)


async def clear_faults(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    emu.faults.clear()
    return _ok()


async def fail_next_lro(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    body = await _body(request)
    emu.faults.fail_next_lro(
        str(body.get("code", "InternalServerError")),
        str(body.get("message", "The operation failed (injected by the emulator).")),
        int(body.get("count", 1)),
    )
    return _ok(_faults_view(emu))


async def vanish(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    group = emu.store.groups.get(store.group_key(p["sub"], p["rg"], p["name"]))
    if group is None:
        raise wire.group_not_found(p["rg"], p["name"])
    await emu.lifecycle.remove(group)
    emu.store.groups.pop(group.key, None)
    emu.store.touch()
    return _ok()


async def mark_missing(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    pair = (p["sub"].lower(), p["rg"].lower())
    if request.method == "POST":
        emu.store.missing_resource_groups.add(pair)
    else:
        emu.store.missing_resource_groups.discard(pair)
    emu.store.touch()
    return _ok()


async def get_config(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok(config.runtime_view(emu.cfg))


async def patch_config(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise wire.invalid_content("expected a JSON object")
    unknown = config.apply_runtime(emu.cfg, body)
    if unknown:
        raise wire.ArmError(400, "InvalidRequestContent", f"Not runtime settings: {unknown}")
    return _ok(config.runtime_view(emu.cfg))


async def reset_throttle(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    emu.throttle.reset()
    return _ok()


async def get_sessions(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok({"sessions": list(emu.sessions.recent)})


async def get_networks(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    return _ok(emu.networks.to_wire())


async def put_networks(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise wire.invalid_content("expected a JSON object")
    emu.networks.replace(body)
    return _ok(emu.networks.to_wire())


async def get_secrets(emu: core.Emulator, request: web.Request, p: dict[str, str]) -> web.Response:
    """The write-only values a group holds, for tests that check what the operator sent (ARM never echoes them)."""
    group = emu.store.groups.get(store.group_key(p["sub"], p["rg"], p["name"]))
    if group is None:
        raise wire.group_not_found(p["rg"], p["name"])
    props = group.properties
    containers: dict[str, dict[str, str]] = {}
    for spec in group.container_specs(True) + group.container_specs():
        secure = {
            str(e["name"]): str(e["secureValue"])
            for e in spec.get("properties", {}).get("environmentVariables") or []
            if "secureValue" in e
        }
        if secure:
            containers[spec["name"]] = secure
    volumes: dict[str, Any] = {}
    references = {
        str(r.get("name")): str(r.get("secretReferenceUri"))
        for r in props.get("secretReferences") or []
        if isinstance(r, dict)
    }
    for volume in props.get("volumes") or []:
        if isinstance(volume.get("secretReference"), dict):
            # Key Vault references (2024-11-01-preview on): ACI would fetch each with the group's identity; the
            # emulator fetches nothing and shows the fixed value each file would hold.
            volumes[volume["name"]] = {
                "secretReference": volume["secretReference"],
                "resolved": {
                    file: f"value of {references.get(ref, '<no such secretReferences entry>')}"
                    for file, ref in volume["secretReference"].items()
                },
            }
        elif isinstance(volume.get("secret"), dict):
            volumes[volume["name"]] = {"secret": volume["secret"]}
        key = (volume.get("azureFile") or {}).get("storageAccountKey")
        if key is not None:
            volumes[volume["name"]] = {"storageAccountKey": key}
    return _ok(
        {
            "environmentVariables": containers,
            "volumes": volumes,
            "imageRegistryCredentials": {
                str(c.get("server")): c["password"]
                for c in props.get("imageRegistryCredentials") or []
                if "password" in c
            },
            "extensions": {
                str(x.get("name")): x["properties"]["protectedSettings"]
                for x in props.get("extensions") or []
                if "protectedSettings" in (x.get("properties") or {})
            },
            "logAnalyticsWorkspaceKey": ((props.get("diagnostics") or {}).get("logAnalytics") or {}).get(
                "workspaceKey"
            ),
        }
    )


_HOOKS: list[tuple[str, re.Pattern[str], Hook]] = [
    (m, re.compile(f"^{PREFIX}{path}/?$"), h)
    for m, path, h in [
        ("GET", "health", health),
        ("GET", "stats", get_stats),
        ("POST", "stats/reset", reset_stats),
        ("GET", "faults", get_faults),
        ("PUT", "faults", put_faults),
        ("POST", "faults", add_fault),
        ("DELETE", "faults", clear_faults),
        ("POST", "lro/fail-next", fail_next_lro),
        ("POST", "groups/(?P<sub>[^/]+)/(?P<rg>[^/]+)/(?P<name>[^/]+)/vanish", vanish),
        ("POST", "resource-groups/(?P<sub>[^/]+)/(?P<rg>[^/]+)/missing", mark_missing),
        ("DELETE", "resource-groups/(?P<sub>[^/]+)/(?P<rg>[^/]+)/missing", mark_missing),
        ("GET", "config", get_config),
        ("PATCH", "config", patch_config),
        ("POST", "throttle/reset", reset_throttle),
        ("GET", "sessions", get_sessions),
        ("GET", "networks", get_networks),
        ("PUT", "networks", put_networks),
        ("GET", "groups/(?P<sub>[^/]+)/(?P<rg>[^/]+)/(?P<name>[^/]+)/secrets", get_secrets),
    ]
]


async def dispatch(emu: core.Emulator, request: web.Request) -> web.StreamResponse:
    for method, pattern, hook in _HOOKS:
        found = pattern.match(request.path)
        if found is not None and method == request.method:
            response: web.StreamResponse = await hook(emu, request, found.groupdict())
            return response
    raise wire.ArmError(404, "NotFound", f"No emulator hook at {request.method} {request.path}.")
