"""The Node (and its Lease) that stands for a VirtualNode, computed from its configuration (pure).

The Node must look like a healthy kubelet's node to the scheduler, the node lifecycle controller, ``kubectl`` and
monitoring, and carry the labels and taint that virtual-kubelet users' manifests rely on.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from acinode.mapping import conditions as conditions_mapping
from acinode.mapping import ownership, timestamps, virtualnode

PROVIDER_TAINT_KEY = "virtual-kubelet.io/provider"
PROVIDER_TAINT_VALUE = "azure"
BACKEND_TAINT_KEY = "acinode.dev/backend-unavailable"
"""NoSchedule taint acinode sets while the node's backend (ARM) is unhealthy, so that no *new* pod lands where it
cannot start; running pods are left alone (NoSchedule never evicts). Removed when the backend is healthy again."""
BACKEND_CONDITION = "BackendReachable"
"""Node (and VirtualNode) condition type saying whether ARM answers with the node's credentials."""
MANAGED_BY_LABEL = ownership.MANAGED_BY_LABEL
"""Label on every Node acinode manages, naming its VirtualNode (lets the operator watch only its own Nodes)."""
MANAGED_LABELS_ANNOTATION = "acinode.dev/managed-labels"
"""Which label keys acinode set on the Node, so that a label removed from the spec is removed from the Node."""
MANAGED_TAINTS_ANNOTATION = "acinode.dev/managed-taints"
"""Which taints (``key:effect``) acinode set, so that taints added by others (an admin, the autoscaler, the node
lifecycle controller) are kept and only a taint removed from the spec is removed from the Node."""
LEASE_NAMESPACE = "kube-node-lease"
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")


@dataclasses.dataclass(frozen=True)
class NodeIdentity:
    """How this operator instance presents itself in the Nodes it registers."""

    internal_ip: str
    kubelet_port: int
    kubelet_version: str
    architecture: str = "amd64"


def node_labels(config: virtualnode.VirtualNodeConfig) -> dict[str, str]:
    os_name = config.operating_system
    return {
        **config.labels,
        "type": "virtual-kubelet",
        "kubernetes.io/role": "agent",
        "kubernetes.io/os": os_name,
        "beta.kubernetes.io/os": os_name,
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": config.node_name,
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        "topology.kubernetes.io/region": config.azure.region,
        MANAGED_BY_LABEL: config.name,
    }


DERIVED_LABEL_KEYS = frozenset(
    {
        "type",
        "kubernetes.io/role",
        "kubernetes.io/os",
        "beta.kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/arch",
        "kubernetes.io/hostname",
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "topology.kubernetes.io/region",
        MANAGED_BY_LABEL,
    }
)
"""The labels acinode sets itself (``node_labels``): spec.labels may not set them, so none is silently ignored."""

