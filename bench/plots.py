"""Charts for docs/performance.md from the benchmarks' JSON, as hand-written SVG (no plotting library).

- ``peer-running.svg``: pods Running against seconds since the scale-up, for acinode and the two
  virtual-kubelet peers of one ``bench/peer.py`` run (its ``timeline.up_running``), at one burst size, over the
  pods the scheduler had bound in acinode's run (``timeline.up_bound``);
- ``peer-remaining.svg``: pods not yet deleted against seconds since the scale-down (``timeline.down_remaining``);
- ``status-lag.svg``: exit → pod status lag p50 and p99, and the design bound, against the pods on the node, one
  point per ``bench/status_lag.py`` output (one-node runs only).

Input: a ``bench/peer.py`` output (or a ``bench/run.py`` summary holding one under ``peer``), and any number of
``bench/status_lag.py`` outputs (or summaries holding one under ``status_lag``). Each chart is drawn only when
its input is given. The SVGs have a white background, so they read the same in GitHub's light and dark modes.

    .venv/bin/python bench/plots.py --peer bench/results/peer-1000.json \\
        --status-lag bench/results/status_lag-*.json --out docs/plots/
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from acinode import settings

# Okabe-Ito colours: told apart with the common colour-vision deficiencies, legible on white.
BLUE, ORANGE, VERMILLION, GREEN, GREY = "#0072B2", "#E69F00", "#D55E00", "#009E73", "#555555"
LIGHT_GREY = "#8c959f"
TEXT, AXIS, GRID = "#24292f", "#57606a", "#d8dee4"
FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
FONT_SIZE = 12

PEERS = (
    ("acinode", "acinode", BLUE, ""),
    ("virtual_kubelet_mock", "virtual-kubelet mock, as published (5 req/s)", VERMILLION, ""),
    ("virtual_kubelet_tuned", "virtual-kubelet mock, client limit 500 req/s", GREEN, "7 4"),
)


# --- scales and ticks (pure) -----------------------------------------------------------------------------------


def nice_step(span: float, count: int = 5) -> float:
    """The tick spacing of 1, 2, 2.5 or 5 × 10^k that splits ``span`` into about ``count`` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= multiple * power * (1 + 1e-9):
            return multiple * power
    return 10.0 * power  # unreachable: raw / power < 10


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Evenly spaced round tick values from a multiple of the step at or below ``low`` to one at or above
    ``high`` (so the axis covers the data); a flat range gets an axis of one step above it."""
    if high < low:
        low, high = high, low
    if high == low:
        high = low + 1.0
    step = nice_step(high - low, count)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    # round() absorbs the float noise of k × step (0.30000000000000004 → 0.3)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(k * step, digits) for k in range(first, last + 1)]


def format_tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs, and thousands separated (1,000)."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    text = f"{value:,.{decimals}f}"
    return "0" if text.strip("-0.,") == "" else text


@dataclass(frozen=True)
class Scale:
    """A linear map from a data interval onto a pixel interval (``stop`` < ``start`` for SVG's downward y)."""

    low: float
    high: float
    start: float
    stop: float

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return self.start
        return self.start + (value - self.low) * (self.stop - self.start) / (self.high - self.low)


def step_points(points: Sequence[Sequence[float]], until: float | None = None) -> list[tuple[float, float]]:
    """A count's change points ([time, count after the change]) as the corners of its step curve: the count
    holds until the next change, then jumps. With ``until``, the last count holds up to that time."""
    corners: list[tuple[float, float]] = []
    for x, y in points:
        if corners:
            corners.append((float(x), corners[-1][1]))
        corners.append((float(x), float(y)))
    if until is not None and corners and until > corners[-1][0]:
        corners.append((float(until), corners[-1][1]))
    return corners


def polyline(points: Sequence[tuple[float, float]], x: Scale, y: Scale) -> str:
    """SVG polyline ``points``: the data mapped to pixels, to a tenth of a pixel, repeats dropped."""
    out: list[str] = []
    for px, py in points:
        pair = f"{x(px):.1f},{y(py):.1f}"
        if not out or out[-1] != pair:
            out.append(pair)
    return " ".join(out)


def attribute(text: str) -> str:
    """``text`` escaped for a double-quoted XML attribute."""
    return escape(text, {'"': "&quot;"})


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """An estimate of a label's width in a proportional sans-serif font (no font metrics without a library)."""
    return 0.58 * size * len(text)


# --- the chart --------------------------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    colour: str
    dash: str = ""
    markers: bool = False
    width: float = 2.5


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    width: int = 720
    height: int = 420
    x_ticks: list[float] = field(default_factory=list)
    y_ticks: list[float] = field(default_factory=list)
    note: str = ""


def legend_rows(labels: Sequence[str], width: float, swatch: float = 28, gap: float = 20) -> list[list[int]]:
    """Labels (by index) laid out left to right in rows no wider than ``width``."""
    rows: list[list[int]] = [[]]
    used = 0.0
    for index, label in enumerate(labels):
        need = swatch + 6 + text_width(label)
        if rows[-1] and used + gap + need > width:
            rows.append([])
            used = 0.0
        used += (gap if rows[-1] else 0) + need
        rows[-1].append(index)
    return rows


def render(chart: Chart) -> str:
    """The chart as a standalone SVG document."""
    xs = [x for s in chart.series for x, _ in s.points]
    ys = [y for s in chart.series for _, y in s.points]
    x_ticks = chart.x_ticks or nice_ticks(min([0.0, *xs]), max([0.0, *xs]))
    y_ticks = chart.y_ticks or nice_ticks(min([0.0, *ys]), max([0.0, *ys]))
    left, right = 72.0, chart.width - 24.0
    rows = legend_rows([s.label for s in chart.series], right - left)
    top = 52.0 + 20.0 * len(rows)
    bottom = chart.height - (64.0 if chart.note else 48.0)
    x = Scale(x_ticks[0], x_ticks[-1], left, right)
    y = Scale(y_ticks[0], y_ticks[-1], bottom, top)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{chart.width}" height="{chart.height}" '
        f'viewBox="0 0 {chart.width} {chart.height}" font-family="{attribute(FONT)}" font-size="{FONT_SIZE}" '
        f'role="img" aria-label="{attribute(chart.title)}">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect width="{chart.width}" height="{chart.height}" fill="#ffffff"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="600" fill="{TEXT}">{escape(chart.title)}</text>',
    ]
    # legend, under the title
    for row_index, row in enumerate(rows):
        cursor = left
        base = 46.0 + 20.0 * row_index
        for index in row:
            s = chart.series[index]
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<line x1="{cursor:.1f}" y1="{base - 4:.1f}" x2="{cursor + 28:.1f}" y2="{base - 4:.1f}" '
                f'stroke="{s.colour}" stroke-width="{s.width:g}"{dash}/>'
            )
            if s.markers:
                out.append(f'<circle cx="{cursor + 14:.1f}" cy="{base - 4:.1f}" r="3.5" fill="{s.colour}"/>')
            out.append(f'<text x="{cursor + 34:.1f}" y="{base:.1f}" fill="{TEXT}">{escape(s.label)}</text>')
            cursor += 34 + text_width(s.label) + 20
    # grid and ticks
    for value in y_ticks:
        py = y(value)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="{GRID}"/>')
        out.append(
            f'<text x="{left - 8}" y="{py + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{format_tick(value, y_step)}</text>"
        )
    for value in x_ticks:
        px = x(value)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="{GRID}"/>')
        out.append(
            f'<text x="{px:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{AXIS}">'
            f"{format_tick(value, x_step)}</text>"
        )
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{AXIS}"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="{AXIS}"/>')
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 38}" text-anchor="middle" fill="{TEXT}">'
        f"{escape(chart.x_label)}</text>"
    )
    middle = (top + bottom) / 2
    out.append(
        f'<text x="18" y="{middle:.1f}" text-anchor="middle" fill="{TEXT}" '
        f'transform="rotate(-90 18 {middle:.1f})">{escape(chart.y_label)}</text>'
    )
    if chart.note:
        out.append(
            f'<text x="{left}" y="{chart.height - 10}" font-size="11" fill="{AXIS}">{escape(chart.note)}</text>'
        )
    # the data, clipped to the plot area (with room for a marker's radius)
    out.append(
        f'<clipPath id="plot"><rect x="{left - 4}" y="{top - 4}" width="{right - left + 8}" '
        f'height="{bottom - top + 8}"/></clipPath>'
    )
    out.append('<g clip-path="url(#plot)" fill="none" stroke-linejoin="round">')
    for s in chart.series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<polyline points="{polyline(s.points, x, y)}" stroke="{s.colour}" '
            f'stroke-width="{s.width:g}"{dash}/>'
        )
        if s.markers:
            for px, py in s.points:
                out.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3.5" fill="{s.colour}"/>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- from the benchmarks' JSON ----------------------------------------------------------------------------------


