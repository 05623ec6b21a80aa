"""The invariants every chaos scenario must leave intact, checked against the API server and the emulator's ARM
state, and the table that `make chaos` prints."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from chaos.stack import TAG_CLUSTER, TAG_NODE, TAG_POD_UID, ChaosStack, Observations

RESULTS = Path(
    os.environ.get(
        "ACINODE_CHAOS_RESULTS", Path(__file__).resolve().parents[2] / ".cache" / "chaos-results.jsonl"
    )
)


def violations(stack: ChaosStack, seen: Observations, *, backend_fault: bool) -> list[str]:
    """Every broken invariant, described; empty when all hold."""
    problems: list[str] = []
    pods = stack.pods()
    live = {p.metadata.uid: p for p in pods if p.metadata.deletion_timestamp is None}
    ours = [
        g
        for g in stack.groups()
        if g.get("tags", {}).get(TAG_CLUSTER) == stack.cluster_id and g["tags"].get(TAG_NODE) == stack.node
    ]
    per_uid = Counter(g["tags"].get(TAG_POD_UID, "") for g in ours)
    for uid, pod in live.items():
        if per_uid[uid] != 1:
            problems.append(f"pod {pod.metadata.name} has {per_uid[uid]} container groups")
    for uid, count in per_uid.items():
        if uid not in live:
            problems.append(f"{count} orphan group(s) for pod uid {uid}")
    for uid in seen.pod_uids - set(live):
        if per_uid[uid]:
            problems.append(f"deleted pod {uid} still has its group")
    problems += [f"pod deleted without being asked to: {d}" for d in seen.unexpected_deletions]
    problems += [f"pod failed: {uid}" for uid in seen.failed_pods]
    if not backend_fault and seen.not_ready_samples:
        problems.append(
            f"node not Ready: {seen.not_ready_samples[:3]} ({len(seen.not_ready_samples)} samples)"
        )
    return problems


@dataclass
class Row:
    scenario: str
    faults: str
    injected: int
    pods_churned: int
    violations: int
    seconds: float
    detail: str = ""


def record(row: Row) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(asdict(row)) + "\n")


def table(rows: list[Row]) -> str:
    header = ("scenario", "faults injected", "pods churned", "invariant violations", "seconds")
    lines = [
        (r.scenario, f"{r.faults} ×{r.injected}", str(r.pods_churned), str(r.violations), f"{r.seconds:.0f}")
        for r in rows
    ]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    out = [fmt.format(*header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def read_results() -> list[Row]:
    if not RESULTS.exists():
        return []
    return [Row(**json.loads(line)) for line in RESULTS.read_text().splitlines() if line.strip()]
