"""CPU, memory and GPU: requests and limits in ACI's units, with group totals that cover every limit.

ACI sizes a container group by the sum of its containers' requests, and refuses any container limit above
that sum (``ContainerLimitGreaterThanContainerGroupTotalRequest``, virtual-kubelet/azure-aci#17). Kubernetes
allows a limit above the request, so the shortfall is added to the request of the container with the largest
limit — never beyond its own limit — and the group is billed for what its containers may really use.

Values are kept as integers of ACI's steps (0.01 CPU, 0.1 GB) and always rounded up, so a container never
gets less than it asked for. ACI's "GB" is taken as GiB, the unit Kubernetes users write (512Mi → 0.5).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from azure.mgmt.containerinstance import models

from acinode.mapping import objects, placement, problems, quantities

CPU = "cpu"
MEMORY = "memory"
GPU = "nvidia.com/gpu"
EPHEMERAL_STORAGE = "ephemeral-storage"
SUPPORTED = (CPU, MEMORY, GPU, EPHEMERAL_STORAGE)

CPU_STEPS_PER_CORE = 100
MEMORY_STEPS_PER_GB = 10
_MEMORY_STEP_BYTES = quantities.GIB / MEMORY_STEPS_PER_GB

#: Group storage ACI provides (images and writable layers included), per OS.
MAX_STORAGE_GB = {"linux": 50, "windows": 20}

#: Per GPU SKU: allowed GPU counts per group → (max CPU, max memory GB) of that group.
GPU_MAXIMA: dict[str, dict[int, tuple[int, int]]] = {
    "K80": {1: (6, 56), 2: (12, 112), 4: (24, 224)},
    "P100": {1: (6, 112), 2: (12, 224), 4: (24, 448)},
    "V100": {1: (6, 112), 2: (12, 224), 4: (24, 448)},
}


@dataclasses.dataclass
class ContainerResources:
    """One container's resources in ACI steps. ``limit_*`` is None when Kubernetes sets no such limit."""

    request_cpu: int
    request_memory: int
    limit_cpu: int | None = None
    limit_memory: int | None = None
    gpu: int = 0
    has_gpu_limit: bool = False

    @property
    def effective_limit_cpu(self) -> int:
        """What the container may use: ACI caps a container without a limit at its request."""
        return self.limit_cpu if self.limit_cpu is not None else self.request_cpu

    @property
    def effective_limit_memory(self) -> int:
        return self.limit_memory if self.limit_memory is not None else self.request_memory

    @property
    def has_limits(self) -> bool:
        return self.limit_cpu is not None or self.limit_memory is not None or self.has_gpu_limit


@dataclasses.dataclass
class GroupResources:
    containers: list[ContainerResources]
    init_containers: list[ContainerResources]
    gpu_sku: str | None = None

    @property
    def total_cpu(self) -> int:
        return sum(c.request_cpu for c in self.containers)

    @property
    def total_memory(self) -> int:
        return sum(c.request_memory for c in self.containers)

    @property
    def total_gpu(self) -> int:
        return sum(c.gpu for c in self.containers)


def cpu_steps(value: Fraction) -> int:
    return max(1, math.ceil(value * CPU_STEPS_PER_CORE))


def memory_steps(value_bytes: Fraction) -> int:
    return max(1, math.ceil(value_bytes / _MEMORY_STEP_BYTES))


def cpu_from_steps(steps: int) -> float:
    return steps / CPU_STEPS_PER_CORE


def memory_gb_from_steps(steps: int) -> float:
    return steps / MEMORY_STEPS_PER_GB


