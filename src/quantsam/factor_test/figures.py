"""Factor-test figures; each function returns a matplotlib Figure (saved as PNG and logged to MLflow by the stage)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def ic_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 4))
    ric = rep.ic["rank_ic"]
    ax.bar(ric.index, ric.to_numpy(), width=4, color=np.where(ric.to_numpy() > 0, "tab:red", "tab:green"), alpha=0.6)
    ax.set_ylabel("RankIC per rebalance")
    ax2 = ax.twinx()
    ax2.plot(ric.index, np.nancumsum(ric.to_numpy()), color="black", lw=1.5, label="cumulative RankIC")
    ax2.set_ylabel("cumulative RankIC")
    ax.set_title(f"RankIC: mean {rep.summary['rank_ic_mean']:.4f}, ICIR {rep.summary['rank_icir']:.2f}")
    fig.tight_layout()
    return fig


def layer_nav_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    cols = [c for c in rep.layers.columns if c.startswith("L")]
    cmap = plt.get_cmap("RdYlGn_r", len(cols))
    for k, c in enumerate(cols):
        ax.plot(rep.layers.index, np.nancumprod(1 + rep.layers[c].fillna(0).to_numpy()), color=cmap(k), lw=1, label=c)
    ax.plot(rep.layers.index, np.nancumprod(1 + rep.layers["benchmark"].fillna(0).to_numpy()), "k--", lw=1.2,
            label="equal weight")
    ax.set_ylabel("NAV")
    ax.set_title("Layer NAV (L1 lowest factor, no costs)")
    ax.legend(ncol=6, fontsize=7)
    fig.tight_layout()
    return fig


def layer_bar_figure(rep):
    fig, ax = plt.subplots(figsize=(7, 4))
    v = rep.layer_annual
    ax.bar(v.index, 100 * v.to_numpy(), color="tab:blue")
    ax.axhline(100 * rep.summary["bench_ann_return"], color="k", ls="--", lw=1, label="equal weight")
    ax.set_ylabel("annualised return (%)")
    ax.set_title(f"Layer annualised returns (monotonicity {rep.summary['monotonicity']:.2f})")
    ax.legend()
    fig.tight_layout()
    return fig


def top_excess_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 4))
    nav = np.nancumprod(1 + rep.layers["top_excess"].fillna(0).to_numpy())
    ax.plot(rep.layers.index, nav, color="tab:red")
    ax.set_ylabel("excess NAV")
    ax.set_title(f"TOP layer vs equal weight: {100 * rep.summary['top_excess_ann']:.1f}% p.a., "
                 f"IR {rep.summary['top_ir']:.2f}, win {100 * rep.summary['top_win_rate']:.0f}%")
    fig.tight_layout()
    return fig


def factor_figures(rep) -> dict:
    return {"ic": ic_figure(rep), "layer_nav": layer_nav_figure(rep), "layer_annual": layer_bar_figure(rep),
            "top_excess": top_excess_figure(rep)}
