"""The one typed settings root of acinode, built once at start-up (flags > environment > defaults).

Only ``cli`` (flags) and this module (environment, defaults) build it; everything else receives it explicitly.
Durations are in seconds and their names end in ``_seconds``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class LeaseSettings:
    duration_seconds: int = 40
    """How long a Lease in kube-node-lease stays valid without renewal (a kubelet's default)."""
    renew_interval_seconds: float = 10.0
    """How often each virtual node's Lease is renewed."""


@dataclasses.dataclass(frozen=True)
class OwnershipSettings:
    """Which replica serves which VirtualNode: one Lease per VirtualNode in the operator's namespace
    (``acinode-vn-<name>``), one presence Lease per replica (``acinode-replica-<id>``). docs/architecture.md,
    "Ownership across replicas", has the arithmetic.

    Fencing: a holder whose renewals fail stops the node's runtime (no more ARM or pod writes) at
    ``last successful renewal sent + lease_duration_seconds - fence_margin_seconds`` on its own monotonic clock; any
    other replica takes the Lease over only once it has seen it unchanged for ``lease_duration_seconds`` on *its*
    monotonic clock. The holder's last successful renewal was written before anyone could observe it, so the taker
    acts at least ``fence_margin_seconds`` after the holder stopped; no wall clocks are compared."""

    lease_duration_seconds: int = 15
    """How long a VirtualNode's (or a replica's presence) Lease stays held without renewal, as seen by others."""
    renew_interval_seconds: float = 4.0
    """How often a holder renews each Lease it holds (and its presence Lease)."""
    observe_interval_seconds: float = 2.0
    """How often each replica lists the ownership Leases (one LIST for all) to notice free and expired ones."""
    fence_margin_seconds: float = 4.0
    """How long before another replica may take over a holder stops on its own: covers the runtime's cancellation,
    the ARM or API requests in flight when it is cancelled, and the drift between two monotonic clocks. Must be
    shorter than ``lease_duration_seconds - renew_interval_seconds``, or a holder fences between two renewals."""
    free_grace_seconds: float = 4.0
    """A Lease free (released, or expired) for this long is taken by any replica, whatever its share: availability
    beats balance. Before that, only replicas holding fewer than their fair share (ceil(VirtualNodes/replicas))
    take it."""
    rebalance_interval_seconds: float = 10.0
    """Least time between two releases of an extra VirtualNode by a replica holding more than its share + 1."""


@dataclasses.dataclass(frozen=True)
class NodeSettings:
    status_interval_seconds: float = 60.0
    """Longest time between two Node status patches when nothing changes."""
    probe_interval_seconds: float = 10.0
    """How often the backend probe result is re-read (the probe itself caches for ``backend_check_ttl``)."""
    api_timeout_seconds: float = 10.0
    """Timeout of each Kubernetes or probe call made by a node's heartbeat loops."""
    backend_check_ttl_seconds: float = 30.0
    """How long a successful backend reachability check is trusted before it is repeated."""
    backend_unhealthy_after: int = 3
    """Consecutive failed backend probes (one every ``probe_interval_seconds``) after which the backend counts as
    unhealthy: the BackendReachable conditions turn False and the node gets the NoSchedule taint
    ``acinode.dev/backend-unavailable``. One failed probe (a blip, one slow answer) never does; a throttled probe
    counts as a success (ARM answered). Ready and the Lease never follow the backend (docs/reliability.md)."""
    backend_healthy_after: int = 1
    """Consecutive successful probes after which an unhealthy backend counts as healthy again (the taint goes).
    One is enough: a success is ARM answering with the node's credentials, and it is trusted (cached) for
    ``backend_check_ttl_seconds`` anyway, so a second probe within that time would repeat the same answer."""
    config_retry_seconds: float = 10.0
    """Longest wait between two attempts to use a VirtualNode's Azure settings and Secrets (1, 2, 4 … s up to
    this): a Secret created after its VirtualNode is picked up this quickly."""
    internal_ip: str = "127.0.0.1"
    """The Node's InternalIP: the operator pod's IP (downward API ``POD_IP``), loopback when run locally."""
    kubelet_port: int = 10250
    """Port of the kubelet API served by the operator, advertised in ``daemonEndpoints``."""
    kubelet_version: str = "v1.37.2-acinode"
    """Reported as ``nodeInfo.kubeletVersion``."""


@dataclasses.dataclass(frozen=True)
class AciSettings:
    """The ACI client's tunables. Rate budgets are per ARM subscription: one limiter serves a subscription."""

    reads_per_second: float = 3.0
    """Client-side read budget (GET), token bucket refill rate. Below ARM's legacy 12,000 reads/h (3.3/s) and
    far below its token bucket (25/s), since other tools share the subscription."""
    read_burst: int = 50
    """Read bucket size: how many reads may go at once after a quiet spell."""
    writes_per_second: float = 0.3
    """Client-side write budget (PUT, DELETE, POST, PATCH). Below ARM's legacy 1,200 writes/h (0.33/s)."""
    write_burst: int = 50
    """Write bucket size."""
    creates_per_second: float = 0.05
    """Container-group PUTs, on top of the write budget: ACI allows 100 per 5 min and 300 per hour per region;
    0.05/s with a burst of 60 stays under both (at most 75 per 5 min, 240 per hour)."""
    create_burst: int = 60
    """Container-group PUT bucket size."""
    deletes_per_second: float = 0.05
    """Container-group DELETEs, on top of the write budget (same ACI limits as creates)."""
    delete_burst: int = 60
    """Container-group DELETE bucket size."""
    max_queue_seconds: float = 60.0
    """Longest a call waits for its budget (or for a server-requested pause) before it fails at once with
    ThrottledError instead of queueing; the error's retry-after says when to come back."""
    throttle_retries: int = 3
    """How many times one call is re-sent after a 429 (each after the pause the server asked for) before
    ThrottledError surfaces."""
    throttle_default_pause_seconds: float = 5.0
    """Pause after a 429 that carries no Retry-After; doubles on each further 429 of the same call."""
    max_retry_after_seconds: float = 300.0
    """Longest pause one 429 can impose, whatever its Retry-After says: ARM's throttling windows refill within
    seconds to minutes, and a hostile or buggy Retry-After (a proxy's, a day-long date) must not stop writes for
    hours. Longer throttling shows as repeated 429s, each paused at most this long."""
    transient_retries: int = 3
    """Re-sends of one request after a 5xx, timeout or dropped connection (the SDK's retry policy)."""
    transient_backoff_seconds: float = 0.8
    """Exponential backoff factor between those re-sends (0 s, then 2×, 4× this); 0 retries at once."""
    transient_backoff_max_seconds: float = 10.0
    """Cap on one backoff, and on a Retry-After honoured for a 5xx."""
    request_timeout_seconds: float = 30.0
    """Timeout of one ARM request (connect and read)."""
    api_version: str = "2023-05-01"
    """ARM api-version of Microsoft.ContainerInstance (the SDK 10.1 default)."""
    metrics_api_version: str = "2018-01-01"
    """ARM api-version of Microsoft.Insights/metrics, read for container usage: 2018-01-01 is the oldest GA
    version with dimensions and is served by every cloud (Azure Stack Hub included)."""
    metrics_grain_seconds: float = 60.0
    """Time grain of the usage query (sent as ISO 8601: 60 → ``PT1M``). One minute is Azure Monitor's finest
    for container groups; shorter grains are for the emulator (tests), which serves any."""
    allow_custom_cloud_credentials: bool = False
    """Let a VirtualNode with a custom ARM endpoint, authority, token scope or CA bundle use credentials other
    than a static token (a workload or managed identity, a service principal). Off: whoever may write a
    VirtualNode could otherwise send the operator's Azure tokens, or a service principal's secret, to a host of
    their choosing. Turn it on for a private or sovereign cloud that is not one of the named clouds."""


@dataclasses.dataclass(frozen=True)
class PodSettings:
    concurrent_actions: int = 16
    """Pod actions (resolve + PUT, DELETE, GET) a virtual node runs at once."""
    resync_seconds: float = 30.0
    """Longest time between two full reconcile passes when no pod event arrives."""
    fast_sync_seconds: float = 1.0
    """Status sync interval while any group is in transition (provisioning, starting)."""
    steady_sync_seconds: float = 15.0
    """Status sync interval when every group is steady (one list call per interval)."""
    idle_sync_seconds: float = 60.0
    """Status sync interval of a node with no pods and no groups (a list call that finds orphans)."""
    max_gets_per_sync: int = 50
    """GETs of groups in transition per sync pass."""
    steady_gets_per_sync: int = 2
    """GETs of steady groups per sync pass when ``status_reads_per_second`` is 0 (the fixed sweep of old)."""
    status_reads_per_second: float = 2.0
    """Status GETs per second for the whole operator, shared by its virtual nodes in proportion to their steady
    groups and spent in full: groups in transition first, then the most overdue steady groups (docs/
    performance.md, "Status lag"). 2/s is 8 % of ARM's documented subscription read limit (25 reads/s per
    principal) and leaves a third of the ACI client's own read budget (``aci.reads_per_second``, 3/s) for
    listings, usage and the kubelet API. A steady server is read every (servers + ``likely_to_end_weight`` ×
    pods likely to end) / this seconds: 500 s for 1,000 steady pods. 0: ``steady_gets_per_sync`` a pass."""
    listing_reads_per_second: float = 0.5
    """Budget of the steady listings, for the whole operator: when all is steady, each node lists every
    ``steady_sync_seconds`` or, if every node's pages (one per 100 groups) together would exceed this, less
    often (50 nodes: every 100 s). With the status reads (2/s) it stays within the ACI client's 3 reads/s;
    nodes in transition still list every ``fast_sync_seconds``. 0: every ``steady_sync_seconds`` whatever it costs."""
    likely_to_end_weight: float = 4.0
    """How much more often a steady pod likely to end (a Job's, restartPolicy Never or OnFailure) is read than a
    server (restartPolicy Always): its wait since the last read counts this many times."""
    budget_pass_seconds: float = 5.0
    """Status-sync interval while the budget has steady groups to read (the listing is still refreshed only
    every ``steady_sync_seconds``): the granularity the budget is spent with. Never longer than
    ``steady_sync_seconds`` (the shorter of the two applies)."""
    backoff_base_seconds: float = 10.0
    """First retry delay after an image or quota failure; doubles up to ``backoff_max_seconds``."""
    backoff_max_seconds: float = 300.0
    reference_retry_base_seconds: float = 1.0
    """First wait for a missing Secret, ConfigMap or service account (doubling, as a kubelet waits)."""
    reference_retry_max_seconds: float = 60.0
    """Longest wait for a missing reference."""
    transient_retry_seconds: float = 2.0
    """Wait after an ARM or Kubernetes API error the clients did not absorb (they retry 5xx themselves)."""
    unexpected_retry_seconds: float = 5.0
    """Wait after an error outside acinode's taxonomy (a bug), so a failing key does not spin."""
    watch_retry_base_seconds: float = 0.5
    """First wait before the pod view lists and watches again after an API error (doubling)."""
    watch_retry_max_seconds: float = 10.0
    """Longest such wait."""


@dataclasses.dataclass(frozen=True)
class KubeletSettings:
    """The kubelet API the operator serves for its virtual nodes (logs, exec, stats): one HTTPS port for all."""

    enabled: bool = True
    """Serve the kubelet API at all (``kubectl logs``/``exec`` and metrics-server need it)."""
    port: int = 0
    """Listening port; 0 means ``NodeSettings.kubelet_port``, the port advertised in the Nodes'
    ``daemonEndpoints``. Set it only when something between the API server and the operator maps ports."""
    address: str = ""
    """Listening address. Empty: the Node's InternalIP (``NodeSettings.internal_ip``: the pod IP in a cluster,
    127.0.0.1 when run locally), which is where the API server connects."""
    cert_path: str = ""
    """Serving certificate (PEM, with its chain). Empty: a self-signed certificate is generated at start-up
    (the API server does not verify kubelet certificates unless given ``--kubelet-certificate-authority``)."""
    key_path: str = ""
    """Private key of ``cert_path`` (PEM)."""
    client_ca_path: str = ""
    """CA bundle (PEM) that signs trusted client certificates, e.g. the API server's kubelet client
    certificate. Empty: the ``client-ca-file`` of ConfigMap kube-system/extension-apiserver-authentication,
    if readable; otherwise client certificates are not accepted (bearer tokens still are)."""
    client_ca_from_cluster: bool = True
    """Whether an empty ``client_ca_path`` falls back to the cluster's published client CA."""
    anonymous: bool = False
    """Serve requests that carry no credentials, as user ``system:anonymous`` (still authorized through
    SubjectAccessReviews). Off: they get 401, as a kubelet with ``--anonymous-auth=false``."""
    auth_cache_ttl_seconds: float = 120.0
    """How long a TokenReview answer and an allowing SubjectAccessReview answer are reused."""
    deny_cache_ttl_seconds: float = 15.0
    """How long a denying SubjectAccessReview answer is reused."""
    log_follow_interval_seconds: float = 1.0
    """How often ``logs -f`` polls ACI for new lines; each poll is one ARM read from the node's budget."""
    log_follow_state_interval_seconds: float = 5.0
    """How often ``logs -f`` reads the container group to notice that the followed container ended."""
    exec_timeout_seconds: float = 14400.0
    """Longest an exec session lasts (ACI's own sessions are limited too)."""
    usage_enabled: bool = True
    """Read running containers' CPU and memory usage from Azure Monitor (``CpuUsage``/``MemoryUsage`` of their
    container groups) for ``/stats/summary`` and ``/metrics/resource``. Off: those list pods and containers
    without figures, and ``kubectl top`` and HPAs on resource metrics see nothing for virtual nodes."""
    usage_sample_interval_seconds: float = 60.0
    """Shortest time between two usage reads of one container group. Azure Monitor has one value per minute
    (and lags 1-3 minutes), so reading more often than ``aci.metrics_grain_seconds`` gains nothing."""
    usage_reads_per_second: float = 0.5
    """Budget of usage reads for the whole operator (each is one ARM read of one group's metrics): a token
    bucket of its own, apart from the reconciler's budgets and the kubelet API's interactive lane. With the
    defaults, up to 30 running groups are read every minute; beyond that the sampler goes round-robin, oldest
    sample first, and each group is read every groups ÷ rate seconds."""
    usage_read_burst: int = 10
    """Size of that bucket: usage reads that may go at once (after start-up or a quiet spell)."""
    usage_idle_seconds: float = 600.0
    """Usage is read only while someone reads the stats (metrics-server, ``kubectl top``, an HPA): sampling stops
    this long after the last ``/stats/summary`` or ``/metrics/resource`` request, and starts again with the next."""
    usage_max_age_seconds: float = 600.0
    """A container's usage is served while its newest Azure Monitor interval ended less than this long ago;
    older (reads failing, the group gone), it is reported as unknown rather than frozen."""
    header_timeout_seconds: float = 10.0
    """Seconds a connection has for its TLS handshake, then again for each complete request head (from connecting,
    or from the end of its previous response: also the keep-alive idle time). Slower clients are disconnected."""
    max_connections: int = 256
    """Open connections at most (TLS handshakes, requests, exec sessions alike); further ones are closed at once."""
    max_connections_per_client: int = 128
    """Open connections at most from one client IP address; further ones from it are closed at once. The API
    server is one client: it tunnels every ``kubectl logs``/``exec``."""
    max_request_head_bytes: int = 65536
    """Bytes of one request's line and headers at most; a connection sending more before its head is complete
    is closed. A kubelet's requests carry a few hundred bytes."""
    max_sessions: int = 64
    """Long-lived calls (exec, attach, ``logs -f``) served at once in total; further ones get 429."""
    max_sessions_per_user: int = 32
    """Long-lived calls at once per authenticated user; further ones get 429. Through the API server every call is
    the API server's kubelet client, so this bounds direct callers and leaves room beside the API server."""
    max_sessions_per_namespace: int = 16
    """Long-lived calls at once about the pods of one namespace; further ones get 429. The user of a tunnelled call
    is the API server, so this is what keeps one tenant from taking every session."""
    websocket_max_message_bytes: int = 1048576
    """Largest websocket message accepted, from exec clients and from ACI's exec websocket alike."""
    spdy_max_frame_bytes: int = 262144
    """Largest SPDY frame accepted (its payload, compressed for SYN_STREAM): a larger one ends the connection with
    GOAWAY. Go's spdystream sends stdin in 32 KiB frames."""
    spdy_max_header_block_bytes: int = 262144
    """Largest SPDY header block after decompression; a larger one is refused (RST_STREAM FRAME_TOO_LARGE, then
    GOAWAY, since the zlib state is lost) without inflating further. Real blocks are a few hundred bytes."""
    spdy_max_streams: int = 8
    """Streams per SPDY connection (exec uses at most five); further SYN_STREAMs get RST_STREAM REFUSED_STREAM."""
    spdy_max_buffered_bytes: int = 262144
    """Bytes of stdin and resize data one SPDY connection holds before ACI takes them; beyond it the connection
    is not read until ACI catches up (TCP backpressure on the client), as are replies the client does not read."""
    interactive_arm_requests_per_second: float = 2.0
    """ARM budget of the kubelet API's calls (``logs -f`` polls, exec starts, the reads behind them), per ARM
    subscription: a token bucket of its own, apart from the reconciler's read, write, create and delete budgets,
    so no storm of interactive calls delays a create or delete. The calls still count against ARM's limits."""
    interactive_arm_burst: int = 20
    """Size of that bucket: interactive ARM calls that may go at once after a quiet spell."""
    interactive_arm_max_queue_seconds: float = 10.0
    """Longest an interactive call waits for its budget before failing (429 to the client; a ``logs -f`` poll is
    skipped). Interactive calls also fail at once while ARM has paused the subscription's matching budget."""
    serving_certificate_from_csr: bool = True
    """Without ``cert_path``: ask the cluster for a serving certificate with a ``kubernetes.io/kubelet-serving``
    CertificateSigningRequest (approved by an admin: ``kubectl certificate approve``), serve it once issued and
    rotate it; the self-signed certificate is served until then. Off: self-signed only."""
    serving_csr_expiration_seconds: int = 31536000
    """Life asked of the serving certificate (CSR ``expirationSeconds``, at least 600); the signer issues at most
    its own ``--cluster-signing-duration`` (a year by default)."""
    serving_csr_poll_seconds: float = 5.0
    """How often a pending CSR is read (and, before any virtual node is served, how often that is checked)."""
    serving_certificate_rotation_fraction: float = 0.8
    """Share of the certificate's life after which a new CSR is made (the current one is served until the new
    one is issued). Between 0 and 1."""


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    """The operator's own Prometheus metrics (plain HTTP, ``GET /metrics``)."""

    port: int = 9090
    """Listening port; 0 disables the metrics endpoint."""
    address: str = ""
    """Listening address. Empty: the Node's InternalIP (the pod IP in a cluster, 127.0.0.1 locally)."""


@dataclasses.dataclass(frozen=True)
class RegistrySettings:
    """Reading image configs from registries (the ENTRYPOINT of a container with ``args`` but no ``command``)."""

    read_image_configs: bool = True
    """Read the ENTRYPOINT of images run with args but no command from their registries. Off: such containers
    are refused unless the pod's entrypoints annotation names it (hermetic test environments turn it off)."""
    insecure_hosts: str = ""
    """Comma-separated ``host[:port]`` of registries read over plain HTTP (like containerd's insecure
    registries); every other registry is read over HTTPS only."""
    timeout_seconds: float = 15.0
    """Time for one image's look-up, token and redirects included."""
    tag_cache_seconds: float = 300.0
    """How long a tag's resolution is reused (per image, platform and pull credential); configs by digest are
    reused for as long as they stay among the most recent ``config_cache_entries``."""
    config_cache_entries: int = 1024
    max_document_bytes: int = 4 * 1024 * 1024
    """Largest manifest, index or config read (a registry is as untrusted as the pod that names it)."""

    def insecure(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.insecure_hosts.split(",") if h.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    lease: LeaseSettings = dataclasses.field(default_factory=LeaseSettings)
    ownership: OwnershipSettings = dataclasses.field(default_factory=OwnershipSettings)
    node: NodeSettings = dataclasses.field(default_factory=NodeSettings)
    aci: AciSettings = dataclasses.field(default_factory=AciSettings)
    pods: PodSettings = dataclasses.field(default_factory=PodSettings)
    kubelet: KubeletSettings = dataclasses.field(default_factory=KubeletSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=MetricsSettings)
    registry: RegistrySettings = dataclasses.field(default_factory=RegistrySettings)


def _section_from_environment(section: Any, prefix: str, env: Mapping[str, str]) -> Any:
    """Override each field of a settings section from ``ACINODE_<SECTION>_<FIELD>``, typed like its default."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(section):
        name = f"{prefix}{field.name.upper()}"
        if name not in env:
            continue
        default = getattr(section, field.name)
        raw = env[name]
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise ValueError(raw)
                changes[field.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int | float | str):
                changes[field.name] = type(default)(raw)
            else:
                raise ValueError("not settable from the environment")
        except ValueError as err:
            raise ValueError(f"{name}={raw!r}: expected {type(default).__name__} ({err})") from None
    return dataclasses.replace(section, **changes)


#: Fields where 0 is meaningful (a default, "off", or "retry at once"); every other number must be positive.
_ZERO_ALLOWED = frozenset(
    {
        "kubelet.port",
        "metrics.port",
        "aci.throttle_retries",
        "aci.transient_retries",
        "aci.transient_backoff_seconds",
        "pods.steady_gets_per_sync",
        "pods.status_reads_per_second",
        "pods.listing_reads_per_second",
    }
)


def validation_problems(operator_settings: Settings) -> list[str]:
    """Why these settings cannot work together (empty: they can). Checked once, when they are built."""
    problems: list[str] = []
    for section in dataclasses.fields(operator_settings):
        values = getattr(operator_settings, section.name)
        for field in dataclasses.fields(values):
            value = getattr(values, field.name)
            key = f"{section.name}.{field.name}"
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if value < 0 or (value == 0 and key not in _ZERO_ALLOWED):
                problems.append(f"{key} must be positive, got {value}")
    lease, node, pods = operator_settings.lease, operator_settings.node, operator_settings.pods
    if lease.renew_interval_seconds >= lease.duration_seconds:
        problems.append(
            f"lease.renew_interval_seconds ({lease.renew_interval_seconds}) must be shorter than "
            f"lease.duration_seconds ({lease.duration_seconds}), or the Lease expires between renewals"
        )
    owning = operator_settings.ownership
    if owning.renew_interval_seconds + owning.fence_margin_seconds >= owning.lease_duration_seconds:
        problems.append(
            f"ownership.renew_interval_seconds ({owning.renew_interval_seconds}) + ownership.fence_margin_seconds "
            f"({owning.fence_margin_seconds}) must be shorter than ownership.lease_duration_seconds "
            f"({owning.lease_duration_seconds}), or a holder fences itself between two renewals"
        )
    if owning.observe_interval_seconds >= owning.lease_duration_seconds:
        problems.append(
            "ownership.observe_interval_seconds must be shorter than ownership.lease_duration_seconds"
        )
    if node.api_timeout_seconds >= lease.duration_seconds:
        problems.append("node.api_timeout_seconds must be shorter than lease.duration_seconds")
    if not pods.fast_sync_seconds <= pods.steady_sync_seconds <= pods.idle_sync_seconds:
        problems.append("pods: fast_sync_seconds <= steady_sync_seconds <= idle_sync_seconds must hold")
    if pods.likely_to_end_weight < 1:
        problems.append(
            "pods.likely_to_end_weight must be at least 1 (pods likely to end are read no less often)"
        )
    if pods.backoff_base_seconds > pods.backoff_max_seconds:
        problems.append("pods.backoff_base_seconds must not exceed pods.backoff_max_seconds")
    if pods.reference_retry_base_seconds > pods.reference_retry_max_seconds:
        problems.append("pods.reference_retry_base_seconds must not exceed pods.reference_retry_max_seconds")
    if pods.watch_retry_base_seconds > pods.watch_retry_max_seconds:
        problems.append("pods.watch_retry_base_seconds must not exceed pods.watch_retry_max_seconds")
    for port_key in ("kubelet.port", "metrics.port", "node.kubelet_port"):
        section_name, field_name = port_key.split(".")
        port = getattr(getattr(operator_settings, section_name), field_name)
        if port > 65535:
            problems.append(f"{port_key} must be a TCP port, got {port}")
    return problems


#: ACINODE_* variables that are not settings (ACINODE_<SECTION>_<FIELD>) yet are read by acinode.
_NOT_SETTINGS = frozenset({"ACINODE_REPLICA_ID"})


def _near_miss(name: str, known: set[str]) -> str | None:
    """The setting a misspelt variable most likely meant (ACINODE_METRIC_PORT: ACINODE_METRICS_PORT), if any.
    Variables of other tools (ACINODE_BENCH_*, ACINODE_TEST_*) are not close to any setting name and pass."""
    if name in _NOT_SETTINGS:
        return None
    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
    return matches[0] if matches else None


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overridden by the downward API (``POD_IP``) and by ``ACINODE_<SECTION>_<FIELD>`` variables
    (for example ``ACINODE_LEASE_RENEW_INTERVAL_SECONDS=5``). Raises ValueError naming a malformed variable."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    node = defaults.node
    if env.get("POD_IP"):
        node = dataclasses.replace(node, internal_ip=env["POD_IP"])
    built = Settings(
        lease=_section_from_environment(defaults.lease, "ACINODE_LEASE_", env),
        ownership=_section_from_environment(defaults.ownership, "ACINODE_OWNERSHIP_", env),
        node=_section_from_environment(node, "ACINODE_NODE_", env),
        aci=_section_from_environment(defaults.aci, "ACINODE_ACI_", env),
        pods=_section_from_environment(defaults.pods, "ACINODE_PODS_", env),
        kubelet=_section_from_environment(defaults.kubelet, "ACINODE_KUBELET_", env),
        metrics=_section_from_environment(defaults.metrics, "ACINODE_METRICS_", env),
        registry=_section_from_environment(defaults.registry, "ACINODE_REGISTRY_", env),
    )
    known = {
        f"ACINODE_{section.name.upper()}_{field.name.upper()}"
        for section in dataclasses.fields(Settings)
        for field in dataclasses.fields(getattr(defaults, section.name))
    }
    prefixes = tuple(f"ACINODE_{section.name.upper()}_" for section in dataclasses.fields(Settings))
    unknown = sorted(
        name
        for name in env
        if name not in known
        and (name.startswith(prefixes) or (name.startswith("ACINODE_") and _near_miss(name, known)))
    )
    if unknown:
        named = ", ".join(
            f"{name} (did you mean {_near_miss(name, known)}?)" if _near_miss(name, known) else name
            for name in unknown
        )
        raise ValueError(f"unknown setting {named} (see acinode/settings.py for the names)")
    problems = validation_problems(built)
    if problems:
        raise ValueError("; ".join(problems))
    return built