def peer_of(document: dict[str, Any]) -> dict[str, Any]:
    """A peer.py output, directly or under ``peer`` in a bench/run.py summary."""
    if "acinode" in document:
        return document
    inner = document.get("peer")
    if isinstance(inner, dict) and "acinode" in inner:
        return inner
    raise ValueError("not a bench/peer.py output (no 'acinode' key)")


def peer_size(peer: dict[str, Any], size: int | None = None) -> str:
    """The burst size to draw: ``size`` if given, else the largest with a timeline for acinode."""
    sizes = [
        key
        for key, value in (peer.get("acinode") or {}).items()
        if isinstance(value, dict) and "timeline" in value
    ]
    if size is not None:
        if str(size) not in sizes:
            raise ValueError(f"no timeline for {size} pods (have: {', '.join(sizes) or 'none'})")
        return str(size)
    if not sizes:
        raise ValueError("no burst in this file has a timeline (run bench/peer.py again)")
    return str(max(sizes, key=int))


def peer_charts(peer: dict[str, Any], size: int | None = None) -> dict[str, Chart]:
    """Pods Running after the scale-up, and pods left after the scale-down, one line per node."""
    key = peer_size(peer, size)
    pods = int(key)
    charts: dict[str, Chart] = {}
    for name, phase, x_label, y_label, done, verb in (
        (
            "peer-running",
            "up_running",
            "seconds since the Deployment was scaled up",
            "pods Running",
            "all_running_seconds",
            "all Running",
        ),
        (
            "peer-remaining",
            "down_remaining",
            "seconds since the Deployment was scaled to 0",
            "pods not yet deleted",
            "pods_gone_seconds",
            "all gone",
        ),
    ):
        runs = [(peer.get(node, {}).get(key), label, colour, dash) for node, label, colour, dash in PEERS]
        found = [(r, label, colour, dash) for r, label, colour, dash in runs if isinstance(r, dict)]
        timed = [(r, label, colour, dash) for r, label, colour, dash in found if "timeline" in r]
        end = max(r["timeline"][phase][-1][0] for r, *_ in timed)
        x_ticks = nice_ticks(0.0, end)
        series = [
            Series(
                f"{label}: {verb} at {r[done]:g} s" if done in r else label,
                step_points(r["timeline"][phase], until=x_ticks[-1]),
                colour,
                dash,
            )
            for r, label, colour, dash in timed
        ]
        acinode = peer.get("acinode", {}).get(key, {})
        if phase == "up_running" and "up_bound" in acinode.get("timeline", {}):
            # drawn first, under the nodes' lines: what no node can beat
            bound = step_points(acinode["timeline"]["up_bound"], until=x_ticks[-1])
            series.insert(
                0, Series("pods bound by the scheduler (acinode's run)", bound, LIGHT_GREY, "2 3", width=1.5)
            )
        title = (
            f"{pods:,} pods scaled up: pods Running over time"
            if phase == "up_running"
            else f"{pods:,} pods scaled to 0: pods left over time"
        )
        charts[name] = Chart(
            title,
            x_label,
            y_label,
            series,
            x_ticks=x_ticks,
            y_ticks=nice_ticks(0.0, pods),
            note=f"bench/peer.py, one control plane, {machine(peer)}. acinode: ACI emulator, no delays. "
            "Mock: no backend.",
        )
    return charts


