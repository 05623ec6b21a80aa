"""CPU, memory and GPU in ACI's steps, group totals that cover every limit, and the per-group maxima."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from mapping_builders import container, group, pod, problems, public_placement, vnet_placement

from acinode.mapping import quantities, resources

pytestmark = pytest.mark.timeout(2)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("1", Fraction(1)),
        ("1.5", Fraction(3, 2)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("2Ki", Fraction(2048)),
        (".5", Fraction(1, 2)),
        (3, Fraction(3)),
    ],
)
def test_quantities(text: str | int, value: Fraction) -> None:
    assert quantities.fraction_from_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1.2.3", "ten", "5 Mi", "1Mb"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantities.fraction_from_quantity(text)


def _resources(*containers: dict[str, Any], where: Any = None, **spec: Any) -> list[dict[str, Any]]:
    body = group(pod(*containers, **spec), where)
    return [c["properties"]["resources"] for c in body["properties"]["containers"]]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # ACI requires requests: defaults from the VirtualNode (virtual-kubelet's 1 CPU / 1.5 GB)
        ({}, {"requests": {"cpu": 1.0, "memoryInGB": 1.5}}),
        ({"requests": {"cpu": "250m", "memory": "512Mi"}}, {"requests": {"cpu": 0.25, "memoryInGB": 0.5}}),
        ({"requests": {"cpu": "1m", "memory": "1Mi"}}, {"requests": {"cpu": 0.01, "memoryInGB": 0.1}}),
        # always rounded up: a container never gets less than it asked for
        ({"requests": {"cpu": "333m", "memory": "1G"}}, {"requests": {"cpu": 0.34, "memoryInGB": 1.0}}),
        ({"requests": {"cpu": "2", "memory": "2.5Gi"}}, {"requests": {"cpu": 2.0, "memoryInGB": 2.5}}),
        ({"requests": {"cpu": "0", "memory": "0"}}, {"requests": {"cpu": 0.01, "memoryInGB": 0.1}}),
        # a limit alone means request = limit, as the API server defaults it
        (
            {"limits": {"cpu": "500m", "memory": "1Gi"}},
            {"requests": {"cpu": 0.5, "memoryInGB": 1.0}, "limits": {"cpu": 0.5, "memoryInGB": 1.0}},
        ),
        # a memory request only: cpu gets the default
        ({"requests": {"memory": "256Mi"}}, {"requests": {"cpu": 1.0, "memoryInGB": 0.3}}),
        # a default never exceeds a limit the user set
        (
            {"requests": {"memory": "256Mi"}, "limits": {"cpu": "200m"}},
            {"requests": {"cpu": 0.2, "memoryInGB": 0.3}, "limits": {"cpu": 0.2}},
        ),
        (
            {"requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"}},
            {"requests": {"cpu": 0.1, "memoryInGB": 0.2}},
        ),
    ],
)
def test_one_container(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _resources(container(resources=spec)) == [expected]


def test_a_limit_above_the_request_is_covered_by_the_group_total() -> None:
    # virtual-kubelet/azure-aci#17: ACI refuses a limit above the group's total request
    app = container(
        "app",
        resources={"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    )
    sidecar = container("log", resources={"requests": {"cpu": "100m", "memory": "128Mi"}})
    got = _resources(app, sidecar)
    assert got[0] == {"requests": {"cpu": 1.9, "memoryInGB": 1.8}, "limits": {"cpu": 2.0, "memoryInGB": 2.0}}
    assert got[1] == {"requests": {"cpu": 0.1, "memoryInGB": 0.2}}
    assert sum(c["requests"]["cpu"] for c in got) == pytest.approx(2.0)
    assert sum(c["requests"]["memoryInGB"] for c in got) == pytest.approx(2.0)


def test_init_containers_bigger_than_the_app_raise_the_group_total() -> None:
    init = container("migrate", resources={"requests": {"cpu": "2", "memory": "4Gi"}})
    app = container("app", resources={"requests": {"cpu": "500m", "memory": "1Gi"}})
    got = _resources(app, initContainers=[init])
    assert got == [{"requests": {"cpu": 2.0, "memoryInGB": 4.0}}]


def test_pod_level_resources_raise_the_group_total() -> None:
    app = container("app", resources={"requests": {"cpu": "500m", "memory": "1Gi"}})
    got = _resources(app, resources={"limits": {"cpu": "1", "memory": "2Gi"}})
    assert got == [{"requests": {"cpu": 1.0, "memoryInGB": 2.0}}]


@pytest.mark.parametrize(
    ("where", "spec", "annotations", "gpu"),
    [
        (
            public_placement(gpu_skus=("V100",)),
            {"limits": {"nvidia.com/gpu": "1"}},
            {},
            {"count": 1, "sku": "V100"},
        ),
        (
            public_placement(gpu_skus=("K80", "V100")),
            {"limits": {"nvidia.com/gpu": "2"}},
            {},
            {"count": 2, "sku": "K80"},
        ),
        (
            public_placement(gpu_skus=("K80", "V100")),
            {"limits": {"nvidia.com/gpu": "4"}},
            {"aci.acinode.dev/gpu-sku": "V100"},
            {"count": 4, "sku": "V100"},
        ),
    ],
)
def test_gpus(where: Any, spec: dict[str, Any], annotations: dict[str, str], gpu: dict[str, Any]) -> None:
    body = group(pod(container(resources=spec), annotations=annotations), where)
    got = body["properties"]["containers"][0]["properties"]["resources"]
    assert got["requests"]["gpu"] == gpu
    assert got["limits"]["gpu"] == gpu


@pytest.mark.parametrize(
    ("where", "spec", "annotations", "path", "reason"),
    [
        (
            public_placement(),
            {"limits": {"nvidia.com/gpu": "1"}},
            {},
            "spec.containers[*].resources.limits['nvidia.com/gpu']",
            "not offered",
        ),
        (
            public_placement(gpu_skus=("K80",)),
            {"limits": {"nvidia.com/gpu": "1"}},
            {"aci.acinode.dev/gpu-sku": "V100"},
            "spec.containers[*].resources.limits['nvidia.com/gpu']",
            "V100 is not offered",
        ),
        (
            public_placement(gpu_skus=("V100",)),
            {"limits": {"nvidia.com/gpu": "3"}},
            {},
            "spec.containers[*].resources.limits['nvidia.com/gpu']",
            "not 3",
        ),
        (
            vnet_placement(gpu_skus=("V100",)),
            {"limits": {"nvidia.com/gpu": "1"}},
            {},
            "spec.containers[*].resources.limits['nvidia.com/gpu']",
            "virtual network",
        ),
        (
            public_placement(),
            {"limits": {"nvidia.com/gpu": "500m"}},
            {},
            "spec.containers[0].resources.limits['nvidia.com/gpu']",
            "whole devices",
        ),
        (public_placement(), {"requests": {"cpu": "5"}}, {}, "spec.containers[*].resources", "at most 4"),
        (
            public_placement(),
            {"requests": {"memory": "17Gi"}},
            {},
            "spec.containers[*].resources",
            "at most 16",
        ),
        (
            public_placement(max_cpu=8.0),
            {"requests": {"cpu": "9"}},
            {},
            "spec.containers[*].resources",
            "at most 8",
        ),
        (public_placement(), {"limits": {"cpu": "6"}}, {}, "spec.containers[*].resources", "needs 6 CPU"),
        (
            public_placement(),
            {"limits": {"hugepages-2Mi": "1Gi"}},
            {},
            "spec.containers[0].resources.limits['hugepages-2Mi']",
            "ACI offers only",
        ),
        (
            public_placement(),
            {"requests": {"cpu": "lots"}},
            {},
            "spec.containers[0].resources.requests['cpu']",
            "not a Kubernetes quantity",
        ),
        (
            public_placement(),
            {"requests": {"cpu": "-1"}},
            {},
            "spec.containers[0].resources.requests['cpu']",
            "negative",
        ),
        (
            public_placement(),
            {"requests": {"ephemeral-storage": "60Gi"}},
            {},
            "spec.containers[*].resources.requests['ephemeral-storage']",
            "50 GB",
        ),
        (
            public_placement(),
            {"claims": [{"name": "gpu"}]},
            {},
            "spec.containers[0].resources.claims",
            "dynamic resource allocation",
        ),
    ],
)
def test_resource_refusals(
    where: Any, spec: dict[str, Any], annotations: dict[str, str], path: str, reason: str
) -> None:
    found = problems(pod(container(resources=spec), annotations=annotations), where)
    assert path in found, found
    assert reason in found[path]


def test_gpu_groups_have_their_own_maxima() -> None:
    where = public_placement(gpu_skus=("V100",))
    spec = {"requests": {"cpu": "6", "memory": "100Gi"}, "limits": {"nvidia.com/gpu": "1"}}
    group(pod(container(resources=spec)), where)
    too_big = {"requests": {"cpu": "7"}, "limits": {"nvidia.com/gpu": "1"}}
    assert "at most 6" in problems(pod(container(resources=too_big)), where)["spec.containers[*].resources"]


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "1"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        (
            [{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}],
            "Guaranteed",
        ),
        (
            [{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}],
            "Burstable",
        ),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
)
def test_qos_class(containers: list[dict[str, Any]], expected: str) -> None:
    spec: Any = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}
    assert resources.qos_class_from_pod(spec) == expected
