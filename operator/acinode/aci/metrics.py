"""Container usage from Azure Monitor: the ``CpuUsage`` and ``MemoryUsage`` metrics of a container group.

ACI's own API reports no usage; Azure Monitor samples every container group's containers and serves per-interval
averages at ``GET {groupId}/providers/Microsoft.Insights/metrics`` (metric names ``CpuUsage``, in millicores, and
``MemoryUsage``, in bytes; dimension ``containerName``; time grains from one minute). The client is
``azure-mgmt-monitor``'s ``MonitorManagementClient`` (``metrics.list``): ``azure-monitor-query`` 2.0 dropped its
``MetricsQueryClient`` for it. It is built exactly as the ACI client (same ARM endpoint, credential scope, CA
bundle, retry and throttling policies, rate limiter and request counter), so a sovereign or private cloud and the
emulator work alike. The metrics API is an ARM read and counts against the subscription's read limits.

Azure Monitor lags: a minute's value typically appears one to three minutes after it ended, so the newest
intervals of an answer usually carry no average (and are left out here).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.mgmt.monitor import aio as monitor_aio
from azure.mgmt.monitor import models

from acinode import types
from acinode.aci import api, target, translate

METRIC_NAMES = "CpuUsage,MemoryUsage"
CONTAINER_DIMENSION = "containername"
"""The dimension as Azure Monitor names it in answers (lower-cased; ``containerName`` in the query)."""
CONTAINER_FILTER = "containerName eq '*'"

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def group_resource_id(aci_target: target.AciTarget, name: types.ContainerGroupName) -> str:
    """The ARM resource id of a container group (the metrics' resource URI)."""
    return (
        f"/subscriptions/{aci_target.subscription_id}/resourceGroups/{aci_target.resource_group}"
        f"/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    )


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration for a time grain: 60 → ``PT1M``, 3600 → ``PT1H``, 1 → ``PT1S``."""
    whole = round(seconds)
    if whole <= 0:
        raise ValueError(f"a time grain must be positive, got {seconds!r}")
    if whole % 3600 == 0:
        return f"PT{whole // 3600}H"
    if whole % 60 == 0:
        return f"PT{whole // 60}M"
    return f"PT{whole}S"


def duration_seconds(text: str | None) -> float | None:
    """Seconds of an ISO 8601 duration such as ``PT1M``; None when absent or not of that form."""
    match = _DURATION.match((text or "").strip().upper())
    if match is None or not any(match.groupdict().values()):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def timespan(start: dt.datetime, end: dt.datetime) -> str:
    """Azure Monitor's ``timespan`` parameter: ``start/end`` in UTC, whole seconds."""

    def stamp(moment: dt.datetime) -> str:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"{stamp(start)}/{stamp(end)}"


def group_usage_from_response(response: models.Response, grain_seconds: float) -> api.GroupUsage:
    """Per-container usage from a metrics answer. Time series without a ``containername`` value are left out
    (the group total, as answered without the dimension filter), and so are intervals without an average."""
    grain = duration_seconds(response.interval) or grain_seconds
    cpu: dict[str, list[api.UsagePoint]] = {}
    memory: dict[str, list[api.UsagePoint]] = {}
    for metric in response.value or []:
        name = (metric.name.value if metric.name else "") or ""
        into = {"cpuusage": cpu, "memoryusage": memory}.get(name.lower())
        if into is None:
            continue
        for series in metric.timeseries or []:
            container = _container_of(series)
            if container is None:
                continue
            points = into.setdefault(container, [])
            for value in series.data or []:
                if value.average is None or value.time_stamp is None:
                    continue
                stamp = value.time_stamp
                stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
                points.append(api.UsagePoint(start=stamp, average=float(value.average)))
    containers = {
        name: api.ContainerUsage(
            cpu_millicores=tuple(sorted(cpu.get(name, []), key=lambda p: p.start)),
            memory_bytes=tuple(sorted(memory.get(name, []), key=lambda p: p.start)),
        )
        for name in sorted({*cpu, *memory})
    }
    return api.GroupUsage(grain_seconds=grain, containers=containers)


def _container_of(series: models.TimeSeriesElement) -> str | None:
    for entry in series.metadatavalues or []:
        dimension = (entry.name.value if entry.name else "") or ""
        if dimension.lower() == CONTAINER_DIMENSION and entry.value:
            return str(entry.value)
    return None


class AzureMonitorUsage:
    """Reads the usage metrics of one resource group's container groups (one ARM read per call)."""

    def __init__(
        self,
        aci_target: target.AciTarget,
        credential: AsyncTokenCredential,
        *,
        api_version: str,
        grain_seconds: float,
        client_options: dict[str, Any],
    ) -> None:
        self.target = aci_target
        self.api_version = api_version
        self.grain_seconds = grain_seconds
        options = {key: value for key, value in client_options.items() if key != "api_version"}
        self._client = monitor_aio.MonitorManagementClient(credential, aci_target.subscription_id, **options)

    async def read(
        self, name: types.ContainerGroupName, *, start: dt.datetime, end: dt.datetime
    ) -> api.GroupUsage:
        resource = group_resource_id(self.target, name).lstrip("/")
        with translate.translated():
            response = await self._client.metrics.list(
                resource,
                timespan=timespan(start, end),
                interval=iso_duration(self.grain_seconds),
                metricnames=METRIC_NAMES,
                aggregation="Average",
                filter=CONTAINER_FILTER,
                api_version=self.api_version,
            )
        return group_usage_from_response(response, self.grain_seconds)

    async def close(self) -> None:
        await self._client.close()
