"""Fixtures shared by every test folder: the real control plane, API clients and throwaway namespaces.

Tests that need Kubernetes get the project's own control plane (built from the Kubernetes Go modules and started
on loopback for the session), or an existing cluster when ``ACINODE_TEST_KUBECONFIG`` names its kubeconfig.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "controlplane"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

import kubecluster  # noqa: E402

from support.operator_fixtures import *  # noqa: E402, F403  (fixtures for integration and e2e tests)

CLUSTER_FOLDERS = ("integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in CLUSTER_FOLDERS for part in Path(str(item.fspath)).relative_to(REPO_ROOT).parts):
            item.add_marker(pytest.mark.cluster)
    # Fast tests first: a broken unit shows in seconds, before the control plane is even started.
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)


@dataclass
class Cluster:
    """What tests know of the cluster under test."""

    kubeconfig: Path
    kubectl_command: list[str]
    control_plane: kubecluster.ControlPlane | None
    """The project's own control plane, or None for an existing cluster (ACINODE_TEST_KUBECONFIG)."""

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        result = subprocess.run(
            [*self.kubectl_command, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    existing = os.environ.get("ACINODE_TEST_KUBECONFIG")
    if existing:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.fail("ACINODE_TEST_KUBECONFIG is set but no kubectl is on PATH")
        yield Cluster(Path(existing), [kubectl], None)
        return
    state_dir = tmp_path_factory.mktemp("cluster")
    with kubecluster.ControlPlane(state_dir) as cp:
        assert cp.binary is not None
        yield Cluster(cp.kubeconfig, [str(cp.binary), "kubectl"], cp)


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core_v1.delete_namespace(name)
