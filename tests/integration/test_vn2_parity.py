"""Pods written for AKS virtual nodes v2 (VN2), on the real control plane with `acinode run` and the emulator.

Each VN2 annotation is either honoured (the group in the emulator shows it) or refused (the pod is Pending with
reason ProviderFailed and an Event naming the annotation); PVCs on Azure Files PVs (in-tree and CSI) mount their
share; lifecycle hooks, host aliases and native sidecars are refused as docs/mapping.md says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from acinode.mapping import options
from contract import emulated
from support import arm
from support.virtualnodes import virtual_node_body
from support.waiting import wait_until

MakeVirtualNode = Callable[..., dict[str, Any]]

POLICY = "cGFja2FnZSBwb2xpY3k="  # base64 of a (tiny) Rego policy
CMK = {
    options.VN2_CMK_VAULT_BASE_URL: "https://shopvault.vault.azure.net",
    options.VN2_CMK_KEY_NAME: "groups",
    options.VN2_CMK_KEY_VERSION: "0123456789abcdef0123456789abcdef",
}


def _identity(subscription: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/"
        f"userAssignedIdentities/{name}"
    )


def _pod(node: str, name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "nginx", **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [container],
            **spec,
        },
    }


@pytest.fixture
def vnet_node(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator
) -> dict[str, Any]:
    """A VNet virtual node with cluster DNS, the kube-proxy extension and one allowed identity."""
    name = f"vn2-{uuid.uuid4().hex[:6]}"
    azure = virtual_node_body(name, emulator)["spec"]["azure"]
    subnet = (
        f"/subscriptions/{azure['subscriptionId']}/resourceGroups/{azure['resourceGroup']}/providers/"
        "Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    )
    core_v1.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"kubeconfig-{name}"), string_data={"kubeconfig": "k"}
        ),
    )
    node = make_virtual_node(
        name,
        azure={
            **azure,
            "subnetId": subnet,
            "allowedIdentities": [{"resourceId": _identity(azure["subscriptionId"], "app")}],
        },
        dns={"clusterDNS": ["10.0.0.10"]},
        kubeProxy={
            "enabled": True,
            "clusterCIDR": "10.240.0.0/16",
            "kubeconfigSecretRef": {"name": f"kubeconfig-{name}"},
        },
    )
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True" for c in core_v1.read_node(name).status.conditions or []
        ),
        30,
        "the virtual node to be Ready",
    )
    return node


def _group_of(emulator: emulated.Emulator, node: dict[str, Any], namespace: str, pod: str) -> dict[str, Any]:
    rg = node["spec"]["azure"]["resourceGroup"]

    def found() -> dict[str, Any] | None:
        for listed in arm.list_groups(emulator, rg):
            tags = listed.get("tags") or {}
            if tags.get("acinode.pod") == pod and tags.get("acinode.namespace") == namespace:
                return arm.get_group(emulator, rg, listed["name"])
        return None

    return wait_until(found, 60, f"the group of {pod}")


def _refusal(core: client.CoreV1Api, namespace: str, pod: str) -> str:
    """The ProviderCreateFailed Event's message, once the pod is Pending with reason ProviderFailed."""
    wait_until(
        lambda: core.read_namespaced_pod(pod, namespace).status.reason == "ProviderFailed",
        60,
        f"{pod} to be refused (ProviderFailed)",
    )
    assert core.read_namespaced_pod(pod, namespace).status.phase == "Pending"
    events = wait_until(
        lambda: [
            e
            for e in core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
            if e.reason == "ProviderCreateFailed"
        ],
        30,
        f"a ProviderCreateFailed Event on {pod}",
    )
    return str(events[0].message)


