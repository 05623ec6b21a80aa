"""The benchmarks' charts (``bench/plots.py``: ticks, scales, the SVG, the JSON it reads) and the burst timeline
they draw (``bench/burst.py``'s ``step_timeline``). No control plane: fixtures stand in for the benchmarks' JSON."""

from __future__ import annotations

import itertools
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import burst
import plots

pytestmark = pytest.mark.timeout(2)

SVG = "{http://www.w3.org/2000/svg}"


# --- ticks and scales -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "step"),
    [(100, 20), (1000, 200), (7, 2), (250, 50), (222.07, 50), (0.3, 0.1), (12, 2.5), (1, 0.2), (0, 1)],
)
def test_nice_step_is_1_2_2_5_or_5_times_a_power_of_ten(span: float, step: float) -> None:
    assert plots.nice_step(span) == pytest.approx(step)


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 222.07, [0, 50, 100, 150, 200, 250]),
        (0, 1000, [0, 200, 400, 600, 800, 1000]),
        (0, 505, [0, 200, 400, 600]),
        (0, 0.3, [0, 0.1, 0.2, 0.3]),
        (-12, 37, [-20, -10, 0, 10, 20, 30, 40]),
        (250, 950, [200, 400, 600, 800, 1000]),
        (3, 3, [3, 3.2, 3.4, 3.6, 3.8, 4]),
        (10, 0, [0, 2, 4, 6, 8, 10]),
    ],
)
def test_nice_ticks_cover_the_data_with_round_values(low: float, high: float, ticks: list[float]) -> None:
    assert plots.nice_ticks(low, high) == ticks


def test_ticks_are_exact_decimals_not_float_noise() -> None:
    ticks = plots.nice_ticks(0, 0.7)
    assert ticks == [0, 0.2, 0.4, 0.6, 0.8]
    assert [repr(t) for t in ticks] == ["0.0", "0.2", "0.4", "0.6", "0.8"]


@pytest.mark.parametrize(
    ("value", "step", "label"),
    [(1000, 200, "1,000"), (0.30000000000000004, 0.1, "0.3"), (2.5, 2.5, "2.5"), (5, 2.5, "5.0"),
     (-0.0, 1, "0"), (0.0, 0.1, "0"), (-20, 10, "-20"), (12500, 2500, "12,500")],
)  # fmt: skip
def test_tick_labels(value: float, step: float, label: str) -> None:
    assert plots.format_tick(value, step) == label


def test_scale_maps_linearly_and_flips_for_svg_y() -> None:
    x = plots.Scale(0, 250, 72, 696)
    assert (x(0), x(125), x(250)) == (72, 384, 696)
    y = plots.Scale(0, 1000, 356, 112)
    assert (y(0), y(500), y(1000)) == (356, 234, 112)
    assert plots.Scale(5, 5, 10, 20)(7) == 10  # a flat domain does not divide by zero


def test_step_points_hold_each_count_until_the_next_change() -> None:
    corners = plots.step_points([[0, 0], [1, 2], [3, 5]], until=4)
    assert corners == [(0, 0), (1, 0), (1, 2), (3, 2), (3, 5), (4, 5)]
    assert plots.step_points([[0, 7]], until=0) == [(0, 7)]
    assert plots.step_points([]) == []


def test_polyline_maps_to_pixels_and_drops_repeats() -> None:
    x, y = plots.Scale(0, 10, 0, 100), plots.Scale(0, 10, 100, 0)
    assert plots.polyline([(0, 0), (5, 5), (5.001, 5), (10, 10)], x, y) == "0.0,100.0 50.0,50.0 100.0,0.0"


def test_legend_wraps_to_the_width() -> None:
    short, long = "p50", "x" * 60  # 60 characters: about 418 px with the swatch
    assert plots.legend_rows([short, short, short], 600) == [[0, 1, 2]]
    assert plots.legend_rows([long, long, short], 600) == [[0], [1, 2]]


# --- the burst timeline -----------------------------------------------------------------------------------------


def test_timeline_counts_up_one_point_per_change_time() -> None:
    assert burst.step_timeline([2.0, 0.5, 0.501, 1.0], 0, +1) == [[0.0, 0], [0.5, 2], [1.0, 3], [2.0, 4]]


def test_timeline_counts_down_and_starts_at_the_first_change_when_it_is_at_zero() -> None:
    assert burst.step_timeline([0.0, 0.004, 1.5, -0.2], 4, -1) == [[0.0, 1], [1.5, 0]]
    assert burst.step_timeline([], 3, -1) == [[0.0, 3]]


