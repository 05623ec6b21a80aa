"""No secret value ever leaves the places it belongs: marker values planted in a Secret (env ``secureValue`` and a
secret volume), a registry password (imagePullSecret) and the ARM token are searched for in everything the run
produced — operator log, Events, pod status, the groups ARM shows (tags included), the emulator's log — and must
appear nowhere. The emulator's own persisted state holds secure values as ARM does, and is private (0600)."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chaos.stack import ChaosStack, chaos_stack
from helm import chart
from helm.release import installed_release
from support import arm
from support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(
    cluster: Any, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosStack]:
    with chaos_stack(cluster, api_client, tmp_path_factory.mktemp("security")) as running:
        yield running


def test_no_secret_value_appears_anywhere(stack: ChaosStack) -> None:
    core, ns, node = stack.core, stack.namespace, stack.node
    env_marker = f"MARKER-ENV-{uuid.uuid4().hex}"
    file_marker = f"MARKER-FILE-{uuid.uuid4().hex}"
    registry_marker = f"MARKER-REGISTRY-{uuid.uuid4().hex}"
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="planted"),
            string_data={"env": env_marker, "file": file_marker},
        ),
    )
    auth = base64.b64encode(f"user:{registry_marker}".encode()).decode()
    dockerconfig = {
        "auths": {"myregistry.example.com": {"username": "user", "password": registry_marker, "auth": auth}}
    }
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pull"),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": json.dumps(dockerconfig)},
        ),
    )
    env = [{"name": "PLANTED", "valueFrom": {"secretKeyRef": {"name": "planted", "key": "env"}}}]
    base = {
        "nodeName": node,
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
        "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "pull"}],
    }
    pods = {
        "carrier": {
            **base,
            "volumes": [{"name": "s", "secret": {"secretName": "planted"}}],
            "containers": [
                {
                    "name": "main",
                    "image": "myregistry.example.com/team/app:1",
                    "env": env,
                    "volumeMounts": [{"name": "s", "mountPath": "/secrets"}],
                }
            ],
        },
        # Refused (a secret in the command line would be shown in clear by ACI): the refusal must not quote it.
        "leaky": {
            **base,
            "containers": [
                {"name": "main", "image": "nginx", "command": ["sh", "-c", "echo $(PLANTED)"], "env": env}
            ],
        },
        # Fails to pull: the pull error must not quote the registry password.
        "nopull": {
            **base,
            "containers": [{"name": "main", "image": "registry.example.invalid/app:1", "env": env}],
        },
    }
    for name, spec in pods.items():
        core.create_namespaced_pod(
            ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        )
    wait_until(
        lambda: core.read_namespaced_pod("carrier", ns).status.phase == "Running", 90, "carrier Running"
    )
    wait_until(
        lambda: core.read_namespaced_pod("leaky", ns).status.reason == "ProviderFailed", 60, "leaky refused"
    )

    def pull_failed() -> bool:
        statuses = core.read_namespaced_pod("nopull", ns).status.container_statuses or []
        return any(
            s.state.waiting and s.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")
            for s in statuses
        )

    wait_until(pull_failed, 60, "nopull failing to pull")

    produced: dict[str, str] = {
        "operator log": stack.operator.log_text(),
        "emulator log": (stack.emulator.state_dir / "emulator.log").read_text(errors="replace"),
        "events": json.dumps(stack.api.sanitize_for_serialization(core.list_namespaced_event(ns).items)),
        "pods": json.dumps(stack.api.sanitize_for_serialization(core.list_namespaced_pod(ns).items)),
        "groups (list)": json.dumps(stack.groups()),
    }
    for group in stack.groups():
        produced[f"group {group['name']}"] = json.dumps(
            arm.get_group(stack.emulator, stack.resource_group, group["name"])
        )
    markers = {
        "env secureValue": env_marker,
        "secret file": file_marker,
        "registry password": registry_marker,
        "ARM token": stack.emulator.token,
    }
    leaks = [
        f"{what} in {where}"
        for where, text in produced.items()
        for what, marker in markers.items()
        if marker in text
    ]
    assert not leaks, leaks
    # The carrier really carried them to ARM (so the scan above was meaningful) — held only in the private state.
    state = stack.emulator.state_dir / "state.json"
    wait_until(lambda: env_marker in state.read_text(), 30, "the emulator to persist the group")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


@pytest.mark.chaos_long
def test_operator_account_cannot_enumerate_or_read_foreign_secrets(
    cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The chart's RBAC, asked with `kubectl auth can-i --as` (the approach of tests/e2e/test_helm_rbac.py):
    Secrets are read one by one by name, for the pods that reference them — never listed or watched, never
    written."""
    helm = chart.build(tmp_path_factory.mktemp("helm-home")).with_kubeconfig(cluster.kubeconfig)
    namespace = f"acinode-sec-{uuid.uuid4().hex[:6]}"
    with installed_release(
        helm, cluster, "acinode", namespace, {"peering": {"name": f"peering-{namespace}"}}
    ) as rel:

        def can_i(*args: str) -> str:
            out: str = cluster.kubectl("auth", "can-i", *args, f"--as={rel.user}", check=False)
            return out.strip()

        refused = [
            ("list", "secrets", "--all-namespaces"),
            ("watch", "secrets", "--all-namespaces"),
            ("list", "secrets", "-n", "kube-system"),
            ("list", "secrets", "-n", namespace),
            ("create", "secrets", "-n", "shop"),
            ("update", "secrets/x", "-n", "shop"),
            ("patch", "secrets/x", "-n", "shop"),
            ("delete", "secrets/x", "-n", "shop"),
        ]
        answers = {" ".join(args): can_i(*args) for args in refused}
        assert all(a == "no" for a in answers.values()), answers
