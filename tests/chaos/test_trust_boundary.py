"""The trust boundary, tried as an attacker would on the real control plane and the emulator (issue 16): a pod
creator who names another namespace's Secret, ConfigMap or service account (plain and percent-encoded traversal, in
every kind of reference), or an Azure identity nobody granted; and a VirtualNode author who points the operator's
real credentials at an endpoint of their own. Each attempt is refused with a precise message, nothing foreign
reaches ARM, the operator's log, Events or any container group, and a legitimate pod on the same node runs."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chaos.stack import ChaosStack, chaos_stack
from support.virtualnodes import VIRTUAL_NODES, virtual_node_body
from support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

MARKER = f"FOREIGN-{uuid.uuid4().hex}"
IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ops/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/acinode-operator"
)


@pytest.fixture(scope="module")
def stack(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosStack]:
    with chaos_stack(cluster, api_client, tmp_path_factory.mktemp("trust")) as running:
        yield running


def traversals(name: str, kind: str = "secrets") -> list[str]:
    return [
        f"../../kube-system/{kind}/{name}",
        f"..%2F..%2Fkube-system%2F{kind}%2F{name}",
        f"%2E%2E/%2E%2E/kube-system/{kind}/{name}",
    ]


def hostile_pods() -> list[tuple[str, dict[str, Any], str]]:
    """(pod name, spec fields, the field the refusal must name)."""
    out: list[tuple[str, dict[str, Any], str]] = []
    mount = [{"name": "v", "mountPath": "/data"}]
    for i, bad in enumerate(traversals("foreign")):
        out += [
            (
                f"secret-vol-{i}",
                {"volumes": [{"name": "v", "secret": {"secretName": bad}}], "mounts": mount},
                "spec.volumes[0].secret.secretName",
            ),
            (
                f"projected-{i}",
                {
                    "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": bad}}]}}],
                    "mounts": mount,
                },
                "spec.volumes[0].projected.sources[0].secret.name",
            ),
            (f"pull-{i}", {"imagePullSecrets": [{"name": bad}]}, "spec.imagePullSecrets[0].name"),
            (
                f"env-{i}",
                {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": bad, "key": "value"}}}]},
                "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
            ),
            (
                f"azurefile-{i}",
                {
                    "volumes": [{"name": "v", "azureFile": {"secretName": bad, "shareName": "s"}}],
                    "mounts": mount,
                },
                "spec.volumes[0].azureFile.secretName",
            ),
        ]
    for i, bad in enumerate(traversals("foreign", "configmaps")):
        out.append(
            (
                f"configmap-{i}",
                {"volumes": [{"name": "v", "configMap": {"name": bad}}], "mounts": mount},
                "spec.volumes[0].configMap.name",
            )
        )
    out += [
        (
            "identity",
            {"annotations": {"aci.acinode.dev/identities": IDENTITY}},
            "metadata.annotations['aci.acinode.dev/identities']",
        ),
        (
            "acr-identity",
            {"annotations": {"aci.acinode.dev/acr-identity": IDENTITY}},
            "metadata.annotations['aci.acinode.dev/acr-identity']",
        ),
    ]
    return out


def pod_body(name: str, node: str, fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    container: dict[str, Any] = {"name": "main", "image": "nginx"}
    if "mounts" in fields:
        container["volumeMounts"] = fields.pop("mounts")
    if "env" in fields:
        container["env"] = fields.pop("env")
    annotations = fields.pop("annotations", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,  # skips the scheduler and its taint: the taint is no boundary
            "automountServiceAccountToken": False,
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [container],
            **fields,
        },
    }


def events_for(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    items = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [f"{e.reason}: {e.message}" for e in items]


def test_hostile_references_and_identities_are_refused(stack: ChaosStack) -> None:
    core, ns, node = stack.core, stack.namespace, stack.node
    for kind in ("secret", "configmap"):
        with contextlib.suppress(client.ApiException):
            if kind == "secret":
                core.create_namespaced_secret(
                    "kube-system",
                    client.V1Secret(
                        metadata=client.V1ObjectMeta(name="foreign"), string_data={"value": MARKER}
                    ),
                )
            else:
                core.create_namespaced_config_map(
                    "kube-system",
                    client.V1ConfigMap(metadata=client.V1ObjectMeta(name="foreign"), data={"v": MARKER}),
                )
    # The bystander: a legitimate pod on the same node, with a Secret of its own namespace.
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="own"), string_data={"value": "own-value"})
    )
    bystander = pod_body(
        "bystander",
        node,
        {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "own", "key": "value"}}}]},
    )
    core.create_namespaced_pod(ns, bystander)

    cases: list[tuple[str, dict[str, Any], str]] = []
    by_api_server: list[str] = []
    for name, fields, path in hostile_pods():
        try:
            core.create_namespaced_pod(ns, pod_body(name, node, fields))
        except client.ApiException as err:
            # Kubernetes' own validation (e.g. env references) refuses some names at once.
            assert err.status == 422 and path in (err.body or ""), f"{name}: {err.status} {err.body}"
            by_api_server.append(name)
            continue
        cases.append((name, fields, path))
    print(f"refused by the API server: {by_api_server}; left to acinode: {[c[0] for c in cases]}")
    # What the API server lets through (volume, projected, pull-secret and azureFile names, identities) is ours.
    assert len(cases) >= 14

    def refusal(name: str) -> str | None:
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.reason != "ProviderFailed":
            return None
        events = events_for(core, ns, name)
        return " | ".join(events) if events else None

    problems: list[str] = []
    for name, _fields, path in cases:
        try:
            text = wait_until(lambda n=name: refusal(n), 120, f"{name} refused")
        except AssertionError as err:
            problems.append(f"{name}: {err}")
            continue
        if path not in text:
            problems.append(f"{name}: the refusal does not name {path}: {text[:300]}")
    wait_until(
        lambda: core.read_namespaced_pod("bystander", ns).status.phase == "Running",
        120,
        "the bystander Running",
    )

    groups = stack.groups()
    refused = {name for name, _f, _p in cases}
    assert not [g for g in groups if g["tags"].get("acinode.pod") in refused], "a refused pod got a group"
    assert [g["tags"].get("acinode.pod") for g in groups if g["tags"].get("acinode.pod") == "bystander"]
    # Nothing foreign anywhere: the groups ARM holds, the operator's log, the pods' Events and statuses.
    everything = json.dumps(groups) + stack.operator.log_text()
    for name in [*refused, "bystander"]:
        everything += json.dumps(events_for(core, ns, name))
        everything += json.dumps(core.read_namespaced_pod(name, ns).status.to_dict(), default=str)
    assert MARKER not in everything
    assert base64.b64encode(MARKER.encode()).decode() not in everything
    assert stack.operator.is_running()
    assert not problems, "\n".join(problems)


class ConnectionCounter:
    """A loopback TCP listener that counts who connects (the endpoint a hostile VirtualNode names)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_a_virtual_node_cannot_send_the_operators_credentials_elsewhere(stack: ChaosStack) -> None:
    core = stack.core
    custom: Any = client.CustomObjectsApi(stack.api)
    attacker = ConnectionCounter()
    secret_name = f"sp-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret_name),
            string_data={"tenantId": "t", "clientId": "c", "clientSecret": MARKER},
        ),
    )
    names: list[str] = []
    try:
        cases = {
            "sp": {"type": "ServicePrincipal", "secretRef": {"name": secret_name}},
            "wi": {"type": "WorkloadIdentity"},
            "default": {"type": "Default"},
        }
        for case, credentials in cases.items():
            name = f"vn-hostile-{case}-{uuid.uuid4().hex[:4]}"
            body = virtual_node_body(name, stack.emulator)
            body["spec"]["azure"]["cloud"] = {
                "name": "Custom",
                "resourceManagerEndpoint": f"https://127.0.0.1:{attacker.port}",
                "authorityHost": f"https://127.0.0.1:{attacker.port}",
            }
            body["spec"]["azure"]["credentials"] = credentials
            custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
            names.append(name)

        def refused(name: str) -> str | None:
            vn = custom.get_cluster_custom_object(*VIRTUAL_NODES, name)
            for condition in (vn.get("status") or {}).get("conditions", []):
                if condition["type"] == "Ready" and condition["status"] == "False":
                    message = str(condition.get("message", ""))
                    return message if "ALLOW_CUSTOM_CLOUD_CREDENTIALS" in message else None
            return None

        for name in names:
            wait_until(lambda n=name: refused(n), 90, f"{name} refused with the reason")
        assert attacker.connections == 0, "the operator connected to the VirtualNode's endpoint"
        assert MARKER not in stack.operator.log_text()

        # A Secret of another namespace: refused by the API server itself.
        body = virtual_node_body(f"vn-foreign-secret-{uuid.uuid4().hex[:4]}", stack.emulator)
        body["spec"]["azure"]["credentials"]["secretRef"]["namespace"] = "kube-system"
        with pytest.raises(client.ApiException) as caught:
            custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
        assert caught.value.status == 422
        assert "reads Secrets only from its own namespace" in (caught.value.body or "")
        assert any(
            c.type == "Ready" and c.status == "True" for c in core.read_node(stack.node).status.conditions
        ), "the legitimate node stays Ready"
    finally:
        attacker.close()
        for name in names:
            with contextlib.suppress(client.ApiException):
                custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)
            with contextlib.suppress(client.ApiException):
                custom.patch_cluster_custom_object(*VIRTUAL_NODES, name, {"metadata": {"finalizers": None}})
        core.delete_namespaced_secret(secret_name, "default")
