"""`helm install` into the real control plane: every object of the chart is accepted by the API server (schemas,
CEL of the admission policy, the CRDs' validation of declared VirtualNodes), the StatefulSet controller creates
its pods (they stay Pending: the control plane has no kubelet), and `helm uninstall` removes everything but the
CRDs, as Helm does."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from helm import chart
from support.waiting import wait_until

SUBSCRIPTION = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CRDS = ("virtualnodes.acinode.dev", "clusterkopfpeerings.kopf.dev")


@pytest.fixture(scope="module")
def helm(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> chart.Helm:
    return chart.build(tmp_path_factory.mktemp("helm-home")).with_kubeconfig(cluster.kubeconfig)


@pytest.fixture
def release_namespace(cluster: Any) -> Iterator[str]:
    """The release's namespace (helm --create-namespace makes it; Helm never deletes it, the test does)."""
    name = f"acinode-{uuid.uuid4().hex[:6]}"
    yield name
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def object_ref(obj: dict[str, Any]) -> list[str]:
    """kubectl arguments naming one object of a manifest."""
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    resource = f"{obj['kind'].lower()}.{group}" if group else obj["kind"].lower()
    namespace = obj["metadata"].get("namespace")
    return [resource, obj["metadata"]["name"], *(["-n", namespace] if namespace else [])]


def exists(cluster: Any, obj: dict[str, Any]) -> bool:
    out = cluster.kubectl("get", *object_ref(obj), "--ignore-not-found", "-o", "name")
    return bool(out.strip())


def gone(cluster: Any, obj: dict[str, Any]) -> bool:
    return not exists(cluster, obj)


def status_of(cluster: Any, obj: dict[str, Any]) -> Any:
    return json.loads(cluster.kubectl("get", *object_ref(obj), "-o", "json")).get("status")


