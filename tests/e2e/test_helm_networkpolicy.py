"""The chart's NetworkPolicy (templates/networkpolicy.yaml) as rendered: off by default; when on, the kubelet port
admits only the API server's sources, metrics admit ``metricsFrom`` (or everyone), health admits everyone; the
ports it names are the operator container's; it refuses to render without any API server source; the schema checks
its values; and the real API server accepts the object (server-side dry run)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from helm import chart

NAMESPACE = "acinode-system"
KONNECTIVITY = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"app": "konnectivity-agent"}},
}
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
ENABLED: dict[str, Any] = {
    "networkPolicy": {
        "enabled": True,
        "apiServer": {"cidrs": ["10.0.0.0/28", "fd00::/64"], "peers": [KONNECTIVITY]},
    }
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> chart.Helm:
    return chart.build(tmp_path_factory.mktemp("helm-home"))


def rules_by_port(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for rule in policy["spec"]["ingress"]:
        [port] = rule["ports"]
        assert port["protocol"] == "TCP"
        rules[port["port"]] = rule
    return rules


def test_no_network_policy_by_default(helm: chart.Helm) -> None:
    assert not helm.template(namespace=NAMESPACE).has("NetworkPolicy")


def test_the_kubelet_port_admits_only_the_api_servers_sources(helm: chart.Helm) -> None:
    rendered = helm.template(ENABLED, namespace=NAMESPACE)
    policy = rendered.one("NetworkPolicy")
    statefulset = rendered.one("StatefulSet")
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert policy["spec"]["podSelector"] == statefulset["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]

    rules = rules_by_port(policy)
    operator = next(
        c for c in statefulset["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"
    )
    assert set(rules) == {p["name"] for p in operator["ports"]} == {"kubelet", "metrics", "health"}
    assert rules["kubelet"]["from"] == [
        {"ipBlock": {"cidr": "10.0.0.0/28"}},
        {"ipBlock": {"cidr": "fd00::/64"}},
        KONNECTIVITY,
    ]
    assert "from" not in rules["metrics"] and "from" not in rules["health"]  # open to every source


def test_metrics_can_be_narrowed_too(helm: chart.Helm) -> None:
    values = {"networkPolicy": {**ENABLED["networkPolicy"], "metricsFrom": [PROMETHEUS]}}
    rules = rules_by_port(helm.template(values, namespace=NAMESPACE).one("NetworkPolicy"))
    assert rules["metrics"]["from"] == [PROMETHEUS]
    assert "from" not in rules["health"]


def test_enabled_without_any_api_server_source_fails_with_a_message(helm: chart.Helm) -> None:
    with pytest.raises(chart.HelmError) as failure:
        helm.template({"networkPolicy": {"enabled": True}})
    assert "networkPolicy.enabled needs networkPolicy.apiServer.cidrs or" in failure.value.stderr


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"apiServer": {"cidrs": ["10.0.0.1"]}}, "cidrs"),
        ({"apiServer": {"cidrs": ["api-server"]}}, "cidrs"),
        ({"apiServer": {"peers": [{"podSelector": {}, "namespace": "x"}]}}, "namespace"),
        ({"metricsFrom": [{}]}, "metricsFrom"),
        ({"allowEverything": True}, "allowEverything"),
    ],
)
def test_the_schema_refuses_malformed_values(helm: chart.Helm, values: dict[str, Any], named: str) -> None:
    with pytest.raises(chart.HelmError) as failure:
        helm.template({"networkPolicy": {"enabled": True, **values}})
    assert "values don't meet the specifications of the schema" in failure.value.stderr
    assert named in failure.value.stderr


def test_helm_lint_passes_strictly_with_the_policy(helm: chart.Helm) -> None:
    out = helm.lint(ENABLED)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out


def test_the_api_server_accepts_the_policy(helm: chart.Helm, cluster: Any) -> None:
    policy = helm.template(ENABLED, namespace="default").one("NetworkPolicy")
    result = subprocess.run(
        [*cluster.kubectl_command, "--kubeconfig", str(cluster.kubeconfig), "create", "--dry-run=server",
         "-o", "yaml", "-f", "-"],
        input=yaml.safe_dump(policy), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["spec"]["ingress"] == policy["spec"]["ingress"]
