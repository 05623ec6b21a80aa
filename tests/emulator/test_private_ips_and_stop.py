"""ACI gives every group in a subnet a private IP (ports or not); a stop spares containers that ignore SIGTERM
(``trap '' TERM``) for ``stopTimeoutSeconds``, then kills them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.mgmt.containerinstance import models

from emulator.harness import group_spec, wait_for

SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net/providers/Microsoft.Network/"
    "virtualNetworks/vnet/subnets/aci"
)


@pytest.fixture(autouse=True)
def subnet(emu: Any) -> Iterator[None]:
    """The subnet exists and is delegated to ACI (the emulator, as Azure, refuses one that is not)."""
    emu.hook("PUT", "networks", {"subnets": [{"id": SUBNET}]})
    yield
    emu.hook("PUT", "networks", {})


def _in_subnet(spec: models.ContainerGroup) -> models.ContainerGroup:
    spec.subnet_ids = [models.ContainerGroupSubnetId(id=SUBNET)]
    return spec


def test_a_portless_group_in_a_subnet_gets_a_private_ip_kept_until_deleted(client, rg) -> None:
    group = client.container_groups.begin_create_or_update(rg, "quiet", _in_subnet(group_spec())).result()
    assert group.ip_address is not None and group.ip_address.type == "Private"
    ip = group.ip_address.ip
    assert ip and ip.startswith("127.") and group.ip_address.ports == []
    other = client.container_groups.begin_create_or_update(rg, "quiet-2", _in_subnet(group_spec())).result()
    assert other.ip_address.ip not in (None, ip), "each group its own address"
    client.container_groups.stop(rg, "quiet")
    client.container_groups.begin_start(rg, "quiet").result()
    assert client.container_groups.get(rg, "quiet").ip_address.ip == ip
    listed = {g.name: g for g in client.container_groups.list_by_resource_group(rg)}
    assert listed["quiet"].ip_address.ip == ip


def test_a_portless_group_without_a_subnet_gets_no_ip(client, rg) -> None:
    group = client.container_groups.begin_create_or_update(rg, "public", group_spec()).result()
    assert group.ip_address is None


def test_a_stop_kills_at_once_unless_the_container_ignores_sigterm(client, emu, rg) -> None:
    emu.hook("PATCH", "config", {"stopTimeoutSeconds": 2})
    script = ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
    client.container_groups.begin_create_or_update(rg, "stubborn", group_spec(command=script)).result()
    client.container_groups.begin_create_or_update(
        rg, "meek", group_spec(command=["sleep", "infinity"])
    ).result()
    started = time.monotonic()
    client.container_groups.stop(rg, "meek")
    client.container_groups.stop(rg, "stubborn")
    meek = client.container_groups.get(rg, "meek")
    assert meek.instance_view.state == "Stopped"
    assert meek.containers[0].instance_view.current_state.state == "Terminated"
    stubborn = client.container_groups.get(rg, "stubborn")
    assert stubborn.containers[0].instance_view.current_state.state == "Running", "SIGTERM ignored"
    assert stubborn.instance_view.state == "Running"
    stopped = wait_for(
        lambda: (g := client.container_groups.get(rg, "stubborn")).instance_view.state == "Stopped" and g,
        what="killed after the stop timeout",
    )
    assert time.monotonic() - started >= 1.9
    current = stopped.containers[0].instance_view.current_state
    assert (current.state, current.exit_code) == ("Terminated", 137)
    emu.hook("PATCH", "config", {"stopTimeoutSeconds": 30})
