"""The ContainerGroup JSON the emulator answers, as the real service shapes it.

- ``get`` (and PUT/DELETE answers) carry the group's and each container's instance view;
  ``list`` entries carry neither (the real list omits them: Azure/azure-rest-api-specs #21280).
- Secrets are never echoed: ``secureValue``, registry ``password``, Log Analytics ``workspaceKey``.
- Read-only defaults the service adds are filled in (sku, restartPolicy, initContainers, timeouts).
"""

from __future__ import annotations

import copy

from acinode.emulator import store, wire

_SECRET_ENV_KEY = "secureValue"


def _container(spec: wire.Json, runtime: store.ContainerRuntime | None, with_view: bool) -> wire.Json:
    out = copy.deepcopy(spec)
    props = out.setdefault("properties", {})
    env = props.get("environmentVariables")
    if env:
        props["environmentVariables"] = [{k: v for k, v in e.items() if k != _SECRET_ENV_KEY} for e in env]
    props.pop("instanceView", None)
    if with_view and runtime is not None and runtime.current is not None:
        view: wire.Json = {
            "restartCount": runtime.restart_count,
            "currentState": runtime.current.to_wire(),
            "events": [e.to_wire() for e in runtime.events],
        }
        if runtime.previous is not None:
            view["previousState"] = runtime.previous.to_wire()
        props["instanceView"] = view
    return out


def group_body(group: store.GroupRecord, *, list_view: bool = False) -> wire.Json:
    src = group.properties
    props: wire.Json = {}
    for key, value in src.items():
        if key in ("containers", "initContainers", "instanceView", "provisioningState"):
            continue
        props[key] = copy.deepcopy(value)
    props["provisioningState"] = group.provisioning_state
    props["containers"] = [
        _container(c, group.containers.get(c["name"]), not list_view) for c in group.container_specs()
    ]
    props["initContainers"] = [
        _container(c, group.init_containers.get(c["name"]), not list_view)
        for c in group.container_specs(True)
    ]
    props.setdefault("restartPolicy", "Always")
    props.setdefault("sku", "Standard")
    props["provisioningTimeoutInSeconds"] = 1800
    props["isCustomProvisioningTimeout"] = False
    for cred in props.get("imageRegistryCredentials") or []:
        cred.pop("password", None)
    log_analytics = (props.get("diagnostics") or {}).get("logAnalytics")
    if isinstance(log_analytics, dict):
        log_analytics.pop("workspaceKey", None)
    ip = props.get("ipAddress")
    if ip is None and props.get("subnetIds") and group.ip is not None:
        # ACI gives every group in a subnet a private IP, whether the request asked for one or not.
        ip = props["ipAddress"] = {"ports": [], "type": "Private"}
    if isinstance(ip, dict):
        if group.ip is not None:
            ip["ip"] = group.ip
        if ip.get("dnsNameLabel"):
            ip["fqdn"] = f"{ip['dnsNameLabel']}.{group.location}.azurecontainer.io"
    if not list_view:
        props["instanceView"] = {"events": [e.to_wire() for e in group.events], "state": group.state}
    out: wire.Json = {
        "id": group.resource_id,
        "name": group.name,
        "type": wire.GROUP_TYPE,
        "location": group.location,
    }
    for key in ("tags", "zones", "identity"):
        if group.body.get(key) is not None:
            out[key] = copy.deepcopy(group.body[key])
    out["properties"] = props
    return out


def operation_body(op: store.Operation, group: store.GroupRecord | None) -> wire.Json:
    """The Azure-AsyncOperation status document (polled by the SDK until a terminal status)."""
    out: wire.Json = {
        "id": op.resource_id,
        "name": op.id,
        "status": op.status,
        "startTime": wire.iso(op.start_time),
        "properties": {"events": [e.to_wire() for e in group.events] if group else []},
    }
    if op.end_time is not None:
        out["endTime"] = wire.iso(op.end_time)
    if op.error is not None:
        out["error"] = op.error
    return out
