"""Containers and init containers: image, command line, ports, probes and security context.

ACI has one ``command`` that replaces the image's ENTRYPOINT and CMD together, where Kubernetes has ``command``
(ENTRYPOINT) and ``args`` (CMD). ``command`` + ``args`` is their concatenation; ``args`` alone needs the image's
ENTRYPOINT, which only an annotation or the reconciler (from the registry) can supply — otherwise it is refused
rather than run with the wrong program.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from azure.mgmt.containerinstance import models

from acinode.mapping import env, fields, objects, problems

_CONTAINER_FIELDS = (
    "name",
    "image",
    "command",
    "args",
    "ports",
    "envFrom",
    "env",
    "resources",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "securityContext",
    # Accepted without effect (documented in docs/mapping.md): ACI always pulls the image, reports its own
    # termination detail, and cannot resize a running container, which the reconciler refuses on update.
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "resizePolicy",
    "lifecycle",
)
_CONTAINER_REFUSED = {
    "workingDir": "ACI cannot set the working directory; bake it into the image (WORKDIR) or cd in the command",
    "startupProbe": "ACI has no startup probe; use a liveness probe with initialDelaySeconds",
    "stdin": "ACI cannot keep a container's stdin open",
    "stdinOnce": "ACI cannot keep a container's stdin open",
    "tty": "ACI allocates no TTY to a container (kubectl exec -t still works)",
    "restartPolicy": "ACI restarts containers by the group's restart policy only",
    "restartPolicyRules": "ACI restarts containers by the group's restart policy only",
}
_LIFECYCLE_REFUSED = {
    # ARM has no hook field. ACI's exec API is interactive and after the fact: it cannot hold a container in
    # "not started" until postStart succeeds.
    "postStart": "ACI has no postStart hook: nothing can hold the container until a hook succeeds",
    "stopSignal": "ACI stops containers with its own signal",
}
#: preStop ``sleep`` is honoured: the operator waits before asking ACI to stop the group (``pre_stop_sleep``).
#: exec and httpGet are not: ACI's exec API starts one process without arguments (ACI's docs), and an HTTP
#: request from the operator is not the kubelet's request from the pod's node.
_PRE_STOP_REFUSED = {
    "exec": "ACI's exec API starts a single process without arguments, so a preStop command cannot be run as a "
    "kubelet runs it; use a preStop sleep, or handle SIGTERM in the container",
    "httpGet": "acinode does not send preStop HTTP requests; use a preStop sleep, or handle SIGTERM",
    "tcpSocket": "a tcpSocket preStop hook is not a handler Kubernetes runs",
}
#: A native sidecar: ACI's init containers must exit before the app containers start, and an app container
#: would start together with (not before) the others and keep a finished Job's group running.
SIDECAR_REFUSED = (
    "native sidecars cannot be expressed: ACI init containers must exit before any app container starts, and "
    "ACI starts all app containers together and never stops one because the others finished; move it to "
    "containers if start order and Job completion do not matter"
)
_INIT_REFUSED = {
    **_CONTAINER_REFUSED,
    "ports": "ACI init containers expose no ports",
    "livenessProbe": "ACI init containers have no probes",
    "readinessProbe": "ACI init containers have no probes",
}

_PROBE_FIELDS = (
    "exec",
    "httpGet",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
)
_PROBE_REFUSED = {
    "tcpSocket": "ACI probes only with exec or httpGet; probe the port with exec (e.g. nc -z) instead",
    "grpc": "ACI probes only with exec or httpGet",
    "terminationGracePeriodSeconds": "ACI has no per-probe grace period",
}

_SECURITY_FIELDS = (
    "capabilities",
    "privileged",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "procMount",
    "seccompProfile",
    "appArmorProfile",
    "readOnlyRootFilesystem",
)
_SECURITY_REFUSED = {
    "seLinuxOptions": "ACI applies no SELinux labels",
    "windowsOptions": "ACI has no gMSA, host-process or run-as-user-name options",
}
POD_SECURITY_FIELDS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "seccompProfile",
    "appArmorProfile",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "fsGroupChangePolicy",
    "seLinuxChangePolicy",
)
POD_SECURITY_REFUSED = {
    "fsGroup": "ACI cannot change the group ownership of volumes",
    "sysctls": "ACI sets no sysctls",
    "seLinuxOptions": "ACI applies no SELinux labels",
    "windowsOptions": "ACI has no gMSA, host-process or run-as-user-name options",
}

#: The seccomp profile that allows every call: how "Unconfined" is said to ACI, which takes profiles inline.
_UNCONFINED_SECCOMP = base64.b64encode(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}).encode()).decode()


def check_container_fields(
    container: objects.Container, path: str, *, init: bool, found: problems.Problems
) -> None:
    refused = _INIT_REFUSED if init else _CONTAINER_REFUSED
    if init and container.get("restartPolicy") == "Always":
        refused = {**refused, "restartPolicy": SIDECAR_REFUSED}
    fields.check_fields(container, path, _CONTAINER_FIELDS, refused, found)
    lifecycle = container.get("lifecycle", {})
    fields.check_fields(lifecycle, f"{path}.lifecycle", ("preStop",), _LIFECYCLE_REFUSED, found)
    pre_stop = lifecycle.get("preStop") or {}
    fields.check_fields(pre_stop, f"{path}.lifecycle.preStop", ("sleep",), _PRE_STOP_REFUSED, found)
    if init and pre_stop:
        found.add(f"{path}.lifecycle.preStop", "init containers have no preStop hook")
    if not container.get("image"):
        found.add(f"{path}.image", "is required")


def aci_command_from_container(
    container: objects.Container,
    path: str,
    environment: Mapping[str, env.EnvValue],
    entrypoint: tuple[str, ...] | None,
    found: problems.Problems,
) -> list[str] | None:
    """ACI's single command line, with ``$(VAR)`` expanded as the kubelet would."""
    command = env.expand_arguments(container.get("command", []), f"{path}.command", environment, found)
    args = env.expand_arguments(container.get("args", []), f"{path}.args", environment, found)
    if command:
        return command + args
    if not args:
        return None
    if entrypoint is not None:
        return [*entrypoint, *args]
    found.add(
        f"{path}.args",
        "ACI has a single command line that replaces the image's ENTRYPOINT; with args but no command the "
        "ENTRYPOINT is unknown: set command too, or name it in the aci.acinode.dev/entrypoints annotation",
    )
    return None


