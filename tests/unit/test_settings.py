"""Settings from the environment: ``ACINODE_<SECTION>_<FIELD>`` overrides typed like their defaults, ``POD_IP``, and
a ValueError naming the variable for a malformed value."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from acinode import settings

pytestmark = pytest.mark.timeout(2)


def test_no_variables_give_the_defaults() -> None:
    assert settings.settings_from_environment({}) == settings.Settings()


@pytest.mark.parametrize(
    ("env", "section", "field", "expected"),
    [
        pytest.param({"ACINODE_LEASE_DURATION_SECONDS": "30"}, "lease", "duration_seconds", 30, id="int"),
        pytest.param(
            {"ACINODE_LEASE_RENEW_INTERVAL_SECONDS": "5"},
            "lease",
            "renew_interval_seconds",
            5.0,
            id="float-from-int",
        ),
        pytest.param(
            {"ACINODE_NODE_PROBE_INTERVAL_SECONDS": "2.5"}, "node", "probe_interval_seconds", 2.5, id="float"
        ),
        pytest.param({"ACINODE_NODE_KUBELET_PORT": "10260"}, "node", "kubelet_port", 10260, id="port"),
        pytest.param(
            {"ACINODE_NODE_KUBELET_PORT": " 10260 "}, "node", "kubelet_port", 10260, id="spaces-trimmed"
        ),
        pytest.param(
            {"ACINODE_NODE_KUBELET_VERSION": "v1.31.0"}, "node", "kubelet_version", "v1.31.0", id="str"
        ),
        pytest.param({"ACINODE_NODE_KUBELET_VERSION": ""}, "node", "kubelet_version", "", id="empty-str"),
        pytest.param({"ACINODE_ACI_READS_PER_SECOND": "1.5"}, "aci", "reads_per_second", 1.5, id="aci-float"),
        pytest.param(
            {"ACINODE_ACI_API_VERSION": "2024-10-01"}, "aci", "api_version", "2024-10-01", id="aci-str"
        ),
        pytest.param({"POD_IP": "10.1.2.3"}, "node", "internal_ip", "10.1.2.3", id="pod-ip"),
        pytest.param({"POD_IP": ""}, "node", "internal_ip", "127.0.0.1", id="empty-pod-ip-ignored"),
        pytest.param(
            {"POD_IP": "10.1.2.3", "ACINODE_NODE_INTERNAL_IP": "10.9.9.9"},
            "node",
            "internal_ip",
            "10.9.9.9",
            id="explicit-variable-beats-pod-ip",
        ),
        # Environment variable names are case-sensitive, as everywhere on Linux.
        pytest.param(
            {"acinode_lease_duration_seconds": "5"}, "lease", "duration_seconds", 40, id="lowercase-ignored"
        ),
    ],
)
def test_environment_overrides(env: dict[str, str], section: str, field: str, expected: Any) -> None:
    value = getattr(getattr(settings.settings_from_environment(env), section), field)
    assert value == expected
    assert type(value) is type(expected)


def test_an_override_changes_only_its_field() -> None:
    loaded = settings.settings_from_environment(
        {"ACINODE_LEASE_DURATION_SECONDS": "30", "POD_IP": "10.1.2.3"}
    )
    defaults = settings.Settings()
    assert loaded.lease == dataclasses.replace(defaults.lease, duration_seconds=30)
    assert loaded.node == dataclasses.replace(defaults.node, internal_ip="10.1.2.3")
    assert loaded.aci == defaults.aci


def _sections() -> list[tuple[str, dataclasses.Field[Any]]]:
    defaults = settings.Settings()
    return [
        (section.name, field)
        for section in dataclasses.fields(defaults)
        for field in dataclasses.fields(getattr(defaults, section.name))
    ]


SAMPLES: dict[type, tuple[str, Any]] = {
    int: ("7", 7),
    float: ("7.5", 7.5),
    str: ("x", "x"),
    bool: ("true", True),
}


@pytest.mark.parametrize(("section", "field"), _sections(), ids=lambda v: getattr(v, "name", v))
def test_every_field_of_every_section_has_its_variable(section: str, field: dataclasses.Field[Any]) -> None:
    default = getattr(getattr(settings.Settings(), section), field.name)
    raw, expected = SAMPLES[type(default)]
    name = f"ACINODE_{section.upper()}_{field.name.upper()}"
    # The section alone: a sample value may break a rule between fields (checked in the tests below).
    loaded = settings._section_from_environment(
        getattr(settings.Settings(), section), f"ACINODE_{section.upper()}_", {name: raw}
    )
    assert getattr(loaded, field.name) == expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("ACINODE_LEASE_DURATION_SECONDS", "ten"),
        ("ACINODE_LEASE_DURATION_SECONDS", "1.5"),
        ("ACINODE_LEASE_DURATION_SECONDS", ""),
        ("ACINODE_LEASE_RENEW_INTERVAL_SECONDS", "fast"),
        ("ACINODE_NODE_KUBELET_PORT", "port"),
        ("ACINODE_NODE_API_TIMEOUT_SECONDS", "10s"),
        ("ACINODE_ACI_READ_BURST", "many"),
    ],
)
def test_a_malformed_value_is_a_value_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name) as caught:
        settings.settings_from_environment({name: raw})
    assert repr(raw) in str(caught.value)


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACINODE_LEASE_DURATION_SECONDS", "25")
    monkeypatch.setenv("POD_IP", "10.4.4.4")
    loaded = settings.settings_from_environment()
    assert (loaded.lease.duration_seconds, loaded.node.internal_ip) == (25, "10.4.4.4")


@dataclasses.dataclass(frozen=True)
class _Section:
    enabled: bool = False
    names: tuple[str, ...] = ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("True", True),
        ("0", False),
        ("false", False),
        ("No", False),
    ],
)
def test_booleans_read_common_spellings(raw: str, expected: bool) -> None:
    # No section has a boolean yet; the loader is generic, so test it on a section of its own.
    loaded = settings._section_from_environment(_Section(), "X_", {"X_ENABLED": raw})
    assert loaded.enabled is expected


@pytest.mark.parametrize(
    ("env", "name"), [({"X_ENABLED": "maybe"}, "X_ENABLED"), ({"X_NAMES": "a,b"}, "X_NAMES")]
)
def test_unreadable_booleans_and_unsupported_types_are_refused(env: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings._section_from_environment(_Section(), "X_", env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACINODE_LEASE_RENEW_INTERVAL": "5"}, "unknown setting ACINODE_LEASE_RENEW_INTERVAL"),
        ({"ACINODE_LEASE_RENEW_INTERVAL_SECONDS": "-1"}, "lease.renew_interval_seconds must be positive"),
        ({"ACINODE_PODS_CONCURRENT_ACTIONS": "0"}, "pods.concurrent_actions must be positive"),
        ({"ACINODE_LEASE_RENEW_INTERVAL_SECONDS": "40"}, "must be shorter than lease.duration_seconds"),
        ({"ACINODE_PODS_FAST_SYNC_SECONDS": "30"}, "fast_sync_seconds <= steady_sync_seconds"),
        ({"ACINODE_PODS_BACKOFF_BASE_SECONDS": "600"}, "backoff_base_seconds must not exceed"),
        ({"ACINODE_METRICS_PORT": "70000"}, "metrics.port must be a TCP port"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings.settings_from_environment(env)


def test_zero_means_off_where_documented() -> None:
    loaded = settings.settings_from_environment(
        {"ACINODE_METRICS_PORT": "0", "ACINODE_ACI_TRANSIENT_RETRIES": "0"}
    )
    assert (loaded.metrics.port, loaded.aci.transient_retries) == (0, 0)
