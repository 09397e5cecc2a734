"""Backtest metrics from daily portfolio and benchmark returns (252 trading days a year).

annualised return = prod(1 + r)^(252 / n) - 1; volatility = std(r) x sqrt(252); Sharpe = mean / std x sqrt(252)
(no risk-free rate); max drawdown = min(NAV / running max - 1). Excess: e = r_p - r_b daily; annualised excess =
prod(1 + e)^(252 / n) - 1 (daily excess compounded); tracking error = std(e) x sqrt(252); IR = mean(e) x 252 / TE;
excess max drawdown on prod(1 + e); excess Calmar = annualised excess / |excess max drawdown|; monthly win rate =
share of calendar months whose compounded excess is positive; turnover = mean two-sided turnover per rebalance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.crosssection import annualize, max_drawdown

DAYS = 252


def perf_stats(r_p: pd.Series, r_b: pd.Series, turnover: pd.Series | None = None) -> dict[str, float]:
    """The headline numbers (see module docstring) over the whole series."""
    p, b = r_p.to_numpy(np.float64), r_b.to_numpy(np.float64)
    e = p - b
    sd = p.std(ddof=1) if len(p) > 1 else np.nan
    te = e.std(ddof=1) * np.sqrt(DAYS) if len(e) > 1 else np.nan
    ex_ann, ex_mdd = annualize(e, DAYS), max_drawdown(e)
    monthly = (1 + pd.Series(e, index=r_p.index)).groupby(r_p.index.to_period("M")).prod() - 1
    return {
        "ann_return": annualize(p, DAYS), "volatility": float(sd * np.sqrt(DAYS)),
        "sharpe": float(p.mean() / sd * np.sqrt(DAYS)) if sd and sd > 0 else float("nan"),
        "max_drawdown": max_drawdown(p), "bench_ann_return": annualize(b, DAYS),
        "excess_ann": ex_ann, "tracking_error": float(te),
        "info_ratio": float(e.mean() * DAYS / te) if te and te > 0 else float("nan"),
        "excess_max_drawdown": ex_mdd,
        "excess_calmar": float(ex_ann / abs(ex_mdd)) if ex_mdd < 0 else float("nan"),
        "monthly_win_rate": float((monthly > 0).mean()) if len(monthly) else float("nan"),
        "turnover": float(turnover.mean()) if turnover is not None and len(turnover) else float("nan"),
    }


def yearly_table(r_p: pd.Series, r_b: pd.Series) -> pd.DataFrame:
    """One row per calendar year (the last, partial year included, e.g. 2024 YTD)."""
    rows = {}
    for y, idx in r_p.groupby(r_p.index.year).groups.items():
        p, b = r_p.loc[idx], r_b.loc[idx]
        e = (p - b).to_numpy()
        te = e.std(ddof=1) * np.sqrt(DAYS) if len(e) > 1 else np.nan
        rows[int(y)] = {
            "return": float(np.prod(1 + p) - 1), "benchmark": float(np.prod(1 + b) - 1),
            "excess": float(np.prod(1 + e) - 1), "tracking_error": float(te),
            "info_ratio": float(e.mean() * DAYS / te) if te and te > 0 else float("nan"),
            "excess_max_drawdown": max_drawdown(e), "days": len(e),
        }
    return pd.DataFrame(rows).T.rename_axis("year")