KUBELET_LABEL_KEYS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    }
)
"""The kubernetes.io labels a kubelet may set on its own Node (k8s.io/kubelet/pkg/apis ``kubeletLabels``)."""
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
"""Label prefixes (and their subdomains) a kubelet may set on its own Node (``kubeletLabelNamespaces``)."""
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"
RESTRICTED_NAMESPACES = ("kubernetes.io", "k8s.io")


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _in_domain(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_label_forbidden_to_kubelets(key: str) -> bool:
    """Whether NodeRestriction forbids a kubelet to set label ``key`` on its own Node.

    The same rule as the admission plugin (plugin/pkg/admission/noderestriction ``getForbiddenLabels``):
    ``node-restriction.kubernetes.io/`` (and subdomains), and any other kubernetes.io or k8s.io label (and
    subdomains) that is not one of the kubelet's own (``KUBELET_LABEL_KEYS``, ``KUBELET_LABEL_NAMESPACES``).
    """
    namespace = _label_namespace(key)
    if _in_domain(namespace, NODE_RESTRICTION_NAMESPACE):
        return True
    if not any(_in_domain(namespace, domain) for domain in RESTRICTED_NAMESPACES):
        return False
    if key in KUBELET_LABEL_KEYS:
        return False
    return not any(_in_domain(namespace, allowed) for allowed in KUBELET_LABEL_NAMESPACES)


FORBIDDEN_LABELS = "ForbiddenLabels"


def spec_labels_refusal(labels: Mapping[str, str]) -> ownership.Refusal | None:
    """Why acinode refuses a VirtualNode's ``spec.labels``, or None when it may apply them.

    Refused: labels a kubelet may not set on itself (a virtual node is no wider a door than a kubelet), and the
    labels acinode derives itself (``DERIVED_LABEL_KEYS``), which would otherwise be silently overridden. The CRD
    refuses both at admission; this catches objects stored before that rule.
    """
    restricted = sorted(k for k in labels if is_label_forbidden_to_kubelets(k))
    derived = sorted(k for k in labels if k in DERIVED_LABEL_KEYS and not is_label_forbidden_to_kubelets(k))
    problems = []
    if restricted:
        problems.append(
            f"{', '.join(restricted)}: NodeRestriction forbids a kubelet to set "
            + ("this label" if len(restricted) == 1 else "these labels")
            + " on its own Node (node-restriction.kubernetes.io/*, and kubernetes.io or k8s.io labels other than "
            "the kubelet's own)"
        )
    if derived:
        problems.append(
            f"{', '.join(derived)}: acinode sets "
            + ("this label" if len(derived) == 1 else "these labels")
            + " itself (from nodeName, operatingSystem and azure.region)"
        )
    if not problems:
        return None
    return ownership.Refusal(
        FORBIDDEN_LABELS, "spec.labels refused, the Node is not registered or updated: " + "; ".join(problems)
    )


def node_taints(
    config: virtualnode.VirtualNodeConfig, *, backend_unavailable: bool = False
) -> list[dict[str, str]]:
    """The spec's taints (and the provider taint unless disabled), plus ``BACKEND_TAINT_KEY`` while the backend is
    unavailable (``backend_unavailable``)."""
    taints = (
        []
        if config.disable_default_taint
        else [{"key": PROVIDER_TAINT_KEY, "value": PROVIDER_TAINT_VALUE, "effect": "NoSchedule"}]
    )
    for taint in config.taints:
        if any(t["key"] == taint.key and t["effect"] == taint.effect for t in taints):
            continue  # the API server refuses two taints with one key and effect: the first one wins
        entry = {"key": taint.key, "effect": taint.effect}
        if taint.value is not None:
            entry["value"] = taint.value
        taints.append(entry)
    if backend_unavailable and not any(
        t["key"] == BACKEND_TAINT_KEY and t["effect"] == "NoSchedule" for t in taints
    ):
        taints.append({"key": BACKEND_TAINT_KEY, "effect": "NoSchedule"})
    return taints


def node_capacity(config: virtualnode.VirtualNodeConfig) -> dict[str, str]:
    return {key: str(value) for key, value in config.capacity.items()}


def node_from_virtual_node(
    config: virtualnode.VirtualNodeConfig,
    identity: NodeIdentity,
    owner_uid: str | None = None,
    *,
    backend_unavailable: bool = False,
) -> dict[str, Any]:
    """The Node object to create for ``config`` (metadata and spec; status is patched separately)."""
    labels = node_labels(config)
    taints = node_taints(config, backend_unavailable=backend_unavailable)
    annotations = {
        MANAGED_LABELS_ANNOTATION: ",".join(sorted(labels)),
        MANAGED_TAINTS_ANNOTATION: ",".join(sorted(_taint_key(t) for t in taints)),
    }
    if owner_uid:
        # Not an ownerReference: a cluster-scoped CR could own the Node, but then deleting the VirtualNode would
        # let the garbage collector remove the Node before our finalizer has removed the container groups.
        annotations[ownership.VIRTUAL_NODE_UID_ANNOTATION] = owner_uid
    metadata: dict[str, Any] = {"name": config.node_name, "labels": labels, "annotations": annotations}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "spec": {"taints": taints},
    }