def test_vn2_annotations_are_honoured_or_refused_by_name(
    vnet_node: dict[str, Any], core_v1: client.CoreV1Api, emulator: emulated.Emulator, namespace: str
) -> None:
    node = vnet_node["metadata"]["name"]
    azure = vnet_node["spec"]["azure"]
    allowed, other = _identity(azure["subscriptionId"], "app"), _identity(azure["subscriptionId"], "admin")
    honoured: dict[str, tuple[dict[str, str], Callable[[dict[str, Any]], bool]]] = {
        "plain": ({}, lambda g: [e["name"] for e in g["properties"]["extensions"]] == ["kube-proxy"]),
        "cce": (
            {options.VN2_CCE_POLICY: POLICY},
            lambda g: (
                g["properties"]["sku"] == "Confidential"
                and g["properties"]["confidentialComputeProperties"]["ccePolicy"] == POLICY
                and not g["properties"].get("extensions")
            ),
        ),
        "identity": (
            {options.VN2_IDENTITY: allowed},
            lambda g: list(g["identity"]["userAssignedIdentities"]) == [allowed],
        ),
        "zones": ({options.VN2_ZONES: "2"}, lambda g: g.get("zones") == ["2"]),
        "subnet": (
            {options.VN2_SUBNET: azure["subnetId"]},
            lambda g: [s["id"] for s in g["properties"]["subnetIds"]] == [azure["subnetId"]],
        ),
        "no-kube-proxy": (
            {options.VN2_INJECT_KUBE_PROXY: "false"},
            lambda g: not g["properties"].get("extensions"),
        ),
        "no-dns": ({options.VN2_INJECT_DNS: "false"}, lambda g: not g["properties"].get("dnsConfig")),
        "dns": (
            {options.VN2_INJECT_DNS: "true"},
            lambda g: g["properties"]["dnsConfig"]["nameServers"] == ["10.0.0.10"],
        ),
        "tags": (
            {options.VN2_CUSTOM_TAGS: "env=Dev;project=silverSpoon"},
            lambda g: g["tags"]["env"] == "Dev" and g["tags"]["project"] == "silverSpoon",
        ),
        "cmk": (
            CMK,
            lambda g: g["properties"]["encryptionProperties"]["keyName"] == "groups",
        ),
    }
    refused: dict[str, tuple[dict[str, str], str]] = {
        "identity-denied": ({options.VN2_IDENTITY: other}, options.VN2_IDENTITY),
        "two-zones": ({options.VN2_ZONES: "1;2"}, options.VN2_ZONES),
        "other-subnet": (
            {options.VN2_SUBNET: azure["subnetId"].replace("/aci", "/other")},
            options.VN2_SUBNET,
        ),
        "cce-kube-proxy": (
            {options.VN2_CCE_POLICY: POLICY, options.VN2_INJECT_KUBE_PROXY: "true"},
            options.VN2_INJECT_KUBE_PROXY,
        ),
        "image-cache": ({options.VN2_IMAGE_CACHE_POD: "true"}, options.VN2_IMAGE_CACHE_POD),
        "bad-tags": ({options.VN2_CUSTOM_TAGS: "acinode.pod=evil"}, options.VN2_CUSTOM_TAGS),
        "unknown": ({options.VN2_PREFIX + "standbypool": "x"}, options.VN2_PREFIX + "standbypool"),
    }
    for name, (asked, _) in honoured.items():
        core_v1.create_namespaced_pod(namespace, _pod(node, f"ok-{name}", asked))
    for name, (asked, _) in refused.items():
        core_v1.create_namespaced_pod(namespace, _pod(node, f"no-{name}", asked))

    for name, (_, shows) in honoured.items():
        group = _group_of(emulator, vnet_node, namespace, f"ok-{name}")
        assert shows(group), (name, group)
        wait_until(
            lambda n=name: core_v1.read_namespaced_pod(f"ok-{n}", namespace).status.phase == "Running",
            60,
            f"ok-{name} Running",
        )
    for name, (_, key) in refused.items():
        assert key in _refusal(core_v1, namespace, f"no-{name}"), name
    groups = {g["tags"]["acinode.pod"] for g in arm.list_groups(emulator, azure["resourceGroup"])}
    assert not {p for p in groups if p.startswith("no-")}, "a refused pod has no group"


def test_hooks_host_aliases_and_native_sidecars_are_refused_naming_the_field(
    vnet_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    node = vnet_node["metadata"]["name"]
    cases = {
        "hooks": (
            {"container": {"lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}},
            "spec.containers[0].lifecycle",
        ),
        "aliases": ({"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}]}, "spec.hostAliases"),
        "sidecar": (
            {"initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]},
            "spec.initContainers[0].restartPolicy",
        ),
    }
    for name, (spec, _) in cases.items():
        core_v1.create_namespaced_pod(namespace, _pod(node, f"no-{name}", **spec))
    for name, (_, field) in cases.items():
        assert field in _refusal(core_v1, namespace, f"no-{name}"), name


def _azure_files_objects(namespace: str, suffix: str, admin_namespace: str) -> list[tuple[str, Any]]:
    """A storage account Secret in the pod's namespace and one in an admin namespace; an in-tree PV and a CSI PV,
    each pre-bound to a claim of the pod's namespace."""
    account = {"azurestorageaccountname": "shopfiles", "azurestorageaccountkey": "c2VjcmV0"}
    in_tree = client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=f"tree-{suffix}"),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "5Gi"},
            access_modes=["ReadWriteMany"],
            storage_class_name="",
            claim_ref=client.V1ObjectReference(namespace=namespace, name="tree"),
            azure_file=client.V1AzureFilePersistentVolumeSource(secret_name="storage", share_name="assets"),
        ),
    )
    csi = client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=f"csi-{suffix}"),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "5Gi"},
            access_modes=["ReadWriteMany"],
            storage_class_name="",
            claim_ref=client.V1ObjectReference(namespace=namespace, name="csi"),
            csi=client.V1CSIPersistentVolumeSource(
                driver="file.csi.azure.com",
                volume_handle=f"rg#shopfiles#uploads#{suffix}",
                read_only=True,
                node_stage_secret_ref=client.V1SecretReference(name="storage", namespace=admin_namespace),
            ),
        ),
    )
    claims = [
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=claim),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=f"{claim}-{suffix}",
                resources=client.V1VolumeResourceRequirements(requests={"storage": "5Gi"}),
            ),
        )
        for claim in ("tree", "csi")
    ]
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="storage"), string_data=account)
    return [("secret", secret), ("pv", in_tree), ("pv", csi), *[("pvc", c) for c in claims]]