def test_timeline_is_thinned_to_the_point_budget_keeping_the_end() -> None:
    offsets = [i * 0.05 for i in range(1000)]  # 1,000 pods Running, one every 50 ms
    line = burst.step_timeline(offsets, 0, +1, points=100)
    assert len(line) == 100
    assert line[0] == [0.0, 1]
    assert line[-1] == [49.95, 1000]
    counts = [count for _, count in line]
    assert counts == sorted(counts)
    # evenly spaced: each kept change is about 10 pods after the one before
    gaps = {b - a for a, b in itertools.pairwise(counts[1:])}
    assert gaps <= {10, 11}
    times = [t for t, _ in line]
    assert all(round(t / 0.05, 6) == round(count - 1) for t, count in line[1:])  # each pair a real change
    assert times == sorted(times)


def test_timeline_of_a_real_size_fits_in_json_compactly() -> None:
    line = burst.step_timeline([i / 20 + 0.013 for i in range(1000)], 0, +1)
    assert len(line) == burst.TIMELINE_POINTS
    assert len(json.dumps(line)) < 4000


# --- charts from the benchmarks' JSON ---------------------------------------------------------------------------


def burst_result(seconds_per_pod: float, pods: int) -> dict[str, Any]:
    up = [i * seconds_per_pod for i in range(1, pods + 1)]
    return {
        "all_running_seconds": up[-1],
        "pods_gone_seconds": up[-1] / 2,
        "timeline": {
            "up_running": burst.step_timeline(up, 0, +1),
            "up_bound": burst.step_timeline([t - seconds_per_pod / 2 for t in up], 0, +1),
            "down_remaining": burst.step_timeline([t / 2 for t in up], pods, -1),
        },
    }


def peer_output(pods: int = 100) -> dict[str, Any]:
    return {
        "benchmark": "peer",
        "sizes": [10, pods],
        "acinode": {"10": burst_result(0.1, 10), str(pods): burst_result(0.04, pods)},
        "virtual_kubelet_mock": {str(pods): burst_result(0.2, pods), "log_warnings": 0},
        "virtual_kubelet_tuned": {str(pods): {"error": "benchmark failed: timed out"}},
        "load_average": {"before": [0.5, 0.4, 0.3]},
    }


