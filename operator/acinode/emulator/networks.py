"""The virtual networks the emulator knows: which subnets exist and are delegated to ACI, which network profiles
exist. A group naming one that does not is refused on PUT, as Azure refuses it.

- ``networkProfile`` (api-versions before 2021-07-01): must have been declared, else 400
  ``NetworkProfileNotFound`` (Azure/azure-cli's recording ``test_container_create_with_vnet``).
- ``subnetIds``: a declared subnet must be delegated to ``Microsoft.ContainerInstance/containerGroups``, else 400
  ``SubnetMissingRequiredDelegation`` (Azure/dev-box-images#8 quotes Azure's answer). An undeclared subnet is
  400 ``SubnetNotFound``¹, as Azure refuses a subnet that does not exist; with ``--any-subnet`` (runtime setting
  ``strictNetworks: false``) a well-formed one is taken to exist and be delegated.

Declared with ``--subnet`` at start or through the test hook ``PUT /_emulator/networks`` (in memory only).
¹ the emulator's own code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from acinode.emulator import wire

DELEGATION = "Microsoft.ContainerInstance/containerGroups"
_SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+$",
    re.IGNORECASE,
)


@dataclass
class Networks:
    subnets: dict[str, bool] = field(default_factory=dict)
    """Declared subnet ids (lower-cased) → delegated to ACI."""
    profiles: set[str] = field(default_factory=set)
    """Declared network profile ids (lower-cased)."""

    def replace(self, body: dict[str, Any]) -> None:
        self.subnets = {
            str(s["id"]).lower(): bool(s.get("delegated", True)) for s in body.get("subnets") or []
        }
        self.profiles = {str(p).lower() for p in body.get("networkProfiles") or []}

    def to_wire(self) -> dict[str, Any]:
        return {
            "subnets": [{"id": k, "delegated": v} for k, v in sorted(self.subnets.items())],
            "networkProfiles": sorted(self.profiles),
        }

    def check(self, group: str, props: dict[str, Any], strict: bool) -> None:
        """Raise Azure's 400 for a network profile or subnet that does not exist or is not ACI's."""
        profile = props.get("networkProfile")
        if isinstance(profile, dict) and profile.get("id"):
            profile_id = str(profile["id"])
            if profile_id.lower() not in self.profiles:
                raise wire.ArmError(
                    400,
                    "NetworkProfileNotFound",
                    f"Network profile '{profile_id}' is not found for container group '{group}'.",
                )
        for subnet in props.get("subnetIds") or []:
            subnet_id = str(subnet.get("id", "")) if isinstance(subnet, dict) else ""
            delegated = self.subnets.get(subnet_id.lower())
            if delegated is None and (strict or not _SUBNET_ID.match(subnet_id)):
                raise wire.ArmError(
                    400,
                    "SubnetNotFound",
                    f"Subnet '{subnet_id}' is not found for container group '{group}'.",
                )
            if delegated is False:
                raise wire.ArmError(
                    400,
                    "SubnetMissingRequiredDelegation",
                    f"Subnet missing required delegation 'Microsoft.ContainerInstance' for container group "
                    f"'{group}'.",
                )
