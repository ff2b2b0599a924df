"""`fseflow bench`'s report: the targets file, the Markdown table and the plots (no services, no timing)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fseflow.benchmarks import report as rep

TARGETS = [
    {"name": "throughput", "figure": "t.per_s", "value": 50_000, "unit": "invoices/s", "direction": ">="},
    {"name": "p99", "figure": "l.p99_s", "value": 0.25, "unit": "s", "direction": "<="},
    {"name": "decode", "figure": "m.decode", "value": 200, "unit": "MB/s", "direction": ">="},
    {"name": "rss", "figure": "t.rss_gib", "value": 2, "unit": "GiB", "direction": "<=", "requires": "full_scale"},
    {"name": "kernels", "figure": "m.kernels", "value": 5_000_000, "unit": "lines/s", "direction": ">="},
]
FIGURES = {"full_scale": False, "t.per_s": 6_000.0, "l.p99_s": 0.2, "m.decode": 244.0, "t.rss_gib": 1.2}


def test_the_targets_file_loads_and_every_target_is_complete() -> None:
    targets = rep.load_targets()
    assert len(targets) >= 6
    for t in targets:
        assert t["name"] and t["figure"] and t["unit"]
        assert isinstance(t["value"], (int, float))
        assert t["direction"] in (">=", "<=")
    figures = {t["figure"] for t in targets}
    assert {"year_replay.invoices_per_s", "naive.ratio", "steady_load.p99_written_s", "micro.decode_mb_per_s",
            "micro.kernel_lines_per_s", "year_replay.peak_rss_gib"} <= figures


def test_a_target_without_direction_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('[[target]]\nname = "x"\nfigure = "y"\nvalue = 1\nunit = "s"\ndirection = ">"\n')
    with pytest.raises(ValueError, match="direction"):
        rep.load_targets(bad)


def test_judging_both_directions_missing_figures_and_full_scale_only_targets() -> None:
    status = {t["name"]: rep.judge(t, FIGURES) for t in TARGETS}
    assert status == {"throughput": "NOT met", "p99": "met", "decode": "met", "rss": "n/a (not full scale)",
                      "kernels": "not measured"}
    assert rep.judge(TARGETS[3], {**FIGURES, "full_scale": True}) == "met"
    assert rep.judge(TARGETS[1], {"l.p99_s": 0.25}) == "met"  # the bound itself meets it


def test_the_markdown_table_shows_met_not_met_and_not_measured() -> None:
    md = rep.render(FIGURES, TARGETS, {"machine": {"cpu": "test"}, "parameters": {"quick": True}})
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| ") and "`" in line and line.count("|") == 6}
    assert rows["throughput"] == ["`t.per_s`", "6,000 invoices/s", ">= 50,000 invoices/s", "**NOT met**"]
    assert rows["p99"][1:] == ["0.2 s", "<= 0.25 s", "met"]
    assert rows["decode"][-1] == "met"
    assert rows["kernels"][1:] == ["not measured", ">= 5,000,000 lines/s", "not measured"]
    assert rows["rss"][-1] == "n/a (not full scale)"
    assert "## Machine" in md and "- cpu: test" in md and "## All figures" in md


def test_plots_write_non_empty_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cdf = rep.plot_cdf(tmp_path / "cdf.png", {"a": rng.exponential(0.1, 500), "b": rng.exponential(0.3, 500)}, "t")
    secs = list(range(30))
    ts = rep.plot_series(tmp_path / "ts.png", secs, {"written": [s * 10 for s in secs]}, "t", "per s")
    for p in (cdf, ts):
        data = p.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