def statefulset_pods(cluster: Any, namespace: str, release: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def install_and_check(
    helm: chart.Helm, cluster: Any, release: str, namespace: str, values: dict[str, Any]
) -> chart.Rendered:
    helm.install(release, namespace, values)
    status = json.loads(helm.run("status", release, "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"

    for crd in CRDS:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")
    manifest = helm.manifest(release, namespace)
    for obj in manifest:
        assert exists(cluster, obj), f"{obj['kind']} {obj['metadata']['name']} was not created"

    # The admission policies' CEL compiled and type-checked against Nodes and TokenRequests without warnings.
    for policy in manifest.all("ValidatingAdmissionPolicy"):
        policy_status = wait_until(
            functools.partial(status_of, cluster, policy), 30, "the admission policy to be type-checked"
        )
        assert policy_status.get("typeChecking", {}).get("expressionWarnings") in (None, []), policy_status

    # The StatefulSet controller accepted the pod template and made one pod per replica, each with its ordinal
    # label (the source of its peering priority). No kubelet here: they stay Pending, as expected.
    replicas = values.get("replicas", 2)
    pods = wait_until(
        lambda: len(p := statefulset_pods(cluster, namespace, release)) == replicas and p,
        60,
        f"{replicas} operator pods",
    )
    assert sorted(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] for p in pods) == [
        str(i) for i in range(replicas)
    ]
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == manifest.one("ServiceAccount")["metadata"]["name"]
        assert pod["status"]["phase"] == "Pending"
    return manifest


def uninstall_and_check(
    helm: chart.Helm, cluster: Any, release: str, namespace: str, manifest: chart.Rendered
) -> None:
    helm.uninstall(release, namespace)
    for obj in manifest:
        wait_until(
            functools.partial(gone, cluster, obj),
            60,
            f"{obj['kind']} {obj['metadata']['name']} to be deleted",
        )
    wait_until(
        lambda: not statefulset_pods(cluster, namespace, release), 60, "the operator pods to be deleted"
    )
    for crd in CRDS:
        assert (
            cluster.kubectl("get", "crd", crd, "-o", "name").strip()
            == f"customresourcedefinition.apiextensions.k8s.io/{crd}"
        )
    listed = helm.run("list", "-n", namespace, "-q").stdout.split()
    assert release not in listed


def test_default_install_is_accepted_and_uninstall_leaves_only_the_crds(
    helm: chart.Helm, cluster: Any, release_namespace: str
) -> None:
    release = "acinode"
    values = {"peering": {"name": f"peering-{release_namespace}"}}
    manifest = install_and_check(helm, cluster, release, release_namespace, values)
    assert manifest.kinds().count("VirtualNode") == 0
    peering = json.loads(
        cluster.kubectl("get", "clusterkopfpeering", f"peering-{release_namespace}", "-o", "json")
    )
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release
    uninstall_and_check(helm, cluster, release, release_namespace, manifest)


def test_install_with_every_option_is_accepted(
    helm: chart.Helm, cluster: Any, release_namespace: str
) -> None:
    """Workload identity, the emulator sidecar and its VirtualNode, declared VirtualNodes, one replica: the API
    server takes them all, and the CRD's validation accepts the VirtualNodes the chart renders."""
    suffix = release_namespace.rsplit("-", 1)[1]
    release = "trial"
    values = {
        "replicas": 1,
        "peering": {"name": f"peering-{release_namespace}"},
        "azure": {"identity": "workloadIdentity", "workloadIdentity": {"clientId": CLIENT_ID}},
        "emulator": {"enabled": True, "virtualNode": {"name": f"emulated-{suffix}"}},
        "virtualNodes": [
            {
                "name": f"declared-{suffix}",
                "spec": {
                    "azure": {
                        "subscriptionId": SUBSCRIPTION,
                        "resourceGroup": "rg-aci",
                        "region": "westeurope",
                    },
                    "labels": {"team": "burst"},
                    "capacity": {"cpu": "200", "memory": "1Ti", "pods": 100},
                },
            }
        ],
        "operator": {"settings": {"ACINODE_ACI_READS_PER_SECOND": "2"}},
    }
    manifest = install_and_check(helm, cluster, release, release_namespace, values)
    names = {vn["metadata"]["name"] for vn in manifest.all("VirtualNode")}
    assert names == {f"emulated-{suffix}", f"declared-{suffix}"}
    declared = json.loads(cluster.kubectl("get", "virtualnode", f"declared-{suffix}", "-o", "json"))
    # The CRD's defaults apply to what the chart declared.
    assert declared["spec"]["operatingSystem"] == "linux"
    assert declared["spec"]["azure"]["credentials"] == {"type": "Default"}
    sa = json.loads(
        cluster.kubectl("get", "serviceaccount", release + "-acinode", "-n", release_namespace, "-o", "json")
    )
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == CLIENT_ID
    (pod,) = statefulset_pods(cluster, release_namespace, release)
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["operator", "emulator"]

    # An upgrade keeps the emulator's CA and token (the template looks the Secret up).
    secret_before = cluster.kubectl(
        "get", "secret", f"{release}-acinode-emulator", "-n", release_namespace, "-o", "json"
    )
    helm.run("upgrade", release, str(chart.CHART_DIR), "-n", release_namespace, "--reuse-values")
    secret_after = cluster.kubectl(
        "get", "secret", f"{release}-acinode-emulator", "-n", release_namespace, "-o", "json"
    )
    assert json.loads(secret_before)["data"] == json.loads(secret_after)["data"]

    uninstall_and_check(helm, cluster, release, release_namespace, manifest)


def test_a_second_release_cannot_take_over_the_peering_object(
    helm: chart.Helm, cluster: Any, release_namespace: str
) -> None:
    """Two acinode releases acting at once would both reconcile every VirtualNode: the shared peering name
    makes the second install fail instead."""
    peering = {"peering": {"name": f"peering-{release_namespace}"}}
    manifest = install_and_check(helm, cluster, "first", release_namespace, {**peering, "replicas": 1})
    with pytest.raises(chart.HelmError) as failure:
        helm.install("second", release_namespace, {**peering, "replicas": 1})
    assert "ClusterKopfPeering" in failure.value.stderr
    assert "exists and cannot be imported into the current release" in failure.value.stderr
    helm.uninstall("second", release_namespace, "--ignore-not-found")
    uninstall_and_check(helm, cluster, "first", release_namespace, manifest)
