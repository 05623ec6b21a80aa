"""The kubelet API server: one HTTPS port for every virtual node of the operator.

Each request is authenticated (client certificate, else bearer token, else anonymous if enabled) and authorized
with SubjectAccessReviews on ``nodes/<node>`` before its handler runs (``auth``). The node is the pod's node for
container requests, the node named by the API server's proxy path for node-wide ones, and otherwise every served
node (all must allow). A port that cannot be bound is logged and the operator runs on without the kubelet API:
Nodes, leases and pods matter more than ``kubectl logs``.

What one caller can make the server hold is bounded (docs/kubelet-api.md, "Limits"): connections, TLS handshakes
and request heads by ``listener``; long-lived calls per user and namespace by ``sessions``; their ARM calls by an
interactive lane of their own (``ratelimit.interactive``), apart from the reconciler's budgets; SPDY and websocket
frames and buffers by ``spdysession`` and ``websocket``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from acinode import errors, settings
from acinode.aci import ratelimit
from acinode.kube import client
from acinode.kubelet import auth, certificates, listener, responses, routes, sessions, targets, tls

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CONTAINER_ROUTES = ("/containerLogs/", "/exec/", "/attach/", "/portForward/", "/run/")


class KubeletServer:
    def __init__(
        self,
        directory: targets.Directory,
        kube: client.KubeClient | None,
        kubelet: settings.KubeletSettings,
        *,
        internal_ip: str,
        port: int,
        reviewer: auth.Reviewer | None = None,
        clock: Callable[[], dt.datetime] = routes.utc_now,
    ) -> None:
        self.directory = directory
        self.kube = kube
        self.settings = kubelet
        self.internal_ip = internal_ip
        self.requested_port = port
        review_client = reviewer if reviewer is not None else kube
        if review_client is None:
            raise ValueError("the kubelet server needs a Kubernetes client or a reviewer")
        self.authenticator = auth.Authenticator(
            review_client, ttl_seconds=kubelet.auth_cache_ttl_seconds, anonymous=kubelet.anonymous
        )
        self.authorizer = auth.Authorizer(
            review_client,
            allow_ttl_seconds=kubelet.auth_cache_ttl_seconds,
            deny_ttl_seconds=kubelet.deny_cache_ttl_seconds,
        )
        self.routes = routes.KubeletRoutes(directory, kubelet, clock=clock)
        self.sessions = sessions.SessionLimits.from_settings(kubelet)
        self.lanes = ratelimit.InteractiveLanes(
            kubelet.interactive_arm_requests_per_second,
            kubelet.interactive_arm_burst,
            max_queue_seconds=kubelet.interactive_arm_max_queue_seconds,
        )
        """The ARM budget of every ACI call the kubelet API makes (one lane per subscription)."""
        self.app = web.Application(middlewares=[self._guard])
        self.routes.add_to(self.app)
        self.site: listener.KubeletSite | None = None
        """The listening site once started: its connection counts."""
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        """The bound port once started (None if not serving)."""
        self.certificates: certificates.ServingCertificates | None = None
        """The cluster-issued serving certificate's keeper, when one is asked for (``certificates``)."""
        self._certificate_task: asyncio.Task[None] | None = None
        self._self_signed: tls.ServingCertificate | None = None

    async def ssl_context(self) -> ssl.SSLContext:
        certificate = tls.serving_certificate(self.settings, self.internal_ip)
        if not self.settings.cert_path:
            self._self_signed = certificate
        client_ca = await tls.client_ca_bundle(self.settings, self.kube)
        if client_ca is None and not self.settings.client_ca_path:
            logger.warning(
                "kubelet API: no client CA, so client certificates are refused (tokens still work)"
            )
        return tls.server_ssl_context(certificate, client_ca)

    def _keep_certificate(self, context: ssl.SSLContext) -> None:
        """Ask the cluster for a serving certificate (kubelet-serving CSR) when none is configured."""
        if self._self_signed is None or self.kube is None or not self.settings.serving_certificate_from_csr:
            return
        self.certificates = certificates.ServingCertificates(
            self.kube, self.settings, context, self._self_signed, self.directory, internal_ip=self.internal_ip
        )
        self._certificate_task = asyncio.create_task(self._run_certificates(self.certificates))

    @staticmethod
    async def _run_certificates(keeper: certificates.ServingCertificates) -> None:
        try:
            await keeper.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("kubelet API: the serving certificate's keeper failed; the current one stays")

    async def start(self) -> bool:
        """Bind and serve. Returns False (after logging why) if the API cannot be served."""
        try:
            context = await self.ssl_context()
        except errors.ConfigurationError as err:
            logger.error("kubelet API not served: %s", err)
            return False
        head_line_bytes = min(8190, self.settings.max_request_head_bytes)
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handler_cancellation=True,
            # aiohttp closes a connection without a complete request head after keepalive_timeout, from its
            # start or its previous response alike: the header-read timeout.
            keepalive_timeout=self.settings.header_timeout_seconds,
            max_line_size=head_line_bytes,
            max_field_size=head_line_bytes,
        )
        await runner.setup()
        site = listener.KubeletSite(
            runner,
            (self.settings.address or self.internal_ip),
            self.requested_port,
            ssl_context=context,
            kubelet=self.settings,
        )
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            logger.error(
                "kubelet API not served: cannot listen on %s:%s: %s",
                (self.settings.address or self.internal_ip),
                self.requested_port,
                err,
            )
            return False
        self._runner = runner
        self.site = site
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.requested_port
        logger.info("kubelet API serving on %s:%s", (self.settings.address or self.internal_ip), self.port)
        self._keep_certificate(context)
        return True

    async def stop(self) -> None:
        if self._certificate_task is not None:
            self._certificate_task.cancel()
            await asyncio.gather(self._certificate_task, return_exceptions=True)
            self._certificate_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.site = None
            self.port = None

    # --- authentication and authorization -----------------------------------------------------------------

    def _nodes_to_authorize(self, request: web.Request) -> list[str]:
        path = request.path
        if path.startswith(_CONTAINER_ROUTES):
            parts = path.split("/")
            if len(parts) >= 4:
                try:
                    node, _pod = targets.find_pod(self.directory, parts[2], parts[3])
                    return [str(node.node_name)]
                except errors.NotFoundError:
                    return [""]  # every node: only callers allowed on all nodes learn that it is missing
        hint = self.routes.node_hint(request)
        if hint is not None:
            return [hint]
        return [str(node.node_name) for node in self.directory()] or [""]

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.site is None:
            return await self._authorized(request, handler)
        with self.site.serving(request.transport):
            return await self._authorized(request, handler)

    async def _authorized(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            transport = request.transport
            peercert = transport.get_extra_info("peercert") if transport is not None else None
            user = await self.authenticator.authenticate(
                tls.client_identity(peercert), request.headers.get("Authorization")
            )
            if user is None:
                return responses.error_response(401, "Unauthorized")
            verb = auth.verb_for(request.method)
            subresources = auth.subresources_for(request.path)
            for node in self._nodes_to_authorize(request):
                if not await self.authorizer.is_allowed(user, verb, node, subresources):
                    message = (
                        f"Forbidden (user={user.name}, verb={verb}, resource=nodes, "
                        f"subresource(s)={list(subresources)}, node={node or '*'})"
                    )
                    return responses.error_response(403, message)
            with ratelimit.interactive(self.lanes):
                if not sessions.is_session(request.path, request.query):
                    return await handler(request)
                with self.sessions.hold(user.name, sessions.namespace_of(request.path)):
                    return await handler(request)
        except web.HTTPException:
            raise
        except errors.AcinodeError as err:
            return responses.response_for(err)
