"""High availability as the chart configures it: two replicas of the StatefulSet, both working. Each VirtualNode is
owned through its Lease in the release namespace (holder: the pod name, from the downward API), the replicas share
the VirtualNodes, and when one replica stops, the other takes its VirtualNodes over (their node Leases keep being
renewed). Both run under the chart's ServiceAccount token: the chart's RBAC and lease guard admit all of it."""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from contract import emulated
from helm import chart
from helm.release import ChartReplica, Installed, installed_release, service_account_kubeconfig
from support.virtualnodes import TOKEN_SECRET, VIRTUAL_NODES, virtual_node_body
from support.waiting import wait_until


@pytest.fixture(scope="module")
def installed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    helm = chart.build(tmp_path_factory.mktemp("helm-home")).with_kubeconfig(cluster.kubeconfig)
    namespace = f"acinode-ha-{uuid.uuid4().hex[:6]}"
    with installed_release(
        helm, cluster, "acinode", namespace, {"peering": {"name": f"peering-{namespace}"}}
    ) as rel:
        yield rel


@pytest.fixture
def replicas(
    cluster: Any, installed: Installed, tmp_path: Path, core_v1: client.CoreV1Api, emulator: emulated.Emulator
) -> Iterator[list[ChartReplica]]:
    token = base64.b64encode(emulator.token.encode()).decode()
    core_v1.create_namespaced_secret(
        installed.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=TOKEN_SECRET), data={"token": token}),
    )
    kubeconfig = service_account_kubeconfig(cluster, installed, tmp_path / "sa.kubeconfig")
    started = [ChartReplica(installed, i, kubeconfig, tmp_path / f"replica-{i}.log") for i in range(2)]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()
            print(f"--- {replica.pod_name}\n{replica.log_text()[-3000:]}")


def test_both_replicas_work_and_one_takes_over_the_others_virtual_node_when_it_stops(
    installed: Installed,
    replicas: list[ChartReplica],
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
) -> None:
    custom: Any = client.CustomObjectsApi(api_client)
    coordination: Any = client.CoordinationV1Api(api_client)
    namespace = installed.namespace

    def holder(lease: str) -> str | None:
        try:
            found = coordination.read_namespaced_lease(lease, namespace)
        except client.ApiException:
            return None
        value: str | None = found.spec.holder_identity
        return value

    for replica in replicas:
        replica.start()
    for replica in replicas:
        wait_until(lambda r=replica: holder(f"acinode-replica-{r.pod_name}") == r.pod_name, 60, "presence")

    names = [f"vn-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(name, emulator))
    try:
        pods = {r.pod_name for r in replicas}
        owners = {
            name: wait_until(
                lambda n=name: holder(f"acinode-vn-{n}") if holder(f"acinode-vn-{n}") in pods else None,
                60,
                f"{name} to be served",
            )
            for name in names
        }

        # Two VirtualNodes, two replicas: one each (fair share 1). A replica that took both (the other was slow to
        # see them) gives one up: that improves the spread, so it converges.
        def spread() -> dict[str, str] | None:
            current = {name: holder(f"acinode-vn-{name}") or "" for name in names}
            return current if set(current.values()) == pods else None

        owners = wait_until(spread, 90, "one VirtualNode per replica")

        def renewed_after(name: str, moment: datetime.datetime) -> datetime.datetime | None:
            lease = coordination.read_namespaced_lease(name, "kube-node-lease")
            renew: datetime.datetime = lease.spec.renew_time
            return renew if renew > moment else None

        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        for name in names:
            wait_until(lambda n=name: renewed_after(n, epoch), 60, f"{name}'s node Lease renewed")

        # Pod 0 goes away (a rollout, a drain): it releases its Lease on the way out; pod 1 serves both.
        leaving = next(r for r in replicas if r.pod_name == owners[names[0]])
        staying = next(r for r in replicas if r is not leaving)
        leaving.stop()
        stopped_at = datetime.datetime.now(datetime.UTC)
        wait_until(
            lambda: holder(f"acinode-vn-{names[0]}") == staying.pod_name, 30, "the other replica to take over"
        )
        wait_until(
            lambda: renewed_after(names[0], stopped_at), 30, "the node Lease renewed by the new holder"
        )
        assert holder(f"acinode-vn-{names[1]}") == staying.pod_name
    finally:
        for name in names:
            custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)

    def finalized() -> bool:
        items = custom.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
        return not {o["metadata"]["name"] for o in items} & set(names)

    wait_until(finalized, 60, "the VirtualNodes finalized")
    for replica in replicas:
        assert "Forbidden" not in replica.log_text(), replica.pod_name
        assert "Traceback" not in replica.log_text(), replica.pod_name
