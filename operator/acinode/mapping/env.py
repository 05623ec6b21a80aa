"""Environment variables: env, envFrom and ``$(VAR)`` expansion, as the kubelet computes them.

Anything that came from a Secret — directly, or by expanding a secret variable into another value — goes to
ACI as ``secureValue``, which ACI never returns. virtual-kubelet's provider sends such values in plain text.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping

from azure.mgmt.containerinstance import models

from acinode.mapping import downward, objects, placement, problems, references, resources


@dataclasses.dataclass(frozen=True)
class EnvValue:
    value: str
    is_secret: bool = False


@dataclasses.dataclass(frozen=True)
class EnvContext:
    """What resolving a container's environment may look at."""

    pod: objects.Pod
    where: placement.GroupPlacement
    refs: references.ResolvedReferences
    pod_ip: str | None
    container_resources: Mapping[str, resources.ContainerResources]
    """Kubernetes container name (init or regular) → its ACI resources."""
    service_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The kubelet's service variables: the lowest precedence, yet visible to ``$(VAR)`` expansion."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: ``$$`` is a literal ``$``, unknown variables stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                end = text.find(")", i + 2)
                if end == -1:
                    out.append("$(")
                    i += 2
                    continue
                name = text[i + 2 : end]
                value = lookup(name)
                out.append(f"$({name})" if value is None else value)
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _text(raw: bytes, path: str, found: problems.Problems) -> str | None:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        found.add(path, "the value is not UTF-8 text, which an environment variable must be")
        return None


def _is_env_name(key: str) -> bool:
    # The kubelet skips envFrom keys that are not valid variable names (any printable ASCII but '=').
    return bool(key) and "=" not in key and all(" " <= ch <= "~" for ch in key)


def _env_from(
    sources: list[objects.EnvFromSource], path: str, ctx: EnvContext, found: problems.Problems
) -> dict[str, EnvValue]:
    env: dict[str, EnvValue] = {}
    for index, source in enumerate(sources):
        source_path = f"{path}.envFrom[{index}]"
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            config_map = ctx.refs.config_maps.get(ref.get("name", ""))
            if config_map is None:
                if not ref.get("optional", False):
                    found.add(
                        f"{source_path}.configMapRef",
                        f"ConfigMap {ref.get('name')!r} not found",
                        missing_object=True,
                    )
                continue
            for key, value in config_map.get("data", {}).items():
                if _is_env_name(prefix + key):
                    env[prefix + key] = EnvValue(value)
        elif "secretRef" in source:
            ref = source["secretRef"]
            secret = ctx.refs.secrets.get(ref.get("name", ""))
            if secret is None:
                if not ref.get("optional", False):
                    found.add(
                        f"{source_path}.secretRef",
                        f"Secret {ref.get('name')!r} not found",
                        missing_object=True,
                    )
                continue
            for key, raw in references.secret_data(secret).items():
                text = _text(raw, problems.key_path(f"{source_path}.secretRef", key), found)
                if text is not None and _is_env_name(prefix + key):
                    env[prefix + key] = EnvValue(text, is_secret=True)
        else:
            found.add(source_path, "needs a configMapRef or a secretRef")
    return env


def _key_value(
    selector: objects.KeySelector,
    path: str,
    kind: str,
    data: Mapping[str, bytes] | None,
    found: problems.Problems,
) -> str | None:
    name, key = selector.get("name", ""), selector.get("key", "")
    optional = selector.get("optional", False)
    if data is None:
        if not optional:
            found.add(path, f"{kind} {name!r} not found", missing_object=True)
        return None
    if key not in data:
        if not optional:
            found.add(path, f"{kind} {name!r} has no key {key!r}")
        return None
    return _text(data[key], path, found)


