"""The handful of numbers a user opens a run for, under names that sort first in the MLflow UI (``summary/...``),
each named for its horizon: the daily test RankIC against the training label (T+1 -> T+11) is not the weekly factor
test's RankIC (T+1 -> T+6 VWAP return after neutralisation)."""

from __future__ import annotations

import math

HEADLINE_HELP = {
    "summary/test_rank_ic_daily": "signal's daily test RankIC vs the training label (T+1..T+11)",
    "summary/test_rank_icir_daily": "its ICIR (mean / std of the daily RankIC)",
    "summary/factor_rank_ic_weekly": "weekly factor test RankIC vs the T+1..T+6 VWAP return (neutralised)",
    "summary/top_excess_ann": "TOP decile's annualised excess over the universe (weekly factor test)",
    "summary/<index>_excess_ann": "enhanced portfolio's annualised excess over the index's total return",
    "summary/<index>_ir": "its information ratio",
    "summary/grad_evals": "gradient evaluations of the training (the cost of the arm)",
    "summary/train_wall_s": "training wall seconds",
}


def headline_metrics(train: dict, signal: dict, factor: dict, backtests: dict[str, dict]) -> dict[str, float]:
    """``summary/...`` metrics from the stages' own summaries (``metrics.json``, ``signal_metrics.json``, the factor
    test's and each backtest's ``summary``); a number a stage did not produce is left out, never logged as 0."""
    src = {
        "summary/test_rank_ic_daily": signal.get("test/rank_ic_mean"),
        "summary/test_rank_icir_daily": signal.get("test/rank_icir"),
        "summary/factor_rank_ic_weekly": factor.get("rank_ic_mean"),
        "summary/top_excess_ann": factor.get("top_excess_ann"),
        "summary/grad_evals": train.get("cost/grad_evals"),
        "summary/train_wall_s": train.get("cost/wall_s"),
    }
    for name, s in backtests.items():
        src[f"summary/{name}_excess_ann"] = s.get("excess_ann")
        src[f"summary/{name}_ir"] = s.get("info_ratio")
    out = {}
    for k, v in src.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[k] = f
    return out
