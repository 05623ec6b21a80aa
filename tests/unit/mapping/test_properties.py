"""Properties over generated pods within the supported subset, and over generated group histories.

For any such pod: the group serialises through the SDK and validates against the (stricter than ARM) REST
schema, every name is valid and the group's unique to the pod, the group totals cover every limit and no
container gets less than it asked for, and no secret value appears outside ``secureValue``, a secret volume,
or the credential fields ACI keeps secret. Examples per test: ``ACINODE_HYPOTHESIS_EXAMPLES`` (default 25).
"""

from __future__ import annotations

import base64
import json
import os
from fractions import Fraction
from typing import Any

import pytest
from azure.mgmt.containerinstance import models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mapping_builders import (
    CLUSTER,
    NOW,
    b64,
    config_map,
    public_placement,
    refs,
    schema_errors,
    secret,
    vnet_placement,
)

from acinode.mapping import conditions, names, pods, quantities, resources, status

pytestmark = pytest.mark.timeout(5)

EXAMPLES = int(os.environ.get("ACINODE_HYPOTHESIS_EXAMPLES", "25"))
# CI explores the same examples every run (reproducible); local runs explore new ones.
MODEST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
IMAGES = [
    "nginx:1.27",
    "microsoft/aci-helloworld",
    "shop.azurecr.io/web:2",
    "mcr.microsoft.com/dotnet/aspnet:8.0",
]


def _label(max_middle: int = 12) -> st.SearchStrategy[str]:
    edge = st.sampled_from(ALNUM)
    return st.one_of(
        edge, st.builds(lambda a, m, b: a + m + b, edge, st.text(ALNUM + "-", max_size=max_middle), edge)
    )


SECRET_VALUE = st.builds(
    lambda token: f"S3CRET-{token}", st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=12, max_size=16)
)
PLAIN_VALUE = st.text("abcdefghij klmnop=/:.", max_size=20)


@st.composite
def world(draw: st.DrawFn) -> tuple[dict[str, Any], Any, Any, list[str]]:
    """A pod within the supported subset, its placement, its resolved references and its secret values."""
    secret_values = draw(st.lists(SECRET_VALUE, min_size=1, max_size=4, unique=True))
    secrets = {"app-secret": secret({f"k{i}": value for i, value in enumerate(secret_values)})}
    secret_keys = [f"k{i}" for i in range(len(secret_values))]
    config = {"app-config": config_map({"mode": draw(PLAIN_VALUE), "level": "info"})}
    registry_password = secret_values[0]
    secrets["pull"] = secret(
        {
            ".dockerconfigjson": json.dumps(
                {"auths": {"shop.azurecr.io": {"username": "shop", "password": registry_password}}}
            )
        },
        "kubernetes.io/dockerconfigjson",
    )

    count = draw(st.integers(1, 3))
    container_names = draw(st.lists(_label(10), min_size=count, max_size=count, unique=True))
    ports_pool = draw(st.lists(st.integers(1, 65535), min_size=5, max_size=5, unique=True))
    ports_left = list(ports_pool)
    containers = []
    for name in container_names:
        cpu = draw(st.integers(1, 600))  # three containers stay within a group's 4 CPU, limits included
        memory = draw(st.integers(64, 2048))
        requests: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        if draw(st.booleans()):
            requests = {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}
        if draw(st.booleans()):
            limits = {
                "cpu": f"{cpu * draw(st.integers(1, 2))}m",
                "memory": f"{memory * draw(st.integers(1, 2))}Mi",
            }
        env: list[dict[str, Any]] = [{"name": "PLAIN", "value": draw(PLAIN_VALUE)}]
        for index in range(draw(st.integers(0, 3))):
            env.append(
                draw(
                    st.sampled_from(
                        [
                            {
                                "name": f"S{index}",
                                "valueFrom": {
                                    "secretKeyRef": {
                                        "name": "app-secret",
                                        "key": draw(st.sampled_from(secret_keys)),
                                    }
                                },
                            },
                            {
                                "name": f"C{index}",
                                "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}},
                            },
                            {"name": f"F{index}", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": f"D{index}", "value": f"prefix-$(S{index - 1 if index else 0})"},
                        ]
                    )
                )
            )
        container: dict[str, Any] = {"name": name, "image": draw(st.sampled_from(IMAGES)), "env": env}
        if requests or limits:
            container["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
        if draw(st.booleans()):
            container["command"] = ["/bin/app", *draw(st.lists(PLAIN_VALUE, max_size=2))]
            container["args"] = draw(st.lists(PLAIN_VALUE, max_size=2))
        if ports_left and draw(st.booleans()):
            port = ports_left.pop()
            container["ports"] = [{"containerPort": port, "protocol": draw(st.sampled_from(["TCP", "UDP"]))}]
            if draw(st.booleans()):
                container["readinessProbe"] = {
                    "exec": {"command": ["true"]},
                    "periodSeconds": draw(st.integers(1, 60)),
                }
            else:
                container["livenessProbe"] = {"httpGet": {"port": port, "path": "/healthz"}}
        if draw(st.booleans()):
            container["envFrom"] = [{"secretRef": {"name": "app-secret"}, "prefix": "X_"}]
        container["volumeMounts"] = [
            {"name": volume, "mountPath": f"/mnt/{volume}"}
            for volume in draw(
                st.lists(st.sampled_from(["scratch", "creds", "conf", "token"]), unique=True, max_size=4)
            )
        ]
        containers.append(container)

    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "creds", "secret": {"secretName": "app-secret"}},
        {"name": "conf", "configMap": {"name": "app-config", "items": [{"key": "mode", "path": "mode.txt"}]}},
        {
            "name": "token",
            "projected": {
                "sources": [{"serviceAccountToken": {"path": "token"}}, {"secret": {"name": "app-secret"}}]
            },
        },
    ]
    namespace = draw(_label(20))
    pod = {
        "metadata": {
            "name": draw(_label(40)),
            "namespace": namespace,
            "uid": draw(st.uuids()).hex,
            "labels": {"app": draw(_label(10))},
        },
        "spec": {
            "containers": containers,
            "volumes": volumes,
            "restartPolicy": draw(st.sampled_from(["Always", "OnFailure", "Never"])),
            "imagePullSecrets": [{"name": "pull"}],
        },
    }
    where = draw(st.sampled_from([vnet_placement(copied_labels=("app",)), public_placement()]))
    resolved = refs(secrets=secrets, config_maps=config, tokens={"": f"token-{secret_values[-1]}"})
    return pod, where, resolved, secret_values


