"""The one typed settings root of acinode, built once at start-up (flags > environment > defaults).

Only ``cli`` (flags) and this module (environment, defaults) build it; everything else receives it explicitly.
Durations are in seconds and their names end in ``_seconds``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class LeaseSettings:
    duration_seconds: int = 40
    """How long a Lease in kube-node-lease stays valid without renewal (a kubelet's default)."""
    renew_interval_seconds: float = 10.0
    """How often each virtual node's Lease is renewed."""


@dataclasses.dataclass(frozen=True)
class NodeSettings:
    status_interval_seconds: float = 60.0
    """Longest time between two Node status patches when nothing changes."""
    backend_check_ttl_seconds: float = 30.0
    """How long a successful backend reachability check is trusted before it is repeated."""
    internal_ip: str = "127.0.0.1"
    """The Node's InternalIP: the operator pod's IP (downward API ``POD_IP``), loopback when run locally."""
    kubelet_port: int = 10250
    """Port of the kubelet API served by the operator, advertised in ``daemonEndpoints``."""
    kubelet_version: str = "v1.37.2-acinode"
    """Reported as ``nodeInfo.kubeletVersion``."""


@dataclasses.dataclass(frozen=True)
class AciSettings:
    reads_per_second: float = 5.0
    """Client-side read budget (token bucket refill rate); well below ARM's per-subscription read limits."""
    read_burst: int = 20
    writes_per_second: float = 2.0
    """Client-side write budget (PUT/DELETE/POST)."""
    write_burst: int = 20
    request_timeout_seconds: float = 30.0
    """Timeout of one ARM request."""


@dataclasses.dataclass(frozen=True)
class Settings:
    lease: LeaseSettings = dataclasses.field(default_factory=LeaseSettings)
    node: NodeSettings = dataclasses.field(default_factory=NodeSettings)
    aci: AciSettings = dataclasses.field(default_factory=AciSettings)


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overridden by the ``ACINODE_*`` and downward-API variables that are set."""
    env = os.environ if environ is None else environ
    node = NodeSettings()
    if env.get("POD_IP"):
        node = dataclasses.replace(node, internal_ip=env["POD_IP"])
    if env.get("ACINODE_KUBELET_PORT"):
        node = dataclasses.replace(node, kubelet_port=int(env["ACINODE_KUBELET_PORT"]))
    return Settings(node=node)
