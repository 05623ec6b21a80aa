"""The composition root: log in, build the services, configure Kopf, register the handlers and run.

Everything stateful is created here once and passed explicitly (through Kopf's memo to the handlers).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
from typing import Any

import kopf

from acinode import handlers, services, settings, types
from acinode.kube import client, connection
from acinode.kubelet import server as kubelet_server
from acinode.mapping import node as node_mapping
from acinode.metrics import collector
from acinode.metrics import server as metrics_server

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What ``acinode run`` was asked on its command line."""

    kubeconfig: str | None = None
    namespace: str = "default"
    """The operator's own namespace: where credential Secrets are looked up by default."""
    liveness_endpoint: str | None = None
    log_format: str = "plain"
    verbose: bool = False
    standalone: bool = True
    peering_name: str = "acinode"
    priority: int = 0
    kubelet_port: int | None = None
    """Overrides ``NodeSettings.kubelet_port``: the kubelet API port, served and advertised to the API server."""
    metrics_port: int | None = None
    """Overrides ``MetricsSettings.port`` (0 disables the metrics endpoint)."""


def with_flags(operator_settings: settings.Settings, options: RunOptions) -> settings.Settings:
    """Flags beat the environment."""
    if options.kubelet_port is not None:
        node = dataclasses.replace(operator_settings.node, kubelet_port=options.kubelet_port)
        operator_settings = dataclasses.replace(operator_settings, node=node)
    if options.metrics_port is not None:
        metrics = dataclasses.replace(operator_settings.metrics, port=options.metrics_port)
        operator_settings = dataclasses.replace(operator_settings, metrics=metrics)
    return operator_settings


def _connection_from(info: kopf.ConnectionInfo) -> connection.KubeConnection:
    def as_bytes(value: str | bytes | None) -> bytes | None:
        # Kopf keeps kubeconfig's *-data fields base64-encoded, as they are in the file.
        return base64.b64decode(value) if value else None

    def as_path(value: Any) -> str | None:
        return os.fsdecode(value) if value else None

    return connection.KubeConnection(
        server=info.server,
        ca_path=as_path(info.ca_path),
        ca_data=as_bytes(info.ca_data),
        insecure=bool(info.insecure),
        token=info.token,
        certificate_path=as_path(info.certificate_path),
        certificate_data=as_bytes(info.certificate_data),
        private_key_path=as_path(info.private_key_path),
        private_key_data=as_bytes(info.private_key_data),
    )


def login() -> kopf.ConnectionInfo:
    """In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    kopf_settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=kopf_settings) or kopf.login_with_kubeconfig(
        settings=kopf_settings
    )
    if info is None:
        raise kopf.LoginError("no Kubernetes credentials: not in a cluster, and no kubeconfig found")
    return info


def configure_kopf(kopf_settings: kopf.OperatorSettings, options: RunOptions) -> None:
    # Kopf's own state stays on VirtualNodes, under our prefix; Pods and Nodes get none of it.
    kopf_settings.persistence.finalizer = "acinode.dev/finalizer"
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="acinode.dev")
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="acinode.dev", key="last-handled-configuration"
    )
    kopf_settings.posting.level = logging.WARNING
    # Only the Nodes acinode manages are watched (server-side selector).
    kopf_settings.watching.label_selectors["v1", "nodes"] = node_mapping.MANAGED_BY_LABEL
    kopf_settings.watching.server_timeout = 300
    # With several replicas, a SIGKILLed active one must be replaced before the node lifecycle controller's
    # grace period ends: peers that stop renewing are considered gone after 20 s (Kopf's default is 60 s).
    kopf_settings.peering.lifetime = 20


async def cluster_id(kube: client.KubeClient) -> types.ClusterId:
    namespace = await kube.get("/api/v1/namespaces/kube-system")
    return types.ClusterId(str(namespace["metadata"]["uid"]))


async def start_side_servers(
    svc: services.Services, metrics: collector.OperatorMetrics
) -> list[kubelet_server.KubeletServer | metrics_server.MetricsServer]:
    """The kubelet API (logs, exec, stats of every virtual node) and the metrics endpoint, if enabled. Neither
    failing to start stops the operator: it logs why and keeps the nodes and pods running."""
    started: list[kubelet_server.KubeletServer | metrics_server.MetricsServer] = []
    config = svc.settings
    if config.kubelet.enabled:
        kubelet = kubelet_server.KubeletServer(
            lambda: list(svc.reconcilers.values()),
            svc.kube,
            config.kubelet,
            internal_ip=config.node.internal_ip,
            port=config.kubelet.port or config.node.kubelet_port,
        )
        if await kubelet.start():
            started.append(kubelet)
    if config.metrics.port:
        address = config.metrics.address or config.node.internal_ip
        endpoint = metrics_server.MetricsServer(svc, metrics, address, config.metrics.port)
        if await endpoint.start():
            started.append(endpoint)
    return started


async def run_kopf(svc: services.Services, info: kopf.ConnectionInfo, options: RunOptions) -> None:
    registry = kopf.get_default_registry()

    @kopf.on.login(registry=registry)
    def use_login(**_: Any) -> kopf.ConnectionInfo:
        return info

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, options)

    logger.info("acinode operator starting (cluster %s)", svc.cluster_id)
    await kopf.operator(
        registry=registry,
        clusterwide=True,
        standalone=options.standalone,
        peering_name=None if options.standalone else options.peering_name,
        priority=options.priority,
        liveness_endpoint=options.liveness_endpoint,
        memo=kopf.Memo(services=svc),
    )


async def serve(options: RunOptions, operator_settings: settings.Settings) -> None:
    if options.kubeconfig:
        os.environ["KUBECONFIG"] = options.kubeconfig
    info = login()
    kube = client.KubeClient(_connection_from(info))
    try:
        svc = services.Services(
            kube=kube,
            settings=operator_settings,
            identity=node_mapping.NodeIdentity(
                internal_ip=operator_settings.node.internal_ip,
                kubelet_port=operator_settings.node.kubelet_port,
                kubelet_version=operator_settings.node.kubelet_version,
            ),
            operator_namespace=options.namespace,
            cluster_id=await cluster_id(kube),
        )
        metrics = collector.OperatorMetrics()
        svc.reconcilers.listeners.append(metrics.instrument)
        side_servers = await start_side_servers(svc, metrics)
        try:
            await run_kopf(svc, info, options)
        finally:
            for side_server in side_servers:
                await side_server.stop()
    finally:
        await kube.close()


def run(options: RunOptions) -> int:
    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    # The SDK's HTTP logging policy logs every request at INFO: keep it to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    assert handlers.virtualnodes  # importing the package registered the handlers
    try:
        operator_settings = with_flags(settings.settings_from_environment(), options)
    except ValueError as err:
        logger.error("invalid setting: %s", err)
        return 2
    try:
        asyncio.run(serve(options, operator_settings))
    except KeyboardInterrupt:
        return 0
    except kopf.LoginError as err:
        logger.error("%s", err)
        return 1
    return 0
