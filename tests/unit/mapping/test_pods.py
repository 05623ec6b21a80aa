"""The whole pod: pod-level fields, every problem reported at once, diagnostics, and what to resolve first."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from mapping_builders import (
    NODE,
    config_map,
    container,
    group,
    pod,
    problems,
    public_placement,
    refs,
    vnet_placement,
)

from acinode import errors
from acinode.mapping import placement, pods, references

pytestmark = pytest.mark.timeout(2)


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_restart_policy(policy: str) -> None:
    assert group(pod(restartPolicy=policy))["properties"]["restartPolicy"] == policy


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (vnet_placement(), ("westeurope", "Linux")),
        (public_placement(region="eastus", os_type="Windows"), ("eastus", "Windows")),
    ],
)
def test_location_and_os(where: Any, expected: tuple[str, str]) -> None:
    body = group(pod(), where)
    assert (body["location"], body["properties"]["osType"]) == expected


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("hostNetwork", True, "host network"),
        ("hostPID", True, "process namespace"),
        ("hostIPC", True, "IPC"),
        ("shareProcessNamespace", True, "process namespace"),
        ("hostname", "web-0", "host name"),
        ("setHostnameAsFQDN", True, "host name"),
        ("hostAliases", [{"ip": "10.0.0.1", "hostnames": ["db"]}], "/etc/hosts"),
        ("ephemeralContainers", [{"name": "debug", "image": "busybox"}], "running group"),
        ("resourceClaims", [{"name": "gpu"}], "dynamic resource allocation"),
        ("runtimeClassName", "kata", "single runtime"),
        ("restartPolicy", "Sometimes", "one of"),
        ("aFieldFromTheFuture", {"x": 1}, "not known to acinode"),
    ],
)
def test_pod_field_refusals(field: str, value: Any, reason: str) -> None:
    assert reason in problems(pod(**{field: value}))[f"spec.{field}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hostNetwork", False),
        ("subdomain", "web"),
        ("hostUsers", False),
        ("terminationGracePeriodSeconds", 30),
        ("activeDeadlineSeconds", 600),
        ("priorityClassName", "high"),
        ("tolerations", [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]),
        ("affinity", {"nodeAffinity": {}}),
        ("topologySpreadConstraints", [{"maxSkew": 1}]),
        ("enableServiceLinks", True),
        ("aFieldFromTheFuture", None),
    ],
)
def test_pod_fields_accepted_without_a_group_field(field: str, value: Any) -> None:
    group(pod(**{field: value}))


def test_os_must_match_the_virtual_node() -> None:
    assert "Linux" in problems(pod(os={"name": "windows"}))["spec.os.name"]
    group(pod(os={"name": "linux"}))


def test_every_problem_is_reported_at_once() -> None:
    the_pod = pod(
        container(livenessProbe={"tcpSocket": {"port": 80}}, workingDir="/app"),
        hostNetwork=True,
        volumes=[
            {"name": "logs", "hostPath": {"path": "/var/log"}},
            {"name": "data", "nfs": {"server": "nfs.example", "path": "/"}},
        ],
    )
    with pytest.raises(errors.UnsupportedPodSpecError) as caught:
        pods.container_group_from_pod(the_pod, vnet_placement())
    assert [p.path for p in caught.value.problems] == [
        "spec.hostNetwork",
        "spec.volumes[0].hostPath",
        "spec.volumes[1].nfs",
        "spec.containers[0].workingDir",
        "spec.containers[0].livenessProbe.tcpSocket",
    ]
    assert "spec.volumes[0].hostPath: a virtual node has no host" in str(caught.value)


def test_containers_and_clashing_names() -> None:
    assert "at least one container" in problems(pod(containers=[]))["spec.containers"]
    # a name that looks hashed is hashed too, so a renamed container cannot take another's name
    renamed = group(pod(container("a--b"), container("a-b-90827a2e56")))
    assert len({c["name"] for c in renamed["properties"]["containers"]}) == 2
    too_many = pod(
        *[container(f"c{i}", resources={"requests": {"cpu": "10m", "memory": "100Mi"}}) for i in range(61)]
    )
    assert "60 containers" in problems(too_many)["spec.containers"]


def test_log_analytics_diagnostics() -> None:
    where = vnet_placement(
        log_analytics=placement.LogAnalyticsSettings(
            workspace_id="ws",
            workspace_key="key",
            log_type="ContainerInsights",
            cluster_resource_id="/subscriptions/s/aks",
        )
    )
    body = group(pod(), where)
    assert body["properties"]["diagnostics"] == {
        "logAnalytics": {
            "workspaceId": "ws",
            "workspaceKey": "key",
            "logType": "ContainerInsights",
            "metadata": {
                "cluster-resource-id": "/subscriptions/s/aks",
                "node-name": NODE,
                "pod-uuid": "11111111-2222-3333-4444-555555555555",
            },
        }
    }


def test_group_name_from_pod() -> None:
    assert pods.container_group_name_from_pod(pod()) == "shop-web-0"


def test_needed_references() -> None:
    the_pod = pod(
        container(
            env=[
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k"}}},
            ],
            envFrom=[{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "c2"}}],
        ),
        volumes=[
            {"name": "a", "secret": {"secretName": "s3"}},
            {"name": "b", "configMap": {"name": "c3"}},
            {"name": "c", "azureFile": {"secretName": "s4", "shareName": "x"}},
            {"name": "d", "csi": {"driver": "file.csi.azure.com", "volumeAttributes": {"secretName": "s5"}}},
            {
                "name": "e",
                "projected": {
                    "sources": [
                        {"secret": {"name": "s6"}},
                        {"configMap": {"name": "c4"}},
                        {"serviceAccountToken": {"path": "t", "expirationSeconds": 600}},
                        {"serviceAccountToken": {"path": "u", "expirationSeconds": 7200}},
                        {"serviceAccountToken": {"path": "v", "audience": "vault"}},
                    ]
                },
            },
        ],
        imagePullSecrets=[{"name": "s7"}],
        serviceAccountName="shop",
    )
    needed = references.needed_references_from_pod(the_pod)
    assert dataclasses.replace(needed, named=()) == references.NeededReferences(
        secret_names=frozenset({"s1", "s2", "s3", "s4", "s5", "s6", "s7"}),
        config_map_names=frozenset({"c1", "c2", "c3", "c4"}),
        token_requests=(references.TokenRequestSpec("", 7200), references.TokenRequestSpec("vault", 3600)),
        service_account_name="shop",
    )
    assert [(ref.kind, ref.name, ref.path) for ref in needed.named] == [
        ("Secret", "s1", "spec.containers[0].env[0].valueFrom.secretKeyRef.name"),
        ("ConfigMap", "c1", "spec.containers[0].env[1].valueFrom.configMapKeyRef.name"),
        ("Secret", "s2", "spec.containers[0].envFrom[0].secretRef.name"),
        ("ConfigMap", "c2", "spec.containers[0].envFrom[1].configMapRef.name"),
        ("Secret", "s3", "spec.volumes[0].secret.secretName"),
        ("ConfigMap", "c3", "spec.volumes[1].configMap.name"),
        ("Secret", "s4", "spec.volumes[2].azureFile.secretName"),
        ("Secret", "s5", "spec.volumes[3].csi.volumeAttributes['secretName']"),
        ("Secret", "s6", "spec.volumes[4].projected.sources[0].secret.name"),
        ("ConfigMap", "c4", "spec.volumes[4].projected.sources[1].configMap.name"),
        ("Secret", "s7", "spec.imagePullSecrets[0].name"),
        ("ServiceAccount", "shop", "spec.serviceAccountName"),
    ]


def test_the_mapping_is_deterministic() -> None:
    the_pod = pod(container(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]))
    resolved = refs(config_maps={"c": config_map({"k": "v"})})
    assert group(the_pod, resolved=resolved) == group(the_pod, resolved=resolved)
