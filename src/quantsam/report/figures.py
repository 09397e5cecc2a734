"""Study figures across optimizers; each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from quantsam.optim import list_optimizers  # noqa: E402
from quantsam.report.tables import optimizers, universes  # noqa: E402


def _colors() -> dict[str, object]:
    """One colour per registered optimizer, in registry order; the AdamW baseline in black."""
    cmap = plt.get_cmap("tab20")
    names = [n for n in list_optimizers() if n != "adamw"]
    return {"adamw": "black", **{n: cmap(i % 20) for i, n in enumerate(names)}}


COLORS = _colors()


def _first_seed(jobs):
    out = {}
    for j in jobs:
        out.setdefault(j.optimizer, j)
    return out


def nav_figure(jobs, universe: str):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4))
    bench_done = False
    for o, j in _first_seed(jobs).items():
        d = j.daily.get(universe)
        if d is None:
            continue
        a1.plot(d.index, d["nav"], color=COLORS.get(o), lw=1.2, label=o)
        a2.plot(d.index, d["excess_nav"], color=COLORS.get(o), lw=1.2, label=o)
        if not bench_done:
            a1.plot(d.index, d["bench_nav"], color="gray", ls="--", lw=1.2, label="benchmark")
            bench_done = True
    a1.set_title(f"{universe}: NAV vs benchmark")
    a2.set_title(f"{universe}: excess NAV")
    a1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def layer_figure(jobs):
    fig, ax = plt.subplots(figsize=(11, 4))
    fs = [(o, j) for o, j in _first_seed(jobs).items() if j.layer_annual is not None]
    width = 0.8 / max(len(fs), 1)
    for k, (o, j) in enumerate(fs):
        x = np.arange(len(j.layer_annual)) + k * width
        ax.bar(x, 100 * j.layer_annual.to_numpy(), width, color=COLORS.get(o), label=o)
    if fs:
        ax.set_xticks(np.arange(len(fs[0][1].layer_annual)) + 0.4 - width / 2, fs[0][1].layer_annual.index)
    ax.set_ylabel("annualised return (%)")
    ax.set_title("10-layer annualised returns by optimizer (L10 = highest signal)")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def ic_figure(jobs):
    fig, ax = plt.subplots(figsize=(11, 4))
    for o, j in _first_seed(jobs).items():
        if j.factor_ic is not None:
            r = j.factor_ic["rank_ic"]
            ax.plot(r.index, np.nancumsum(r.to_numpy()), color=COLORS.get(o), label=o)
    ax.set_ylabel("cumulative RankIC")
    ax.set_title("Cumulative weekly RankIC of the combined signal")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def convergence_figure(jobs, unit: str = "w00-daily-s0"):
    """Validation RankIC and RankICIR per epoch for the same seed, window and data, one line per optimizer."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4))
    for o, j in _first_seed(jobs).items():
        h = j.histories.get(unit)
        if not h:
            continue
        ep = [r["epoch"] for r in h["history"]]
        a1.plot(ep, [r["valid_rank_ic"] for r in h["history"]], marker="o", color=COLORS.get(o), label=o)
        a2.plot(ep, [r["valid_rank_icir"] for r in h["history"]], marker="o", color=COLORS.get(o), label=o)
    a1.set_title(f"validation RankIC per epoch ({unit})")
    a2.set_title(f"validation RankICIR per epoch ({unit})")
    a1.set_xlabel("epoch")
    a2.set_xlabel("epoch")
    a1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cost_figure(cost):
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if "train wall (s)" in cost.index:
        cols = list(cost.columns)
        ax.bar(cols, cost.loc["train wall (s)"].to_numpy(dtype=float), color=[COLORS.get(c, "gray") for c in cols])
    ax.set_ylabel("training wall time (s)")
    ax.set_title("cost per optimizer")
    fig.tight_layout()
    return fig


def study_figures(jobs, cost) -> dict:
    figs = {"ic": ic_figure(jobs), "layers": layer_figure(jobs), "convergence": convergence_figure(jobs),
            "cost": cost_figure(cost)}
    for u in universes(jobs):
        figs[f"nav_{u}"] = nav_figure(jobs, u)
    if len(optimizers(jobs)) and any("w00-weekly-s0" in j.histories for j in jobs):
        figs["convergence_weekly"] = convergence_figure(jobs, "w00-weekly-s0")
    return figs