def _value_from(
    source: objects.EnvVarSource, path: str, container_name: str, ctx: EnvContext, found: problems.Problems
) -> EnvValue | None:
    if "secretKeyRef" in source:
        selector = source["secretKeyRef"]
        secret = ctx.refs.secrets.get(selector.get("name", ""))
        data = references.secret_data(secret) if secret is not None else None
        value = _key_value(selector, f"{path}.secretKeyRef", "Secret", data, found)
        return EnvValue(value, is_secret=True) if value is not None else None
    if "configMapKeyRef" in source:
        selector = source["configMapKeyRef"]
        config_map = ctx.refs.config_maps.get(selector.get("name", ""))
        # Like the kubelet, env reads a ConfigMap's ``data`` only.
        text_data = (
            {key: value.encode() for key, value in config_map.get("data", {}).items()}
            if config_map is not None
            else None
        )
        value = _key_value(selector, f"{path}.configMapKeyRef", "ConfigMap", text_data, found)
        return EnvValue(value) if value is not None else None
    if "fieldRef" in source:
        field_path = source["fieldRef"].get("fieldPath", "")
        value = downward.field_value(
            ctx.pod, field_path, f"{path}.fieldRef", ctx.where, pod_ip=ctx.pod_ip, found=found
        )
        return EnvValue(value) if value is not None else None
    if "resourceFieldRef" in source:
        resource_selector = source["resourceFieldRef"]
        # In env, containerName defaults to the container itself.
        target = resource_selector.get("containerName") or container_name
        container = ctx.container_resources.get(target)
        value = downward.resource_value(resource_selector, f"{path}.resourceFieldRef", container, found)
        return EnvValue(value) if value is not None else None
    if "fileKeyRef" in source:
        found.add(f"{path}.fileKeyRef", "ACI cannot read a variable from a file of another volume")
        return None
    found.add(path, "names no source acinode knows")
    return None


#: VN2's "downlevel API" values, replaced by VN2 with its confidential hosts' THIM address (PodCustomizations.md).
#: acinode cannot know that address, so a container that relies on the replacement is refused, not run with the
#: literal marker.
VN2_DOWNLEVEL_VALUES = ("===VIRTUALNODE2.CC.THIM.ENDPOINT===", "===VIRTUALNODE2.CC.THIM.ADDRESS===")


def environment_from_container(
    container: objects.Container, path: str, ctx: EnvContext, found: problems.Problems
) -> dict[str, EnvValue]:
    """The container's final environment, in definition order (later definitions win)."""
    env = _env_from(container.get("envFrom", []), path, ctx, found)
    for index, var in enumerate(container.get("env", [])):
        var_path = f"{path}.env[{index}]"
        name = var.get("name", "")
        if "valueFrom" in var:
            resolved = _value_from(
                var["valueFrom"], f"{var_path}.valueFrom", container.get("name", ""), ctx, found
            )
            if resolved is not None:
                env[name] = resolved
            continue
        if var.get("value", "").strip() in VN2_DOWNLEVEL_VALUES:
            found.add(
                f"{var_path}.value",
                f"{var['value'].strip()} is a VN2 downlevel API value: VN2 replaces it with its confidential "
                "hosts' THIM endpoint, which ACI's API does not tell acinode",
            )
            continue
        visible = collections.ChainMap(env, {key: EnvValue(value) for key, value in ctx.service_env.items()})
        value, secrets_used = expand_with_env(var.get("value", ""), visible)
        env[name] = EnvValue(value, is_secret=bool(secrets_used))
    for key, value in ctx.service_env.items():
        env.setdefault(key, EnvValue(value))
    return env


def expand_with_env(text: str, env: Mapping[str, EnvValue]) -> tuple[str, set[str]]:
    """``text`` expanded with ``env``, and the names of the secret variables it used."""
    secrets_used: set[str] = set()

    def lookup(key: str) -> str | None:
        if key not in env:
            return None
        if env[key].is_secret:
            secrets_used.add(key)
        return env[key].value

    return expand(text, lookup), secrets_used


def expand_arguments(
    words: list[str], path: str, env: Mapping[str, EnvValue], found: problems.Problems
) -> list[str]:
    """``command``/``args`` with ``$(VAR)`` expanded. A secret variable there is refused: ACI returns the
    command line in plain text to anyone who can read the group."""
    expanded: list[str] = []
    for index, word in enumerate(words):
        value, secrets_used = expand_with_env(word, env)
        if secrets_used:
            found.add(
                f"{path}[{index}]",
                f"expands the secret variable(s) {', '.join(sorted(secrets_used))} into the command line, "
                "which ACI stores and returns in plain text; read the variable in the process instead",
            )
            value = word
        expanded.append(value)
    return expanded


def aci_environment_variables(env: Mapping[str, EnvValue]) -> list[models.EnvironmentVariable]:
    return [
        models.EnvironmentVariable(name=name, secure_value=value.value)
        if value.is_secret
        else models.EnvironmentVariable(name=name, value=value.value)
        for name, value in env.items()
    ]