def millicores_from_steps(steps: int) -> int:
    return steps * (1000 // CPU_STEPS_PER_CORE)


def bytes_from_memory_steps(steps: int) -> int:
    return math.ceil(steps * _MEMORY_STEP_BYTES)


def _quantity(
    values: dict[str, str | int | float], name: str, path: str, found: problems.Problems
) -> Fraction | None:
    if name not in values:
        return None
    try:
        value = quantities.fraction_from_quantity(values[name])
    except ValueError:
        found.add(problems.key_path(path, name), f"{values[name]!r} is not a Kubernetes quantity")
        return None
    if value < 0:
        found.add(problems.key_path(path, name), "must not be negative")
        return None
    return value


def _container_resources(
    container: objects.Container, path: str, where: placement.GroupPlacement, found: problems.Problems
) -> tuple[ContainerResources, Fraction]:
    """The container's resources and its ephemeral-storage request in bytes."""
    spec = container.get("resources", {})
    requests, limits = spec.get("requests", {}), spec.get("limits", {})
    for kind, values in (("requests", requests), ("limits", limits)):
        for name in values:
            if name not in SUPPORTED:
                found.add(
                    problems.key_path(f"{path}.resources.{kind}", name),
                    f"ACI offers only {', '.join(SUPPORTED)}",
                )
    if spec.get("claims"):
        found.add(f"{path}.resources.claims", "ACI has no dynamic resource allocation")

    request_path, limit_path = f"{path}.resources.requests", f"{path}.resources.limits"
    limit_cpu = _quantity(limits, CPU, limit_path, found)
    limit_memory = _quantity(limits, MEMORY, limit_path, found)
    # The API server defaults a missing request to the limit; a pod built by hand may not have had that done.
    request_cpu = _quantity(requests, CPU, request_path, found)
    request_memory = _quantity(requests, MEMORY, request_path, found)
    if request_cpu is None:
        request_cpu = limit_cpu if limit_cpu is not None else Fraction(where.default_cpu)
    if request_memory is None:
        request_memory = (
            limit_memory if limit_memory is not None else Fraction(where.default_memory_gb) * quantities.GIB
        )
    resources = ContainerResources(
        request_cpu=cpu_steps(request_cpu),
        request_memory=memory_steps(request_memory),
        limit_cpu=cpu_steps(limit_cpu) if limit_cpu is not None else None,
        limit_memory=memory_steps(limit_memory) if limit_memory is not None else None,
    )
    # A default request must not exceed a limit the user did set.
    if resources.limit_cpu is not None:
        resources.request_cpu = min(resources.request_cpu, resources.limit_cpu)
    if resources.limit_memory is not None:
        resources.request_memory = min(resources.request_memory, resources.limit_memory)

    gpu = _quantity(limits, GPU, limit_path, found)
    gpu_request = _quantity(requests, GPU, request_path, found)
    if gpu is None:
        gpu = gpu_request
    if gpu is not None:
        if gpu.denominator != 1:
            found.add(problems.key_path(limit_path, GPU), "GPUs are counted in whole devices")
        elif gpu_request is not None and gpu_request != gpu:
            found.add(problems.key_path(request_path, GPU), "must equal the GPU limit")
        else:
            resources.gpu = int(gpu)
            resources.has_gpu_limit = GPU in limits
    storage = _quantity(requests, EPHEMERAL_STORAGE, request_path, found)
    if storage is None:
        storage = _quantity(limits, EPHEMERAL_STORAGE, limit_path, found)
    return resources, storage or Fraction(0)


def _cover_limits(resources: GroupResources, floor_cpu: int, floor_memory: int) -> None:
    """Raise requests until the group total covers every limit (and ``floor_*``)."""
    app = resources.containers
    if not app:
        return
    target_cpu = max([floor_cpu, resources.total_cpu, *(c.effective_limit_cpu for c in app)])
    target_memory = max([floor_memory, resources.total_memory, *(c.effective_limit_memory for c in app)])
    if target_cpu > resources.total_cpu:
        widest = max(app, key=lambda c: c.effective_limit_cpu)
        widest.request_cpu += target_cpu - resources.total_cpu
        if widest.limit_cpu is not None:
            widest.limit_cpu = max(widest.limit_cpu, widest.request_cpu)
    if target_memory > resources.total_memory:
        widest = max(app, key=lambda c: c.effective_limit_memory)
        widest.request_memory += target_memory - resources.total_memory
        if widest.limit_memory is not None:
            widest.limit_memory = max(widest.limit_memory, widest.request_memory)


def _pod_level_floor(spec: objects.PodSpec, found: problems.Problems) -> tuple[int, int]:
    """Pod-level requests and limits (``spec.resources``) as group-total floors, in steps."""
    pod_resources = spec.get("resources", {})
    floor_cpu = floor_memory = 0
    for path, values in (
        ("spec.resources.requests", pod_resources.get("requests", {})),
        ("spec.resources.limits", pod_resources.get("limits", {})),
    ):
        for name in values:
            if name not in (CPU, MEMORY):
                found.add(problems.key_path(path, name), "pod-level resources cover only cpu and memory")
        cpu = _quantity(values, CPU, path, found)
        memory = _quantity(values, MEMORY, path, found)
        floor_cpu = max(floor_cpu, cpu_steps(cpu) if cpu else 0)
        floor_memory = max(floor_memory, memory_steps(memory) if memory else 0)
    return floor_cpu, floor_memory


def group_resources_from_pod(
    spec: objects.PodSpec, where: placement.GroupPlacement, gpu_sku: str | None, found: problems.Problems
) -> GroupResources:
    """Every container's ACI resources, adjusted so the group covers its limits, its init containers and
    pod-level resources, and checked against the group maxima of the region (or of the GPU SKU)."""
    storage = Fraction(0)
    init: list[ContainerResources] = []
    for index, container in enumerate(spec.get("initContainers", [])):
        resources, init_storage = _container_resources(
            container, f"spec.initContainers[{index}]", where, found
        )
        if resources.gpu:
            found.add(f"spec.initContainers[{index}].resources", "ACI init containers cannot have GPUs")
        init.append(resources)
        storage = max(storage, init_storage)
    app: list[ContainerResources] = []
    app_storage = Fraction(0)
    for index, container in enumerate(spec.get("containers", [])):
        resources, container_storage = _container_resources(
            container, f"spec.containers[{index}]", where, found
        )
        app.append(resources)
        app_storage += container_storage
    group = GroupResources(containers=app, init_containers=init)

    # Init containers run one at a time on the group's resources, before the app containers.
    floor_cpu = max([0, *(max(c.request_cpu, c.effective_limit_cpu) for c in init)])
    floor_memory = max([0, *(max(c.request_memory, c.effective_limit_memory) for c in init)])
    pod_cpu, pod_memory = _pod_level_floor(spec, found)
    _cover_limits(group, max(floor_cpu, pod_cpu), max(floor_memory, pod_memory))

    max_storage = MAX_STORAGE_GB["windows" if where.is_windows else "linux"]
    if max(storage, app_storage) > max_storage * quantities.GIB:
        found.add(
            "spec.containers[*].resources.requests['ephemeral-storage']",
            f"a container group has {max_storage} GB of storage in all",
        )
    _check_maxima(group, where, gpu_sku, found)
    return group


def _check_maxima(
    group: GroupResources, where: placement.GroupPlacement, gpu_sku: str | None, found: problems.Problems
) -> None:
    max_cpu, max_memory = where.max_cpu, where.max_memory_gb
    if group.total_gpu:
        sku = gpu_sku or (where.gpu_skus[0] if where.gpu_skus else None)
        if where.is_windows:
            found.add(
                "spec.containers[*].resources.limits['nvidia.com/gpu']", "ACI offers GPUs to Linux only"
            )
        if where.is_vnet:
            found.add(
                "spec.containers[*].resources.limits['nvidia.com/gpu']",
                "ACI offers no GPUs to container groups in a virtual network",
            )
        if sku is None or sku not in where.gpu_skus:
            offered = ", ".join(where.gpu_skus) or "none"
            found.add(
                "spec.containers[*].resources.limits['nvidia.com/gpu']",
                f"GPU SKU {sku or '(any)'} is not offered in {where.region} (offered: {offered})",
            )
            return
        group.gpu_sku = sku
        maxima = GPU_MAXIMA.get(sku, {})
        if group.total_gpu not in maxima:
            counts = ", ".join(str(count) for count in sorted(maxima))
            found.add(
                "spec.containers[*].resources.limits['nvidia.com/gpu']",
                f"a {sku} container group has {counts} GPUs, not {group.total_gpu}",
            )
            return
        max_cpu, max_memory = maxima[group.total_gpu]
    cpu, memory = cpu_from_steps(group.total_cpu), memory_gb_from_steps(group.total_memory)
    if cpu > max_cpu:
        found.add(
            "spec.containers[*].resources",
            f"the group needs {cpu:g} CPU to cover its containers' requests and limits; "
            f"a container group in {where.region} has at most {max_cpu:g}",
        )
    if memory > max_memory:
        found.add(
            "spec.containers[*].resources",
            f"the group needs {memory:g} GB of memory to cover its containers' requests and limits; "
            f"a container group in {where.region} has at most {max_memory:g}",
        )


def aci_resources_from_container(
    resources: ContainerResources, gpu_sku: str | None
) -> models.ResourceRequirements:
    gpu = models.GpuResource(count=resources.gpu, sku=gpu_sku) if resources.gpu and gpu_sku else None
    limits = None
    if resources.has_limits:
        limits = models.ResourceLimits(
            cpu=cpu_from_steps(resources.limit_cpu) if resources.limit_cpu is not None else None,
            memory_in_gb=(
                memory_gb_from_steps(resources.limit_memory) if resources.limit_memory is not None else None
            ),
            gpu=gpu if resources.has_gpu_limit else None,
        )
    return models.ResourceRequirements(
        requests=models.ResourceRequests(
            cpu=cpu_from_steps(resources.request_cpu),
            memory_in_gb=memory_gb_from_steps(resources.request_memory),
            gpu=gpu,
        ),
        limits=limits,
    )


def qos_class_from_pod(spec: objects.PodSpec) -> str:
    """Kubernetes' QoS class (Guaranteed, Burstable, BestEffort) from cpu and memory requests and limits."""
    guaranteed = True
    any_set = False
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        resources = container.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for name in (CPU, MEMORY):
            limit = _parse_or_zero(limits.get(name))
            request = _parse_or_zero(requests.get(name)) if name in requests else limit
            any_set = any_set or bool(request) or bool(limit)
            if not limit or request != limit:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _parse_or_zero(value: str | int | float | None) -> Fraction:
    if value is None:
        return Fraction(0)
    try:
        return quantities.fraction_from_quantity(value)
    except ValueError:
        return Fraction(0)