def _strip_secret_places(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the places where secrets belong."""
    clean = json.loads(json.dumps(body))
    properties = clean["properties"]
    for container in [*properties.get("containers", []), *properties.get("initContainers", [])]:
        for variable in container["properties"].get("environmentVariables", []):
            variable.pop("secureValue", None)
    for volume in properties.get("volumes", []):
        volume.pop("secret", None)
        volume.get("azureFile", {}).pop("storageAccountKey", None)
    for credential in properties.get("imageRegistryCredentials", []):
        credential.pop("password", None)
    properties.get("diagnostics", {}).get("logAnalytics", {}).pop("workspaceKey", None)
    for extension in properties.get("extensions", []):
        extension["properties"].pop("protectedSettings", None)
    return clean


@MODEST
@given(world())
def test_generated_pods_map_to_valid_groups(case: tuple[dict[str, Any], Any, Any, list[str]]) -> None:
    pod, where, resolved, secret_values = case
    group = pods.container_group_from_pod(pod, where, resolved)
    body = group.serialize()

    # the SDK serialises it and the REST schema accepts it
    assert schema_errors(body) == []
    assert models.ContainerGroup.deserialize(body).serialize() == body

    # names are valid
    assert names.is_valid_aci_name(pods.container_group_name_from_pod(pod))  # type: ignore[arg-type]
    for item in [*(group.containers or []), *(group.init_containers or []), *(group.volumes or [])]:
        assert names.is_valid_aci_name(item.name)
    assert len({c.name for c in group.containers}) == len(group.containers)

    # no secret value outside its places, in clear or in base64
    rest = json.dumps(_strip_secret_places(body))
    for value in secret_values:
        assert value not in rest
        assert b64(value) not in rest
    assert group.tags is not None and group.tags["acinode.cluster-id"] == CLUSTER

    # the totals cover every limit; nobody gets less than asked
    total_cpu = sum(Fraction(str(c.resources.requests.cpu)) for c in group.containers)
    total_memory = sum(Fraction(str(c.resources.requests.memory_in_gb)) for c in group.containers)
    assert total_cpu <= where.max_cpu and total_memory <= where.max_memory_gb
    for spec, aci in zip(pod["spec"]["containers"], group.containers, strict=True):
        limits = aci.resources.limits
        if limits is not None:
            assert limits.cpu is None or Fraction(str(limits.cpu)) <= total_cpu
            assert limits.memory_in_gb is None or Fraction(str(limits.memory_in_gb)) <= total_memory
        asked = spec.get("resources", {})
        for kind, value in asked.get("requests", {}).items():
            got = aci.resources.requests.cpu if kind == "cpu" else aci.resources.requests.memory_in_gb
            assert _in_k8s_units(kind, got) >= quantities.fraction_from_quantity(value)
        for kind, value in asked.get("limits", {}).items():
            got = limits.cpu if kind == "cpu" else limits.memory_in_gb  # type: ignore[union-attr]
            assert _in_k8s_units(kind, got) >= quantities.fraction_from_quantity(value)


def _in_k8s_units(kind: str, value: float) -> Fraction:
    return Fraction(str(value)) if kind == "cpu" else Fraction(str(value)) * quantities.GIB


@MODEST
@given(world())
def test_secrets_reach_aci_only_as_secure_values(case: tuple[dict[str, Any], Any, Any, list[str]]) -> None:
    pod, where, resolved, secret_values = case
    group = pods.container_group_from_pod(pod, where, resolved)
    for container in group.containers:
        for variable in container.environment_variables or []:
            if variable.value is not None:
                assert not any(value in variable.value for value in secret_values)
    for volume in group.volumes or []:
        for content in (volume.secret or {}).values():
            base64.b64decode(content, validate=True)


CONTAINER_STATES = st.sampled_from(
    [
        None,
        {"state": "Waiting", "detailStatus": ""},
        {"state": "Running", "startTime": "2024-05-01T11:59:20Z"},
        {
            "state": "Terminated",
            "exitCode": 0,
            "startTime": "2024-05-01T11:59:20Z",
            "finishTime": "2024-05-01T11:59:30Z",
        },
        {
            "state": "Terminated",
            "exitCode": 1,
            "startTime": "2024-05-01T11:59:20Z",
            "finishTime": "2024-05-01T11:59:30Z",
        },
    ]
)
PROVISIONING = st.sampled_from(["Pending", "Creating", "Succeeded", "Failed"])


def _aci(provisioning: str, current: dict[str, Any] | None, with_view: bool) -> models.ContainerGroup:
    props: dict[str, Any] = {"image": "nginx", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}
    if with_view and current is not None:
        props["instanceView"] = {"restartCount": 0, "currentState": current}
    body: dict[str, Any] = {
        "name": "g",
        "properties": {
            "provisioningState": provisioning,
            "osType": "Linux",
            "containers": [{"name": "app", "properties": props}],
        },
    }
    if with_view:
        body["properties"]["instanceView"] = {"state": "Running", "events": []}
    return models.ContainerGroup.deserialize(body)


@MODEST
@given(
    st.sampled_from(["Always", "OnFailure", "Never"]),
    st.lists(st.tuples(PROVISIONING, CONTAINER_STATES, st.booleans()), min_size=1, max_size=8),
)
def test_status_never_moves_backwards(
    policy: str, history: list[tuple[str, dict[str, Any] | None, bool]]
) -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "n", "uid": "u"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}], "restartPolicy": policy},
    }
    order = {"Pending": 0, "Running": 1, "Succeeded": 2, "Failed": 2}
    previous_phase = "Pending"
    for provisioning, current, with_view in history:
        result = status.pod_status_from_container_group(_aci(provisioning, current, with_view), pod, now=NOW)  # type: ignore[arg-type]
        phase = result["phase"]
        if previous_phase in conditions.TERMINAL_PHASES:
            assert phase == previous_phase
        assert order[phase] >= order[previous_phase]
        assert {c["type"] for c in result["conditions"]} >= {
            "PodScheduled",
            "Initialized",
            "ContainersReady",
            "Ready",
        }
        previous_phase = phase
        pod["status"] = result


def test_the_qos_class_is_carried_into_the_status() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "n", "uid": "u"},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
            ]
        },
    }
    result = status.pod_status_from_container_group(_aci("Pending", None, False), pod, now=NOW)  # type: ignore[arg-type]
    assert result["qosClass"] == resources.qos_class_from_pod(pod["spec"]) == "Guaranteed"