def test_a_deployment_with_claims_on_azure_files_pvs_runs_with_both_shares(
    vnet_node: dict[str, Any],
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    admin = f"storage-admin-{suffix}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=admin)))
    try:
        for kind, obj in _azure_files_objects(namespace, suffix, admin):
            if kind == "secret":
                core_v1.create_namespaced_secret(namespace, obj)
                core_v1.create_namespaced_secret(admin, obj)
            elif kind == "pv":
                core_v1.create_persistent_volume(obj)
            else:
                core_v1.create_namespaced_persistent_volume_claim(namespace, obj)
        template = _pod(
            vnet_node["metadata"]["name"],
            "unused",
            container={
                "volumeMounts": [
                    {"name": "tree", "mountPath": "/srv/assets"},
                    {"name": "csi", "mountPath": "/srv/uploads"},
                ]
            },
            volumes=[
                {"name": "tree", "persistentVolumeClaim": {"claimName": "tree"}},
                {"name": "csi", "persistentVolumeClaim": {"claimName": "csi"}},
            ],
        )
        del template["spec"]["nodeName"]
        template["spec"]["nodeSelector"] = {"acinode.dev/virtual-node": vnet_node["metadata"]["name"]}
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "files"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "files"}},
                "template": {"metadata": {"labels": {"app": "files"}}, "spec": template["spec"]},
            },
        }
        client.AppsV1Api(api_client).create_namespaced_deployment(namespace, body)
        pod = wait_until(
            lambda: next(
                (
                    p
                    for p in core_v1.list_namespaced_pod(namespace, label_selector="app=files").items
                    if p.status.phase == "Running"
                ),
                None,
            ),
            90,
            "the Deployment's pod Running",
        )
        group = _group_of(emulator, vnet_node, namespace, pod.metadata.name)
        shares = {v["name"]: v["azureFile"] for v in group["properties"]["volumes"] if "azureFile" in v}
        assert shares["tree"]["shareName"] == "assets" and shares["tree"]["storageAccountName"] == "shopfiles"
        assert not shares["tree"].get("readOnly")
        assert shares["csi"]["shareName"] == "uploads" and shares["csi"]["readOnly"] is True
        mounts = group["properties"]["containers"][0]["properties"]["volumeMounts"]
        paths = {m["name"]: m["mountPath"] for m in mounts}
        assert (paths["tree"], paths["csi"]) == ("/srv/assets", "/srv/uploads")
    finally:
        core_v1.delete_namespace(admin)
        for name in (f"tree-{suffix}", f"csi-{suffix}"):
            core_v1.delete_persistent_volume(name)


def test_a_claim_on_another_namespaces_volume_is_refused(
    vnet_node: dict[str, Any], core_v1: client.CoreV1Api, namespace: str
) -> None:
    """A claim bound (by its volumeName) to a PV whose claimRef names another namespace never reaches the share."""
    suffix = uuid.uuid4().hex[:6]
    core_v1.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=f"theirs-{suffix}"),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "1Gi"},
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                claim_ref=client.V1ObjectReference(namespace="kube-system", name="theirs"),
                azure_file=client.V1AzureFilePersistentVolumeSource(secret_name="storage", share_name="bank"),
            ),
        )
    )
    try:
        core_v1.create_namespaced_persistent_volume_claim(
            namespace,
            client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="grab"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteMany"],
                    storage_class_name="",
                    volume_name=f"theirs-{suffix}",
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                ),
            ),
        )
        body = _pod(
            vnet_node["metadata"]["name"],
            "grabber",
            container={"volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "grab"}}],
        )
        core_v1.create_namespaced_pod(namespace, body)
        # The PV controller never binds the claim (the PV is promised elsewhere): the pod waits, never mounted.
        wait_until(
            lambda: any(
                "grab" in (e.message or "") and "not bound" in (e.message or "")
                for e in core_v1.list_namespaced_event(
                    namespace, field_selector="involvedObject.name=grabber"
                ).items
            ),
            60,
            "an Event saying the claim is not bound",
        )
        assert core_v1.read_namespaced_pod("grabber", namespace).status.phase == "Pending"
    finally:
        core_v1.delete_persistent_volume(f"theirs-{suffix}")