def machine(document: dict[str, Any]) -> str:
    """The run's machine as far as the JSON says (the load average at the start, when recorded)."""
    load = (document.get("load_average") or {}).get("before")
    return f"load {load[0]:g} at the start" if load else "same machine"


def status_lag_of(document: dict[str, Any]) -> dict[str, Any]:
    """A status_lag.py output, directly or under ``status_lag`` in a bench/run.py summary."""
    if "status_lag_seconds" in document:
        return document
    inner = document.get("status_lag")
    if isinstance(inner, dict) and "status_lag_seconds" in inner:
        return inner
    raise ValueError("not a bench/status_lag.py output (no 'status_lag_seconds' key)")


DEFAULT_STATUS_READS_PER_SECOND = settings.PodSettings().status_reads_per_second
"""The chart is the default budget's (a run at another budget, such as
the best ARM allows, is a point of another line)."""


def drawable(run: dict[str, Any]) -> bool:
    """A one-node run of pods all alike (not ``--mix``'s classes, each with its own bound) at the default status
    budget that measured exits."""
    return (
        run.get("virtual_nodes", 1) == 1
        and "by_class" not in run
        and float(run.get("status_reads_per_second", DEFAULT_STATUS_READS_PER_SECOND))
        == DEFAULT_STATUS_READS_PER_SECOND
        and bool((run.get("status_lag_seconds") or {}).get("count"))
        and "status_lag_design_bound_seconds" in run
    )