def lag_run(pods: int, p50: float, p99: float, bound: float, nodes: int = 1) -> dict[str, Any]:
    return {
        "benchmark": "status_lag",
        "virtual_nodes": nodes,
        "pods": pods,
        "status_reads_per_second": 2.0,
        "status_lag_seconds": {"count": pods // 10, "p50": p50, "p99": p99, "max": p99},
        "status_lag_design_bound_seconds": bound,
    }


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def test_peer_charts_draw_the_largest_size_one_line_per_node_with_a_timeline() -> None:
    charts = plots.peer_charts(plots.peer_of(peer_output()))
    running = charts["peer-running"]
    assert running.title.startswith("100 pods")
    # the scheduler's bindings of acinode's run under the nodes; the tuned peer failed at this size: no line
    assert [s.label for s in running.series] == [
        "pods bound by the scheduler (acinode's run)",
        "acinode: all Running at 4 s",
        "virtual-kubelet mock, as published (5 req/s): all Running at 20 s",
    ]
    assert running.series[0].points[-2:] == [(3.98, 100.0), (20.0, 100.0)]
    assert (running.series[0].colour, running.series[0].width) == (plots.LIGHT_GREY, 1.5)
    assert running.x_ticks == [0, 5, 10, 15, 20]
    assert running.y_ticks == [0, 20, 40, 60, 80, 100]
    acinode = running.series[1].points
    assert acinode[0] == (0.0, 0.0)
    assert acinode[-1] == (20.0, 100.0)  # held at 100 to the axis' end
    assert len(charts["peer-remaining"].series) == 2  # no bindings when scaling down
    remaining = charts["peer-remaining"].series[1].points
    assert remaining[0] == (0.0, 100.0)
    assert remaining[-1] == (10.0, 0.0)


def test_peer_size_is_chosen_or_refused() -> None:
    peer = peer_output()
    assert plots.peer_size(peer) == "100"
    assert plots.peer_size(peer, 10) == "10"
    with pytest.raises(ValueError, match="no timeline for 500 pods"):
        plots.peer_size(peer, 500)
    with pytest.raises(ValueError, match="no burst in this file has a timeline"):
        plots.peer_size({"acinode": {"100": {"all_running_seconds": 4.0}}})


def test_inputs_are_read_directly_or_from_a_bench_summary() -> None:
    peer, lag = peer_output(), lag_run(1000, 273.3, 496.6, 505)
    assert plots.peer_of({"peer": peer, "burst": {}}) is peer
    assert plots.status_lag_of({"status_lag": lag}) is lag
    with pytest.raises(ValueError):
        plots.peer_of(lag)
    with pytest.raises(ValueError):
        plots.status_lag_of(peer)


def test_status_lag_points_one_node_runs_sorted_by_pods_the_last_run_of_a_size_kept() -> None:
    runs = [
        lag_run(1000, 280.0, 500.0, 505),
        lag_run(100, 27.5, 52.1, 55),
        lag_run(1000, 20, 40, 505, nodes=50),  # many nodes: another chart's business
        lag_run(300, 80.2, 150.3, 155),
        lag_run(1000, 273.3, 496.6, 505),
        {**lag_run(500, 0, 0, 255), "status_lag_seconds": {}},  # nothing measured
        {
            **lag_run(2000, 1, 2, 3),
            "restart_policy": "mixed",
            "by_class": {},
        },  # classes with bounds of their own
        {**lag_run(1000, 28.2, 48.4, 50.5), "status_reads_per_second": 22.0},  # another budget's line
    ]
    points = plots.status_lag_points(runs)
    assert points == {
        "p50": [(100, 27.5), (300, 80.2), (1000, 273.3)],
        "p99": [(100, 52.1), (300, 150.3), (1000, 496.6)],
        "bound": [(100, 55), (300, 155), (1000, 505)],
    }
    chart = plots.status_lag_chart(runs)
    assert chart.x_ticks == [0, 200, 400, 600, 800, 1000]
    assert "2 status reads/s" in chart.note
    with pytest.raises(ValueError, match="no one-node"):
        plots.status_lag_chart([lag_run(1000, 1, 2, 3, nodes=50)])
    assert [plots.drawable(run) for run in runs] == [True, True, False, True, True, False, False, False]


def test_render_is_standalone_svg_with_a_white_background_axes_legend_and_one_line_per_series() -> None:
    chart = plots.status_lag_chart(
        [lag_run(100, 27.5, 52.1, 55), lag_run(300, 80.2, 150.3, 155), lag_run(1000, 273.3, 496.6, 505)]
    )
    root = parse(plots.render(chart))
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("720", "420")
    background = root.find(f"{SVG}rect")
    assert background is not None
    assert (background.get("width"), background.get("height"), background.get("fill")) == (
        "720",
        "420",
        "#ffffff",
    )
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Exit → pod status lag against pods on one node" in texts
    assert {"p50", "p99", "design bound (the read budget's arithmetic)"} <= set(texts)
    assert {"0", "200", "400", "600", "800", "1,000"} <= set(texts)  # x ticks
    assert {"0", "200", "400", "600"} <= set(texts)  # y ticks: 0 to 505 rounded up
    lines = root.findall(f".//{SVG}g/{SVG}polyline")
    assert [line.get("stroke") for line in lines] == [plots.BLUE, plots.ORANGE, plots.GREY]
    assert lines[2].get("stroke-dasharray") == "6 4"
    # the p99 line: x from the plot's left edge (72 px) over 624 px for 0..1,000 pods; y from 356 px (0 s, above
    # the note) up 284 px for 600 s (the legend's one row puts the plot's top at 72 px): 52.1 s → 331.3 px
    assert lines[1].get("points") == "134.4,331.3 259.2,284.9 696.0,120.9"
    assert len(root.findall(f".//{SVG}g/{SVG}circle")) == 9  # a marker per point


def test_render_escapes_text() -> None:
    chart = plots.Chart('a < b & "c"', "x", "y", [plots.Series("<s>", [(0, 0), (1, 1)], "#000")])
    root = parse(plots.render(chart))
    assert root.get("aria-label") == 'a < b & "c"'
    assert "<s>" in [t.text for t in root.iter(f"{SVG}text")]


def test_cli_writes_the_three_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    peer = tmp_path / "peer-100.json"
    peer.write_text(json.dumps(peer_output()))
    lags = []
    for pods, p50, p99, bound, nodes in (
        (100, 27.5, 52.1, 55, 1),
        (1000, 273.3, 496.6, 505, 1),
        (1000, 1, 2, 3, 50),
    ):
        lags.append(tmp_path / f"status_lag-{nodes}x{pods}.json")
        lags[-1].write_text(json.dumps(lag_run(pods, p50, p99, bound, nodes)))
    out = tmp_path / "plots"
    argv = ["--peer", str(peer), "--status-lag", *map(str, lags), "--out", str(out)]
    assert plots.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "peer-remaining.svg",
        "peer-running.svg",
        "status-lag.svg",
    ]
    for svg in out.iterdir():
        parse(svg.read_text())
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [
        str(out / "peer-running.svg"),
        str(out / "peer-remaining.svg"),
        str(out / "status-lag.svg"),
    ]
    assert "status_lag-50x1000.json" in printed.err  # said, not drawn
    assert "status_lag-1x100.json" not in printed.err


def test_cli_reports_a_missing_or_wrong_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plots.main(["--status-lag", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 1
    assert "none.json" in capsys.readouterr().err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(lag_run(100, 1, 2, 3)))
    assert plots.main(["--peer", str(wrong), "--out", str(tmp_path)]) == 1
    assert "not a bench/peer.py output" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.svg"))
