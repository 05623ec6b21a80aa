"""The Node and Lease that stand for a VirtualNode: labels, taints, capacity, status, conditions and drift."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from acinode.mapping import node as node_mapping
from acinode.mapping import virtualnode

pytestmark = pytest.mark.timeout(2)

NOW = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
NOW_TEXT = "2025-01-01T12:00:00Z"
EARLIER_TEXT = "2025-01-01T11:00:00Z"
IDENTITY = node_mapping.NodeIdentity(
    internal_ip="10.0.0.7", kubelet_port=10250, kubelet_version="v1.37.2-acinode"
)
PROVIDER_TAINT = {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}
READY = node_mapping.Readiness(True, "KubeletReady", "all good")
NOT_READY = node_mapping.Readiness(False, "BackendUnreachable", "ARM did not answer")


def config(name: str = "vn-1", **spec: Any) -> virtualnode.VirtualNodeConfig:
    """A VirtualNode as the API server returns it (``spec`` keys in camelCase), parsed."""
    azure = {
        "subscriptionId": "00000000-0000-0000-0000-000000000001",
        "resourceGroup": "rg",
        "region": "westeurope",
    }
    return virtualnode.virtual_node_config_from_resource(
        {"metadata": {"name": name}, "spec": {"azure": azure, **spec}}
    )


# --- labels -----------------------------------------------------------------------------------------------------

VIRTUAL_KUBELET_LABELS = {
    "type": "virtual-kubelet",
    "kubernetes.io/role": "agent",
    "kubernetes.io/os": "linux",
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": "vn-1",
    "node.kubernetes.io/exclude-from-external-load-balancers": "true",
    "topology.kubernetes.io/region": "westeurope",
    "acinode.dev/virtual-node": "vn-1",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, VIRTUAL_KUBELET_LABELS, id="defaults"),
        pytest.param(
            {"labels": {"team": "burst", "example.com/tier": "spot"}},
            {**VIRTUAL_KUBELET_LABELS, "team": "burst", "example.com/tier": "spot"},
            id="user-labels-added",
        ),
        # The labels users' manifests select on always win: a spec label cannot override them.
        pytest.param({"labels": {"type": "custom"}}, VIRTUAL_KUBELET_LABELS, id="cannot-override-type"),
        pytest.param(
            {"labels": {"kubernetes.io/hostname": "elsewhere", "kubernetes.io/os": "plan9"}},
            VIRTUAL_KUBELET_LABELS,
            id="cannot-override-kubernetes-labels",
        ),
        pytest.param(
            {"labels": {"acinode.dev/virtual-node": "someone-else"}},
            VIRTUAL_KUBELET_LABELS,
            id="cannot-override-managed-by",
        ),
        pytest.param(
            {"operatingSystem": "windows"},
            {**VIRTUAL_KUBELET_LABELS, "kubernetes.io/os": "windows", "beta.kubernetes.io/os": "windows"},
            id="windows",
        ),
        pytest.param(
            {"nodeName": "aci-node"},
            {**VIRTUAL_KUBELET_LABELS, "kubernetes.io/hostname": "aci-node"},
            id="node-name-differs-from-virtual-node-name",
        ),
    ],
)
def test_node_labels(spec: dict[str, Any], expected: dict[str, str]) -> None:
    assert node_mapping.node_labels(config(**spec)) == expected


def test_the_managed_labels_annotation_lists_every_label_acinode_sets() -> None:
    node = node_mapping.node_from_virtual_node(config(labels={"team": "burst"}), IDENTITY)
    managed = node["metadata"]["annotations"][node_mapping.MANAGED_LABELS_ANNOTATION]
    assert managed.split(",") == sorted({*VIRTUAL_KUBELET_LABELS, "team"})


@pytest.mark.parametrize(
    ("owner_uid", "annotations"),
    [
        (None, set()),
        ("", set()),
        ("0d6b7a4e-uid", {"acinode.dev/virtual-node-uid"}),
    ],
)
def test_the_node_names_its_virtual_node_by_annotation_not_owner_reference(
    owner_uid: str | None, annotations: set[str]
) -> None:
    node = node_mapping.node_from_virtual_node(config(), IDENTITY, owner_uid)
    assert node["apiVersion"] == "v1"
    assert node["kind"] == "Node"
    assert node["metadata"]["name"] == "vn-1"
    assert "ownerReferences" not in node["metadata"]
    assert set(node["metadata"]["annotations"]) == {
        node_mapping.MANAGED_LABELS_ANNOTATION,
        node_mapping.MANAGED_TAINTS_ANNOTATION,
        *annotations,
    }
    if owner_uid:
        assert node["metadata"]["annotations"]["acinode.dev/virtual-node-uid"] == owner_uid
    assert "status" not in node


# --- taints -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, [PROVIDER_TAINT], id="default"),
        pytest.param(
            {"taints": [{"key": "azure.com/aci", "effect": "NoSchedule"}]},
            [PROVIDER_TAINT, {"key": "azure.com/aci", "effect": "NoSchedule"}],
            id="extra-without-value",
        ),
        pytest.param(
            {"taints": [{"key": "dedicated", "value": "burst", "effect": "NoExecute"}]},
            [PROVIDER_TAINT, {"key": "dedicated", "value": "burst", "effect": "NoExecute"}],
            id="extra-with-value",
        ),
        pytest.param(
            {"taints": [{"key": "a", "value": "", "effect": "PreferNoSchedule"}]},
            [PROVIDER_TAINT, {"key": "a", "value": "", "effect": "PreferNoSchedule"}],
            id="empty-value-kept",
        ),
        pytest.param({"disableDefaultTaint": True}, [], id="default-disabled"),
        pytest.param(
            {"disableDefaultTaint": True, "taints": [{"key": "a", "effect": "NoSchedule"}]},
            [{"key": "a", "effect": "NoSchedule"}],
            id="default-disabled-extra-kept",
        ),
        pytest.param({"disableDefaultTaint": False}, [PROVIDER_TAINT], id="default-explicitly-enabled"),
    ],
)
def test_node_taints(spec: dict[str, Any], expected: list[dict[str, str]]) -> None:
    assert node_mapping.node_taints(config(**spec)) == expected
    assert node_mapping.node_from_virtual_node(config(**spec), IDENTITY)["spec"]["taints"] == expected


def test_a_spec_taint_repeating_the_default_taints_key_and_effect_is_not_repeated() -> None:
    """The API server rejects a Node whose taints repeat a key and effect."""
    taints = node_mapping.node_taints(
        config(taints=[{"key": "virtual-kubelet.io/provider", "value": "aci", "effect": "NoSchedule"}])
    )
    assert len({(t["key"], t["effect"]) for t in taints}) == len(taints)


# --- capacity and static status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        pytest.param(None, {"cpu": "800", "memory": "4Ti", "pods": "1000"}, id="defaults"),
        pytest.param({}, {"cpu": "800", "memory": "4Ti", "pods": "1000"}, id="empty"),
        pytest.param({"cpu": "100"}, {"cpu": "100", "memory": "4Ti", "pods": "1000"}, id="partial"),
        pytest.param(
            {"cpu": "1500m", "memory": "200Gi", "pods": 50},
            {"cpu": "1500m", "memory": "200Gi", "pods": "50"},
            id="all-integers-as-strings",
        ),
        pytest.param({"cpu": 4}, {"cpu": "4", "memory": "4Ti", "pods": "1000"}, id="int-or-string-cpu"),
        pytest.param(
            {"nvidia.com/gpu": 4},
            {"cpu": "800", "memory": "4Ti", "pods": "1000", "nvidia.com/gpu": "4"},
            id="gpu",
        ),
    ],
)
def test_node_capacity(capacity: dict[str, Any] | None, expected: dict[str, str]) -> None:
    assert node_mapping.node_capacity(config(capacity=capacity)) == expected


def test_node_static_status_looks_like_a_kubelets() -> None:
    status = node_mapping.node_static_status(config(capacity={"cpu": "100"}), IDENTITY)
    assert status == {
        "capacity": {"cpu": "100", "memory": "4Ti", "pods": "1000"},
        "allocatable": {"cpu": "100", "memory": "4Ti", "pods": "1000"},
        "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}, {"type": "Hostname", "address": "vn-1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "declaredFeatures": ["ExtendWebSocketsToKubelet"],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "v1.37.2-acinode",
            "kubeProxyVersion": "",
            "osImage": "Azure Container Instances (westeurope)",
            "kernelVersion": "",
            "containerRuntimeVersion": "aci://2023-05-01",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


@pytest.mark.parametrize(
    ("spec", "identity", "field", "expected"),
    [
        ({"operatingSystem": "windows"}, IDENTITY, "operatingSystem", "windows"),
        (
            {},
            node_mapping.NodeIdentity("10.0.0.7", 10250, "v1.37.2-acinode", "arm64"),
            "architecture",
            "arm64",
        ),
        ({}, node_mapping.NodeIdentity("10.0.0.7", 10250, "v1.30.0"), "kubeletVersion", "v1.30.0"),
    ],
)
def test_node_info_follows_config_and_identity(
    spec: dict[str, Any], identity: node_mapping.NodeIdentity, field: str, expected: str
) -> None:
    assert node_mapping.node_static_status(config(**spec), identity)["nodeInfo"][field] == expected


def test_node_static_status_advertises_the_kubelet_port_and_address() -> None:
    identity = node_mapping.NodeIdentity(internal_ip="192.168.1.5", kubelet_port=10260, kubelet_version="v1")
    status = node_mapping.node_static_status(config(nodeName="aci-node"), identity)
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10260}}
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "192.168.1.5"},
        {"type": "Hostname", "address": "aci-node"},
    ]


# --- conditions -------------------------------------------------------------------------------------------------

CONDITION_TYPES = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"]


def conditions_by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


@pytest.mark.parametrize(
    ("readiness", "ready_status"),
    [(READY, "True"), (NOT_READY, "False")],
)
def test_first_conditions_start_their_transition_now(
    readiness: node_mapping.Readiness, ready_status: str
) -> None:
    conditions = node_mapping.node_conditions(readiness, NOW)
    assert [c["type"] for c in conditions] == CONDITION_TYPES
    by_type = conditions_by_type(conditions)
    assert by_type["Ready"] == {
        "type": "Ready",
        "status": ready_status,
        "reason": readiness.reason,
        "message": readiness.message,
        "lastHeartbeatTime": NOW_TEXT,
        "lastTransitionTime": NOW_TEXT,
    }
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"):
        assert by_type[kind]["status"] == "False"
        assert by_type[kind]["lastTransitionTime"] == NOW_TEXT
    assert by_type["MemoryPressure"]["reason"] == "KubeletHasNoMemoryPressure"
    assert by_type["NetworkUnavailable"]["reason"] == "RouteCreated"


@pytest.mark.parametrize(
    ("before", "now", "ready_transition", "pressure_transition"),
    [
        pytest.param(READY, READY, EARLIER_TEXT, EARLIER_TEXT, id="unchanged-keeps-transition"),
        pytest.param(READY, NOT_READY, NOW_TEXT, EARLIER_TEXT, id="ready-lost-moves-ready-only"),
        pytest.param(NOT_READY, READY, NOW_TEXT, EARLIER_TEXT, id="ready-regained-moves-ready-only"),
        # the reason and message change, the status does not: no transition
        pytest.param(
            NOT_READY,
            node_mapping.Readiness(False, "BackendCredentialsRefused", "403"),
            EARLIER_TEXT,
            EARLIER_TEXT,
            id="reason-change-is-no-transition",
        ),
    ],
)
def test_conditions_keep_their_transition_time_unless_their_status_changes(
    before: node_mapping.Readiness,
    now: node_mapping.Readiness,
    ready_transition: str,
    pressure_transition: str,
) -> None:
    earlier = NOW - datetime.timedelta(hours=1)
    previous = node_mapping.node_conditions(before, earlier)
    by_type = conditions_by_type(node_mapping.node_conditions(now, NOW, previous))
    assert by_type["Ready"]["lastTransitionTime"] == ready_transition
    assert by_type["Ready"]["reason"] == now.reason
    assert by_type["DiskPressure"]["lastTransitionTime"] == pressure_transition
    assert all(c["lastHeartbeatTime"] == NOW_TEXT for c in by_type.values())


@pytest.mark.parametrize(
    "previous",
    [
        pytest.param([{"type": "Ready", "status": "True"}], id="no-transition-time"),
        pytest.param(
            [{"type": "Ready", "status": "Unknown", "lastTransitionTime": EARLIER_TEXT}], id="unknown"
        ),
        pytest.param(
            [{"type": "Unrelated", "status": "True", "lastTransitionTime": EARLIER_TEXT}], id="other"
        ),
        pytest.param([{"status": "True", "lastTransitionTime": EARLIER_TEXT}], id="no-type"),
    ],
)
def test_previous_conditions_without_a_usable_transition_start_it_now(previous: list[dict[str, Any]]) -> None:
    by_type = conditions_by_type(node_mapping.node_conditions(READY, NOW, previous))
    assert by_type["Ready"]["lastTransitionTime"] == NOW_TEXT


def test_condition_times_are_written_in_utc() -> None:
    local = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    conditions = node_mapping.node_conditions(READY, local)
    assert {c["lastHeartbeatTime"] for c in conditions} == {NOW_TEXT}


def _condition(
    kind: str, status: str, reason: str = "R", message: str = "M", at: str = NOW_TEXT
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
    }


@pytest.mark.parametrize(
    ("a", "b", "differ"),
    [
        pytest.param([], [], False, id="both-empty"),
        pytest.param([_condition("Ready", "True")], [_condition("Ready", "True")], False, id="same"),
        pytest.param(
            [_condition("Ready", "True", at=EARLIER_TEXT)],
            [_condition("Ready", "True", at=NOW_TEXT)],
            False,
            id="only-times-differ",
        ),
        pytest.param(
            [_condition("Ready", "True"), _condition("DiskPressure", "False")],
            [_condition("DiskPressure", "False"), _condition("Ready", "True")],
            False,
            id="order-ignored",
        ),
        pytest.param([_condition("Ready", "True")], [_condition("Ready", "False")], True, id="status"),
        pytest.param(
            [_condition("Ready", "True", reason="A")],
            [_condition("Ready", "True", reason="B")],
            True,
            id="reason",
        ),
        pytest.param(
            [_condition("Ready", "True", message="A")],
            [_condition("Ready", "True", message="B")],
            True,
            id="message",
        ),
        pytest.param(
            [_condition("Ready", "True")],
            [_condition("Ready", "True"), _condition("DiskPressure", "False")],
            True,
            id="extra-condition",
        ),
        pytest.param([_condition("Ready", "True")], [], True, id="one-empty"),
    ],
)
def test_conditions_differ_ignores_only_times_and_order(
    a: list[dict[str, Any]], b: list[dict[str, Any]], differ: bool
) -> None:
    assert node_mapping.conditions_differ(a, b) is differ
    assert node_mapping.conditions_differ(b, a) is differ


# --- lease ------------------------------------------------------------------------------------------------------


def test_lease_from_node() -> None:
    now = datetime.datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    assert node_mapping.lease_from_node("vn-1", "node-uid", now, 40) == {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "vn-1",
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "vn-1", "uid": "node-uid"}],
        },
        "spec": {
            "holderIdentity": "vn-1",
            "leaseDurationSeconds": 40,
            "renewTime": "2025-01-01T12:00:00.123456Z",
        },
    }


def test_lease_renew_time_is_utc_with_microseconds() -> None:
    local = datetime.datetime(2025, 1, 1, 14, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert (
        node_mapping.lease_from_node("vn-1", "u", local, 40)["spec"]["renewTime"]
        == "2025-01-01T12:00:00.000000Z"
    )


# --- drift between the spec and the Node ------------------------------------------------------------------------

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": EARLIER_TEXT}
MANAGED = node_mapping.MANAGED_LABELS_ANNOTATION


def registered(**spec: Any) -> dict[str, Any]:
    """The Node as the API server holds it after acinode created it from ``spec`` (uid, extra metadata)."""
    node = node_mapping.node_from_virtual_node(config(**spec), IDENTITY)
    node["metadata"].update(uid="node-uid", resourceVersion="7")
    node["status"] = {"conditions": []}
    return node


def with_node(
    node: dict[str, Any],
    *,
    labels: dict[str, Any] | None = None,
    taints: list[Any] | None = None,
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``node`` with labels/annotations merged (None values delete) and taints replaced."""
    for field, changes in (("labels", labels), ("annotations", annotations)):
        for key, value in (changes or {}).items():
            if value is None:
                node["metadata"][field].pop(key, None)
            else:
                node["metadata"][field][key] = value
    if taints is not None:
        node["spec"]["taints"] = taints
    return node


