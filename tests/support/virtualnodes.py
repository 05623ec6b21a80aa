"""VirtualNodes wired to the ACI emulator, and calls to the emulator's test hooks from synchronous tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from contract import emulated
from support.waiting import wait_until

TOKEN_SECRET = "aci-emulator-token"
VIRTUAL_NODES = ("acinode.dev", "v1alpha1", "virtualnodes")


def emulator_hook(emulator: emulated.Emulator, method: str, path: str, body: Any = None) -> Any:
    return asyncio.run(emulator.hook(method, path, body))


def wait_node_ready(core: Any, name: str, timeout: float = 30) -> None:
    """Until the Node of a VirtualNode reports Ready=True."""
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or []
        ),
        timeout,
        f"the virtual node {name} Ready",
    )


def declare_subnet(emulator: emulated.Emulator, subnet_id: str, delegated: bool = True) -> None:
    """Make a subnet exist in the emulator (delegated to ACI unless told otherwise), as a cluster admin's VNet
    would: the emulator refuses a subnet it does not know, as Azure does."""
    known = emulator_hook(emulator, "GET", "networks")
    subnets = [s for s in known["subnets"] if s["id"] != subnet_id.lower()]
    subnets.append({"id": subnet_id, "delegated": delegated})
    emulator_hook(emulator, "PUT", "networks", {**known, "subnets": subnets})


def virtual_node_body(name: str, emulator: emulated.Emulator, **spec: Any) -> dict[str, Any]:
    ca = Path(emulator.ca_file).read_text()
    return {
        "apiVersion": "acinode.dev/v1alpha1",
        "kind": "VirtualNode",
        "metadata": {"name": name},
        "spec": {
            "azure": {
                "subscriptionId": emulated.SUBSCRIPTION,
                "resourceGroup": f"rg-{name}",
                "region": emulated.REGION,
                "cloud": {"name": "Custom", "resourceManagerEndpoint": emulator.url, "caBundle": ca},
                "credentials": {"type": "StaticToken", "secretRef": {"name": TOKEN_SECRET}},
            },
            **spec,
        },
    }
