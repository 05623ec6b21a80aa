"""Environment variables as a kubelet computes them; anything from a Secret goes to ACI as secureValue."""

from __future__ import annotations

from typing import Any

import pytest
from mapping_builders import (
    config_map,
    container,
    first_container,
    group,
    pod,
    problems,
    refs,
    secret,
    vnet_placement,
)

from acinode import errors
from acinode.mapping import env, options, pods, services

pytestmark = pytest.mark.timeout(2)

RESOLVED = refs(
    secrets={"db": secret({"password": "s3cret", "user": "shop"}), "binary": secret({"blob": b"\xff\xfe"})},
    config_maps={"settings": config_map({"MODE": "prod", "LEVEL": "info", "bad=key": "x"})},
)


def _env(*variables: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    the_pod = pod(container(env=list(variables), **fields), labels={"app": "shop"}, annotations={"team": "a"})
    result: list[dict[str, Any]] = first_container(group(the_pod, resolved=RESOLVED)).get(
        "environmentVariables", []
    )
    return result


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ({"name": "A", "value": "1"}, {"name": "A", "value": "1"}),
        ({"name": "EMPTY", "value": ""}, {"name": "EMPTY", "value": ""}),
        ({"name": "EMPTY"}, {"name": "EMPTY", "value": ""}),
        (
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "P", "secureValue": "s3cret"},
        ),
        (
            {"name": "M", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
            {"name": "M", "value": "prod"},
        ),
        (
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "N", "value": "web-0"},
        ),
        (
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NS", "value": "shop"},
        ),
        (
            {"name": "U", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "U", "value": "11111111-2222-3333-4444-555555555555"},
        ),
        (
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "L", "value": "shop"},
        ),
        (
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['none']"}}},
            {"name": "L", "value": ""},
        ),
        (
            {"name": "T", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
            {"name": "T", "value": "a"},
        ),
        (
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "NODE", "value": "virtual-node-aci-linux"},
        ),
        (
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "SA", "value": "default"},
        ),
        (
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "HOST", "value": "10.240.0.4"},
        ),
        (
            {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "C", "value": "1000"},
        ),
        (
            {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "C", "value": "1"},
        ),
        (
            {
                "name": "M",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}},
            },
            {"name": "M", "value": "1536"},
        ),
        (
            {"name": "M", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "x", "optional": True}}},
            None,
        ),
        (
            {
                "name": "M",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": True}},
            },
            None,
        ),
    ],
)
def test_one_variable(variable: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert _env(variable) == ([expected] if expected else [])


def _env_or_none(*variables: dict[str, Any], **fields: Any) -> list[dict[str, Any]] | None:
    the_pod = pod(container(env=list(variables), **fields))
    return first_container(group(the_pod, resolved=RESOLVED)).get("environmentVariables")


def test_env_from_with_prefix_and_precedence() -> None:
    got = _env_or_none(
        {"name": "MODE", "value": "override"},
        envFrom=[
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "db"}, "prefix": "DB_"},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
    )
    assert got == [
        {"name": "MODE", "value": "override"},
        {"name": "LEVEL", "value": "info"},
        {"name": "DB_password", "secureValue": "s3cret"},
        {"name": "DB_user", "secureValue": "shop"},
    ]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$(A)-x", "1-x"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("a$b", "a$b"),
        ("$", "$"),
        ("$()", "$()"),
        ("$(A)$(A)", "11"),
    ],
)
def test_kubelet_expansion(template: str, expected: str) -> None:
    assert env.expand(template, {"A": "1"}.get) == expected


def test_expansion_sees_only_earlier_variables() -> None:
    got = _env_or_none(
        {"name": "B", "value": "$(A)"}, {"name": "A", "value": "1"}, {"name": "C", "value": "$(A)"}
    )
    assert got == [{"name": "B", "value": "$(A)"}, {"name": "A", "value": "1"}, {"name": "C", "value": "1"}]


def test_a_value_built_from_a_secret_stays_secret() -> None:
    got = _env_or_none(
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "URL", "value": "postgres://shop:$(P)@db"},
    )
    assert got == [
        {"name": "P", "secureValue": "s3cret"},
        {"name": "URL", "secureValue": "postgres://shop:s3cret@db"},
    ]


def test_command_and_args_are_expanded() -> None:
    body = group(
        pod(
            container(
                env=[{"name": "PORT", "value": "8080"}],
                command=["serve", "--port=$(PORT)"],
                args=["$$(PORT)"],
            )
        )
    )
    assert first_container(body)["command"] == ["serve", "--port=8080", "$(PORT)"]


@pytest.mark.parametrize(
    ("variable", "path", "reason"),
    [
        (
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "x"}}},
            "spec.containers[0].env[0].valueFrom.secretKeyRef",
            "Secret 'missing' not found",
        ),
        (
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope"}}},
            "spec.containers[0].env[0].valueFrom.secretKeyRef",
            "has no key 'nope'",
        ),
        (
            {"name": "P", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "x"}}},
            "spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "ConfigMap 'missing' not found",
        ),
        (
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "binary", "key": "blob"}}},
            "spec.containers[0].env[0].valueFrom.secretKeyRef",
            "not UTF-8",
        ),
        (
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            "spec.containers[0].env[0].valueFrom.fieldRef",
            "ACI assigns the IP",
        ),
        (
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            "spec.containers[0].env[0].valueFrom.fieldRef",
            "not available",
        ),
        (
            {"name": "F", "valueFrom": {"fileKeyRef": {"path": "x", "volumeName": "v", "key": "k"}}},
            "spec.containers[0].env[0].valueFrom.fileKeyRef",
            "another volume",
        ),
        (
            {"name": "S", "valueFrom": {"resourceFieldRef": {"resource": "limits.ephemeral-storage"}}},
            "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource",
            "only requests/limits",
        ),
        (
            {
                "name": "S",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "containerName": "other"}},
            },
            "spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName",
            "names no container",
        ),
    ],
)
def test_unresolvable_variables(variable: dict[str, Any], path: str, reason: str) -> None:
    found = problems(pod(container(env=[variable])), resolved=RESOLVED)
    assert reason in found[path]


