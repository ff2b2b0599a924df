"""The report of `fseflow bench`: targets (benchmarks/targets.toml), the Markdown page and the plots.

No services here: the harness (benchmarks/harness.py) measures, this module only judges and draws.
"""
from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TARGETS = Path(__file__).with_name("targets.toml")
DIRECTIONS = (">=", "<=")


class MissingMatplotlib(RuntimeError):
    pass


def load_targets(path: Path = TARGETS) -> list[dict[str, Any]]:
    """The targets, each with name, figure, value, unit and direction (checked)."""
    with open(path, "rb") as fh:
        targets = tomllib.load(fh).get("target", [])
    for t in targets:
        missing = [k for k in ("name", "figure", "value", "unit", "direction") if k not in t]
        if missing:
            raise ValueError(f"{path}: target {t.get('name', '?')!r} lacks {', '.join(missing)}")
        if t["direction"] not in DIRECTIONS:
            raise ValueError(f"{path}: target {t['name']!r}: direction must be one of {DIRECTIONS}")
        if not isinstance(t["value"], (int, float)):
            raise TypeError(f"{path}: target {t['name']!r}: value must be a number")
    return targets


def judge(target: Mapping[str, Any], figures: Mapping[str, Any]) -> str:
    """'met', 'NOT met', 'not measured', or 'n/a (…)' when the run cannot judge it."""
    v = figures.get(target["figure"])
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "not measured"
    if target.get("requires") == "full_scale" and not figures.get("full_scale"):
        return "n/a (not full scale)"
    ok = v >= target["value"] if target["direction"] == ">=" else v <= target["value"]
    return "met" if ok else "NOT met"


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        s = f"{v:,}"
    elif isinstance(v, float):
        a = abs(v)
        s = f"{v:,.0f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3g}"
    else:
        s = str(v)
    return f"{s} {unit}".rstrip()


def targets_table(figures: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> str:
    rows = ["| target | figure | measured | target value | status |", "|---|---|---|---|---|"]
    for t in targets:
        status = judge(t, figures)
        shown = status if status == "not measured" else fmt(figures.get(t["figure"]), t["unit"])
        mark = f"**{status}**" if status == "NOT met" else status
        rows.append(f"| {t['name']} | `{t['figure']}` | {shown} | {t['direction']} {fmt(t['value'], t['unit'])} "
                    f"| {mark} |")
    return "\n".join(rows)


def figures_table(figures: Mapping[str, Any]) -> str:
    rows = ["| figure | value |", "|---|---|"]
    rows += [f"| `{k}` | {fmt(v)} |" for k, v in figures.items()]
    return "\n".join(rows)


def render(figures: Mapping[str, Any], targets: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
           plots: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """report.md: machine, versions, parameters, the targets table, every figure, the plots."""
    out = ["# fseflow benchmark report", ""]
    if meta.get("started"):
        out += [f"Run {meta['started']}, {fmt(meta.get('wall_s'), 's')} wall.", ""]
    for section in ("machine", "versions", "parameters"):
        d = meta.get(section) or {}
        out += [f"## {section.capitalize()}", ""] + [f"- {k}: {v}" for k, v in d.items()] + [""]
    out += ["## Targets", "", targets_table(figures, targets), ""]
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    out += ["## All figures", "", figures_table(figures), ""]
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------- plots

def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib("the benchmark harness draws its plots with matplotlib, which is not installed: "
                                "pip install -e '.[bench]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cdf(path: Path, samples: Mapping[str, Sequence[float]], title: str, xlabel: str = "seconds") -> Path:
    """One empirical CDF per named sample (e.g. the latency of each stage)."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in samples.items():
        v = np.sort(np.asarray(values, dtype=float))
        if v.size:
            ax.plot(v, np.arange(1, v.size + 1) / v.size, label=f"{name} (n={v.size:,})")
    for q in (0.5, 0.95, 0.99):
        ax.axhline(q, color="grey", lw=0.5, ls=":")
    ax.set(title=title, xlabel=xlabel, ylabel="share of invoices ≤ x", ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_series(path: Path, t: Sequence[float], series: Mapping[str, Sequence[float]], title: str,
                ylabel: str, xlabel: str = "seconds since the first file was sent") -> Path:
    """Lines over time sharing one x axis (per-second throughput, backlog)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, y in series.items():
        ax.plot(list(t)[:len(y)], list(y), label=name, drawstyle="steps-post")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
