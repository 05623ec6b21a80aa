"""ARM requests are named by operation from their method and path, and counted by result."""

from __future__ import annotations

import pytest

from acinode.aci import counting

SUB = "/subscriptions/0000/resourceGroups/rg-1/providers/Microsoft.ContainerInstance"
LOC = "/subscriptions/0000/providers/Microsoft.ContainerInstance/locations/westeurope"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("PUT", f"{SUB}/containerGroups/web", "create_or_update"),
        ("GET", f"{SUB}/containerGroups/web", "get"),
        ("DELETE", f"{SUB}/containerGroups/web", "delete"),
        ("PATCH", f"{SUB}/containerGroups/web", "update"),
        ("GET", f"{SUB}/containerGroups", "list"),
        ("GET", "/subscriptions/0000/providers/Microsoft.ContainerInstance/containerGroups", "list"),
        ("GET", f"{SUB}/containerGroups/web/containers/app/logs", "logs"),
        ("POST", f"{SUB}/containerGroups/web/containers/app/exec", "exec"),
        ("POST", f"{SUB}/containerGroups/web/containers/app/attach", "attach"),
        ("POST", f"{SUB}/containerGroups/web/stop", "stop"),
        ("POST", f"{SUB}/containerGroups/web/start", "start"),
        ("POST", f"{SUB}/containerGroups/web/restart", "restart"),
        ("GET", f"{LOC}/usages", "usage"),
        ("GET", f"{LOC}/capabilities", "capabilities"),
        ("GET", f"{LOC}/cachedImages", "cached_images"),
        ("GET", f"{LOC}/operations/1234-abcd", "operation_status"),
        ("get", f"{SUB.lower()}/containergroups/web", "get"),
        ("POST", f"{SUB}/containerGroups/web", "other"),
        ("GET", "/subscriptions/0000/resourceGroups/rg-1", "other"),
    ],
)
def test_operations_are_named_from_method_and_path(method: str, path: str, operation: str) -> None:
    assert counting.operation_of(method, path) == operation


def test_counts_by_operation_and_result() -> None:
    counter = counting.ArmRequestCounter()
    for result in ("201", "201", "429", "ServiceRequestError"):
        counter.record("create_or_update", result)
    counter.record("get", "200")
    assert counter.count() == 5
    assert counter.count("create_or_update") == 4
    assert counter.count(result="201") == 2
    assert counter.count("get", "404") == 0
    assert counter.snapshot()[("create_or_update", "429")] == 1
    counter.reset()
    assert counter.snapshot() == {}