DEFAULT_MANAGED = ",".join(sorted(VIRTUAL_KUBELET_LABELS))
WITH_TEAM_MANAGED = ",".join(sorted({*VIRTUAL_KUBELET_LABELS, "team"}))


@pytest.mark.parametrize(
    ("spec", "actual", "expected"),
    [
        pytest.param({}, registered(), None, id="no-op"),
        pytest.param(
            {"labels": {"team": "burst"}},
            registered(labels={"team": "burst"}),
            None,
            id="no-op-with-user-labels",
        ),
        pytest.param({}, with_node(registered(), labels={"owner": "ops"}), None, id="foreign-label-kept"),
        pytest.param(
            {"labels": {"team": "burst"}},
            registered(labels={"team": "ml"}),
            {"metadata": {"labels": {"team": "burst"}, "annotations": {MANAGED: WITH_TEAM_MANAGED}}},
            id="label-changed-in-spec",
        ),
        pytest.param(
            {"labels": {"team": "burst"}},
            registered(),
            {"metadata": {"labels": {"team": "burst"}, "annotations": {MANAGED: WITH_TEAM_MANAGED}}},
            id="label-added-to-spec",
        ),
        pytest.param(
            {},
            registered(labels={"team": "burst"}),
            {"metadata": {"labels": {"team": None}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="label-removed-from-spec",
        ),
        pytest.param(
            {},
            with_node(registered(labels={"team": "burst"}), labels={"team": None}),
            {"metadata": {"labels": {}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="label-removed-from-spec-and-node",
        ),
        pytest.param(
            {},
            with_node(registered(), labels={"type": "something-else"}),
            {"metadata": {"labels": {"type": "virtual-kubelet"}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="managed-label-changed-by-others-restored",
        ),
        pytest.param(
            {},
            with_node(registered(), labels={"kubernetes.io/role": None}),
            {
                "metadata": {
                    "labels": {"kubernetes.io/role": "agent"},
                    "annotations": {MANAGED: DEFAULT_MANAGED},
                }
            },
            id="managed-label-removed-by-others-restored",
        ),
        pytest.param(
            {},
            with_node(registered(), annotations={MANAGED: None}),
            {"metadata": {"labels": {}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="missing-annotation-written",
        ),
        pytest.param(
            {},
            with_node(registered(), annotations={MANAGED: ""}),
            {"metadata": {"labels": {}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="empty-annotation-written",
        ),
        pytest.param(
            # without the annotation acinode cannot tell its old label from a foreign one: it is kept
            {},
            with_node(registered(labels={"team": "burst"}), annotations={MANAGED: None}),
            {"metadata": {"labels": {}, "annotations": {MANAGED: DEFAULT_MANAGED}}},
            id="unannotated-old-label-kept",
        ),
        pytest.param(
            {"disableDefaultTaint": True},
            registered(),
            {"spec": {"taints": []}},
            id="default-taint-disabled",
        ),
        pytest.param(
            {"taints": [{"key": "a", "effect": "NoSchedule"}]},
            registered(),
            {"spec": {"taints": [PROVIDER_TAINT, {"key": "a", "effect": "NoSchedule"}]}},
            id="taint-added",
        ),
        pytest.param(
            {"taints": [{"key": "a", "value": "2", "effect": "NoSchedule"}]},
            registered(taints=[{"key": "a", "value": "1", "effect": "NoSchedule"}]),
            {"spec": {"taints": [PROVIDER_TAINT, {"key": "a", "value": "2", "effect": "NoSchedule"}]}},
            id="taint-value-changed",
        ),
        pytest.param(
            {},
            with_node(registered(), taints=[PROVIDER_TAINT, UNREACHABLE]),
            None,
            id="foreign-node-lifecycle-taint-preserved",
        ),
        pytest.param(
            {},
            with_node(registered(), taints=[UNREACHABLE, PROVIDER_TAINT]),
            None,
            id="taint-order-ignored",
        ),
        pytest.param(
            {"disableDefaultTaint": True},
            with_node(registered(), taints=[PROVIDER_TAINT, UNREACHABLE]),
            {"spec": {"taints": [UNREACHABLE]}},
            id="foreign-taint-kept-when-ours-change",
        ),
        pytest.param(
            # Only node.kubernetes.io/* taints are kept: a taint an admin added is removed (see the report).
            {},
            with_node(registered(), taints=[PROVIDER_TAINT, {"key": "dedicated", "effect": "NoSchedule"}]),
            None,
            id="other-foreign-taint-kept",
        ),
        pytest.param(
            {},
            with_node(registered(), taints=None) | {"spec": {}},
            {"spec": {"taints": [PROVIDER_TAINT]}},
            id="node-without-taints",
        ),
        pytest.param(
            {"labels": {"team": "burst"}, "disableDefaultTaint": True},
            registered(),
            {
                "metadata": {"labels": {"team": "burst"}, "annotations": {MANAGED: WITH_TEAM_MANAGED}},
                "spec": {"taints": []},
            },
            id="labels-and-taints",
        ),
    ],
)
def test_node_metadata_drift(
    spec: dict[str, Any], actual: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    desired = node_mapping.node_from_virtual_node(config(**spec), IDENTITY)
    assert without_managed_taints(node_mapping.node_metadata_drift(desired, actual)) == expected


def without_managed_taints(patch: dict[str, Any] | None) -> dict[str, Any] | None:
    """The drift patch without its bookkeeping of which taints acinode set (tested on its own below)."""
    if patch is None:
        return None
    annotations = patch.get("metadata", {}).get("annotations", {})
    annotations.pop(node_mapping.MANAGED_TAINTS_ANNOTATION, None)
    if "metadata" in patch and not annotations:
        patch["metadata"].pop("annotations", None)
        if not patch["metadata"]:
            del patch["metadata"]
    return patch or None


def test_taints_others_added_are_kept_and_taints_removed_from_the_spec_are_removed() -> None:
    earlier = node_mapping.node_from_virtual_node(
        config(taints=[{"key": "old", "effect": "NoSchedule"}]), IDENTITY
    )
    earlier["spec"]["taints"].append({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})
    desired = node_mapping.node_from_virtual_node(config(), IDENTITY)
    patch = node_mapping.node_metadata_drift(desired, earlier)
    assert patch is not None
    assert patch["spec"]["taints"] == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"},
    ]
    assert patch["metadata"]["annotations"][node_mapping.MANAGED_TAINTS_ANNOTATION] == (
        "virtual-kubelet.io/provider:NoSchedule"
    )


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"labels": {"team": "burst"}},
        {"disableDefaultTaint": True, "taints": [{"key": "a", "effect": "NoSchedule"}]},
    ],
)
def test_applying_the_drift_patch_leaves_no_drift(spec: dict[str, Any]) -> None:
    desired = node_mapping.node_from_virtual_node(config(**spec), IDENTITY)
    actual = with_node(
        registered(labels={"old": "x"}), labels={"foreign": "y"}, taints=[PROVIDER_TAINT, UNREACHABLE]
    )
    patch = node_mapping.node_metadata_drift(desired, actual)
    assert patch is not None
    for field in ("labels", "annotations"):
        for key, value in patch.get("metadata", {}).get(field, {}).items():
            if value is None:
                actual["metadata"][field].pop(key)
            else:
                actual["metadata"][field][key] = value
    if "spec" in patch:
        actual["spec"]["taints"] = patch["spec"]["taints"]
    assert node_mapping.node_metadata_drift(desired, actual) is None
    assert actual["metadata"]["labels"]["foreign"] == "y"
    assert "old" not in actual["metadata"]["labels"]
    assert UNREACHABLE in actual["spec"]["taints"]
