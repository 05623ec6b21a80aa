"""Azure Monitor's usage answers read into per-container points: names, dimension, missing values, grains."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.mgmt.monitor import models

from acinode import types
from acinode.aci import counting, metrics, target

RESOURCE = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g"
    "/providers/Microsoft.Insights/metrics"
)


def series(container: str | None, *points: tuple[str, float | None]) -> dict[str, object]:
    metadata = (
        [{"name": {"value": "containername", "localizedValue": "containername"}, "value": container}]
        if container is not None
        else []
    )
    data = [
        {"timeStamp": stamp, **({"average": value} if value is not None else {})} for stamp, value in points
    ]
    return {"metadatavalues": metadata, "data": data}


def response(*metrics_: tuple[str, list[dict[str, object]]], interval: str = "PT1M") -> models.Response:
    body = {
        "cost": 0,
        "timespan": "2026-01-01T12:00:00Z/2026-01-01T12:05:00Z",
        "interval": interval,
        "namespace": "Microsoft.ContainerInstance/containerGroups",
        "resourceregion": "westeurope",
        "value": [
            {
                "id": f"{RESOURCE}/{name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": name, "localizedValue": name},
                "unit": "Count",
                "timeseries": timeseries,
                "errorCode": "Success",
            }
            for name, timeseries in metrics_
        ],
    }
    return models.Response.deserialize(body)


def at(minute: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, 12, minute, tzinfo=dt.UTC)


def test_points_are_read_per_container_leaving_out_intervals_without_a_value() -> None:
    answer = response(
        (
            "CpuUsage",
            [
                series("web", ("2026-01-01T12:01:00Z", 250.0), ("2026-01-01T12:00:00Z", 100.0)),
                series("side", ("2026-01-01T12:00:00Z", 5.0), ("2026-01-01T12:01:00Z", None)),
            ],
        ),
        ("MemoryUsage", [series("web", ("2026-01-01T12:00:00Z", 64.0 * 2**20))]),
    )
    usage = metrics.group_usage_from_response(answer, 60.0)
    assert usage.grain_seconds == 60.0
    assert sorted(usage.containers) == ["side", "web"]
    web = usage.containers["web"]
    assert [(p.start, p.average) for p in web.cpu_millicores] == [(at(0), 100.0), (at(1), 250.0)]
    assert [(p.start, p.average) for p in web.memory_bytes] == [(at(0), 64.0 * 2**20)]
    assert [p.average for p in usage.containers["side"].cpu_millicores] == [5.0]
    assert usage.containers["side"].memory_bytes == ()
    assert all(p.start.tzinfo is dt.UTC for p in web.cpu_millicores)


def test_series_without_the_container_dimension_and_other_metrics_are_ignored() -> None:
    answer = response(
        ("CpuUsage", [series(None, ("2026-01-01T12:00:00Z", 900.0))]),
        ("NetworkBytesReceivedPerSecond", [series("web", ("2026-01-01T12:00:00Z", 7.0))]),
    )
    assert metrics.group_usage_from_response(answer, 60.0).containers == {}


def test_the_answers_own_interval_wins_over_the_one_asked_for() -> None:
    answer = response(("CpuUsage", [series("web", ("2026-01-01T12:00:00Z", 1.0))]), interval="PT5M")
    assert metrics.group_usage_from_response(answer, 60.0).grain_seconds == 300.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(60, "PT1M"), (300, "PT5M"), (3600, "PT1H"), (1, "PT1S"), (90, "PT90S")]
)
def test_time_grains_travel_as_iso_durations(seconds: float, text: str) -> None:
    assert metrics.iso_duration(seconds) == text
    assert metrics.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", [None, "", "FULL", "1M", "P"])
def test_what_is_not_a_duration_reads_as_none(text: str | None) -> None:
    assert metrics.duration_seconds(text) is None


def test_the_query_names_the_group_and_a_utc_timespan() -> None:
    where = target.AciTarget(types.SubscriptionId("s"), types.ResourceGroup("rg"), "westeurope")
    assert (
        metrics.group_resource_id(where, types.ContainerGroupName("g"))
        == RESOURCE.rsplit("/providers/M", 1)[0]
    )
    later = dt.datetime(2026, 1, 1, 13, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert metrics.timespan(at(0), later) == "2026-01-01T12:00:00Z/2026-01-01T12:00:30Z"


def test_metrics_reads_are_counted_as_their_own_operation() -> None:
    assert counting.operation_of("GET", RESOURCE) == "metrics"
