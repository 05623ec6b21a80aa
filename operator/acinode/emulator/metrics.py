"""Azure Monitor's metrics API for container groups: ``GET {groupId}/providers/Microsoft.Insights/metrics``.

The answer has the ``Response`` shape of the Microsoft.Insights 2018-01-01 swagger (as the specs' GetMetric.json
example and azure-mgmt-monitor's models have it): ``cost``, ``timespan``, ``interval``, ``namespace``,
``resourceregion`` and ``value``, one ``Metric`` per name with ``timeseries`` of ``metadatavalues`` (dimension
names lower-cased, ``containername``) and ``data`` points stamped with the start of their interval; a point
without running time (or newer than the configured lag) has no aggregate, only its ``timeStamp``. The figures come
from ``usage`` (what each container's command does). Metrics and units are those Azure documents for
``Microsoft.ContainerInstance/containerGroups``: ``CpuUsage`` (Count, millicores), ``MemoryUsage`` (Bytes),
``NetworkBytesReceivedPerSecond``, ``NetworkBytesTransmittedPerSecond`` (Bytes, always 0 here).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

from aiohttp import web

from acinode.emulator import context, usage, wire

API_VERSIONS = frozenset({"2018-01-01", "2019-07-01", "2021-05-01", "2023-10-01", "2024-02-01"})
NAMESPACE = "Microsoft.ContainerInstance/containerGroups"
DEFAULT_TIMESPAN_SECONDS = 3600.0
MAX_POINTS = 10_000
METRICS: dict[str, tuple[str, str, str, int]] = {
    "cpuusage": ("CpuUsage", "CPU Usage", "CPU usage on all cores in millicores.", 1),
    "memoryusage": ("MemoryUsage", "Memory Usage", "Total memory usage in byte.", 2),
    "networkbytesreceivedpersecond": (
        "NetworkBytesReceivedPerSecond",
        "Network Bytes Received Per Second",
        "The network bytes received per second.",
        0,
    ),
    "networkbytestransmittedpersecond": (
        "NetworkBytesTransmittedPerSecond",
        "Network Bytes Transmitted Per Second",
        "The network bytes transmitted per second.",
        0,
    ),
}
_UNITS = {"CpuUsage": "Count"}
_AGGREGATIONS = ("average", "minimum", "maximum", "total", "count")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_FILTER = re.compile(r"^\s*containerName\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _bad(message: str) -> wire.ArmError:
    return wire.ArmError(400, "BadRequest", message)


def duration_seconds(text: str) -> float:
    match = _DURATION.match(text.strip().upper())
    if match is None or not any(match.groups()):
        raise _bad(f"Invalid time grain or duration '{text}'.")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise _bad(f"Invalid time grain or duration '{text}'.")
    return total


def _moment(text: str) -> float:
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad(f"Invalid timespan '{text}'.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _timespan(text: str | None, now: float) -> tuple[float, float]:
    if not text:
        return now - DEFAULT_TIMESPAN_SECONDS, now
    if "/" not in text:
        return now - duration_seconds(text), now
    first, second = text.split("/", 1)
    start = _moment(first)
    end = (
        now
        if not second.strip()
        else (start + duration_seconds(second) if second.upper().startswith("P") else _moment(second))
    )
    if end <= start:
        raise _bad(f"Invalid timespan '{text}': its end is not after its start.")
    return start, end


def _stamp(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_grain(seconds: float) -> str:
    whole = round(seconds)
    if whole % 3600 == 0:
        return f"PT{whole // 3600}H"
    if whole % 60 == 0:
        return f"PT{whole // 60}M"
    return f"PT{whole}S"


async def list_metrics(ctx: context.Context) -> web.StreamResponse:
    group = ctx.group()
    query = ctx.request.query
    now = time.time()
    start, end = _timespan(query.get("timespan"), now)
    interval_text = query.get("interval") or "PT1M"
    full = interval_text.upper() == "FULL"
    grain = end - start if full else duration_seconds(interval_text)
    aggregations = [
        a.strip().lower() for a in (query.get("aggregation") or "Average").split(",") if a.strip()
    ]
    for aggregation in aggregations:
        if aggregation not in _AGGREGATIONS:
            raise _bad(f"Invalid aggregation '{aggregation}'.")
    names = [n.strip() for n in (query.get("metricnames") or "CpuUsage").split(",") if n.strip()]
    for name in names:
        if name.lower() not in METRICS:
            valid = ",".join(m[0] for m in METRICS.values())
            raise _bad(
                "Failed to find metric configuration for provider: Microsoft.ContainerInstance, resource Type: "
                f"containerGroups, metric: {name}, Valid metrics: {valid}"
            )
    split: str | None = None
    raw_filter = query.get("$filter")
    if raw_filter:
        matched = _FILTER.match(raw_filter)
        if matched is None:
            raise _bad(
                f"Invalid $filter '{raw_filter}': the emulator knows only containerName eq '<name>|*'."
            )
        split = matched.group(1)
    first = math.floor(start / grain) * grain if not full else start
    if (end - first) / grain > MAX_POINTS:
        raise _bad(f"The query asks for more than {MAX_POINTS} points: use a longer interval.")
    lag = ctx.emulator.cfg.metrics_lag_seconds
    loads = ctx.emulator.usage.loads(group.key)
    names_by_lower = {c["name"].lower(): c["name"] for c in group.container_specs()}
    stamps = []
    moment = first
    while moment < end:
        stamps.append(moment)
        moment += grain
    values = []
    for name in names:
        metric_name, localized, description, which = METRICS[name.lower()]
        series: list[tuple[list[dict[str, object]], list[dict[str, object]]]] = []
        if split is None:
            series.append(([], _points(list(loads.values()), stamps, grain, which, aggregations, now - lag)))
        else:
            for container, load in sorted(loads.items()):
                if split != "*" and container != split.lower():
                    continue
                dimension = {"name": {"value": "containername", "localizedValue": "containername"}}
                metadata = [{**dimension, "value": names_by_lower.get(container, container)}]
                series.append((metadata, _points([load], stamps, grain, which, aggregations, now - lag)))
        values.append(
            {
                "id": f"{group.resource_id}/providers/Microsoft.Insights/metrics/{metric_name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": metric_name, "localizedValue": localized},
                "displayDescription": description,
                "unit": _UNITS.get(metric_name, "Bytes"),
                "timeseries": [{"metadatavalues": metadata, "data": data} for metadata, data in series],
                "errorCode": "Success",
            }
        )
    body = {
        "cost": len(stamps) * max(1, len(names)),
        "timespan": f"{_stamp(start)}/{_stamp(end)}",
        "interval": "FULL" if full else _iso_grain(grain),
        "value": values,
        "namespace": NAMESPACE,
        "resourceregion": group.location,
    }
    return context.json_response(ctx, body)


def _points(
    loads: list[usage.ContainerLoad],
    stamps: list[float],
    grain: float,
    which: int,
    aggregations: list[str],
    visible_until: float,
) -> list[dict[str, object]]:
    """One data point per interval; aggregates only where a container ran (summed over ``loads``), and not for
    intervals that start after ``visible_until`` (Azure Monitor's lag). Network metrics (``which`` 0) are 0."""
    data: list[dict[str, object]] = []
    for stamp in stamps:
        point: dict[str, object] = {"timeStamp": wire.iso(stamp)}
        data.append(point)
        if stamp >= visible_until:
            continue
        until = min(stamp + grain, visible_until)
        known = [f for f in (load.aggregate(stamp, until, which or 1) for load in loads) if f is not None]
        if not known:
            continue
        for aggregation in aggregations:
            if aggregation == "count":
                point["count"] = float(len(known))
            elif which == 0:
                point[aggregation] = 0.0
            else:
                point[aggregation] = float(
                    sum(f["average" if aggregation == "total" else aggregation] for f in known)
                )
    return data
