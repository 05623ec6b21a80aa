"""The operator's own Kubernetes credentials on the real control plane: a token file rotated while its old token is
revoked, an exec-plugin kubeconfig whose short-lived credentials are fetched again as they expire, and start-up
failures reported on one line.

The operator runs as a ServiceAccount of its own (bound to cluster-admin, for this test only), never as the admin
client certificate of the test kubeconfig, so every request it makes carries the token under test.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import re
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.operator_process import ACINODE, FAST_SETTINGS, OperatorProcess
from support.virtualnodes import VIRTUAL_NODES
from support.waiting import wait_until

MakeVirtualNode = Callable[..., dict[str, Any]]


# --- The operator's ServiceAccount and kubeconfigs ---------------------------------------------------------------


class OperatorAccount:
    """A ServiceAccount bound to cluster-admin, its namespace, and tokens minted for it with TokenRequest."""

    def __init__(self, api: client.ApiClient, cluster: Any) -> None:
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.cluster = cluster
        self.name = f"op-{uuid.uuid4().hex[:6]}"
        self.namespace = f"creds-{self.name}"
        entry = json.loads(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
        self.server: str = entry["server"]
        self.ca_data: str = entry["certificate-authority-data"]

    def create(self) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace)))
        self.core.create_namespaced_service_account(
            self.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=self.name))
        )
        self.rbac.create_cluster_role_binding(
            client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=self.name),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name=self.name, namespace=self.namespace)
                ],
            )
        )

    def delete(self) -> None:
        self.rbac.delete_cluster_role_binding(self.name)
        self.core.delete_namespace(self.namespace)

    def holder(self, name: str) -> client.V1Secret:
        """A Secret whose deletion revokes the tokens bound to it."""
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name), string_data={"purpose": "token holder"}
        )
        return self.core.create_namespaced_secret(self.namespace, body)

    def token(self, bound_to: client.V1Secret | None = None, seconds: int = 3600) -> str:
        spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        if bound_to is not None:
            spec.bound_object_ref = client.V1BoundObjectReference(
                kind="Secret", api_version="v1", name=bound_to.metadata.name, uid=bound_to.metadata.uid
            )
        request = client.AuthenticationV1TokenRequest(spec=spec)
        result = self.core.create_namespaced_service_account_token(self.name, self.namespace, request)
        return str(result.status.token)

    def status_with(self, token: str) -> int:
        """The API server's answer to a request made with ``token`` (200 when accepted, 401 when refused)."""
        context = ssl.create_default_context(cadata=base64.b64decode(self.ca_data).decode())
        request = urllib.request.Request(
            f"{self.server}/api/v1/namespaces/kube-system", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    def kubeconfig(self, path: Path, user: dict[str, Any]) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "operator",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {"server": self.server, "certificate-authority-data": self.ca_data},
                        }
                    ],
                    "users": [{"name": "operator", "user": user}],
                    "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "operator"}}],
                },
                indent=2,
            )
        )
        return path


@pytest.fixture
def operator_account(api_client: client.ApiClient, cluster: Any) -> Iterator[OperatorAccount]:
    account = OperatorAccount(api_client, cluster)
    account.create()
    yield account
    account.delete()


EXEC_PLUGIN = """
import datetime, json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "runs"), "a") as runs:
    runs.write(datetime.datetime.now(datetime.timezone.utc).isoformat() + "\\n")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
lifetime = float(os.environ["PLUGIN_LIFETIME_SECONDS"])
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
status = {"token": open(os.path.join(here, "token")).read().strip(), "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""
PLUGIN_LIFETIME_SECONDS = 20
"""The plugin's credentials say they expire after this long; acinode fetches new ones after 3/4 of it (15 s)."""


@pytest.fixture
def operator_kubeconfig(
    request: pytest.FixtureRequest, operator_account: OperatorAccount, tmp_path: Path
) -> Path:
    """The operator's kubeconfig: ``token-file`` (a tokenFile, holding a token bound to Secret holder-a) or
    ``exec`` (a plugin printing a token of the account with a 20 s expirationTimestamp)."""
    folder = tmp_path / "credentials"
    folder.mkdir()
    if request.param == "token-file":
        (folder / "token").write_text(operator_account.token(operator_account.holder("holder-a")))
        return operator_account.kubeconfig(
            folder / "kubeconfig", {"tokenFile": "token"}
        )  # relative to the file
    (folder / "token").write_text(operator_account.token())
    (folder / "plugin.py").write_text(EXEC_PLUGIN)
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": ["-S", str(folder / "plugin.py")],
        "env": [{"name": "PLUGIN_LIFETIME_SECONDS", "value": str(PLUGIN_LIFETIME_SECONDS)}],
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    return operator_account.kubeconfig(folder / "kubeconfig", {"exec": plugin})


