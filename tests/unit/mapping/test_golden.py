"""Golden files: the seed's Deployment pod, mapped for a VNet virtual node as in the seed's walkthrough.

Regenerate after an intended change with ``ACINODE_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from mapping_builders import CLUSTER, NODE, SUBNET, config_map, refs, schema_errors

from acinode import types
from acinode.mapping import placement, pods, references

pytestmark = pytest.mark.timeout(2)

TESTDATA = Path(__file__).parent / "testdata"

SEED_PLACEMENT = placement.GroupPlacement(
    node_name=types.NodeName(NODE),
    cluster_id=CLUSTER,
    region="westeurope",
    subnet_id=SUBNET,
    host_ip="10.240.0.4",
    cluster_dns=placement.ClusterDnsSettings(nameserver="10.0.0.10"),
    kube_proxy=placement.KubeProxySettings(
        cluster_cidr="10.240.0.0/16",
        kubeconfig='{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://10.0.0.1"}}]}',
    ),
)
SEED_REFERENCES = refs(
    config_maps={
        "kube-root-ca.crt": config_map(
            {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"}
        )
    },
    tokens={
        references.DEFAULT_AUDIENCE: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln"
    },
    # every pod is told where the API server is (KUBERNETES_SERVICE_HOST…), as a kubelet does
    services=(
        {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
        },
    ),
)


def _check(
    pod_file: str, group_file: str, where: placement.GroupPlacement, resolved: references.ResolvedReferences
) -> dict[str, Any]:
    the_pod = yaml.safe_load((TESTDATA / pod_file).read_text())
    body: dict[str, Any] = pods.container_group_from_pod(the_pod, where, resolved).serialize()
    expected_path = TESTDATA / group_file
    if os.environ.get("ACINODE_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    assert body == json.loads(expected_path.read_text())
    assert schema_errors(body) == []
    return body


def test_seed_deployment_pod() -> None:
    body = _check("seed-pod.yaml", "seed-group.json", SEED_PLACEMENT, SEED_REFERENCES)
    the_pod = yaml.safe_load((TESTDATA / "seed-pod.yaml").read_text())
    assert pods.container_group_name_from_pod(the_pod) == "default-aci-helloworld-7d9c8b6f5-x2kqz"
    assert body["properties"]["ipAddress"]["ports"] == [{"port": 80, "protocol": "TCP"}]


def test_a_fuller_pod() -> None:
    _check(
        "shop-pod.yaml",
        "shop-group.json",
        SEED_PLACEMENT,
        refs(
            secrets={
                "db": {"type": "Opaque", "data": {"password": "czNjcmV0"}},
                "acr": {
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {
                        ".dockerconfigjson": "eyJhdXRocyI6IHsic2hvcC5henVyZWNyLmlvIjogeyJ1c2VybmFtZSI6ICJzaG9wIiwgInBhc3N3b3JkIjogInB3In19fQ=="
                    },
                },
            },
            config_maps={"nginx": config_map({"default.conf": "server { listen 8080; }"})},
        ),
    )
