"""The kubelet API's request handlers: logs, exec, stats, pods, healthz.

Authentication and authorization have already happened (``server``); errors raised before a response starts
become statuses through ``responses``. Paths are the kubelet's (``k8s.io/kubernetes/pkg/kubelet/server``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from aiohttp import web

from acinode import clock, errors, settings
from acinode.kubelet import (
    logs,
    podlists,
    remotecommand,
    responses,
    stats,
    targets,
    usage,
)
from acinode.mapping import objects
from acinode.mapping import status as status_mapping

logger = logging.getLogger(__name__)

FORWARDED_URI = "X-Forwarded-Uri"
PORT_FORWARD_REFUSAL = (
    "port forwarding to pod {pod} is not supported: it runs on an ACI-backed virtual node, and Azure Container "
    "Instances has no port-forward API; reach the pod at its IP from inside its network, through a Service, "
    "or with kubectl exec"
)
SPDY_STREAM_TIMEOUT_SECONDS = 30.0
"""How long the client has to create its SPDY streams (a kubelet's stream creation timeout)."""


utc_now = clock.utc_now


class KubeletRoutes:
    def __init__(
        self,
        directory: targets.Directory,
        kubelet: settings.KubeletSettings,
        *,
        started: dt.datetime | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.directory = directory
        self.settings = kubelet
        self.clock = clock
        self.started = started or clock()
        self.usage = usage.UsageSampler(directory, kubelet)
        """Container usage from Azure Monitor, sampled while the stats are read."""

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/pods", self.pods)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_route("GET", "/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_route("POST", "/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/stats/summary", self.stats_summary)
        app.router.add_get("/metrics/resource", self.metrics_resource)
        app.on_cleanup.append(lambda _app: self.usage.close())
        app.router.add_get("/runningpods", self.running_pods)
        app.router.add_get("/runningpods/", self.running_pods)
        app.router.add_route("GET", "/attach/{namespace}/{pod}/{container}", self.attach)
        app.router.add_route("POST", "/attach/{namespace}/{pod}/{container}", self.attach)
        app.router.add_route("*", "/portForward/{namespace}/{pod}", self.port_forward)
        app.router.add_route("*", "/portForward/{namespace}/{pod}/{uid}", self.port_forward)
        for path in ("/attach/{tail:.*}", "/run/{tail:.*}"):
            app.router.add_route("*", path, self.not_supported)

    def node_hint(self, request: web.Request) -> str | None:
        return targets.node_from_forwarded_uri(request.headers.get(FORWARDED_URI))

    # --- simple routes ----------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def not_supported(self, request: web.Request) -> web.StreamResponse:
        raise errors.InvalidRequestError(
            f"{request.path.split('/')[1]} is not supported by ACI-backed virtual nodes",
            code="NotImplemented",
        )

    async def running_pods(self, request: web.Request) -> web.StreamResponse:
        nodes = targets.nodes_for(self.directory, self.node_hint(request))
        return web.json_response(podlists.running_pod_list(p for node in nodes for p in node.bound_pods()))

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """ACI has no port-forward API: 501 with a Status saying so (after the pod is known: else 404)."""
        info = request.match_info
        targets.find_pod(self.directory, info["namespace"], info["pod"])
        return responses.error_response(501, PORT_FORWARD_REFUSAL.format(pod=info["pod"]))

    async def pods(self, request: web.Request) -> web.StreamResponse:
        items = [
            pod
            for node in targets.nodes_for(self.directory, self.node_hint(request))
            for pod in node.bound_pods()
        ]
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        return web.json_response(body)

    async def stats_summary(self, request: web.Request) -> web.StreamResponse:
        nodes = targets.nodes_for(self.directory, self.node_hint(request))
        now = self.clock()
        self.usage.wanted()
        figures = [f for node in nodes for f in stats.node_pod_figures(node, self.usage)]
        name = str(nodes[0].node_name) if len(nodes) == 1 else "acinode"
        node_usage = self.usage.node_sample(str(node.node_name) for node in nodes)
        body = stats.summary(name, self.started, figures, node_usage, now)
        return web.json_response(body)

    async def metrics_resource(self, request: web.Request) -> web.StreamResponse:
        nodes = targets.nodes_for(self.directory, self.node_hint(request))
        self.usage.wanted()
        figures = [f for node in nodes for f in stats.node_pod_figures(node, self.usage)]
        node_usage = self.usage.node_sample(str(node.node_name) for node in nodes)
        text = stats.resource_metrics(figures, node_usage, self.clock())
        return web.Response(
            text=text, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"}
        )

    # --- logs -------------------------------------------------------------------------------------------

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        target = targets.container_target(self.directory, info["namespace"], info["pod"], info["container"])
        options = logs.log_options_from_query(request.query, self.clock())
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})

        async def write(data: bytes) -> None:
            if not response.prepared:
                await response.prepare(request)
            await response.write(data)

        async def fetch(tail: int | None) -> str:
            return await target.aci.container_logs(
                target.group, target.aci_container, tail=tail, timestamps=True
            )

        def client_gone() -> bool:
            return request.transport is None or request.transport.is_closing()

        try:
            await logs.stream_logs(
                fetch,
                write,
                options,
                has_ended=self._ended_check(target),
                interval_seconds=self.settings.log_follow_interval_seconds,
                state_interval_seconds=self.settings.log_follow_state_interval_seconds,
                client_gone=client_gone,
            )
        except errors.AcinodeError:
            if not response.prepared:
                raise
            logger.warning(
                "log stream of %s/%s ended early", target.namespace, target.pod_name, exc_info=True
            )
        except ConnectionError:
            return response
        if not response.prepared:
            await response.prepare(request)
        await response.write_eof()
        return response

    def _ended_check(self, target: targets.ContainerTarget) -> logs.HasEnded:
        """Whether the followed container has ended since the first check (terminated, restarted, or gone)."""
        uid = target.pod.get("metadata", {}).get("uid", "")
        first_restart_count: list[int] = []

        async def has_ended() -> bool:
            pod = self._current_pod(target.node_name, uid)
            if pod is None:
                return True
            try:
                group = await target.aci.get(target.group)
            except errors.NotFoundError:
                return True
            except errors.AcinodeError as err:
                logger.debug("reading the followed container's group failed: %s", err)
                return False  # not known to have ended: look again at the next check
            status = status_mapping.pod_status_from_container_group(group, pod, now=self.clock())
            entries = [*status.get("containerStatuses", []), *status.get("initContainerStatuses", [])]
            entry = next((s for s in entries if s.get("name") == target.container), None)
            if entry is None:
                return False
            restarts = int(entry.get("restartCount", 0))
            if not first_restart_count:
                first_restart_count.append(restarts)
            return "terminated" in entry.get("state", {}) or restarts != first_restart_count[0]

        return has_ended

    def _current_pod(self, node_name: str, uid: str) -> objects.Pod | None:
        for node in self.directory():
            if node.node_name == node_name:
                return node.pod_by_uid(uid)
        return None

    # --- exec -------------------------------------------------------------------------------------------

    async def exec(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        target = targets.container_target(self.directory, info["namespace"], info["pod"], info["container"])
        command = request.query.getall("command", [])
        if not command:
            raise errors.InvalidRequestError(
                "you must specify at least one command for the container", code="BadRequest"
            )
        return await remotecommand.serve(request, target, "exec", command, self.settings)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        target = targets.container_target(self.directory, info["namespace"], info["pod"], info["container"])
        return await remotecommand.serve(request, target, "attach", (), self.settings)
