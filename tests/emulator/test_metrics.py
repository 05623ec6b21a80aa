"""Azure Monitor's metrics route for container groups, through azure-mgmt-monitor: shape, per-container usage
derived from what the command does, the usage convention, lag, and ARM's refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance import models
from azure.mgmt.monitor import MonitorManagementClient

from emulator.harness import SUBSCRIPTION, FakeCredential, group_path, group_spec, raw, wait_for


@pytest.fixture
def monitor(emu) -> MonitorManagementClient:
    return MonitorManagementClient(
        FakeCredential(), SUBSCRIPTION, base_url=emu.url, connection_verify=emu.ca_file
    )


def run(client, rg: str, name: str, command: list[str] | None, **spec: Any) -> None:
    client.container_groups.begin_create_or_update(rg, name, group_spec(command, **spec)).result()
    wait_for(lambda: client.container_groups.get(rg, name).instance_view.state == "Running", what="running")


def span(seconds: float) -> str:
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    start = end - dt.timedelta(seconds=seconds)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


def read(monitor, rg: str, name: str, seconds: float = 30, **query: Any):
    options = {
        "timespan": span(seconds),
        "interval": "PT1S",
        "metricnames": "CpuUsage,MemoryUsage",
        "aggregation": "Average",
        "filter": "containerName eq '*'",
        "api_version": "2018-01-01",
        **query,
    }
    return monitor.metrics.list(group_path(rg, name).lstrip("/"), **options)


def averages(response, metric: str, container: str = "app") -> list[float]:
    (found,) = [m for m in response.value if m.name.value == metric]
    (series,) = [
        s
        for s in found.timeseries
        if any(v.name.value == "containername" and v.value == container for v in s.metadatavalues)
    ]
    return [d.average for d in series.data if d.average is not None]


def settle(monitor, rg: str, name: str, predicate, what: str, **query: Any):
    return wait_for(
        lambda: (r := read(monitor, rg, name, **query)) and predicate(r) and r,
        timeout=15,
        what=what,
        interval=0.2,
    )


def test_the_answer_has_azure_monitors_shape(client, rg, monitor) -> None:
    run(client, rg, "web", None)
    response = settle(monitor, rg, "web", lambda r: averages(r, "CpuUsage"), "a first value")
    assert (response.interval, response.namespace, response.resourceregion) == (
        "PT1S",
        "Microsoft.ContainerInstance/containerGroups",
        "westeurope",
    )
    cpu, memory = response.value
    assert (cpu.name.value, cpu.unit, memory.name.value, memory.unit) == (
        "CpuUsage",
        "Count",
        "MemoryUsage",
        "Bytes",
    )
    assert cpu.id.endswith("/containerGroups/web/providers/Microsoft.Insights/metrics/CpuUsage")
    assert cpu.type == "Microsoft.Insights/metrics" and cpu.error_code == "Success"
    (series,) = cpu.timeseries
    assert [(v.name.value, v.value) for v in series.metadatavalues] == [("containername", "app")]
    assert series.data[0].average is None, "before the container ran: a time stamp without a value"
    assert averages(response, "CpuUsage")[-1] == pytest.approx(2.0), "an idle server"
    assert averages(response, "MemoryUsage")[-1] == 24 * 2**20


def test_a_busy_loop_uses_a_core_or_the_containers_limit_and_a_sleeping_script_little(
    client, rg, monitor
) -> None:
    run(client, rg, "busy", ["sh", "-c", "while true; do true; done"], cpu=0.5)
    run(client, rg, "idle", ["sh", "-c", "while true; do sleep 1; done"])
    settle(monitor, rg, "busy", lambda r: averages(r, "CpuUsage")[-1:] == [500.0], "a busy half core")
    response = settle(monitor, rg, "idle", lambda r: averages(r, "CpuUsage"), "idle values")
    assert max(averages(response, "CpuUsage")) <= 1.0


def test_the_usage_convention_sets_and_changes_what_a_container_uses(client, rg, monitor) -> None:
    env = [
        models.EnvironmentVariable(name="ACI_EMULATOR_CPU", value="300m"),
        models.EnvironmentVariable(name="ACI_EMULATOR_MEMORY", value="64Mi"),
    ]
    run(client, rg, "set", ["sh", "-c", "sleep 2; usage cpu=0.9 memory=1Gi; sleep 3600"], env=env)
    first = settle(monitor, rg, "set", lambda r: averages(r, "CpuUsage"), "values")
    assert averages(first, "CpuUsage")[0] == pytest.approx(300.0)
    assert averages(first, "MemoryUsage")[0] == 64 * 2**20
    settle(
        monitor, rg, "set", lambda r: averages(r, "CpuUsage")[-1:] == [900.0], "the usage builtin's 0.9 core"
    )
    assert averages(read(monitor, rg, "set"), "MemoryUsage")[-1] == 2**30


def test_intervals_newer_than_the_lag_have_no_value_yet(emu, client, rg, monitor) -> None:
    run(client, rg, "lagged", None)
    emu.hook("PATCH", "config", {"metricsLagSeconds": 3600})
    assert averages(read(monitor, rg, "lagged"), "CpuUsage") == []
    emu.hook("PATCH", "config", {"metricsLagSeconds": 0})
    settle(monitor, rg, "lagged", lambda r: averages(r, "CpuUsage"), "values once the lag is gone")


def test_a_stopped_container_has_no_values_after_it_stopped(client, rg, monitor) -> None:
    run(client, rg, "stopped", None)
    settle(monitor, rg, "stopped", lambda r: averages(r, "CpuUsage"), "values")
    client.container_groups.stop(rg, "stopped")
    # Whole one-second intervals after the stop carry no value.
    settle(
        monitor,
        rg,
        "stopped",
        lambda r: r.value[0].timeseries[0].data[-2].average is None,
        "intervals without a value after the stop",
        seconds=10,
    )


def test_refusals_a_missing_group_an_unknown_metric_and_api_version(client, rg, monitor, emu) -> None:
    with pytest.raises(ResourceNotFoundError):
        read(monitor, rg, "missing")
    run(client, rg, "there", None)
    with pytest.raises(HttpResponseError) as unknown:
        read(monitor, rg, "there", metricnames="CpuUsage,Bogus")
    assert unknown.value.status_code == 400 and "Valid metrics: CpuUsage,MemoryUsage" in str(unknown.value)
    status, _, body = raw(
        emu,
        "GET",
        f"{group_path(rg, 'there')}/providers/Microsoft.Insights/metrics",
        query="api-version=2023-05-01",
    )
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")
    status, _, body = raw(
        emu,
        "GET",
        f"{group_path(rg, 'there')}/providers/Microsoft.Insights/metrics",
        query="api-version=2024-02-01",
    )
    assert status == 200 and body["value"][0]["name"]["value"] == "CpuUsage", "CpuUsage when no name is asked"
    assert body["value"][0]["timeseries"][0]["metadatavalues"] == [], "no filter: one series for the group"
    stats = emu.hook("GET", "stats")
    assert "Metrics_List" in stats["requests"]
