"""Request validation: the REST spec's JSON schema, then ACI's own rules and limits, then image access.

The schema is the 2023-05-01 swagger shipped beside this module; it is applied whatever api-version the client
sends. Each failure raises ``wire.ArmError`` (400) with the code the real service uses where one is known
(docs/emulator.md lists which codes are the emulator's own).
"""

from __future__ import annotations

import functools
import json
import math
import re
from importlib import resources
from typing import Any

import jsonschema

from acinode.emulator import config, wire

SPEC_FILE = "aci-2023-05-01.json"
NAME_RULE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VALID_REGISTRY_PASSWORD = "valid-password"
"""The one registry password the emulator accepts for private (``*.invalid``) registries."""
UNREACHABLE_REGISTRY = "unreachable.invalid"
_GPU_MAX_PER_COUNT = (6.0, 112.0)  # V100: 6 CPU and 112 GB per GPU


@functools.cache
def spec() -> dict[str, Any]:
    text = resources.files("acinode.emulator").joinpath(SPEC_FILE).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator(definition: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": spec()["definitions"]}
    # Draft 7 counts 1.0 as an integer, like ARM's deserializer.
    validator: jsonschema.protocols.Validator = jsonschema.Draft7Validator(schema)
    return validator


def _json_path(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_JSON_TYPES = {
    "string": "String",
    "number": "Float",
    "integer": "Integer",
    "object": "Object",
    "array": "Array",
}


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = [p for p in error.absolute_path]
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else "?"
        return f"Required property '{name}' not found in JSON", _json_path(path)
    if error.validator == "enum":
        return (
            f'Error converting value "{error.instance}" to an allowed value {error.validator_value}',
            _json_path(path),
        )
    if error.validator == "type":
        expected = _JSON_TYPES.get(str(error.validator_value), str(error.validator_value))
        return f"Invalid type. Expected {expected} but got {type(error.instance).__name__}", _json_path(path)
    return error.message, _json_path(path)


def check_schema(body: Any, group_name: str, definition: str = "ContainerGroup") -> None:
    if not isinstance(body, dict):
        raise wire.invalid_content("Unexpected JSON token: the body must be a JSON object")
    errors = sorted(_validator(definition).iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    # The service answers these two with codes of their own rather than a deserialization error.
    for error in errors:
        if error.validator == "required" and "'osType'" in error.message:
            raise wire.ArmError(
                400,
                "InvalidOsType",
                f"The 'osType' for container group '{group_name}' is invalid. The value must be one of "
                "'Windows,Linux'.",
            )
        if error.validator == "required" and (
            "'resources'" in error.message or "'requests'" in error.message
        ):
            container = _container_name(body, list(error.absolute_path))
            raise wire.ArmError(
                400,
                "ResourceRequestsNotSpecified",
                f"The resource requests are not specified in container '{container}' of contain group "
                f"'{group_name}'. Both memory and CPU requests are required since API version "
                "'2017-07-01-preview'.",
            )
    reason, path = _describe(errors[0])
    failure = wire.invalid_content(reason, path or None)
    failure.details = [
        wire.error_body("InvalidRequestContent", _describe(e)[0], target=_describe(e)[1] or None)
        for e in errors
    ]
    raise failure


def _container_name(body: dict[str, Any], path: list[Any]) -> str:
    try:
        index = path[path.index("containers") + 1]
        return str(body["properties"]["containers"][index]["name"])
    except (ValueError, IndexError, KeyError, TypeError):
        return "<null>"


def check_name(kind: str, name: str, group: str | None = None) -> None:
    if len(name) <= 63 and NAME_RULE.match(name) and "--" not in name:
        return
    rule = (
        "must contain no more than 63 characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' "
        "(e.g. 'my-name'), without consecutive hyphens."
    )
    if kind == "group":
        raise wire.ArmError(
            400, "InvalidContainerGroupName", f"The container group name '{name}' is invalid. The name {rule}"
        )
    raise wire.ArmError(
        400,
        "InvalidContainerName",
        f"The container name '{name}' in container group '{group}' is invalid. The container name {rule}",
    )


def check_rules(name: str, body: dict[str, Any], limits: config.LimitsConfig) -> None:
    """ACI's rules beyond the schema: counts, names, ports, volumes and resources."""
    props = body["properties"]
    containers: list[dict[str, Any]] = props["containers"]
    if not body.get("location"):
        raise wire.ArmError(400, "LocationRequired", "The location property is required for this definition.")
    if not containers:
        raise wire.ArmError(
            400,
            "ContainersNotSpecified",
            f"The container group '{name}' must contain at least one container.",
        )
    if len(containers) > limits.max_containers:
        raise wire.ArmError(
            400,
            "ContainerGroupContainersExceedLimit",
            f"The container group '{name}' has {len(containers)} containers; at most {limits.max_containers} "
            "are allowed.",
        )
    seen: set[str] = set()
    for container in containers + list(props.get("initContainers") or []):
        check_name("container", container["name"], name)
        if container["name"] in seen:
            raise wire.ArmError(
                400,
                "DuplicateContainerName",
                f"The container name '{container['name']}' is used more than once in container group "
                f"'{name}'.",
            )
        seen.add(container["name"])
    _check_volumes(name, props, limits)
    _check_ports(name, props, limits)
    _check_resources(name, body, containers, limits)
    credentials = props.get("imageRegistryCredentials") or []
    if len(credentials) > len(containers):
        raise wire.ArmError(
            400,
            "MoreImageRegistryCredentialsThanContainers",
            f"The number of image registry credentials '{len(credentials)}' in container group '{name}' is "
            "more "
            f"than the number of containers '{len(containers)}'.",
        )


def _check_volumes(name: str, props: dict[str, Any], limits: config.LimitsConfig) -> None:
    volumes = props.get("volumes") or []
    if len(volumes) > limits.max_volumes:
        raise wire.ArmError(
            400,
            "ContainerGroupVolumesExceedLimit",
            f"The container group '{name}' has {len(volumes)} volumes; at most {limits.max_volumes} are "
            "allowed.",
        )
    known = {v["name"] for v in volumes}
    for container in props["containers"] + list(props.get("initContainers") or []):
        for mount in container["properties"].get("volumeMounts") or []:
            if mount["name"] not in known:
                raise wire.ArmError(
                    400,
                    "VolumeMountNotFound",
                    f"The volume mount '{mount['name']}' of container '{container['name']}' in container "
                    "group "
                    f"'{name}' does not refer to a volume of the group.",
                )


def _check_ports(name: str, props: dict[str, Any], limits: config.LimitsConfig) -> None:
    ip = props.get("ipAddress")
    if not ip:
        return
    ports = ip.get("ports") or []
    if len(ports) > limits.max_ports_per_ip:
        raise wire.ArmError(
            400,
            "IpAddressPortsExceedLimit",
            f"The IP address of container group '{name}' exposes {len(ports)} ports; at most "
            f"{limits.max_ports_per_ip} are allowed.",
        )
    container_ports = {
        (p["port"], p.get("protocol", "TCP"))
        for c in props["containers"]
        for p in c["properties"].get("ports") or []
    }
    for port in ports:
        number = port["port"]
        if not 1 <= number <= 65535:
            raise wire.ArmError(
                400, "InvalidPort", f"The port '{number}' in container group '{name}' is invalid."
            )
        if (number, port.get("protocol", "TCP")) not in container_ports:
            raise wire.ArmError(
                400,
                "InvalidIpAddressPort",
                f"The port '{number}' in the IP address of container group '{name}' is not exposed by any "
                "of its "
                "containers.",
            )


def _check_resources(
    name: str, body: dict[str, Any], containers: list[dict[str, Any]], limits: config.LimitsConfig
) -> None:
    totals = {"Cpu": 0.0, "MemoryInGB": 0.0}
    gpus = 0
    for container in containers:
        requirement = container["properties"]["resources"]
        requests = requirement["requests"]
        cpu, memory = float(requests["cpu"]), float(requests["memoryInGB"])
        if cpu <= 0 or memory <= 0 or math.isinf(cpu) or math.isinf(memory):
            raise wire.ArmError(
                400,
                "InvalidContainerResourceRequests",
                f"The resource requests of container '{container['name']}' in container group '{name}' are "
                "invalid: CPU and memory must be positive.",
            )
        totals["Cpu"] += cpu
        totals["MemoryInGB"] += memory
        gpus += int((requests.get("gpu") or {}).get("count", 0))
        for label, key in (("Cpu", "cpu"), ("MemoryInGB", "memoryInGB")):
            limit = (requirement.get("limits") or {}).get(key)
            if limit is not None and float(limit) < float(requests[key]):
                raise wire.ArmError(
                    400,
                    "ResourceLimitsLessThanRequests",
                    f"The resource requirement '{json.dumps(requirement, separators=(',', ':'))}' in "
                    "container "
                    f"'{container['name']}' of contain group '{name}' is invalid. The '{label}' limit value "
                    "must be "
                    "greater than or equal to the request value.",
                )
    for container in containers:
        for label, key in (("Cpu", "cpu"), ("MemoryInGB", "memoryInGB")):
            limit = (container["properties"]["resources"].get("limits") or {}).get(key)
            if limit is not None and float(limit) > totals[label] + 1e-9:
                raise wire.ArmError(
                    400,
                    "ContainerLimitGreaterThanContainerGroupTotalRequest",
                    f"The '{label}' limit '{wire.number(float(limit))}' in container '{container['name']}' "
                    "is "
                    f"greater than the total request '{wire.number(totals[label])}' of container group "
                    f"'{name}'.",
                )
    max_cpu, max_memory = limits.max_cpu, limits.max_memory
    if gpus:
        max_cpu, max_memory = _GPU_MAX_PER_COUNT[0] * gpus, _GPU_MAX_PER_COUNT[1] * gpus
    if totals["Cpu"] > max_cpu + 1e-9 or totals["MemoryInGB"] > max_memory + 1e-9:
        location = wire.normalize_location(str(body.get("location", "")))
        raise wire.ArmError(
            400,
            "ResourceRequestsExceedMaxAllowed",
            f"The container group '{name}' requests '{wire.number(totals['Cpu'])}' CPU and "
            f"'{wire.number(totals['MemoryInGB'])}' GB memory; the maximum allowed per container group in "
            "location "
            f"'{location}' for '{body['properties'].get('osType')}' OS is '{wire.number(max_cpu)}' CPU and "
            f"'{wire.number(max_memory)}' GB memory.",
        )


def registry_host(image: str) -> str | None:
    """Docker's rule: the first path segment is a registry host if it has a dot or colon, or is localhost."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.split(":")[0].lower()
    return None


def is_image_accessible(image: str, credentials: list[dict[str, Any]]) -> bool:
    """The image convention: ``*.invalid`` registries are private, ``unreachable.invalid`` never answers."""
    if not image.strip():
        return False
    host = registry_host(image)
    if host is None or not host.endswith(".invalid"):
        return True
    if host == UNREACHABLE_REGISTRY or host.endswith("." + UNREACHABLE_REGISTRY):
        return False
    for cred in credentials:
        if str(cred.get("server", "")).lower().split(":")[0] != host:
            continue
        if cred.get("identity") or cred.get("password") == VALID_REGISTRY_PASSWORD:
            return True
    return False


def check_images(name: str, props: dict[str, Any]) -> None:
    credentials = props.get("imageRegistryCredentials") or []
    for container in list(props.get("initContainers") or []) + props["containers"]:
        image = str(container["properties"].get("image") or "")
        if not is_image_accessible(image, credentials):
            raise wire.inaccessible_image(image, name)
