"""High availability as the chart configures it: two replicas of the StatefulSet peer through the release's
ClusterKopfPeering with ordinal priorities; pod 0 acts and pod 1 stands by, and when pod 0 stops, pod 1 takes over
its virtual nodes (the Lease keeps being renewed). Both run under the chart's ServiceAccount token."""

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


def test_standby_replica_takes_over_when_the_active_one_stops(
    installed: Installed,
    replicas: list[ChartReplica],
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
) -> None:
    custom: Any = client.CustomObjectsApi(api_client)
    coordination: Any = client.CoordinationV1Api(api_client)
    active, standby = replicas

    def keepalives() -> dict[str, Any]:
        peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", installed.peering)
        status: dict[str, Any] = peering.get("status") or {}
        return status

    active.start()
    wait_until(lambda: active.pod_name in keepalives(), 60, "pod 0's keep-alive")
    standby.start()
    wait_until(lambda: standby.pod_name in keepalives(), 60, "pod 1's keep-alive")
    peers = keepalives()
    # Distinct priorities from the ordinals: pod N has -N.
    assert peers[active.pod_name]["priority"] == 0
    assert peers[standby.pod_name]["priority"] == -1
    # Kopf starts every replica paused until it has read the peering; pod 1 then stays paused.
    wait_until(
        lambda: "Pausing the watch-stream for virtualnodes" in standby.log_text(), 60, "pod 1 to stand by"
    )
    assert "Resuming operations" not in standby.log_text()

    name = f"vn-{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(*VIRTUAL_NODES, virtual_node_body(name, emulator))
    try:

        def renewed_after(moment: datetime.datetime) -> datetime.datetime | None:
            lease = coordination.read_namespaced_lease(name, "kube-node-lease")
            renew: datetime.datetime = lease.spec.renew_time
            return renew if renew > moment else None

        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        first = wait_until(lambda: renewed_after(epoch), 60, "pod 0 to register the node and renew its Lease")
        assert "Resuming operations" not in standby.log_text(), "the standby stays idle while pod 0 acts"

        # Pod 0 goes away (a rollout, a drain): its keep-alive is withdrawn on the way out.
        active.stop()
        wait_until(lambda: active.pod_name not in keepalives(), 30, "pod 0's keep-alive to be withdrawn")
        wait_until(lambda: "Resuming operations" in standby.log_text(), 60, "pod 1 to take over")
        stopped_at = datetime.datetime.now(datetime.UTC)
        later = wait_until(lambda: renewed_after(max(first, stopped_at)), 60, "pod 1 to renew the Lease")
        assert later > stopped_at
    finally:
        custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)

    def finalized() -> bool:
        items = custom.list_cluster_custom_object(*VIRTUAL_NODES)["items"]
        return name not in {o["metadata"]["name"] for o in items}

    wait_until(finalized, 60, "pod 1 to finalize the VirtualNode")
    for replica in replicas:
        assert "Forbidden" not in replica.log_text(), replica.pod_name
