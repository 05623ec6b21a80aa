"""The emulator's configuration: one mutable object (hooks change delays, quotas and throttles at runtime)."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LimitsConfig:
    max_cpu: float = 4.0
    """CPU cores one container group may request in total."""
    max_memory: float = 16.0
    """Memory in GB one container group may request in total."""
    max_containers: int = 60
    max_volumes: int = 20
    max_ports_per_ip: int = 5


@dataclass
class QuotaConfig:
    container_groups: int = 100
    """Container groups per subscription and region."""
    cores: int = 100
    """StandardCores per subscription and region."""
    spot_cores: int = 100
    """StandardSpotCores per subscription and region."""
    gpu_cores: int = 0
    """Cores of GPU groups per subscription and region (ACI's V100 default quota is 0)."""


@dataclass
class ThrottleConfig:
    enabled: bool = True
    read_burst: int = 250
    read_rate: float = 25.0
    """ARM subscription reads: token bucket of read_burst tokens refilled at read_rate per second."""
    write_burst: int = 200
    write_rate: float = 10.0
    """ARM subscription writes (PUT, PATCH, POST, DELETE): token bucket."""
    creates_per_5m: int = 100
    creates_per_hour: int = 300
    deletes_per_5m: int = 100
    deletes_per_hour: int = 300


@dataclass
class EmulatorConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    token: str | None = None
    """If set, the only bearer token accepted; otherwise any non-empty bearer token is."""
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    strict_subscription: bool = False
    provisioning_delay: float = 0.5
    """Seconds between a create (or start/restart) and the image pulls."""
    pull_delay: float = 0.0
    """Seconds each image pull takes."""
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    stop_timeout_seconds: float = 30.0
    """How long a stop waits for a container that ignores SIGTERM (``trap '' TERM``) before killing it."""
    strict_networks: bool = True
    """Subnets not declared (``--subnet``, or the networks hook) are 400 SubnetNotFound, as in Azure; off
    (``--any-subnet``): a well-formed subnet id is taken to exist and be delegated to ACI."""
    subnets: tuple[str, ...] = ()
    """Subnets that exist and are delegated to ACI from the start (``--subnet``)."""
    metrics_lag_seconds: float = 0.0
    """How far behind the containers Azure Monitor's metrics are: newer intervals carry no value yet (real Azure
    Monitor lags about 1-3 minutes; 0 keeps tests fast)."""
    persist: bool = False
    ip_range: str = "127.240.0.0/16"
    network: bool = True
    """Listen on each group's IP and ports (the HTTP stand-in)."""
    page_size: int = 100
    log_level: str = "info"
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        check_loopback_range(self.ip_range)
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"--host must be a loopback address, not {self.host!r}")


def check_loopback_range(text: str) -> ipaddress.IPv4Network:
    """The stand-in only ever binds loopback addresses: anything outside 127.0.0.0/8 is refused."""
    net = ipaddress.ip_network(text, strict=False)
    if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        raise ValueError(f"--ip-range must lie inside 127.0.0.0/8, not {text!r}")
    return net


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        state_dir=Path(args.state_dir),
        host=args.host,
        port=args.port,
        tls=not args.plain_http,
        token=args.token,
        subscription_id=args.subscription_id,
        strict_subscription=args.strict_subscription,
        strict_networks=not args.any_subnet,
        subnets=tuple(args.subnet or ()),
        provisioning_delay=args.provisioning_delay,
        pull_delay=args.pull_delay,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        metrics_lag_seconds=args.metrics_lag,
        persist=args.persist,
        ip_range=args.ip_range,
        network=not args.no_network,
        page_size=args.page_size,
        log_level=args.log_level,
        limits=LimitsConfig(max_cpu=args.max_cpu, max_memory=args.max_memory),
        quota=QuotaConfig(
            container_groups=args.quota_container_groups,
            cores=args.quota_cores,
            spot_cores=args.quota_spot_cores,
            gpu_cores=args.quota_gpu_cores,
        ),
        throttle=ThrottleConfig(
            enabled=not args.no_throttle,
            read_burst=args.read_burst,
            read_rate=args.read_rate,
            write_burst=args.write_burst,
            write_rate=args.write_rate,
            creates_per_5m=args.creates_per_5m,
            creates_per_hour=args.creates_per_hour,
            deletes_per_5m=args.deletes_per_5m,
            deletes_per_hour=args.deletes_per_hour,
        ),
    )


# Runtime-tunable settings, by their JSON name in the /_emulator/config hook.
_RUNTIME_FIELDS: dict[str, tuple[str, ...]] = {
    "provisioningDelaySeconds": ("provisioning_delay",),
    "pullDelaySeconds": ("pull_delay",),
    "backoffBaseSeconds": ("backoff_base",),
    "backoffMaxSeconds": ("backoff_max",),
    "stopTimeoutSeconds": ("stop_timeout_seconds",),
    "metricsLagSeconds": ("metrics_lag_seconds",),
    "strictNetworks": ("strict_networks",),
    "pageSize": ("page_size",),
    "maxCpu": ("limits", "max_cpu"),
    "maxMemoryInGB": ("limits", "max_memory"),
    "quotaContainerGroups": ("quota", "container_groups"),
    "quotaCores": ("quota", "cores"),
    "quotaSpotCores": ("quota", "spot_cores"),
    "quotaGpuCores": ("quota", "gpu_cores"),
    "throttle": ("throttle", "enabled"),
    "readBurst": ("throttle", "read_burst"),
    "readRate": ("throttle", "read_rate"),
    "writeBurst": ("throttle", "write_burst"),
    "writeRate": ("throttle", "write_rate"),
    "createsPer5m": ("throttle", "creates_per_5m"),
    "createsPerHour": ("throttle", "creates_per_hour"),
    "deletesPer5m": ("throttle", "deletes_per_5m"),
    "deletesPerHour": ("throttle", "deletes_per_hour"),
}


def runtime_view(config: EmulatorConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in _RUNTIME_FIELDS.items():
        obj: Any = config
        for part in path:
            obj = getattr(obj, part)
        out[name] = obj
    return out


def apply_runtime(config: EmulatorConfig, changes: dict[str, Any]) -> list[str]:
    """Apply hook changes; returns the names that are not runtime settings (nothing is applied then)."""
    unknown = [name for name in changes if name not in _RUNTIME_FIELDS]
    if unknown:
        return unknown
    for name, value in changes.items():
        *parents, last = _RUNTIME_FIELDS[name]
        obj: Any = config
        for part in parents:
            obj = getattr(obj, part)
        kind = type(getattr(obj, last))
        setattr(obj, last, kind(value))
    return []


def as_dict(config: EmulatorConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["state_dir"] = str(config.state_dir)
    out.pop("token", None)
    return out