def test_env_from_needs_a_source() -> None:
    assert (
        "configMapRef or a secretRef"
        in problems(pod(container(envFrom=[{"prefix": "X_"}])))["spec.containers[0].envFrom[0]"]
    )


def test_a_secret_in_the_command_line_is_refused() -> None:
    the_pod = pod(
        container(
            env=[{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            command=["login", "--password=$(P)"],
        )
    )
    assert "plain text" in problems(the_pod, resolved=RESOLVED)["spec.containers[0].command[1]"]


def test_pinned_ip_is_offered_to_status_pod_ip() -> None:
    the_pod = pod(
        container(env=[{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]),
        annotations={options.IP_ADDRESS: "10.241.0.7"},
    )
    assert first_container(group(the_pod))["environmentVariables"] == [{"name": "IP", "value": "10.241.0.7"}]


KUBERNETES = {
    "metadata": {"name": "kubernetes", "namespace": "default"},
    "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
}
SHOP_DB = {
    "metadata": {"name": "shop-db", "namespace": "shop"},
    "spec": {
        "clusterIP": "10.0.0.42",
        "ports": [{"port": 5432}, {"name": "metrics", "port": 9187, "protocol": "TCP"}],
    },
}
HEADLESS = {
    "metadata": {"name": "peers", "namespace": "shop"},
    "spec": {"clusterIP": "None", "ports": [{"port": 7000}]},
}
ELSEWHERE = {
    "metadata": {"name": "other", "namespace": "billing"},
    "spec": {"clusterIP": "10.0.0.9", "ports": [{"port": 80}]},
}


def test_service_environment_as_the_kubelet_writes_it() -> None:
    assert services.service_environment([KUBERNETES, SHOP_DB, HEADLESS, ELSEWHERE], "shop", True) == {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.0.0.1",
        "SHOP_DB_SERVICE_HOST": "10.0.0.42",
        "SHOP_DB_SERVICE_PORT": "5432",
        "SHOP_DB_SERVICE_PORT_METRICS": "9187",
        "SHOP_DB_PORT": "tcp://10.0.0.42:5432",
        "SHOP_DB_PORT_5432_TCP": "tcp://10.0.0.42:5432",
        "SHOP_DB_PORT_5432_TCP_PROTO": "tcp",
        "SHOP_DB_PORT_5432_TCP_PORT": "5432",
        "SHOP_DB_PORT_5432_TCP_ADDR": "10.0.0.42",
        "SHOP_DB_PORT_9187_TCP": "tcp://10.0.0.42:9187",
        "SHOP_DB_PORT_9187_TCP_PROTO": "tcp",
        "SHOP_DB_PORT_9187_TCP_PORT": "9187",
        "SHOP_DB_PORT_9187_TCP_ADDR": "10.0.0.42",
    }


def test_without_service_links_only_the_api_server_is_announced() -> None:
    got = services.service_environment([KUBERNETES, SHOP_DB], "shop", False)
    assert set(got) == {k for k in got if k.startswith("KUBERNETES_")}
    assert got["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"


def test_service_variables_have_the_lowest_precedence_but_expand() -> None:
    the_pod = pod(
        container(
            env=[
                {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"},
                {"name": "DB", "value": "$(SHOP_DB_SERVICE_HOST):5432"},
            ],
            command=["app", "--api=$(KUBERNETES_SERVICE_HOST)"],
        )
    )
    body = first_container(group(the_pod, resolved=refs(services=(KUBERNETES, SHOP_DB))))
    variables = {v["name"]: v["value"] for v in body["environmentVariables"]}
    assert variables["KUBERNETES_SERVICE_PORT"] == "6443"
    assert variables["DB"] == "10.0.0.42:5432"
    assert variables["SHOP_DB_PORT"] == "tcp://10.0.0.42:5432"
    assert body["command"] == ["app", "--api=10.0.0.1"]


def refusal(the_pod: Any) -> errors.UnsupportedPodSpecError:
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        pods.container_group_from_pod(the_pod, vnet_placement(), RESOLVED)
    return caught.value


@pytest.mark.parametrize(
    "variable",
    [
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "later", "key": "x"}}},
        {"name": "P", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}},
    ],
)
def test_a_missing_object_is_waited_for_not_refused(variable: dict[str, Any]) -> None:
    """A Secret or ConfigMap applied after the pod (or a new namespace's kube-root-ca.crt) is retried."""
    assert refusal(pod(container(env=[variable]))).only_missing_objects
    assert refusal(pod(container(envFrom=[{"secretRef": {"name": "later"}}]))).only_missing_objects


def test_a_missing_key_or_a_real_refusal_is_not_waited_for() -> None:
    missing_key = {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope"}}}
    assert not refusal(pod(container(env=[missing_key]))).only_missing_objects
    missing_object = {"name": "Q", "valueFrom": {"secretKeyRef": {"name": "later", "key": "x"}}}
    unsupported = {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert not refusal(pod(container(env=[missing_object, unsupported]))).only_missing_objects
