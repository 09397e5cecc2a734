"""The factor test of a signal: universe filters, preprocessing, IC statistics, 10 layers, TOP layer vs equal weight.

Settings (``conf/factor_test/default.yaml``, methodology "Factor test"): weekly rebalancing (every 5 trading days),
forward return T+1 -> T+6 at VWAP (close optional), no costs; universe on each rebalance date t = names with a row on
t, listed for ``min_listed_days``, not ST, and neither suspended nor one-price limit-up on t+1 (the next day's
tradability is treated as known at the decision, as in the study; nothing later is used).

Definitions (ppy = periods per year = 252 / rebalance_every):
IC / RankIC: per-date Pearson / Spearman of the preprocessed factor and the forward return; ICIR = mean / std,
annualised ICIR = ICIR x sqrt(ppy), t = mean / (std / sqrt(n)), IC>0 = share of dates with a positive value.
Layers: qcut-style equal-count groups (1 = lowest factor). Annualised return of a series r_1..r_n =
prod(1 + r)^(ppy / n) - 1. TOP = highest layer; benchmark = equal weight of the whole universe; excess e = r_top - r_bench
per period; TOP annualised excess = annualised return of e (compounded), IR = mean(e) / std(e) x sqrt(ppy),
win rate = share of e > 0, turnover = two-sided sum |w_t - w_{t-1}| of the equal-weight TOP layer per rebalance.
Long-short = annualised return of r_top - r_bottom. Monotonicity = Spearman(layer index, layer annualised return).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from quantsam import stageio
from quantsam.crosssection import annualize, ic_rows, kurtosis_rows, rank_ic_rows, series_stats
from quantsam.errors import DataError
from quantsam.factor_test.preprocess import preprocess
from quantsam.factor_test.quantiles import assign_layers, equal_weight_turnover, layer_means
from quantsam.features.labels import forward_return
from quantsam.features.panel import Panel
from quantsam.features.styles import StyleExposures
from quantsam.signals.io import to_dense

log = logging.getLogger(__name__)

TABLE_ROWS = ("RankIC mean", "RankIC std", "ICIR", "IC>0", "TOP excess", "TOP IR", "TOP win", "TOP turnover")


@dataclass
class FactorTestResult:
    summary: dict[str, float]
    table: pd.Series
    ic: pd.DataFrame
    ic_decay: pd.DataFrame
    layers: pd.DataFrame
    layer_annual: pd.Series
    drops: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)
    style_correlation: pd.DataFrame | None = None  # per date x style (with styles)

    def save(self, directory: str | Path) -> list[Path]:
        """Tables as parquet, figures as PNG, summary + drops as JSON."""
        tables = {"ic": self.ic, "ic_decay": self.ic_decay, "layers": self.layers,
                  "layer_annual": self.layer_annual.to_frame("ann_return"), "factor_table": self.table.to_frame("value")}
        if self.style_correlation is not None:
            tables["style_correlation"] = self.style_correlation
        return stageio.save_outputs(directory, tables, {"summary": self.summary, "drops": self.drops}, self.figures)

    def metrics(self) -> dict[str, float]:
        return {f"factor/{k}": v for k, v in self.summary.items()}


def universe_mask(panel: Panel, rows: np.ndarray, min_listed_days: int = 63) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Factor-test universe on the date rows ``rows`` (see module docstring) and, per reason, who was filtered."""
    T = len(panel.dates)
    nxt = np.minimum(rows + 1, T - 1)
    has_next = (rows + 1 < T)[:, None]
    reasons = {
        "not_traded": ~panel.traded[rows],
        "new_listing": panel.traded[rows] & (panel.age[rows] < min_listed_days),
        "st": panel.is_st[rows],
        "suspended_next_day": ~(panel.traded[nxt] & has_next),
        "limit_up_next_day": panel.limit_up_one[nxt] & has_next,
    }
    bad = np.zeros(rows.shape + (len(panel.codes),), dtype=bool)
    for m in reasons.values():
        bad |= m
    return ~bad, reasons


#: fewer testable rebalance dates than this is an error, not a result (an annualised return from one week)
MIN_TEST_DATES = 2