def node_static_status(config: virtualnode.VirtualNodeConfig, identity: NodeIdentity) -> dict[str, Any]:
    """The parts of Node status that follow from configuration: capacity, addresses, endpoints, info."""
    capacity = node_capacity(config)
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [
            {"type": "InternalIP", "address": identity.internal_ip},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": identity.kubelet_port}},
        # The kubelet API speaks websockets for exec: the API server may pass them through instead of
        # translating to SPDY (both work).
        "declaredFeatures": ["ExtendWebSocketsToKubelet"],
        "nodeInfo": {
            "architecture": identity.architecture,
            "operatingSystem": config.operating_system,
            "kubeletVersion": identity.kubelet_version,
            "kubeProxyVersion": "",
            "osImage": f"Azure Container Instances ({config.azure.region})",
            "kernelVersion": "",
            "containerRuntimeVersion": "aci://2023-05-01",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


@dataclasses.dataclass(frozen=True)
class Readiness:
    """The truth about a virtual node's backend, as the heartbeat last saw it."""

    ready: bool
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class BackendHealth:
    """Whether the node's backend (ARM, with the node's credentials) is healthy, as the hysteresis last decided.

    ``reachable`` is None while nothing is known: not checked yet, or not checkable (the configuration is unusable,
    which Ready already says). Only ``reachable is False`` taints the node.
    """

    reachable: bool | None
    reason: str
    message: str

    @property
    def status(self) -> str:
        return "Unknown" if self.reachable is None else "True" if self.reachable else "False"


def node_conditions(
    readiness: Readiness,
    now: datetime.datetime,
    previous: Sequence[Mapping[str, Any]] = (),
    backend: BackendHealth | None = None,
) -> list[dict[str, Any]]:
    """Ready plus the pressure conditions (and ``BackendReachable`` when ``backend`` is given), keeping each
    transition time unless its status changed."""
    stamp = _timestamp(now)
    before = {c.get("type"): c for c in previous}
    desired = [
        ("Ready", "True" if readiness.ready else "False", readiness.reason, readiness.message),
        *[(name, "False", f"KubeletHasNo{name}", f"ACI has no {name}") for name in PRESSURE_CONDITIONS],
        (
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "Networking is provided by Azure Container Instances",
        ),
    ]
    if backend is not None:
        desired.append((BACKEND_CONDITION, backend.status, backend.reason, backend.message))
    conditions = []
    for kind, status, reason, message in desired:
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": conditions_mapping.transition_time(before.get(kind), status, stamp),
            }
        )
    return conditions


def conditions_differ(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two condition lists differ in anything but heartbeat times."""

    def essence(conditions: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
        return {(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conditions}

    return essence(a) != essence(b)


def lease_from_node(
    node_name: str, node_uid: str, now: datetime.datetime, duration_seconds: int
) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": _micro_timestamp(now),
        },
    }


def node_metadata_drift(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch bringing ``actual``'s labels and taints to ``desired``'s, or None when they agree.

    Labels others added to the Node are kept; labels acinode set are always those of the spec, and a label
    acinode set earlier but the spec no longer has is removed.
    """
    desired_labels = desired["metadata"]["labels"]
    actual_metadata = actual.get("metadata", {})
    actual_labels = actual_metadata.get("labels") or {}
    managed_before = set(
        filter(None, (actual_metadata.get("annotations") or {}).get(MANAGED_LABELS_ANNOTATION, "").split(","))
    )
    patch: dict[str, Any] = {}
    label_patch: dict[str, Any] = {k: v for k, v in desired_labels.items() if actual_labels.get(k) != v}
    label_patch.update({k: None for k in managed_before - set(desired_labels) if k in actual_labels})
    managed_now = desired["metadata"]["annotations"][MANAGED_LABELS_ANNOTATION]
    if label_patch or managed_before != set(desired_labels):
        patch["metadata"] = {"labels": label_patch, "annotations": {MANAGED_LABELS_ANNOTATION: managed_now}}
    desired_taints = desired["spec"]["taints"]
    actual_taints = actual.get("spec", {}).get("taints") or []
    annotations = actual_metadata.get("annotations") or {}
    taints_before = set(filter(None, annotations.get(MANAGED_TAINTS_ANNOTATION, "").split(",")))
    desired_keys = {_taint_key(t) for t in desired_taints}
    # Taints others set (an admin, the autoscaler, the node lifecycle controller) are not ours to remove.
    foreign = [t for t in actual_taints if _taint_key(t) not in taints_before | desired_keys]
    if _taint_set(actual_taints) != _taint_set(foreign + desired_taints):
        patch["spec"] = {"taints": foreign + desired_taints}
    taints_now = desired["metadata"]["annotations"][MANAGED_TAINTS_ANNOTATION]
    if annotations.get(MANAGED_TAINTS_ANNOTATION) != taints_now:
        patch.setdefault("metadata", {}).setdefault("annotations", {})[MANAGED_TAINTS_ANNOTATION] = taints_now
    return patch or None


def _taint_key(taint: Mapping[str, Any]) -> str:
    return f"{taint.get('key')}:{taint.get('effect')}"


def _taint_set(taints: Sequence[Mapping[str, Any]]) -> set[tuple[Any, Any, Any]]:
    return {(t.get("key"), t.get("value"), t.get("effect")) for t in taints}


def _timestamp(now: datetime.datetime) -> str:
    return timestamps.rfc3339(now)


def _micro_timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
