"""The composition root: log in, build the services, configure Kopf, register the handlers and run.

Everything stateful is created here once and passed explicitly (through Kopf's memo to the handlers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import os
import socket
from typing import Any

import kopf

from acinode import errors, handlers, services, settings, types
from acinode.kube import client, connection, credentials, login
from acinode.kube import cluster as kube_cluster
from acinode.kubelet import server as kubelet_server
from acinode.mapping import node as node_mapping
from acinode.metrics import collector
from acinode.metrics import server as metrics_server
from acinode.oci import client as oci_client
from acinode.pods import readbudget
from acinode.runtime import ownership

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What ``acinode run`` was asked on its command line."""

    kubeconfig: str | None = None
    context: str | None = None
    """The kubeconfig context to use (None: its current-context)."""
    namespace: str = "default"
    """The operator's own namespace: where credential Secrets are looked up by default."""
    liveness_endpoint: str | None = None
    log_format: str = "plain"
    verbose: bool = False
    replica_id: str = ""
    """This replica's identity in the ownership Leases (the pod name in a cluster); empty: hostname and pid."""
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


LOGIN_RETRY_SECONDS = 10.0
"""How often Kopf asks again for credentials while none can be had (a refused token not yet rotated, a failing
exec plugin)."""


def connection_info(
    endpoint: connection.KubeConnection, credential: credentials.Credential
) -> kopf.ConnectionInfo:
    """Kopf's view of one credential: it expires (and Kopf logs in again) when the credential is due a refresh."""

    def as_base64(value: bytes | None) -> str | None:
        # Kopf reads *-data fields base64-encoded, as kubeconfig files hold them.
        return base64.b64encode(value).decode() if value else None

    endpoint = endpoint.with_identity(credential.identity)
    return kopf.ConnectionInfo(
        server=endpoint.server,
        ca_path=endpoint.ca_path,
        ca_data=as_base64(endpoint.ca_data),
        insecure=endpoint.insecure or None,
        token=credential.token,
        certificate_path=endpoint.certificate_path,
        certificate_data=as_base64(endpoint.certificate_data),
        private_key_path=endpoint.private_key_path,
        private_key_data=as_base64(endpoint.private_key_data),
        default_namespace=endpoint.namespace,
        expiration=credential.refresh_at,
    )


class KopfLogin:
    """Kopf's login handler, on the same credential source as the operator's own client.

    Kopf asks for credentials at start, when the ones it has expire (``ConnectionInfo.expiration``, set from the
    credential's refresh time), and after a 401 (it then drops them). Asked again before they expired, it was
    refused: the source is told so and must give different ones; until it can, Kopf is told to ask again later
    (it never takes back credentials it saw refused).
    """

    def __init__(
        self, source: credentials.CredentialSource, clock: credentials.Clock = credentials.utc_now
    ) -> None:
        self._source = source
        self._clock = clock
        self._given: credentials.Credential | None = None

    async def connection_info(self) -> kopf.ConnectionInfo:
        given = self._given
        refused = given is not None and not given.is_due(self._clock())
        if given is not None and refused:
            self._source.invalidate(given)
        try:
            credential = await self._source.current()
        except errors.AcinodeError as err:
            raise kopf.TemporaryError(f"cannot log in: {err}", delay=LOGIN_RETRY_SECONDS) from err
        if given is not None and refused and credential.is_same_secret(given):
            raise kopf.TemporaryError(
                f"the API server refused the credentials from {self._source.description} (401), and no new "
                "ones are available yet",
                delay=LOGIN_RETRY_SECONDS,
            )
        self._given = credential
        return connection_info(self._source.endpoint, credential)


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
    # Every replica runs standalone: which one serves a VirtualNode is decided by its Lease (runtime/ownership.py),
    # not by Kopf's whole-operator peering.
    kopf_settings.peering.standalone = True


def replica_identity(options: RunOptions) -> str:
    """The replica's name in the ownership Leases: ``--replica-id`` (the pod name), else hostname-pid."""
    return options.replica_id or f"{socket.gethostname()}-{os.getpid()}"


async def cluster_id(kube: client.KubeClient) -> types.ClusterId:
    return await kube_cluster.cluster_id(kube)


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
        endpoint = metrics_server.MetricsServer(metrics, address, config.metrics.port)
        if await endpoint.start():
            started.append(endpoint)
    return started


async def run_kopf(svc: services.Services, source: credentials.CredentialSource, options: RunOptions) -> None:
    registry = kopf.get_default_registry()
    kopf_login = KopfLogin(source)

    @kopf.on.login(registry=registry)
    async def use_login(**_: Any) -> kopf.ConnectionInfo:
        return await kopf_login.connection_info()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, options)

    logger.info("acinode operator starting (cluster %s)", svc.cluster_id)
    await kopf.operator(
        registry=registry,
        clusterwide=True,
        standalone=True,
        liveness_endpoint=options.liveness_endpoint,
        memo=kopf.Memo(services=svc),
    )


async def serve(options: RunOptions, operator_settings: settings.Settings) -> int:
    """Run until stopped. Start-up failures (no or bad credentials, API server unreachable) are logged on one line
    and return 1."""
    try:
        source = login.credential_source(kubeconfig_path=options.kubeconfig, context=options.context)
    except errors.AcinodeError as err:
        logger.error("cannot start: %s", err)
        return 1
    kube = client.KubeClient(source)
    images = oci_client.ImageConfigReader(operator_settings.registry)
    read_images = operator_settings.registry.read_image_configs
    try:
        try:
            cluster = await cluster_id(kube)
        except errors.AcinodeError as err:
            logger.error("cannot start: %s (credentials from %s)", err, source.description)
            return 1
        svc = services.Services(
            kube=kube,
            settings=operator_settings,
            identity=node_mapping.NodeIdentity(
                internal_ip=operator_settings.node.internal_ip,
                kubelet_port=operator_settings.node.kubelet_port,
                kubelet_version=operator_settings.node.kubelet_version,
            ),
            operator_namespace=options.namespace,
            cluster_id=cluster,
        )
        metrics = collector.OperatorMetrics(
            nodes=lambda: list(svc.reconcilers.values()),
            keepers=lambda: list(svc.keepers.values()),
            budget=readbudget.OPERATOR,
        )
        svc.pod_observer = metrics  # every pod controller is built with it: reconcile and sync durations
        svc.images = images if read_images else None
        owning = ownership.Ownership(
            kube, options.namespace, replica_identity(options), operator_settings.ownership
        )
        svc.ownership = owning
        with contextlib.suppress(errors.AcinodeError):
            await owning.announce_once()  # the other replicas are known before the first VirtualNode is
        announcing = asyncio.create_task(owning.run(), name="ownership")
        logger.info("replica %s (ownership Leases in namespace %s)", owning.replica_id, options.namespace)
        side_servers = await start_side_servers(svc, metrics)
        try:
            await run_kopf(svc, source, options)
        finally:
            announcing.cancel()  # withdraws this replica's presence Lease
            with contextlib.suppress(asyncio.CancelledError):
                await announcing
            for side_server in side_servers:
                await side_server.stop()
    finally:
        await images.close()
        await kube.close()
    return 0


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
        problems = settings.validation_problems(operator_settings)
        if problems:
            raise ValueError("; ".join(problems))
    except ValueError as err:
        logger.error("invalid setting: %s", err)
        return 2
    try:
        return asyncio.run(serve(options, operator_settings))
    except KeyboardInterrupt:
        return 0
    except kopf.LoginError as err:
        logger.error("%s", err)
        return 1
