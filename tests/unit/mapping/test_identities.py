"""Azure identities are deny-by-default: a pod attaches only what its VirtualNode allows for its namespace."""

from __future__ import annotations

import pytest
from mapping_builders import IDENTITY, container, group, pod, problems, vnet_placement

from acinode.mapping import options, placement
from acinode.mapping import problems as problem_list

pytestmark = pytest.mark.timeout(2)

OPERATOR_IDENTITY = IDENTITY.replace("/app", "/acinode-operator")
ACR_PATH = problem_list.key_path("metadata.annotations", options.ACR_IDENTITY)
IDENTITIES_PATH = problem_list.key_path("metadata.annotations", options.IDENTITIES)


@pytest.mark.parametrize(
    ("allowed", "annotations", "refused_path"),
    [
        # Nothing listed: nothing attachable, the operator's own identity included.
        ((), {options.IDENTITIES: IDENTITY}, IDENTITIES_PATH),
        ((), {options.IDENTITIES: OPERATOR_IDENTITY}, IDENTITIES_PATH),
        ((), {options.ACR_IDENTITY: IDENTITY}, ACR_PATH),
        # Listed for another namespace only.
        (
            (placement.AllowedIdentity(IDENTITY, ("payments",)),),
            {options.IDENTITIES: IDENTITY},
            IDENTITIES_PATH,
        ),
        # One of two allowed.
        (
            (placement.AllowedIdentity(IDENTITY),),
            {options.IDENTITIES: f"{IDENTITY},{OPERATOR_IDENTITY}"},
            IDENTITIES_PATH,
        ),
        # A different identity whose id merely starts like an allowed one.
        ((placement.AllowedIdentity(IDENTITY),), {options.IDENTITIES: IDENTITY + "-admin"}, IDENTITIES_PATH),
    ],
)
def test_identities_not_allowed_are_refused(
    allowed: tuple[placement.AllowedIdentity, ...], annotations: dict[str, str], refused_path: str
) -> None:
    found = problems(
        pod(container(image="shop.azurecr.io/web:1"), annotations=annotations),
        vnet_placement(allowed_identities=allowed),
    )
    assert "spec.azure.allowedIdentities" in found[refused_path]
    assert "'shop'" in found[refused_path]  # names the pod's namespace


@pytest.mark.parametrize(
    "allowed",
    [
        (placement.AllowedIdentity(IDENTITY),),
        (placement.AllowedIdentity(IDENTITY, ("shop", "other")),),
        # ARM resource ids are case-insensitive.
        (placement.AllowedIdentity(IDENTITY.upper()),),
    ],
)
def test_allowed_identities_are_attached(allowed: tuple[placement.AllowedIdentity, ...]) -> None:
    body = group(pod(annotations={options.IDENTITIES: IDENTITY}), vnet_placement(allowed_identities=allowed))
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}


def test_no_identity_annotation_needs_no_allow_list() -> None:
    assert "identity" not in group(pod(), vnet_placement(allowed_identities=()))
