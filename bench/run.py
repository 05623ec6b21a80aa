"""`make bench`: run every benchmark, print one JSON summary and a table of the figures against issue 9's
targets, and keep both in bench/results/ (latest.json, latest.md).

Each benchmark is its own script printing one JSON object; they run one after another (the machine has two
cores), each bounded in time. Arguments after `--` are not used; choose and size them with the environment:
- ACINODE_BENCH_ONLY: comma-separated names to run (default: all, in the order below); the others keep their
  figures from the previous bench/results/latest.json;
- emulator_rate, pod_lifecycle: ACINODE_BENCH_PODS (100), ACINODE_BENCH_UNRELATED (2000);
- burst: ACINODE_BENCH_BURST_SIZES (100,500,1000), ACINODE_BENCH_BURST_PROFILES (zero,realistic);
- peer: ACINODE_BENCH_PEER_SIZES (100,500,1000);
- arm_economy: ACINODE_BENCH_ECONOMY_PODS (1000), ACINODE_BENCH_ECONOMY_WINDOW (180 s);
- isolation: ACINODE_BENCH_ISOLATION_PODS (10000), ACINODE_BENCH_ISOLATION_WINDOW (120 s);
- many_nodes: ACINODE_BENCH_NODES (50), ACINODE_BENCH_PODS_PER_NODE (20), ACINODE_BENCH_SECONDS (300);
- status_lag: ACINODE_BENCH_LAG_PODS (1000) on one node; status_lag_many_nodes: ACINODE_BENCH_LAG_NODES (50) ×
  ACINODE_BENCH_LAG_PODS_PER_NODE (20). Both at the default read budgets (about 16 min each).
The peer benchmark builds virtual-kubelet from its pinned Go module on first use (a few minutes).
`bench/run.py --table` renders latest.md again from latest.json without running anything.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ENV = os.environ


def benchmarks() -> list[tuple[str, list[str], float]]:
    """(name, script and arguments, timeout in seconds)."""
    return [
        ("emulator_rate", ["emulator_rate.py"], 120),
        (
            "pod_lifecycle",
            [
                "pod_lifecycle.py",
                "--pods",
                ENV.get("ACINODE_BENCH_PODS", "100"),
                "--unrelated",
                ENV.get("ACINODE_BENCH_UNRELATED", "2000"),
            ],
            1200,
        ),
        (
            "burst",
            [
                "burst.py",
                "--sizes",
                ENV.get("ACINODE_BENCH_BURST_SIZES", "100,500,1000"),
                "--profiles",
                ENV.get("ACINODE_BENCH_BURST_PROFILES", "zero,realistic"),
            ],
            3600,
        ),
        ("peer", ["peer.py", "--sizes", ENV.get("ACINODE_BENCH_PEER_SIZES", "100,500,1000")], 5400),
        (
            "arm_economy",
            [
                "arm_economy.py",
                "--pods",
                ENV.get("ACINODE_BENCH_ECONOMY_PODS", "1000"),
                "--window",
                ENV.get("ACINODE_BENCH_ECONOMY_WINDOW", "180"),
            ],
            2400,
        ),
        (
            "isolation",
            [
                "isolation.py",
                "--pods",
                ENV.get("ACINODE_BENCH_ISOLATION_PODS", "10000"),
                "--window",
                ENV.get("ACINODE_BENCH_ISOLATION_WINDOW", "120"),
            ],
            2400,
        ),
        (
            "many_nodes",
            [
                "many_nodes.py",
                "--nodes",
                ENV.get("ACINODE_BENCH_NODES", "50"),
                "--pods-per-node",
                ENV.get("ACINODE_BENCH_PODS_PER_NODE", "20"),
                "--seconds",
                ENV.get("ACINODE_BENCH_SECONDS", "300"),
            ],
            2400,
        ),
        (
            "status_lag",
            ["status_lag.py", "--nodes", "1", "--pods-per-node", ENV.get("ACINODE_BENCH_LAG_PODS", "1000")],
            2400,
        ),
        (
            "status_lag_many_nodes",
            [
                "status_lag.py",
                "--nodes",
                ENV.get("ACINODE_BENCH_LAG_NODES", "50"),
                "--pods-per-node",
                ENV.get("ACINODE_BENCH_LAG_PODS_PER_NODE", "20"),
            ],
            2400,
        ),
    ]


# --- the table ------------------------------------------------------------------------------------------------


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


Check = Callable[[float], bool]


def at_most(limit: float) -> Check:
    return lambda value: value <= limit


def exactly(expected: float) -> Check:
    return lambda value: abs(value - expected) < 1e-9


def accepted_per_pod(figures: dict[str, Any], operation: str, pods: int) -> float | None:
    """Requests of ``operation`` that ARM accepted (2xx), per pod: a 429 resent later is not a second PUT."""
    codes = dig(figures, "arm_requests", operation)
    if not isinstance(codes, dict):
        return None
    return round(sum(n for code, n in codes.items() if str(code).startswith("2")) / pods, 3)


def rows(summary: dict[str, Any]) -> list[tuple[str, Any, str, Check | None]]:
    """(measure, figure, target, check) for the figures issue 9 sets targets on, and a few for context."""
    out: list[tuple[str, Any, str, Check | None]] = []
    burst = summary.get("burst") or {}
    for profile in ("zero", "realistic"):
        for size in burst.get("sizes", []):
            figures = dig(burst, profile, str(size))
            if not isinstance(figures, dict):
                continue
            big = size == 1000 and profile == "zero"
            label = f"burst {size} ({profile})"
            out += [
                (f"{label}: all Running, s", figures.get("all_running_seconds"), "≤ 60" if big else "",
                 at_most(60) if big else None),
                (f"{label}: all gone, s", figures.get("all_gone_seconds"), "≤ 60" if big else "",
                 at_most(60) if big else None),
                (f"{label}: control plane's last binding, s", dig(figures, "control_plane", "last_pod_bound_seconds"),
                 "", None),
                (f"{label}: binding → PUT p50, s", dig(figures, "binding_to_put_seconds", "p50"), "≤ 0.1",
                 at_most(0.1)),
                (f"{label}: binding → PUT p99, s", dig(figures, "binding_to_put_seconds", "p99"), "≤ 1",
                 at_most(1.0)),
                (f"{label}: binding → PUT answered p50 / p99, s",
                 f"{dig(figures, 'binding_to_put_answered_seconds', 'p50')} / "
                 f"{dig(figures, 'binding_to_put_answered_seconds', 'p99')}", "", None),
                (f"{label}: ACI Running → pod Running p50, s",
                 dig(figures, "aci_running_to_pod_running_seconds", "p50"), "≤ 2", at_most(2.0)),
                (f"{label}: ACI Running → pod Running p99, s",
                 dig(figures, "aci_running_to_pod_running_seconds", "p99"), "", None),
                (f"{label}: PUTs accepted per pod", accepted_per_pod(figures, "ContainerGroups_CreateOrUpdate", size),
                 "= 1", exactly(1.0)),
                (f"{label}: DELETEs accepted per pod", accepted_per_pod(figures, "ContainerGroups_Delete", size),
                 "= 1", exactly(1.0)),
                (f"{label}: requests answered 429 (injected) and resent", figures.get("arm_throttled"), "", None),
                (f"{label}: operator CPU, s", figures.get("cpu_seconds"), "", None),
                (f"{label}: operator peak RSS, MiB", figures.get("rss_peak_mib"), "≤ 250" if size == 1000 else "",
                 at_most(250) if size == 1000 else None),
            ]  # fmt: skip
    peer = summary.get("peer") or {}
    for size in peer.get("sizes", []):
        for key, name in (
            ("ratio_acinode_to_virtual_kubelet", "virtual-kubelet mock"),
            ("ratio_acinode_to_virtual_kubelet_tuned", "virtual-kubelet, 500 req/s"),
        ):
            ratios = dig(peer, key, str(size)) or {}
            target = "≤ 1.0" if size == 1000 and name == "virtual-kubelet mock" else ""
            check = at_most(1.0) if target else None
            out += [
                (f"peer {size}: all Running ÷ {name}", ratios.get("all_running"), target, check),
                (f"peer {size}: all gone ÷ {name}", ratios.get("all_gone"), target, check),
                (f"peer {size}: CPU ÷ {name}", ratios.get("cpu_seconds"), "", None),
                (f"peer {size}: peak RSS ÷ {name}", ratios.get("rss_peak"), "", None),
            ]
    economy = summary.get("arm_economy") or {}
    if economy:
        out += [
            # Issue 22 replaced issue 9's ≤ 60/min: the status budget (2 GETs/s) is spent in full, plus
            # the listings (≤ 0.5 pages/s) and the node's backend probe (2/min).
            ("ARM: steady reads/min, 1,000 Running pods", dig(economy, "steady_state", "reads_per_minute"),
             "≤ 152 (GETs 120 + listings ≤ 30 + probes 2)", at_most(152)),
            ("ARM: same, azure-aci provider's design", dig(economy, "steady_state",
             "azure_aci_provider_reads_per_minute"), "", None),
            ("ARM: 429s with the default budget", economy.get("throttled_with_default_budget"), "0",
             exactly(0)),
            ("ARM: PUTs per pod, default budget", dig(economy, "default_budget_lifecycle", "arm_requests_per_pod",
             "ContainerGroups_CreateOrUpdate"), "= 1", exactly(1.0)),
            ("ARM: DELETEs per pod, default budget", dig(economy, "default_budget_lifecycle",
             "arm_requests_per_pod", "ContainerGroups_Delete"), "= 1", exactly(1.0)),
        ]  # fmt: skip
    isolation = summary.get("isolation") or {}
    if isolation:
        out += [
            ("isolation: RSS change with 10,000 pods, %", isolation.get("rss_mean_change_percent"), "≤ 10",
             lambda v: abs(v) <= 10),
            ("isolation: CPU change with 10,000 pods, %", isolation.get("cpu_change_percent"), "≤ 10",
             lambda v: v <= 10),
        ]  # fmt: skip
    many = summary.get("many_nodes") or {}
    if many:
        out += [
            ("many nodes: lease renewal p99, s", many.get("lease_interval_p99_seconds"), "≤ 11", at_most(11)),
            ("many nodes: status lag p50 / p99, s",
             f"{dig(many, 'pod_status', 'status_lag_seconds', 'p50')} / "
             f"{dig(many, 'pod_status', 'status_lag_seconds', 'p99')}", "", None),
            ("many nodes: operator CPU, % of a core", many.get("operator_cpu_percent_of_one_core"), "", None),
            ("many nodes: ARM reads/min (all nodes)", many.get("arm_reads_per_minute"), "", None),
        ]  # fmt: skip
    for key, label in (("status_lag", "one node"), ("status_lag_many_nodes", "many nodes")):
        lag = summary.get(key) or {}
        if lag and "error" not in lag:
            out += [
                (f"status lag ({label}, {lag.get('pods')} pods, {lag.get('status_reads_per_second')} reads/s): "
                 "p50 / p99, s",
                 f"{dig(lag, 'status_lag_seconds', 'p50')} / {dig(lag, 'status_lag_seconds', 'p99')}",
                 "p99 ≤ 30", None),
                (f"status lag ({label}): design bound, s", lag.get("status_lag_design_bound_seconds"), "", None),
                (f"status lag ({label}): ARM reads/min", lag.get("arm_reads_per_minute"), "", None),
            ]  # fmt: skip
    return out


def table(summary: dict[str, Any]) -> str:
    lines = ["| measure | figure | target | met |", "|---|---|---|---|"]
    for measure, figure, target, check in rows(summary):
        if figure is None:
            met = "—" if not target else "not measured"
        elif check is None or isinstance(figure, str):
            met = ""
        else:
            met = "yes" if check(float(figure)) else "**no**"
        lines.append(f"| {measure} | {figure if figure is not None else '—'} | {target} | {met} |")
    return "\n".join(lines) + "\n"


def render_only() -> int:
    """``--table``: render bench/results/latest.md again from latest.json, running nothing."""
    results = BENCH / "results"
    rendered = table(json.loads((results / "latest.json").read_text()))
    (results / "latest.md").write_text(rendered)
    print(rendered)
    return 0


def main() -> int:
    if sys.argv[1:] == ["--table"]:
        return render_only()
    summary: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    only = {name for name in ENV.get("ACINODE_BENCH_ONLY", "").split(",") if name}
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    if only and (results / "latest.json").exists():
        # A partial run replaces only what it runs: the other benchmarks' last figures stay in the summary.
        previous = json.loads((results / "latest.json").read_text())
        summary = {**previous, **{k: v for k, v in summary.items() if k != "started"}}
    failed = False
    for name, args, timeout in benchmarks():
        if only and name not in only:
            continue
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            result = subprocess.run(
                [sys.executable, str(BENCH / args[0]), *args[1:]],
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            failed = True
            summary[name] = {"error": f"did not finish within {timeout:.0f}s"}
        else:
            if result.returncode != 0:
                failed = True
                summary[name] = {"error": (result.stderr or result.stdout).strip().splitlines()[-5:]}
            else:
                summary[name] = json.loads(result.stdout)
                summary[name]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"[bench] {name} done in {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
        # Written after each benchmark, so that a long run can be followed (and survives an interruption).
        (results / "latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    output = json.dumps(summary, indent=2)
    (results / "latest.json").write_text(output + "\n")
    rendered = table(summary)
    (results / "latest.md").write_text(rendered)
    print(output)
    print()
    print(rendered)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