def aci_ports_from_container(
    container: objects.Container, path: str, found: problems.Problems
) -> list[models.ContainerPort]:
    ports: list[models.ContainerPort] = []
    for index, port in enumerate(container.get("ports", [])):
        port_path = f"{path}.ports[{index}]"
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            found.add(f"{port_path}.protocol", f"ACI exposes TCP and UDP ports, not {protocol}")
            continue
        number = port.get("containerPort", 0)
        host_port = port.get("hostPort")
        if host_port and host_port != number:
            found.add(
                f"{port_path}.hostPort", "a container group has its own IP: hostPort must equal containerPort"
            )
        if port.get("hostIP"):
            found.add(f"{port_path}.hostIP", "a container group has no host to bind an IP of")
        ports.append(models.ContainerPort(port=number, protocol=protocol))
    return ports


def _http_port(
    value: int | str, container: objects.Container, path: str, found: problems.Problems
) -> int | None:
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    for port in container.get("ports", []):
        if port.get("name") == value:
            return port.get("containerPort")
    found.add(path, f"names no port of this container ({value!r})")
    return None


def aci_probe_from_probe(
    probe: objects.Probe, path: str, container: objects.Container, found: problems.Problems
) -> models.ContainerProbe | None:
    fields.check_fields(probe, path, _PROBE_FIELDS, _PROBE_REFUSED, found)
    exec_action: models.ContainerExec | None = None
    http_get: models.ContainerHttpGet | None = None
    if "exec" in probe:
        exec_action = models.ContainerExec(command=list(probe["exec"].get("command", [])))
    elif "httpGet" in probe:
        action = probe["httpGet"]
        fields.check_fields(
            action,
            f"{path}.httpGet",
            ("path", "port", "scheme", "httpHeaders"),
            {"host": "ACI probes the container itself; the host cannot be changed"},
            found,
        )
        port = _http_port(action.get("port", 0), container, f"{path}.httpGet.port", found)
        if port is None:
            return None
        http_get = models.ContainerHttpGet(
            path=action.get("path") or None,
            port=port,
            scheme=action.get("scheme", "HTTP").lower(),
            http_headers=[
                models.HttpHeader(name=header.get("name"), value=header.get("value"))
                for header in action.get("httpHeaders", [])
            ]
            or None,
        )
    elif not any(handler in probe for handler in _PROBE_REFUSED):
        found.add(path, "needs an exec or httpGet handler")
        return None
    if exec_action is None and http_get is None:
        return None
    return models.ContainerProbe(
        exec_property=exec_action,
        http_get=http_get,
        initial_delay_seconds=probe.get("initialDelaySeconds"),
        period_seconds=probe.get("periodSeconds"),
        failure_threshold=probe.get("failureThreshold"),
        success_threshold=probe.get("successThreshold"),
        timeout_seconds=probe.get("timeoutSeconds"),
    )


