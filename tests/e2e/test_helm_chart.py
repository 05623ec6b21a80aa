"""The Helm chart as rendered: `helm lint` and `helm template` for the default values and each documented variant,
with what the templates must produce (pod security, probes, env, peering, RBAC, identities, the emulator), and the
values schema refusing wrong values with a message that names them."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm import chart
from support.waiting import wait_until

NAMESPACE = "acinode-system"
RELEASE = "acinode"
FULLNAME = "acinode"  # the release name contains the chart name
SA_USER = f"system:serviceaccount:{NAMESPACE}:{FULLNAME}"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "66666666-7777-8888-9999-000000000000"
SUBSCRIPTION = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "workload-identity": {
        "azure": {
            "identity": "workloadIdentity",
            "workloadIdentity": {"clientId": CLIENT_ID, "tenantId": TENANT_ID},
        }
    },
    "managed-identity": {
        "azure": {"identity": "managedIdentity", "managedIdentity": {"clientId": CLIENT_ID}}
    },
    "service-principal": {
        "azure": {
            "identity": "servicePrincipal",
            "servicePrincipal": {"existingSecret": "aci-sp", "clientSecretKey": "password"},
        }
    },
    "emulator": {"emulator": {"enabled": True}},
    "virtual-nodes": {
        "virtualNodes": [
            {
                "name": "aci-westeurope",
                "labels": {"team": "burst"},
                "spec": {
                    "azure": {
                        "subscriptionId": SUBSCRIPTION,
                        "resourceGroup": "rg-aci",
                        "region": "westeurope",
                    },
                    "capacity": {"cpu": "200", "pods": 100},
                },
            },
            {
                "name": "aci-northeurope",
                "spec": {
                    "azure": {
                        "subscriptionId": SUBSCRIPTION,
                        "resourceGroup": "rg-aci",
                        "region": "northeurope",
                        "credentials": {"type": "ManagedIdentity", "clientId": CLIENT_ID},
                    }
                },
            },
        ]
    },
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}}
    },
    "prometheus-rule": {
        "metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}}}
    },
    "emulator-existing-secret": {
        "emulator": {
            "enabled": True,
            "existingSecret": "my-emulator",
            "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        }
    },
    "no-kubelet-api": {"operator": {"settings": {"ACINODE_KUBELET_ENABLED": "false"}}},
    "single-replica": {"replicas": 1},
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> chart.Helm:
    return chart.build(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def render(helm: chart.Helm) -> Callable[[str], chart.Rendered]:
    """Render a named variant once per module."""
    cache: dict[str, chart.Rendered] = {}

    def rendered(variant: str) -> chart.Rendered:
        if variant not in cache:
            cache[variant] = helm.template(VARIANTS[variant], release=RELEASE, namespace=NAMESPACE)
        return cache[variant]

    return rendered


def pod_spec(rendered: chart.Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("StatefulSet")["spec"]["template"]["spec"]
    return spec


def container(rendered: chart.Rendered, name: str = "operator") -> dict[str, Any]:
    return next(c for c in pod_spec(rendered)["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- lint -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_passes_strictly(helm: chart.Helm, variant: str) -> None:
    out = helm.lint(VARIANTS[variant])
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out


# --- default values -------------------------------------------------------------------------------------------


def test_default_install_renders_the_operator_its_rbac_and_peering_only(
    render: Callable[[str], chart.Rendered],
) -> None:
    assert render("default").kinds() == sorted(
        [
            "ClusterKopfPeering",
            "ClusterRole",
            "ClusterRoleBinding",
            "PodDisruptionBudget",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "StatefulSet",
            *["ValidatingAdmissionPolicy"] * 4,
            *["ValidatingAdmissionPolicyBinding"] * 4,
        ]
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_carries_the_standard_labels_and_the_right_namespace(
    render: Callable[[str], chart.Rendered], variant: str
) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterKopfPeering",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "VirtualNode",
    }
    for obj in render(variant):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "acinode"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "acinode-0.1.0"
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], obj["kind"]
        elif obj["kind"] in ("Role", "RoleBinding") and not obj["metadata"]["name"].endswith("-ownership"):
            assert obj["metadata"]["namespace"] == "kube-node-lease"
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_pods_run_restricted_non_root_read_only_without_capabilities(
    render: Callable[[str], chart.Rendered],
) -> None:
    for variant in ("default", "emulator"):
        spec = pod_spec(render(variant))
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True
        assert pod_security["runAsUser"] != 0
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for c in spec["containers"] + spec.get("initContainers", []):
            security = c["securityContext"]
            assert security["runAsNonRoot"] is True, c["name"]
            assert security["readOnlyRootFilesystem"] is True, c["name"]
            assert security["allowPrivilegeEscalation"] is False, c["name"]
            assert security["capabilities"] == {"drop": ["ALL"]}, c["name"]
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
            assert not security.get("privileged"), c["name"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        for c in spec["containers"]:
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], c["name"]


def test_operator_probes_hit_the_kopf_health_endpoint_it_is_told_to_serve(
    render: Callable[[str], chart.Rendered],
) -> None:
    """Liveness: Kopf's /healthz (the operator's loops run). Readiness, distinct: the kubelet API accepts
    connections (the replica logged in, started, and serves what the API server connects to for logs/exec)."""
    operator = container(render("default"))
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"kubelet": 10250, "health": 8080, "metrics": 9090}
    assert f"--liveness=http://0.0.0.0:{ports['health']}/healthz" in operator["args"]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["readinessProbe"]["tcpSocket"] == {"port": "kubelet"}
    assert "httpGet" not in operator["readinessProbe"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["periodSeconds"] > 0 and operator[probe]["failureThreshold"] >= 1
    # Without a kubelet API there is nothing else to be ready for: Kopf's /healthz.
    no_kubelet = container(render("no-kubelet-api"))
    assert no_kubelet["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_operator_gets_pod_ip_namespace_and_identity_from_the_downward_api(
    render: Callable[[str], chart.Rendered],
) -> None:
    env = env_of(container(render("default")))
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["ACINODE_REPLICA_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "POD_INDEX" not in env
    assert env["ACINODE_NODE_KUBELET_PORT"] == "10250"
    assert not any(name.startswith("AZURE_") for name in env)


def test_every_replica_works_under_its_pod_name_without_peering(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("default")
    statefulset = rendered.one("StatefulSet")
    assert statefulset["spec"]["replicas"] == 2
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    assert statefulset["spec"]["serviceName"] == rendered.one("Service")["metadata"]["name"]
    args = container(rendered)["args"]
    assert args[0] == "run"
    # No Kopf peering: each VirtualNode is owned through its Lease; the replica id comes from the pod name.
    assert not any(a.startswith(("--peering", "--priority", "--standalone")) for a in args)
    # Kept for upgrades only: replicas of an active/standby release still peer through it during a rollout.
    assert rendered.one("ClusterKopfPeering")["metadata"]["name"] == "acinode"


def test_replicas_spread_over_nodes_and_zones_stay_off_virtual_nodes_and_survive_drains(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("default")
    spec = pod_spec(rendered)
    selector = rendered.one("StatefulSet")["spec"]["selector"]["matchLabels"]
    spread = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"] == selector
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    expressions = {(e["key"], e["operator"]) for term in terms for e in term["matchExpressions"]}
    assert expressions == {("type", "NotIn"), ("acinode.dev/virtual-node", "DoesNotExist")}
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    assert not render("single-replica").has("PodDisruptionBudget")


def test_service_is_headless_over_the_kubelet_and_metrics_ports(
    render: Callable[[str], chart.Rendered],
) -> None:
    service = render("default").one("Service")
    assert service["spec"]["clusterIP"] == "None"
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("kubelet", 10250, "kubelet"),
        ("metrics", 9090, "metrics"),
    }
    assert not render("default").has("ServiceMonitor")


# --- RBAC -----------------------------------------------------------------------------------------------------

# Every grant of the chart, and only these: (apiGroup, resource, verb, resourceNames or None).
EXPECTED_CLUSTER_GRANTS = {
    *(("acinode.dev", "virtualnodes", v, None) for v in ("get", "list", "watch", "patch")),
    ("acinode.dev", "virtualnodes/status", "patch", None),
    *(("", "nodes", v, None) for v in ("get", "list", "watch", "create", "patch", "delete")),
    ("", "nodes/status", "patch", None),
    *(("", "pods", v, None) for v in ("get", "list", "watch", "delete")),
    ("", "pods/status", "patch", None),
    *((group, "events", v, None) for group in ("", "events.k8s.io") for v in ("create", "patch")),
    ("", "secrets", "get", None),
    ("", "configmaps", "get", None),
    # A claim a pod names, and its PersistentVolume (an Azure Files share mounted through a claim).
    ("", "persistentvolumeclaims", "get", None),
    ("", "persistentvolumes", "get", None),
    # The SecretProviderClass a Secrets Store CSI volume names (Key Vault references; never a secret value).
    ("secrets-store.csi.x-k8s.io", "secretproviderclasses", "get", None),
    ("", "services", "get", None),
    ("", "services", "list", None),
    ("", "serviceaccounts/token", "create", None),
    ("authentication.k8s.io", "tokenreviews", "create", None),
    ("authorization.k8s.io", "subjectaccessreviews", "create", None),
    ("", "namespaces", "get", ("kube-system",)),
    *(("apiextensions.k8s.io", "customresourcedefinitions", v, None) for v in ("get", "list", "watch")),
    *(("kopf.dev", "clusterkopfpeerings", v, None) for v in ("get", "list", "watch")),
    ("kopf.dev", "clusterkopfpeerings", "patch", ("acinode",)),
    # The kubelet API's serving certificate (a kubernetes.io/kubelet-serving CSR), never its approval.
    *(("certificates.k8s.io", "certificatesigningrequests", v, None) for v in ("create", "get", "watch")),
    ("certificates.k8s.io", "signers", "create", ("kubernetes.io/kubelet-serving",)),
}
EXPECTED_LEASE_GRANTS = {
    ("coordination.k8s.io", "leases", v, None) for v in ("get", "create", "patch", "delete")
}
EXPECTED_OWNERSHIP_GRANTS = {
    ("coordination.k8s.io", "leases", v, None) for v in ("get", "list", "create", "patch", "delete")
}


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...] | None]]:
    found = set()
    for rule in rules:
        names = tuple(rule["resourceNames"]) if "resourceNames" in rule else None
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    found.add((group, resource, verb, names))
    return found


def test_rbac_grants_exactly_what_the_operator_uses(render: Callable[[str], chart.Rendered]) -> None:
    rendered = render("default")
    assert grants(rendered.one("ClusterRole")["rules"]) == EXPECTED_CLUSTER_GRANTS
    roles = {r["metadata"]["namespace"]: r for r in rendered.all("Role")}
    assert set(roles) == {"kube-node-lease", NAMESPACE}
    assert grants(roles["kube-node-lease"]["rules"]) == EXPECTED_LEASE_GRANTS
    # The VirtualNode ownership Leases, in the release namespace only.
    assert grants(roles[NAMESPACE]["rules"]) == EXPECTED_OWNERSHIP_GRANTS
    for binding in (rendered.one("ClusterRoleBinding"), *rendered.all("RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]


def test_rbac_has_no_wildcard_and_no_dangerous_verb(render: Callable[[str], chart.Rendered]) -> None:
    for variant in sorted(VARIANTS):
        rendered = render(variant)
        for role in rendered.all("ClusterRole") + rendered.all("Role"):
            for rule in role["rules"]:
                assert "nonResourceURLs" not in rule
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert not any("*" in item for item in rule.get(field, [])), (variant, rule)
                assert not {"escalate", "bind", "impersonate", "update", "deletecollection"} & set(
                    rule["verbs"]
                )
                assert "secrets" not in rule["resources"] or rule["verbs"] == ["get"]


def test_every_rbac_rule_is_justified_by_a_comment(render: Callable[[str], chart.Rendered]) -> None:
    lines = (chart.CHART_DIR / "templates" / "rbac.yaml").read_text().splitlines()
    rule_lines = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    rendered = render("default")
    rules = rendered.one("ClusterRole")["rules"] + [r for role in rendered.all("Role") for r in role["rules"]]
    assert len(rule_lines) == len(rules)
    for i in rule_lines:
        assert lines[i - 1].strip().startswith("#"), f"rbac.yaml line {i + 1} has no comment above it"


def test_admission_guards_apply_to_the_operator_only(render: Callable[[str], chart.Rendered]) -> None:
    rendered = render("default")
    policies = {p["metadata"]["name"]: p for p in rendered.all("ValidatingAdmissionPolicy")}
    assert set(policies) == {f"{FULLNAME}-{guard}-guard" for guard in ("node", "lease", "pod", "token")}
    resources = {}
    for name, policy in policies.items():
        assert policy["spec"]["failurePolicy"] == "Fail"
        (condition,) = policy["spec"]["matchConditions"]
        assert condition["expression"] == f'request.userInfo.username == "{SA_USER}"'
        (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
        resources[name] = set(rule["resources"])
    assert resources == {
        f"{FULLNAME}-node-guard": {"nodes", "nodes/status"},
        f"{FULLNAME}-lease-guard": {"leases"},
        f"{FULLNAME}-pod-guard": {"pods", "pods/*"},
        f"{FULLNAME}-token-guard": {"serviceaccounts/token"},
    }
    bindings = {b["spec"]["policyName"]: b["spec"] for b in rendered.all("ValidatingAdmissionPolicyBinding")}
    assert bindings == {name: {"policyName": name, "validationActions": ["Deny"]} for name in policies}
    assert not render("default").has("Secret")
    assert not render("default").has("VirtualNode")


# --- Azure identities -----------------------------------------------------------------------------------------


def test_workload_identity_annotates_the_service_account_and_labels_the_pods(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("workload-identity")
    annotations = rendered.one("ServiceAccount")["metadata"]["annotations"]
    assert annotations == {
        "azure.workload.identity/client-id": CLIENT_ID,
        "azure.workload.identity/tenant-id": TENANT_ID,
    }
    labels = rendered.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    assert pod_spec(rendered)["serviceAccountName"] == FULLNAME
    # The webhook injects the variables; the chart sets none itself.
    assert not any(name.startswith("AZURE_") for name in env_of(container(rendered)))
    default_labels = render("default").one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert "azure.workload.identity/use" not in default_labels


def test_managed_identity_sets_azure_client_id(render: Callable[[str], chart.Rendered]) -> None:
    env = env_of(container(render("managed-identity")))
    assert env["AZURE_CLIENT_ID"] == CLIENT_ID
    assert "AZURE_CLIENT_SECRET" not in env
    assert "annotations" not in render("managed-identity").one("ServiceAccount")["metadata"]


def test_service_principal_comes_from_the_named_secret(render: Callable[[str], chart.Rendered]) -> None:
    env = env_of(container(render("service-principal")))
    assert env["AZURE_TENANT_ID"] == {"secretKeyRef": {"name": "aci-sp", "key": "AZURE_TENANT_ID"}}
    assert env["AZURE_CLIENT_ID"] == {"secretKeyRef": {"name": "aci-sp", "key": "AZURE_CLIENT_ID"}}
    assert env["AZURE_CLIENT_SECRET"] == {"secretKeyRef": {"name": "aci-sp", "key": "password"}}
    assert not render("service-principal").has("Secret"), "the chart never holds the principal's secret"


# --- declared VirtualNodes and the ServiceMonitor -------------------------------------------------------------


def test_declared_virtual_nodes_render_with_their_spec_verbatim(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("virtual-nodes")
    nodes = {vn["metadata"]["name"]: vn for vn in rendered.all("VirtualNode")}
    assert set(nodes) == {"aci-westeurope", "aci-northeurope"}
    west = nodes["aci-westeurope"]
    assert west["apiVersion"] == "acinode.dev/v1alpha1"
    assert west["metadata"]["labels"]["team"] == "burst"
    assert west["spec"] == VARIANTS["virtual-nodes"]["virtualNodes"][0]["spec"]
    assert nodes["aci-northeurope"]["spec"]["azure"]["credentials"] == {
        "type": "ManagedIdentity",
        "clientId": CLIENT_ID,
    }


def test_service_monitor_scrapes_the_metrics_port_when_enabled(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("service-monitor")
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"]
        == rendered.one("StatefulSet")["spec"]["selector"]["matchLabels"]
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]


# --- the emulator ---------------------------------------------------------------------------------------------


def test_emulator_runs_as_a_loopback_sidecar_with_the_chart_certificates(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("emulator")
    spec = pod_spec(rendered)
    emulator = container(rendered, "emulator")
    assert emulator["args"][0] == "emulator"
    assert "--host=127.0.0.1" in emulator["args"]
    assert "--port=8443" in emulator["args"]
    assert "--token=$(EMULATOR_TOKEN)" in emulator["args"]
    assert "--plain-http" not in emulator["args"]
    secret_name = f"{FULLNAME}-emulator"
    assert env_of(emulator)["EMULATOR_TOKEN"] == {"secretKeyRef": {"name": secret_name, "key": "token"}}
    # No init container (the image has no shell tools): the CA is mounted into the emulator's state folder, and
    # the emulator issues its server certificate from it when it starts.
    assert "initContainers" not in spec
    mounts = {m["mountPath"]: m for m in emulator["volumeMounts"]}
    assert mounts["/var/lib/acinode-emulator"]["name"] == "emulator-state"
    for key in ("ca.pem", "ca-key.pem"):
        mount = mounts[f"/var/lib/acinode-emulator/{key}"]
        assert (mount["name"], mount["subPath"], mount["readOnly"]) == ("emulator-secret", key, True)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["emulator-secret"]["secret"]["secretName"] == secret_name
    assert "token" not in {item["key"] for item in volumes["emulator-secret"]["secret"]["items"]}
    assert "checksum/emulator" in rendered.one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]

    secret = rendered.one("Secret", secret_name)
    assert set(secret["data"]) == {"ca.pem", "ca-key.pem", "token"}
    vn = rendered.one("VirtualNode", "acinode-emulator")
    azure = vn["spec"]["azure"]
    assert azure["cloud"]["name"] == "Custom"
    assert azure["cloud"]["resourceManagerEndpoint"] == "https://127.0.0.1:8443"
    ca = base64.b64decode(secret["data"]["ca.pem"]).decode()
    assert azure["cloud"]["caBundle"].strip() == ca.strip()
    assert azure["credentials"] == {
        "type": "StaticToken",
        "secretRef": {"name": secret_name},
    }


@pytest.fixture
def emulator_from_chart(render: Callable[[str], chart.Rendered], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The real emulator started as the chart's sidecar starts it: its state folder seeded from the Secret."""
    rendered = render("emulator")
    secret = rendered.one("Secret", f"{FULLNAME}-emulator")
    for key in ("ca.pem", "ca-key.pem"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    token = base64.b64decode(secret["data"]["token"]).decode()
    acinode = Path(sys.executable).with_name("acinode")
    args = [
        a
        for a in container(rendered, "emulator")["args"]
        if not a.startswith(("--port", "--state-dir", "--token"))
    ]
    log = (tmp_path / "emulator.log").open("wb")
    process = subprocess.Popen(
        [
            str(acinode),
            *args,
            "--port=0",
            f"--state-dir={tmp_path}",
            f"--token={token}",
            "--log-level=warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        endpoint = wait_until(
            lambda: (
                (tmp_path / "endpoint.json").exists() and json.loads((tmp_path / "endpoint.json").read_text())
            ),
            30,
            "the emulator to write endpoint.json",
        )
        yield {
            "endpoint": endpoint,
            "token": token,
            "virtual_node": rendered.one("VirtualNode", "acinode-emulator"),
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        log.close()


def test_emulator_serves_tls_the_virtual_nodes_ca_bundle_verifies(
    emulator_from_chart: dict[str, Any],
) -> None:
    endpoint = emulator_from_chart["endpoint"]
    ca_bundle = emulator_from_chart["virtual_node"]["spec"]["azure"]["cloud"]["caBundle"]
    context = ssl.create_default_context(cadata=ca_bundle)
    port = int(endpoint["url"].rsplit(":", 1)[1])
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/_emulator/health",
        headers={"Authorization": f"Bearer {emulator_from_chart['token']}"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    # The emulator kept the chart's CA rather than issuing its own.
    assert Path(endpoint["ca_file"]).read_text().strip() == ca_bundle.strip()


def test_emulator_mode_renders_the_same_twice(helm: chart.Helm) -> None:
    """Nothing random at render time (no generated CA, key or token), so a GitOps tool syncing the chart sees no
    change and restarts nothing."""
    first = helm.template(VARIANTS["emulator"], release=RELEASE, namespace=NAMESPACE)
    second = helm.template(VARIANTS["emulator"], release=RELEASE, namespace=NAMESPACE)
    assert first.objects == second.objects
    for name in ("templates/emulator.yaml", "templates/statefulset.yaml"):
        text = (chart.CHART_DIR / name).read_text()
        for generator in (
            "genCA",
            "genPrivateKey",
            "genSignedCert",
            "randAlphaNum",
            "randAscii",
            "uuidv4",
            "now",
        ):
            assert not re.search(rf"\b{generator}\b", text), f"{name} calls {generator}"


def test_emulator_with_an_existing_secret_renders_no_secret_and_uses_its_ca(
    render: Callable[[str], chart.Rendered],
) -> None:
    rendered = render("emulator-existing-secret")
    assert not rendered.has("Secret")
    volumes = {v["name"]: v for v in pod_spec(rendered)["volumes"]}
    assert volumes["emulator-secret"]["secret"]["secretName"] == "my-emulator"
    emulator = container(rendered, "emulator")
    assert env_of(emulator)["EMULATOR_TOKEN"] == {"secretKeyRef": {"name": "my-emulator", "key": "token"}}
    azure = rendered.one("VirtualNode", "acinode-emulator")["spec"]["azure"]
    assert azure["cloud"]["caBundle"].startswith("-----BEGIN CERTIFICATE-----\nMIIB")
    assert azure["credentials"]["secretRef"] == {"name": "my-emulator"}


def test_emulator_existing_secret_needs_its_ca_bundle(helm: chart.Helm) -> None:
    with pytest.raises(chart.HelmError) as failure:
        helm.template({"emulator": {"enabled": True, "existingSecret": "my-emulator"}})
    assert "emulator.caBundle" in failure.value.stderr


# --- the PrometheusRule ---------------------------------------------------------------------------------------


def test_prometheus_rule_is_off_by_default(render: Callable[[str], chart.Rendered]) -> None:
    assert not render("default").has("PrometheusRule")


def test_prometheus_rule_carries_the_alerts_of_the_monitoring_guide(
    render: Callable[[str], chart.Rendered],
) -> None:
    rule = render("prometheus-rule").one("PrometheusRule")
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    guide = (chart.CHART_DIR.parents[1] / "docs" / "monitoring.md").read_text()
    section = guide[guide.index("## Sample alerts") :]
    block = section[section.index("```yaml\n") + len("```yaml\n") :]
    documented = yaml.safe_load(block[: block.index("```")])
    assert rule["spec"]["groups"] == documented["spec"]["groups"]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"AcinodeNodeHeartbeatTooOld", "AcinodeOrphanContainerGroups", "AcinodeNodeNotReady"} <= alerts
    # Prometheus' placeholders reach Prometheus untouched (Helm does not template the rules file).
    summaries = [r["annotations"]["summary"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any("{{ $labels.node }}" in s for s in summaries)


# --- NOTES.txt ------------------------------------------------------------------------------------------------


def test_notes_give_the_next_steps(helm: chart.Helm) -> None:
    notes = helm.notes(release=RELEASE, namespace=NAMESPACE)
    assert "2 operator replicas, all working" in notes
    assert "kind: VirtualNode" in notes and "kubectl get vn,nodes" in notes
    assert "azure.identity: none" in notes
    assert "kubectl delete vn --all" in notes
    identity = helm.notes(VARIANTS["workload-identity"], release=RELEASE, namespace=NAMESPACE)
    assert "azure.identity: none" not in identity
    assert "One operator replica" in helm.notes(VARIANTS["single-replica"])


def test_notes_show_how_to_try_the_emulator(helm: chart.Helm) -> None:
    notes = helm.notes(VARIANTS["emulator"], release=RELEASE, namespace=NAMESPACE)
    assert 'VirtualNode "acinode-emulator" sends its pods' in notes
    assert "kubectl run hello" in notes and "virtual-kubelet.io/provider" in notes
    assert "kind: VirtualNode" not in notes


# --- the values schema ----------------------------------------------------------------------------------------

BAD_VALUES = [
    ({"replica": 3}, r"additional properties 'replica' not allowed"),
    ({"replicas": 0}, r"/replicas.*minimum"),
    ({"replicas": "two"}, r"/replicas.*got string, want integer"),
    ({"image": {"pullPolicy": "Sometimes"}}, r"/image/pullPolicy.*'IfNotPresent', 'Always', 'Never'"),
    ({"azure": {"identity": "magic"}}, r"/azure/identity.*'none', 'workloadIdentity'"),
    ({"azure": {"identity": "workloadIdentity"}}, r"/azure/workloadIdentity/clientId.*minLength"),
    (
        {"azure": {"identity": "workloadIdentity", "workloadIdentity": {"clientId": "not-a-guid"}}},
        r"/azure/workloadIdentity/clientId.*does not match pattern",
    ),
    ({"azure": {"identity": "servicePrincipal"}}, r"/azure/servicePrincipal/existingSecret.*minLength"),
    ({"azure": {"identity": "managedIdentity"}}, r"/azure/managedIdentity/clientId.*minLength"),
    ({"operator": {"logFormat": "xml"}}, r"/operator/logFormat.*'json', 'plain'"),
    (
        {"operator": {"settings": {"LEASE_SECONDS": "5"}}},
        r"/operator/settings.*additional properties 'LEASE_SECONDS' not allowed",
    ),
    (
        {"operator": {"settings": {"ACINODE_LEASE_DURATION_SECONDS": 40}}},
        r"ACINODE_LEASE_DURATION_SECONDS.*want string",
    ),
    ({"ports": {"kubelet": 70000}}, r"/ports/kubelet.*maximum"),
    ({"virtualNodes": [{"name": "aci"}]}, r"/virtualNodes/0.*missing propert.*spec"),
    ({"virtualNodes": [{"name": "Not_A_Name", "spec": {}}]}, r"/virtualNodes/0/name.*does not match pattern"),
    ({"emulator": {"enabled": "yes"}}, r"/emulator/enabled.*got string, want boolean"),
    (
        {"operator": {"settings": {"ACINODE_METRIC_PORT": "9191"}}},
        r"/operator/settings.*additional properties 'ACINODE_METRIC_PORT' not allowed",
    ),
    ({"emulator": {"caValidityDays": 30}}, r"additional properties 'caValidityDays' not allowed"),
]


def test_the_schema_knows_every_operator_setting() -> None:
    """operator.settings accepts exactly the settings acinode reads (a misspelt one fails helm install)."""
    from acinode import settings  # noqa: PLC0415

    defaults = settings.Settings()
    names = {
        f"ACINODE_{section.name.upper()}_{field.name.upper()}"
        for section in dataclasses.fields(defaults)
        for field in dataclasses.fields(getattr(defaults, section.name))
    }
    schema = json.loads((chart.CHART_DIR / "values.schema.json").read_text())
    assert set(schema["properties"]["operator"]["properties"]["settings"]["properties"]) == names


@pytest.mark.parametrize(("values", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_wrong_values_fail_with_a_message_naming_them(
    helm: chart.Helm, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(chart.HelmError) as failure:
        helm.template(values)
    assert "values don't meet the specifications of the schema" in failure.value.stderr
    assert re.search(message, failure.value.stderr), failure.value.stderr


def test_service_monitor_without_the_service_fails_with_a_message(helm: chart.Helm) -> None:
    with pytest.raises(chart.HelmError) as failure:
        helm.template({"service": {"enabled": False}, "metrics": {"serviceMonitor": {"enabled": True}}})
    assert "metrics.serviceMonitor.enabled needs service.enabled" in failure.value.stderr