def status_lag_points(runs: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """p50, p99 and the design bound against pods, for the drawable runs, sorted by pods (a later run of the
    same size replaces an earlier one)."""
    by_pods = {int(run["pods"]): run for run in runs if drawable(run)}
    out: dict[str, list[tuple[float, float]]] = {"p50": [], "p99": [], "bound": []}
    for pods in sorted(by_pods):
        run = by_pods[pods]
        out["p50"].append((float(pods), float(run["status_lag_seconds"]["p50"])))
        out["p99"].append((float(pods), float(run["status_lag_seconds"]["p99"])))
        out["bound"].append((float(pods), float(run["status_lag_design_bound_seconds"])))
    return out


def status_lag_chart(runs: Sequence[dict[str, Any]]) -> Chart:
    points = status_lag_points(runs)
    if not points["p50"]:
        raise ValueError("no one-node status_lag run with measured exits")
    budget = f"{DEFAULT_STATUS_READS_PER_SECOND:g} status reads/s"
    return Chart(
        "Exit → pod status lag against pods on one node",
        "pods on the node (a tenth of them end at known times)",
        "seconds from exit in ACI to the pod's status",
        [
            Series("p50", points["p50"], BLUE, markers=True),
            Series("p99", points["p99"], ORANGE, markers=True),
            Series("design bound (the read budget's arithmetic)", points["bound"], GREY, "6 4", markers=True),
        ],
        x_ticks=nice_ticks(0.0, max(x for x, _ in points["bound"])),
        note=f"bench/status_lag.py at the default budget ({budget}); one point per run",
    )


def load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a JSON object")
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer", type=Path, help="a bench/peer.py output (JSON)")
    parser.add_argument("--size", type=int, help="the burst size to draw (default: the largest in --peer)")
    parser.add_argument("--status-lag", type=Path, nargs="*", default=[], help="bench/status_lag.py outputs")
    parser.add_argument("--out", type=Path, default=Path("docs/plots"), help="folder for the SVG files")
    args = parser.parse_args(argv)
    if args.peer is None and not args.status_lag:
        parser.error("nothing to draw: give --peer and/or --status-lag")
    charts: dict[str, Chart] = {}
    try:
        if args.peer is not None:
            charts.update(peer_charts(peer_of(load(args.peer)), args.size))
        if args.status_lag:
            runs = [status_lag_of(load(p)) for p in args.status_lag]
            left_out = [str(p) for p, run in zip(args.status_lag, runs, strict=True) if not drawable(run)]
            if left_out:
                print(
                    f"plots: not drawn (many nodes, mixed classes, another budget or no exit measured): {left_out}",
                    file=sys.stderr,
                )
            charts["status-lag"] = status_lag_chart(runs)
    except (OSError, ValueError, KeyError) as err:
        print(f"plots: {err}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, chart in charts.items():
        path = args.out / f"{name}.svg"
        path.write_text(render(chart))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
