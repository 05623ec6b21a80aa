"""``AzureAciApi``: the ``api.AciApi`` role on the real SDK (``azure.mgmt.containerinstance.aio``).

The same code reaches Azure, a sovereign or private cloud, and the emulator: only the ``target.AzureCloud``
differs (endpoint, token scope, CA bundle). Long-running operations are submitted and never polled: one PUT per
create, one DELETE per delete; the status sync observes what follows. List, create and delete go through the
client's pipeline with their answers read as summaries (``summaries``: the SDK's models for them cost most of
the operator's CPU in a burst); everything else uses the SDK's operations and models.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.mgmt.containerinstance import aio as aci_aio
from azure.mgmt.containerinstance import models

from acinode import errors, settings, types
from acinode.aci import (
    api,
    counting,
    credentials,
    metrics,
    newer,
    pipeline,
    ratelimit,
    summaries,
    target,
    translate,
    transport,
)

logger = logging.getLogger(__name__)


class AzureAciApi:
    """Container groups of one resource group, through ARM.

    ``limiter`` and ``counter`` may be shared by every client of one subscription, since ARM's limits are
    per subscription. ``credential`` overrides the one the target's choice would build (the caller closes it).
    """

    def __init__(
        self,
        aci_target: target.AciTarget,
        *,
        settings: settings.AciSettings,
        limiter: ratelimit.ArmRateLimiter | None = None,
        counter: counting.ArmRequestCounter | None = None,
        credential: AsyncTokenCredential | None = None,
        **client_options: Any,
    ) -> None:
        self.target = aci_target
        self.limiter = limiter or ratelimit.ArmRateLimiter.from_settings(settings)
        self.counter = counter or counting.ArmRequestCounter()
        self._owns_credential = credential is None
        self._credential = credential or credentials.credential_for(aci_target.credential, aci_target.cloud)
        self._resource_group = aci_target.resource_group
        self._settings = settings
        self._client_options = client_options
        self._client = aci_aio.ContainerInstanceManagementClient(
            self._credential,
            aci_target.subscription_id,
            **_client_options(aci_target.cloud, settings, self.limiter, self.counter),
            **client_options,
        )
        self._usage: metrics.AzureMonitorUsage | None = None
        """Azure Monitor's client, made at the first usage read (a node nobody scrapes never needs one)."""

    @property
    def arm_requests(self) -> counting.ArmRequestCounter:
        return self.counter

    @property
    def ca_bundle_path(self) -> str | None:
        return self.target.cloud.ca_bundle_path

    async def __aenter__(self) -> AzureAciApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.close()
        if self._usage is not None:
            await self._usage.close()
        if self._owns_credential:
            await self._credential.close()

    async def create_or_update(
        self, name: types.ContainerGroupName, group: models.ContainerGroup
    ) -> api.GroupSummary:
        # One PUT, never polled (see the module's note); the answer read as a summary (``summaries``).
        if newer.has_newer_fields(group):
            body, api_version = newer.request_body(group), newer.API_VERSION
        else:
            body, api_version = json.dumps(group.serialize()).encode(), self._settings.api_version
        request = summaries.put_request(self._group_path(name), api_version, body)
        with translate.translated():
            response = await self._client._send_request(request)
            summaries.raise_unless(response, (200, 201))
            answer = response.json() if response.content else {}
        summary = summaries.summary_from_json(answer) or api.GroupSummary(
            name=name, tags=dict(group.tags or {}), provisioning_state=None
        )
        logger.info(
            "container group submitted",
            extra=self._log_fields(name, provisioning_state=summary.provisioning_state),
        )
        return summary

    async def get(self, name: types.ContainerGroupName) -> models.ContainerGroup:
        with translate.translated():
            return await self._client.container_groups.get(self._resource_group, name)

    async def delete(self, name: types.ContainerGroupName) -> bool:
        request = summaries.delete_request(self._group_path(name), self._settings.api_version)
        try:
            with translate.translated():
                response = await self._client._send_request(request)
                summaries.raise_unless(response, (200, 202, 204))
                status = response.status_code
        except errors.NotFoundError:
            status = 404
        # 204 is ARM's answer for a group that does not exist; 200 and 202 mean it was there.
        existed = status not in (204, 404)
        logger.info("container group delete submitted", extra=self._log_fields(name, existed=existed))
        return existed

    async def list_groups(self, tags: Mapping[str, str] | None = None) -> list[api.GroupSummary]:
        wanted = dict(tags or {})
        found: list[api.GroupSummary] = []
        api_version = self._settings.api_version
        request = summaries.list_request(
            summaries.groups_path(self.target.subscription_id, self._resource_group), api_version
        )
        with translate.translated():
            while True:
                # Streamed, then read here: unstreamed, the pipeline would parse the page's JSON once more
                # (a page of 100 groups is ~150 KB: the largest parse the operator does).
                response = await self._client._send_request(request, stream=True)
                try:
                    await response.read()
                finally:
                    await response.close()
                summaries.raise_unless(response, (200,))
                entries, next_link = summaries.list_page(json.loads(response.content))
                for entry in entries:
                    summary = summaries.summary_from_json(entry)
                    have = summary.tags if summary else {}
                    if summary and all(have.get(key) == value for key, value in wanted.items()):
                        found.append(summary)
                if next_link is None:
                    return found
                request = summaries.next_page_request(next_link, api_version)

    async def container_logs(
        self,
        name: types.ContainerGroupName,
        container: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> str:
        with translate.translated():
            logs = await self._client.containers.list_logs(
                self._resource_group, name, container, tail=tail, timestamps=timestamps or None
            )
        return logs.content or ""

    async def exec_command(
        self,
        name: types.ContainerGroupName,
        container: str,
        command: str,
        *,
        rows: int = 24,
        cols: int = 80,
    ) -> api.ExecSession:
        request = models.ContainerExecRequest(
            command=command, terminal_size=models.ContainerExecRequestTerminalSize(rows=rows, cols=cols)
        )
        with translate.translated():
            response = await self._client.containers.execute_command(
                self._resource_group, name, container, request
            )
        if not response.web_socket_uri:
            raise errors.TransientError(f"exec into {name}/{container}: ARM returned no websocket URI")
        return api.ExecSession(websocket_uri=response.web_socket_uri, password=response.password or "")

    async def attach(self, name: types.ContainerGroupName, container: str) -> api.ExecSession:
        with translate.translated():
            response = await self._client.containers.attach(self._resource_group, name, container)
        if not response.web_socket_uri:
            raise errors.TransientError(f"attach to {name}/{container}: ARM returned no websocket URI")
        return api.ExecSession(websocket_uri=response.web_socket_uri, password=response.password or "")

    async def stop(self, name: types.ContainerGroupName) -> None:
        with translate.translated():
            await self._client.container_groups.stop(self._resource_group, name)
        logger.info("container group stop submitted", extra=self._log_fields(name))

    async def start(self, name: types.ContainerGroupName) -> None:
        with translate.translated():
            poller = await self._client.container_groups.begin_start(
                self._resource_group, name, polling=False
            )
            await poller.result()
        logger.info("container group start submitted", extra=self._log_fields(name))

    async def restart(self, name: types.ContainerGroupName) -> None:
        with translate.translated():
            poller = await self._client.container_groups.begin_restart(
                self._resource_group, name, polling=False
            )
            await poller.result()
        logger.info("container group restart submitted", extra=self._log_fields(name))

    async def location_usage(self) -> list[api.UsageEntry]:
        entries: list[api.UsageEntry] = []
        with translate.translated():
            async for usage in self._client.location.list_usage(self.target.region):
                entries.append(
                    api.UsageEntry(
                        name=(usage.name.value if usage.name else None) or "",
                        unit=usage.unit,
                        current_value=int(usage.current_value or 0),
                        limit=int(usage.limit or 0),
                    )
                )
        return entries

    async def container_usage(
        self, name: types.ContainerGroupName, *, start: dt.datetime, end: dt.datetime
    ) -> api.GroupUsage:
        if self._usage is None:
            # The same endpoint, credential, CA bundle, policies, limiter and counter as the ACI client.
            options = _client_options(self.target.cloud, self._settings, self.limiter, self.counter)
            self._usage = metrics.AzureMonitorUsage(
                self.target,
                self._credential,
                api_version=self._settings.metrics_api_version,
                grain_seconds=self._settings.metrics_grain_seconds,
                client_options={**options, **self._client_options},
            )
        return await self._usage.read(name, start=start, end=end)

    def _group_path(self, name: types.ContainerGroupName) -> str:
        return summaries.group_path(self.target.subscription_id, self._resource_group, name)

    def _log_fields(self, name: str, **more: object) -> dict[str, object]:
        return {"container_group": name, "resource_group": self._resource_group, **more}


def _client_options(
    cloud: target.AzureCloud,
    aci: settings.AciSettings,
    limiter: ratelimit.ArmRateLimiter,
    counter: counting.ArmRequestCounter,
) -> dict[str, Any]:
    per_call: list[Any] = []
    if cloud.arm_endpoint.startswith("http://"):
        if not pipeline.is_loopback_http(cloud.arm_endpoint):
            raise errors.ConfigurationError(
                f"ARM endpoint {cloud.arm_endpoint} is plain HTTP: bearer tokens go over HTTPS only "
                "(plain HTTP is allowed on loopback, for debugging the emulator)"
            )
        per_call.append(pipeline.AllowLoopbackHttpPolicy())
    options: dict[str, Any] = {
        "base_url": cloud.arm_endpoint,
        "credential_scopes": [cloud.credential_scope],
        "api_version": aci.api_version,
        "retry_policy": pipeline.TransientRetryPolicy(
            retries=aci.transient_retries,
            backoff_seconds=aci.transient_backoff_seconds,
            backoff_max_seconds=aci.transient_backoff_max_seconds,
        ),
        "per_call_policies": per_call,
        "per_retry_policies": [
            pipeline.ThrottlingPolicy(
                limiter,
                counter,
                throttle_retries=aci.throttle_retries,
                default_pause_seconds=aci.throttle_default_pause_seconds,
                max_retry_after_seconds=aci.max_retry_after_seconds,
            )
        ],
        "connection_timeout": aci.request_timeout_seconds,
        "read_timeout": aci.request_timeout_seconds,
    }
    # Not connection_verify=<path>: azure-core would build an SSL context, and so a connection, per request; and
    # not its own transport, which looks up proxies and netrc on every request (``transport``).
    options["transport"] = transport.ArmTransport(
        cloud.arm_endpoint, cloud.ca_bundle_path, timeout_seconds=aci.request_timeout_seconds
    )
    return options


def _conforms(implementation: AzureAciApi) -> api.AciApi:
    # mypy proves here that AzureAciApi fulfils the AciApi role.
    return implementation