@pytest.fixture
def operator_process(
    operator_kubeconfig: Path, tmp_path: Path, crd_installed: None
) -> Iterator[OperatorProcess]:
    """``acinode run`` logged in with the kubeconfig under test (replaces the shared fixture of the same name, so
    that ``make_virtual_node`` uses this operator)."""
    process = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()
    print(process.log_text()[-5000:])


# --- Helpers -----------------------------------------------------------------------------------------------------


def is_ready(core: client.CoreV1Api, name: str) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or [])


def renew_time(coordination: client.CoordinationV1Api, name: str) -> datetime.datetime:
    renewed: datetime.datetime = coordination.read_namespaced_lease(name, "kube-node-lease").spec.renew_time
    return renewed


def pod_on(node: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [{"name": "web", "image": "nginx"}],
        },
    }


def runs_pod(core: client.CoreV1Api, namespace: str, node: str, name: str) -> None:
    core.create_namespaced_pod(namespace, pod_on(node, name))
    wait_until(
        lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running", 60, f"pod {name} Running"
    )


def virtual_node_gone(custom: client.CustomObjectsApi, core: client.CoreV1Api, name: str) -> bool:
    try:
        custom.get_cluster_custom_object(*VIRTUAL_NODES, name)
        return False
    except client.ApiException as err:
        if err.status != 404:
            raise
    try:
        core.read_node(name)
        return False
    except client.ApiException as err:
        return err.status == 404


def assert_clean_log(operator: OperatorProcess) -> str:
    log = operator.log_text()
    assert operator.is_running(), f"the operator exited:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-5000:]
    return log


# --- (a) A rotated token file, the old token revoked -------------------------------------------------------------


