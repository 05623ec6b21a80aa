"""Group, container and volume names: valid for ACI, deterministic, and never shared by two pods."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acinode.mapping import names

pytestmark = pytest.mark.timeout(2)

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _names(middle: str, max_middle: int) -> st.SearchStrategy[str]:
    edge = st.sampled_from(ALNUM)
    inner = st.text(alphabet=ALNUM + middle, max_size=max_middle)
    return st.one_of(edge, st.builds(lambda a, m, b: a + m + b, edge, inner, edge))


DNS_LABEL = _names("-", 20)
DNS_SUBDOMAIN = _names(".-", 80)


@pytest.mark.parametrize(
    ("namespace", "pod", "expected"),
    [
        ("default", "aci-helloworld-7d9c8b6f5-x2kqz", "default-aci-helloworld-7d9c8b6f5-x2kqz"),
        ("shop", "web-0", "shop-web-0"),
        # a hyphen in the namespace makes "<ns>-<pod>" ambiguous: hashed
        ("kube-system", "dns", "kube-system-dns-bfd0be7125"),
        # dots are not allowed in ACI names
        ("shop", "web.v2", "shop-web-v2-ef55147dbb"),
        # a doubled hyphen is not allowed either
        ("shop", "web--1", "shop-web-1-a2a1be1d2c"),
        # a readable name may not look like a hashed one
        ("shop", "job-0123456789", "shop-job-0123456789-1970d414f1"),
    ],
)
def test_group_names(namespace: str, pod: str, expected: str) -> None:
    assert names.container_group_name(namespace, pod) == expected


def test_long_pod_names_are_shortened_with_a_hash() -> None:
    name = names.container_group_name("default", "a" * 200)
    assert len(name) == 63
    assert names.is_valid_aci_name(name)
    assert name != names.container_group_name("default", "a" * 201)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("a", True),
        ("a-b", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a--b", False),
        ("A", False),
        ("a.b", False),
        ("", False),
    ],
)
def test_validity(name: str, valid: bool) -> None:
    assert names.is_valid_aci_name(name) is valid


@pytest.mark.parametrize(
    ("name", "expected"),
    [("app", "app"), ("sidecar-1", "sidecar-1"), ("a--b", "a-b-90827a2e56")],
)
def test_container_names(name: str, expected: str) -> None:
    assert names.aci_container_name(name) == expected


@settings(max_examples=60, deadline=None)
@given(DNS_LABEL, DNS_SUBDOMAIN)
def test_any_pod_gets_a_valid_group_name(namespace: str, pod: str) -> None:
    assert names.is_valid_aci_name(names.container_group_name(namespace, pod))


@settings(max_examples=60, deadline=None)
@given(DNS_LABEL, DNS_SUBDOMAIN, DNS_LABEL, DNS_SUBDOMAIN)
def test_two_pods_never_share_a_group_name(ns1: str, pod1: str, ns2: str, pod2: str) -> None:
    if (ns1, pod1) != (ns2, pod2):
        assert names.container_group_name(ns1, pod1) != names.container_group_name(ns2, pod2)


def test_the_classic_ambiguity_is_resolved() -> None:
    assert names.container_group_name("a-b", "c") != names.container_group_name("a", "b-c")


@settings(max_examples=60, deadline=None)
@given(_names("-", 61))
def test_container_names_are_valid(name: str) -> None:
    assert names.is_valid_aci_name(names.aci_container_name(name))