def analyze(signal: pd.DataFrame | np.ndarray, panel: Panel, industry: pd.DataFrame, cfg, column: str = "score",
            figures: bool = True, extra_drops: dict[str, int] | None = None,
            styles: StyleExposures | None = None) -> FactorTestResult:
    """The whole factor test of ``signal`` (a long/wide frame, or a ``[T, N]`` array on ``panel``'s grid) with the
    ``factor_test`` config ``cfg`` (see :class:`quantsam.config.schema.FactorTestConfig`; every key is read, none
    has a fallback here). ``industry``: ``code, industry`` rows. Dates whose usable cross-section is constant carry no
    ranking: they are skipped and counted; a signal with no testable date raises :class:`DataError`."""
    every, horizon, n_q = int(cfg.rebalance_every), int(cfg.horizon), int(cfg.n_quantiles)
    price, mad_k = str(cfg.price), cfg.mad_k
    neutral = set(cfg.neutralize or [])
    x_all = signal if isinstance(signal, np.ndarray) else to_dense(signal, panel, column)
    has_signal = np.isfinite(x_all).any(axis=1)
    start = pd.Timestamp(cfg.start) if cfg.start else panel.dates[0]
    end = pd.Timestamp(cfg.end) if cfg.end else panel.dates[-1]
    in_range = (panel.dates >= start) & (panel.dates <= end) & has_signal
    if not in_range.any():
        raise DataError(f"signal has no values between factor_test.start={start.date()} and end={end.date()} "
                        f"(signal spans {panel.dates[has_signal][0].date() if has_signal.any() else 'nothing'}"
                        f" .. {panel.dates[has_signal][-1].date() if has_signal.any() else ''}). Fix: adjust start/end")
    first = int(np.argmax(in_range))
    rows = np.arange(first, len(panel.dates), every)
    rows = rows[in_range[rows]]
    dates = panel.dates[rows]
    ppy = 252.0 / every

    univ, reasons = universe_mask(panel, rows, int(cfg.min_listed_days))
    raw = x_all[rows]
    has = np.isfinite(raw)
    drops = {**(extra_drops or {}), **{f"names_{k}": int((has & m).sum()) for k, m in reasons.items()}}
    fwd = forward_return(panel, horizon=horizon, price=price, lag=1)[rows].astype(np.float64)
    x = np.where(univ, raw, np.nan)
    constant = _constant_rows(x)
    if constant.any():
        x[constant] = np.nan
        drops["dates_constant_signal"] = int(constant.sum())
        if constant.all():
            raise DataError(f"signal is constant across names on all {len(rows)} test dates: it ranks nothing. "
                            "Fix: check the signal file (a score per name that varies across names)")

    industry_codes = size = None
    if "industry" in neutral:
        ind = industry.assign(code=industry["code"].astype(str)).set_index("code")["industry"]
        industry_codes, _ = pd.factorize(ind.reindex(panel.codes))  # -1 = no label -> its own group
        drops["names_no_industry"] = int((np.isfinite(x) & (industry_codes < 0)[None, :]).sum())
    if "size" in neutral:
        cap = panel.field("close")[rows].astype(np.float64) * panel.field("float_shares")[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            size = np.log(cap)
        size[~np.isfinite(size)] = np.nan
        drops["names_no_size"] = int((np.isfinite(x) & ~np.isfinite(size)).sum())
    f = preprocess(x, mad_k=None if mad_k is None else float(mad_k), industry=industry_codes, size=size)
    drops["names_no_forward_return"] = int((np.isfinite(f) & ~np.isfinite(fwd)).sum())
    drops["names_tested"] = int((np.isfinite(f) & np.isfinite(fwd)).sum())

    ic_s, ric_s = ic_rows(f, fwd), rank_ic_rows(f, fwd)
    n_names = (np.isfinite(f) & np.isfinite(fwd)).sum(axis=1)
    ic_df = pd.DataFrame({"ic": ic_s, "rank_ic": ric_s, "n_names": n_names}, index=dates)
    decay = []
    for h in cfg.ic_decay_horizons or []:
        fh = forward_return(panel, horizon=int(h), price=price, lag=1)[rows]
        decay.append({"horizon": int(h), "ic_mean": float(np.nanmean(ic_rows(f, fh))),
                      "rank_ic_mean": float(np.nanmean(rank_ic_rows(f, fh)))})
    decay_df = pd.DataFrame(decay).set_index("horizon") if decay else pd.DataFrame()

    both = np.isfinite(f) & np.isfinite(fwd)
    layer, skipped = assign_layers(np.where(both, f, np.nan), n_q)
    lr = layer_means(layer, fwd, n_q)
    n_both = both.sum(axis=1)
    bench = np.where(skipped | (n_both == 0), np.nan, np.where(both, fwd, 0.0).sum(axis=1) / np.maximum(n_both, 1))
    top, bottom = lr[:, -1], lr[:, 0]
    excess = top - bench
    turnover = equal_weight_turnover(layer == n_q)
    turnover[skipped] = np.nan
    layers_df = pd.DataFrame(lr, index=dates, columns=[f"L{k}" for k in range(1, n_q + 1)])
    layers_df["benchmark"] = bench
    layers_df["top_excess"] = excess
    layers_df["top_turnover"] = turnover
    keep = ~skipped
    layer_annual = pd.Series([annualize(lr[keep, k], ppy) for k in range(n_q)],
                             index=[f"L{k}" for k in range(1, n_q + 1)], name="ann_return")
    drops["dates_skipped_fewer_names_than_layers"] = int(skipped.sum())
    drops["dates_tested"] = int(keep.sum())
    if keep.sum() < MIN_TEST_DATES:  # annualised figures from one observation are no figures
        shown = ", ".join(str(d.date()) for d in dates[keep][:3])
        raise DataError(f"factor test: {int(keep.sum())} testable rebalance date(s) ({shown}) "
                        f"between factor_test.start and end; annualised returns, ICIR and t-stats need at least "
                        f"{MIN_TEST_DATES}. Fix: a signal covering more dates, or a wider factor_test.start/end")

    ric, icst, ex = series_stats(ric_s, ppy), series_stats(ic_s, ppy), series_stats(excess[keep], ppy)
    summary = {
        "rank_ic_mean": ric["mean"], "rank_ic_std": ric["std"], "rank_icir": ric["ir"], "rank_icir_ann": ric["ir_ann"],
        "rank_ic_t": ric["t"], "rank_ic_pos": ric["pos"],
        "ic_mean": icst["mean"], "ic_std": icst["std"], "icir": icst["ir"], "icir_ann": icst["ir_ann"],
        "ic_t": icst["t"], "ic_pos": icst["pos"],
        "top_ann_return": annualize(top[keep], ppy), "bench_ann_return": annualize(bench[keep], ppy),
        "top_excess_ann": annualize(excess[keep], ppy), "top_ir": ex["ir_ann"], "top_win_rate": ex["pos"],
        "top_turnover": float(np.nanmean(turnover[keep])) if np.isfinite(turnover[keep]).any() else float("nan"),
        "long_short_ann": annualize((top - bottom)[keep], ppy),
        "monotonicity": float(stats.spearmanr(np.arange(n_q), layer_annual.to_numpy()).statistic),
        "n_dates": float(keep.sum()),
        # the signal's tails before the test's own winsorisation: median per-date excess kurtosis (normal ~ 0)
        "score_kurtosis_median": _nanmedian(kurtosis_rows(x)),
        **{f"layer{k + 1}_ann": float(v) for k, v in enumerate(layer_annual.to_numpy())},
        **{f"rank_ic_decay_h{int(r['horizon'])}": r["rank_ic_mean"] for r in decay},
    }
    table = pd.Series({"RankIC mean": summary["rank_ic_mean"], "RankIC std": summary["rank_ic_std"],
                       "ICIR": summary["rank_icir"], "IC>0": summary["rank_ic_pos"],
                       "IC (Pearson) mean": summary["ic_mean"], "score kurtosis (median)": summary["score_kurtosis_median"],
                       "TOP excess": summary["top_excess_ann"], "TOP IR": summary["top_ir"],
                       "TOP win": summary["top_win_rate"], "TOP turnover": summary["top_turnover"]}, name="value")
    log.info("factor test: %d dates (%d skipped), weekly RankIC %.4f (ICIR %.2f), IC %.4f against the T+1 -> T+%d %s "
             "return after industry/size neutralisation, score kurtosis %.1f, TOP excess %.2f%%; drops %s",
             keep.sum(), skipped.sum(), summary["rank_ic_mean"], summary["rank_icir"], summary["ic_mean"],
             horizon + 1, price, summary["score_kurtosis_median"], 100 * summary["top_excess_ann"], drops)
    res = FactorTestResult(summary=summary, table=table, ic=ic_df, ic_decay=decay_df, layers=layers_df,
                           layer_annual=layer_annual, drops=drops)
    if styles is not None:
        res.style_correlation = style_correlation(x, styles, rows, dates)
        for k in styles.names:
            st = series_stats(res.style_correlation[k].to_numpy(), ppy)
            summary[f"style_corr_{k}"], summary[f"style_corr_t_{k}"] = st["mean"], st["t"]
    if figures:
        from quantsam.factor_test.figures import factor_figures

        res.figures = factor_figures(res)
    return res


def _nanmedian(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def style_correlation(x: np.ndarray, styles: StyleExposures, rows: np.ndarray, dates) -> pd.DataFrame:
    """Per test date, the Pearson correlation of the signal (in the test universe, before neutralisation) with each
    style exposure: a signal that is mostly a style shows it here (mean and t-stat in the summary)."""
    return pd.DataFrame({k: ic_rows(x, styles.values[rows, :, i].astype(np.float64))
                         for i, k in enumerate(styles.names)}, index=dates)


def _constant_rows(x: np.ndarray) -> np.ndarray:
    """Rows whose finite values are all equal (at least one finite value)."""
    ok = np.isfinite(x)
    hi = np.where(ok, x, -np.inf).max(axis=1)
    lo = np.where(ok, x, np.inf).min(axis=1)
    return ok.any(axis=1) & (hi == lo)