@pytest.mark.parametrize("operator_kubeconfig", ["token-file"], indirect=True)
def test_the_operator_keeps_working_across_a_token_rotation_and_revocation(
    operator_account: OperatorAccount,
    operator_kubeconfig: Path,
    operator_process: OperatorProcess,
    make_virtual_node: MakeVirtualNode,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    coordination = client.CoordinationV1Api(api_client)
    token_file = operator_kubeconfig.parent / "token"
    token_a = token_file.read_text()
    name = make_virtual_node()["metadata"]["name"]
    wait_until(lambda: is_ready(core_v1, name), 60, "the virtual node to be Ready")

    # Rotate: token B (bound to holder-b) into the file, then revoke token A by deleting its holder.
    token_file.write_text(operator_account.token(operator_account.holder("holder-b")))
    operator_account.core.delete_namespaced_secret("holder-a", operator_account.namespace)
    wait_until(lambda: operator_account.status_with(token_a) == 401, 60, "token A to be refused (401)")
    revoked_at = datetime.datetime.now(datetime.UTC)

    # The operator's own client: the Lease keeps being renewed (twice, 10 s apart) and a new pod runs.
    first = wait_until(
        lambda: (t := renew_time(coordination, name)) > revoked_at and t,
        30,
        "a lease renewal after the revocation",
    )
    wait_until(lambda: renew_time(coordination, name) > first, 30, "a second lease renewal")
    runs_pod(core_v1, namespace, name, "after-rotation")
    assert is_ready(core_v1, name)

    # Kopf's own requests (the finalizer of a deleted VirtualNode) get a 401 with token A, log in again, go on.
    custom_objects.delete_cluster_custom_object(*VIRTUAL_NODES, name)
    wait_until(lambda: virtual_node_gone(custom_objects, core_v1, name), 60, "the VirtualNode finalized")
    log = assert_clean_log(operator_process)
    assert "Re-authentication has finished" in log
    print(
        "401 retries of acinode's client:", log.count("401, retrying with new credentials"),
        "| Kopf re-authentications:", log.count("Re-authentication has finished"),
    )  # fmt: skip


# --- (b) An exec plugin with short-lived credentials -------------------------------------------------------------


@pytest.mark.parametrize("operator_kubeconfig", ["exec"], indirect=True)
def test_the_operator_works_with_an_exec_plugin_and_runs_it_again_as_credentials_expire(
    operator_kubeconfig: Path,
    operator_process: OperatorProcess,
    make_virtual_node: MakeVirtualNode,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    coordination = client.CoordinationV1Api(api_client)
    runs_file = operator_kubeconfig.parent / "runs"

    def runs() -> list[datetime.datetime]:
        text = runs_file.read_text() if runs_file.exists() else ""
        return [datetime.datetime.fromisoformat(line) for line in text.split()]

    name = make_virtual_node()["metadata"]["name"]
    wait_until(lambda: is_ready(core_v1, name), 60, "the virtual node to be Ready")
    runs_pod(core_v1, namespace, name, "with-exec-plugin")

    # Two more runs after the first credential's lifetime: the expiry is honoured, again and again.
    wait_until(lambda: len(runs()) >= 3, 3 * PLUGIN_LIFETIME_SECONDS + 30, "the plugin to run twice more")
    renewed = renew_time(coordination, name)
    wait_until(
        lambda: renew_time(coordination, name) > renewed, 30, "a lease renewal with the newest credential"
    )
    custom_objects.delete_cluster_custom_object(*VIRTUAL_NODES, name)
    wait_until(lambda: virtual_node_gone(custom_objects, core_v1, name), 60, "the VirtualNode finalized")

    log = assert_clean_log(operator_process)
    started = runs()
    gaps = [round((later - earlier).total_seconds(), 1) for earlier, later in itertools.pairwise(started)]
    # Cached until due (3/4 of its life), not fetched per request; never used past that (checked before each use).
    assert all(gap >= PLUGIN_LIFETIME_SECONDS * 3 / 4 - 1 for gap in gaps), gaps
    assert "Re-authentication has finished" in log  # Kopf logged in again as its credentials expired
    print("plugin runs:", len(started), "| seconds between runs:", gaps)


# --- (c) Start-up failures: one line, non-zero, no traceback -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kubeconfig_with(path: Path, server: str, user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


def malformed(path: Path) -> Path:
    path.write_text("clusters: [\n")
    return path


def failing_plugin(folder: Path) -> dict[str, Any]:
    script = folder / "fails.py"
    script.write_text("import sys\nsys.stderr.write('error: interactive login required\\n')\nsys.exit(2)\n")
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": ["-S", str(script)],
        }
    }


START_FAILURES: list[tuple[str, Callable[[Path], Path], str]] = [
    (
        "missing kubeconfig",
        lambda folder: folder / "absent",
        r"cannot start: kubeconfig .*/absent: No such file or directory",
    ),
    (
        "unreachable API server",
        lambda folder: kubeconfig_with(folder / "k", f"https://127.0.0.1:{closed_port()}", {"token": "t"}),
        r"cannot start: GET /api/v1/namespaces/kube-system: ClientConnectorError: .*\(credentials from kubeconfig .*\)",
    ),
    (
        "malformed kubeconfig",
        lambda folder: malformed(folder / "k"),
        r"cannot start: kubeconfig .*/k is not valid YAML",
    ),
    (
        "legacy auth-provider",
        lambda folder: kubeconfig_with(
            folder / "k", "https://127.0.0.1:1", {"auth-provider": {"name": "azure"}}
        ),
        r"cannot start: kubeconfig .*: user 'u': the legacy auth-provider 'azure' is not supported",
    ),
    (
        "failing exec plugin",
        lambda folder: kubeconfig_with(folder / "k", "https://127.0.0.1:1", failing_plugin(folder)),
        r"cannot start: exec plugin .*python.* failed with exit code 2: error: interactive login required",
    ),
]


@pytest.mark.parametrize(
    ("case", "make", "message"), START_FAILURES, ids=[case for case, _, _ in START_FAILURES]
)
def test_start_up_failures_are_one_line_and_a_non_zero_exit(
    tmp_path: Path, case: str, make: Callable[[Path], Path], message: str
) -> None:
    kubeconfig = make(tmp_path)
    result = subprocess.run(
        [str(ACINODE), "run", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **FAST_SETTINGS},
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert re.search(message, lines[0]), lines[0]
    assert "[ERROR" in lines[0]
