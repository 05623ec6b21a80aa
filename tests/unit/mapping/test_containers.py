"""Containers and init containers: command line, ports, probes, security context, and what ACI cannot do."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mapping_builders import container, first_container, group, pod, problems, refs

from acinode.mapping import options

pytestmark = pytest.mark.timeout(2)


@pytest.mark.parametrize(
    ("fields", "annotations", "entrypoints", "expected"),
    [
        ({}, {}, {}, None),
        ({"command": ["nginx", "-g", "daemon off;"]}, {}, {}, ["nginx", "-g", "daemon off;"]),
        ({"command": ["python"], "args": ["-m", "http.server"]}, {}, {}, ["python", "-m", "http.server"]),
        # args alone need the image's ENTRYPOINT: from the annotation…
        (
            {"args": ["--verbose"]},
            {options.ENTRYPOINTS: json.dumps({"app": ["/entrypoint.sh"]})},
            {},
            ["/entrypoint.sh", "--verbose"],
        ),
        # …or from what the reconciler learnt from the registry
        (
            {"args": ["--verbose"]},
            {},
            {"nginx:1.27": ("/docker-entrypoint.sh",)},
            ["/docker-entrypoint.sh", "--verbose"],
        ),
    ],
)
def test_command_line(
    fields: dict[str, Any],
    annotations: dict[str, str],
    entrypoints: dict[str, tuple[str, ...]],
    expected: list[str] | None,
) -> None:
    body = group(pod(container(**fields), annotations=annotations), resolved=refs(entrypoints=entrypoints))
    assert first_container(body).get("command") == expected


def test_args_without_a_known_entrypoint_are_refused() -> None:
    assert "ENTRYPOINT" in problems(pod(container(args=["--verbose"])))["spec.containers[0].args"]


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([{"containerPort": 80}], [{"port": 80, "protocol": "TCP"}]),
        ([{"containerPort": 53, "protocol": "UDP"}], [{"port": 53, "protocol": "UDP"}]),
        ([{"containerPort": 80, "hostPort": 80, "name": "http"}], [{"port": 80, "protocol": "TCP"}]),
    ],
)
def test_ports(ports: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert first_container(group(pod(container(ports=ports))))["ports"] == expected


@pytest.mark.parametrize(
    ("port", "path", "reason"),
    [
        ({"containerPort": 80, "protocol": "SCTP"}, "spec.containers[0].ports[0].protocol", "TCP and UDP"),
        ({"containerPort": 80, "hostPort": 8080}, "spec.containers[0].ports[0].hostPort", "must equal"),
        ({"containerPort": 80, "hostIP": "0.0.0.0"}, "spec.containers[0].ports[0].hostIP", "no host"),
    ],
)
def test_port_refusals(port: dict[str, Any], path: str, reason: str) -> None:
    assert reason in problems(pod(container(ports=[port])))[path]


WEB = {"ports": [{"name": "http", "containerPort": 8080}]}


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (
            {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 5, "periodSeconds": 10},
            {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 5, "periodSeconds": 10},
        ),
        (
            {
                "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                "failureThreshold": 3,
                "successThreshold": 1,
                "timeoutSeconds": 2,
            },
            {
                "httpGet": {"path": "/healthz", "port": 8080, "scheme": "http"},
                "failureThreshold": 3,
                "successThreshold": 1,
                "timeoutSeconds": 2,
            },
        ),
        (
            {
                "httpGet": {
                    "port": 8443,
                    "scheme": "HTTPS",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                }
            },
            {
                "httpGet": {
                    "port": 8443,
                    "scheme": "https",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                }
            },
        ),
    ],
)
def test_probes(probe: dict[str, Any], expected: dict[str, Any]) -> None:
    body = first_container(group(pod(container(livenessProbe=probe, readinessProbe=probe, **WEB))))
    assert body["livenessProbe"] == expected
    assert body["readinessProbe"] == expected


@pytest.mark.parametrize(
    ("probe", "path", "reason"),
    [
        ({"tcpSocket": {"port": 8080}}, "spec.containers[0].livenessProbe.tcpSocket", "exec or httpGet"),
        ({"grpc": {"port": 8080}}, "spec.containers[0].livenessProbe.grpc", "exec or httpGet"),
        ({"httpGet": {"port": "metrics"}}, "spec.containers[0].livenessProbe.httpGet.port", "names no port"),
        (
            {"httpGet": {"port": 80, "host": "example.com"}},
            "spec.containers[0].livenessProbe.httpGet.host",
            "container itself",
        ),
        (
            {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5},
            "spec.containers[0].livenessProbe.terminationGracePeriodSeconds",
            "grace",
        ),
        ({"periodSeconds": 5}, "spec.containers[0].livenessProbe", "needs an exec or httpGet"),
    ],
)
def test_probe_refusals(probe: dict[str, Any], path: str, reason: str) -> None:
    assert reason in problems(pod(container(livenessProbe=probe, **WEB)))[path]


UNCONFINED = base64.b64encode(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}).encode()).decode()


@pytest.mark.parametrize(
    ("pod_context", "context", "expected"),
    [
        ({}, {}, None),
        (
            {},
            {"seccompProfile": {"type": "RuntimeDefault"}, "appArmorProfile": {"type": "RuntimeDefault"}},
            None,
        ),
        ({}, {"privileged": True}, {"privileged": True}),
        (
            {},
            {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
            {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
        ),
        ({"runAsUser": 1000, "runAsGroup": 3000}, {}, {"runAsUser": 1000, "runAsGroup": 3000}),
        ({"runAsUser": 1000}, {"runAsUser": 2000}, {"runAsUser": 2000}),
        ({"runAsNonRoot": True, "runAsUser": 1000}, {}, {"runAsUser": 1000}),
        ({}, {"seccompProfile": {"type": "Unconfined"}}, {"seccompProfile": UNCONFINED}),
        ({"supplementalGroups": [], "fsGroupChangePolicy": "OnRootMismatch"}, {}, None),
    ],
)
def test_security_context(
    pod_context: dict[str, Any], context: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    body = first_container(group(pod(container(securityContext=context), securityContext=pod_context)))
    assert body.get("securityContext") == expected


@pytest.mark.parametrize(
    ("pod_context", "context", "path", "reason"),
    [
        (
            {},
            {"readOnlyRootFilesystem": True},
            "spec.containers[0].securityContext.readOnlyRootFilesystem",
            "read-only",
        ),
        ({}, {"runAsNonRoot": True}, "spec.containers[0].securityContext.runAsNonRoot", "set runAsUser"),
        ({"runAsNonRoot": True}, {"runAsUser": 0}, "spec.containers[0].securityContext.runAsUser", "UID 0"),
        ({}, {"procMount": "Unmasked"}, "spec.containers[0].securityContext.procMount", "default /proc"),
        (
            {},
            {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
            "spec.containers[0].securityContext.seccompProfile",
            "node's disk",
        ),
        (
            {},
            {"appArmorProfile": {"type": "Unconfined"}},
            "spec.containers[0].securityContext.appArmorProfile",
            "AppArmor",
        ),
        (
            {},
            {"seLinuxOptions": {"level": "s0"}},
            "spec.containers[0].securityContext.seLinuxOptions",
            "SELinux",
        ),
        ({"fsGroup": 2000}, {}, "spec.securityContext.fsGroup", "ownership"),
        ({"supplementalGroups": [4000]}, {}, "spec.securityContext.supplementalGroups", "supplementary"),
        (
            {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            {},
            "spec.securityContext.sysctls",
            "sysctls",
        ),
    ],
)
def test_security_refusals(
    pod_context: dict[str, Any], context: dict[str, Any], path: str, reason: str
) -> None:
    found = problems(pod(container(securityContext=context), securityContext=pod_context))
    assert reason in found[path]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("workingDir", "/app", "working directory"),
        ("startupProbe", {"exec": {"command": ["true"]}}, "startup probe"),
        ("stdin", True, "stdin"),
        ("tty", True, "TTY"),
        ("restartPolicy", "Always", "group's restart policy"),
        ("someFutureField", {"enabled": True}, "not known to acinode"),
    ],
)
def test_container_field_refusals(field: str, value: Any, reason: str) -> None:
    assert reason in problems(pod(container(**{field: value})))[f"spec.containers[0].{field}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("imagePullPolicy", "Always"),
        ("terminationMessagePath", "/dev/termination-log"),
        ("terminationMessagePolicy", "FallbackToLogsOnError"),
        ("resizePolicy", [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]),
        ("stdin", False),
        ("someFutureField", {}),
    ],
)
def test_container_fields_accepted_without_effect(field: str, value: Any) -> None:
    group(pod(container(**{field: value})))


def test_init_containers() -> None:
    init = container(
        "migrate",
        image="shop/migrate:1",
        command=["migrate", "up"],
        env=[{"name": "MODE", "value": "up"}],
        volumeMounts=[{"name": "scratch", "mountPath": "/work"}],
        securityContext={"runAsUser": 1000},
        resources={"requests": {"cpu": "100m"}},
    )
    body = group(pod(container(), initContainers=[init], volumes=[{"name": "scratch", "emptyDir": {}}]))
    assert body["properties"]["initContainers"] == [
        {
            "name": "migrate",
            "properties": {
                "image": "shop/migrate:1",
                "command": ["migrate", "up"],
                "environmentVariables": [{"name": "MODE", "value": "up"}],
                "volumeMounts": [{"name": "scratch", "mountPath": "/work"}],
                "securityContext": {"runAsUser": 1000},
            },
        }
    ]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("ports", [{"containerPort": 80}], "no ports"),
        ("readinessProbe", {"exec": {"command": ["true"]}}, "no probes"),
        ("restartPolicy", "Always", "sidecar"),
    ],
)
def test_init_container_refusals(field: str, value: Any, reason: str) -> None:
    found = problems(pod(container(), initContainers=[container("init", **{field: value})]))
    assert reason in found[f"spec.initContainers[0].{field}"]