def aci_security_context_from_container(
    container: objects.Container, path: str, pod_context: objects.PodSecurityContext, found: problems.Problems
) -> models.SecurityContextDefinition | None:
    """The container's security context, pod-level values as defaults; None when nothing is asked for."""
    context = container.get("securityContext", {})
    context_path = f"{path}.securityContext"
    fields.check_fields(context, context_path, _SECURITY_FIELDS, _SECURITY_REFUSED, found)
    run_as_user = context.get("runAsUser", pod_context.get("runAsUser"))
    run_as_group = context.get("runAsGroup", pod_context.get("runAsGroup"))
    run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot", False))
    if run_as_non_root and run_as_user is None:
        found.add(
            f"{context_path}.runAsNonRoot",
            "ACI cannot check which user an image runs as; set runAsUser to a non-zero UID as well",
        )
    elif run_as_non_root and run_as_user == 0:
        found.add(f"{context_path}.runAsUser", "runAsNonRoot forbids UID 0")
    if context.get("readOnlyRootFilesystem"):
        found.add(f"{context_path}.readOnlyRootFilesystem", "ACI cannot make the root filesystem read-only")
    if context.get("procMount", "Default") != "Default":
        found.add(f"{context_path}.procMount", "ACI offers only the default /proc mount")
    seccomp = _seccomp(
        context.get("seccompProfile") or pod_context.get("seccompProfile") or {}, context_path, found
    )
    apparmor = context.get("appArmorProfile") or pod_context.get("appArmorProfile") or {}
    if apparmor.get("type", "RuntimeDefault") != "RuntimeDefault":
        found.add(f"{context_path}.appArmorProfile", "ACI applies only its default AppArmor profile")
    capabilities = context.get("capabilities", {})
    definition = models.SecurityContextDefinition(
        privileged=context.get("privileged"),
        allow_privilege_escalation=context.get("allowPrivilegeEscalation"),
        capabilities=(
            models.SecurityContextCapabilitiesDefinition(
                add=list(capabilities.get("add", [])) or None, drop=list(capabilities.get("drop", [])) or None
            )
            if capabilities.get("add") or capabilities.get("drop")
            else None
        ),
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        seccomp_profile=seccomp,
    )
    return definition if definition.as_dict() else None


def _seccomp(profile: objects.SeccompProfile, path: str, found: problems.Problems) -> str | None:
    kind = profile.get("type", "RuntimeDefault")
    if kind == "RuntimeDefault":
        return None
    if kind == "Unconfined":
        return _UNCONFINED_SECCOMP
    found.add(
        f"{path}.seccompProfile", "a Localhost profile lives on a node's disk, which a virtual node has not"
    )
    return None


def pre_stop_sleep(pod: objects.Pod) -> int:
    """Seconds to wait, once the pod is being deleted, before its group is asked to stop: the longest preStop
    ``sleep`` of its containers. ACI stops a group's containers together, so a container without the hook gets
    its SIGTERM after that wait too (on a kubelet, at once)."""
    longest = 0
    for container in pod.get("spec", {}).get("containers", []):
        lifecycle: Mapping[str, Any] = container.get("lifecycle") or {}
        pre_stop: Mapping[str, Any] = lifecycle.get("preStop") or {}
        seconds = (pre_stop.get("sleep") or {}).get("seconds", 0)
        if isinstance(seconds, int) and seconds > longest:
            longest = seconds
    return longest
