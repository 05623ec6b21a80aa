"""Fixtures (imported by tests/conftest.py) for the operator on the real control plane: the CRD, the ACI emulator, the operator process and
VirtualNodes wired to the emulator through the same settings a private cloud would use."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from contract import emulated
from support.operator_process import OperatorProcess
from support.virtualnodes import TOKEN_SECRET, VIRTUAL_NODES, declare_subnet, virtual_node_body
from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD = REPO_ROOT / "crds" / "virtualnodes.acinode.dev.yaml"


@pytest.fixture(scope="session")
def crd_installed(cluster: Any) -> None:
    cluster.kubectl("apply", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev", "--timeout=30s")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulated.Emulator]:
    # ACI's per-subscription create/delete limits (100 per 5 min) are tested in tests/contract; here one session
    # creates more groups than that, and the operator's behaviour under them is not what these tests check.
    running = emulated.start_emulator(
        tmp_path_factory.mktemp("emulator"),
        "--provisioning-delay", "0.2", "--log-level", "warning",
        "--creates-per-5m", "100000", "--creates-per-hour", "100000",
        "--deletes-per-5m", "100000", "--deletes-per-hour", "100000",
    )  # fmt: skip
    try:
        yield running
    finally:
        emulated.stop_emulator(running.process)


@pytest.fixture(scope="session")
def token_secret(core_v1_session: client.CoreV1Api, emulator: emulated.Emulator) -> str:
    """The emulator's bearer token in a Secret of the operator's namespace (StaticToken credentials)."""
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=TOKEN_SECRET),
        data={"token": base64.b64encode(emulator.token.encode()).decode()},
    )
    try:
        core_v1_session.create_namespaced_secret("default", body)
    except client.ApiException as err:
        if err.status != 409:
            raise
    return TOKEN_SECRET


@pytest.fixture(scope="session")
def core_v1_session(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom_objects(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def operator_process(cluster: Any, tmp_path: Path, crd_installed: None) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()
    print(process.log_text()[-5000:])


@pytest.fixture
def make_virtual_node(
    custom_objects: client.CustomObjectsApi,
    core_v1_session: client.CoreV1Api,
    emulator: emulated.Emulator,
    token_secret: str,
    operator_process: OperatorProcess,
) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create VirtualNodes pointing at the emulator; they are deleted (and awaited gone) after the test."""
    created: list[str] = []

    def make(name: str | None = None, **spec: Any) -> dict[str, Any]:
        name = name or f"vn-{uuid.uuid4().hex[:6]}"
        body = virtual_node_body(name, emulator, **spec)
        subnet = body["spec"]["azure"].get("subnetId")
        if subnet:
            declare_subnet(emulator, subnet)  # the VNet the admin made for this node
        created.append(name)
        result: dict[str, Any] = custom_objects.create_cluster_custom_object(*VIRTUAL_NODES, body)
        return result

    yield make
    if not operator_process.is_running():
        operator_process.start()  # a test stopped it; finalizers need it
    for name in created:
        try:
            custom_objects.delete_cluster_custom_object(*VIRTUAL_NODES, name)
        except client.ApiException as err:
            if err.status != 404:
                raise

    def all_gone() -> bool:
        names = {
            o["metadata"]["name"] for o in custom_objects.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
        }
        return not names & set(created)

    wait_until(all_gone, 60, "the operator to finalize the test's VirtualNodes")
