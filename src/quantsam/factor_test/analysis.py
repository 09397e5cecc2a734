"""The factor-test stage: universe filters, preprocessing, IC statistics, 10 layers, TOP layer vs equal weight.

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

from quantsam.errors import DataError
from quantsam.factor_test.ic import ic_rows, rank_ic_rows
from quantsam.factor_test.preprocess import preprocess
from quantsam.factor_test.quantiles import assign_layers, equal_weight_turnover, layer_means
from quantsam.features.labels import forward_return
from quantsam.features.panel import Panel, build_panel

log = logging.getLogger(__name__)

TABLE_ROWS = ("RankIC mean", "RankIC std", "ICIR", "IC>0", "TOP excess", "TOP IR", "TOP win", "TOP turnover")


@dataclass
class FactorReport:
    summary: dict[str, float]
    table: pd.Series
    ic: pd.DataFrame
    ic_decay: pd.DataFrame
    layers: pd.DataFrame
    layer_annual: pd.Series
    drops: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> list[Path]:
        """Tables as parquet, figures as PNG, summary + drops as JSON."""
        from quantsam.report.artifacts import save_outputs

        tables = {"ic": self.ic, "ic_decay": self.ic_decay, "layers": self.layers,
                  "layer_annual": self.layer_annual.to_frame("ann_return"), "factor_table": self.table.to_frame("value")}
        return save_outputs(directory, tables, {"summary": self.summary, "drops": self.drops}, self.figures)

    def metrics(self) -> dict[str, float]:
        return {f"factor/{k}": v for k, v in self.summary.items()}


def signal_to_wide(signal: pd.DataFrame | pd.Series, panel: Panel, column: str = "score") -> np.ndarray:
    """``[T, N]`` array of the signal on the panel's grid. Accepts a long frame (``date, code, <column>``) or a wide
    frame (index dates, columns codes). Codes unknown to the panel raise; dates outside the panel raise."""
    if isinstance(signal, pd.DataFrame) and {"date", "code"} <= set(signal.columns):
        if column not in signal.columns:
            raise DataError(f"signal: column '{column}' missing (columns: {list(signal.columns)})")
        if signal.duplicated(["date", "code"]).any():
            n = int(signal.duplicated(["date", "code"]).sum())
            raise DataError(f"signal: {n} duplicate (date, code) rows. Fix: average seeds/models first")
        if not pd.api.types.is_numeric_dtype(signal[column]):
            raise DataError(f"signal: column '{column}' is {signal[column].dtype}, expected numeric")
        dates = pd.to_datetime(signal["date"]).to_numpy()
        codes = signal["code"].astype(str).to_numpy()
        vals = signal[column].to_numpy(dtype=np.float64)
    elif isinstance(signal, pd.DataFrame):
        long = signal.stack()
        dates = pd.to_datetime(long.index.get_level_values(0)).to_numpy()
        codes = long.index.get_level_values(1).astype(str).to_numpy()
        vals = long.to_numpy(dtype=np.float64)
    else:
        raise DataError(f"signal: expected a DataFrame, got {type(signal).__name__}")
    ti = pd.Series(np.arange(len(panel.dates)), index=panel.dates).reindex(dates).to_numpy()
    ni = pd.Series(np.arange(len(panel.codes)), index=panel.codes).reindex(codes).to_numpy()
    if np.isnan(ti).any():
        raise DataError(f"signal: {int(np.isnan(ti).sum())} rows on dates not in the market calendar "
                        f"(first: {pd.Timestamp(dates[np.isnan(ti)][0]).date()}). Fix: use the same market data")
    if np.isnan(ni).any():
        raise DataError(f"signal: {int(np.isnan(ni).sum())} rows with codes not in the market "
                        f"(first: {codes[np.isnan(ni)][0]}). Fix: use the same market data")
    out = np.full(panel.traded.shape, np.nan)
    out[ti.astype(np.int64), ni.astype(np.int64)] = vals
    return out


def annualized(r: np.ndarray, ppy: float) -> float:
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return float("nan")
    return float(np.prod(1.0 + r) ** (ppy / len(r)) - 1.0)


def _series_stats(x: np.ndarray, ppy: float) -> dict[str, float]:
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(np.mean(x)) if n else float("nan")
    sd = float(np.std(x, ddof=1)) if n > 1 else float("nan")
    ir = mean / sd if sd and np.isfinite(sd) and sd > 0 else float("nan")
    return {"mean": mean, "std": sd, "ir": ir, "ir_ann": ir * np.sqrt(ppy), "t": ir * np.sqrt(n),
            "pos": float(np.mean(x > 0)) if n else float("nan")}


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


def factor_report(signal: pd.DataFrame, market, cfg, panel: Panel | None = None, column: str = "score",
                  figures: bool = True) -> FactorReport:
    """Run the whole factor test of ``signal`` on ``market`` (needs ``.daily`` and ``.industry``) with the
    ``factor_test`` config ``cfg`` (mapping with rebalance_every, horizon, price, n_quantiles, mad_k, neutralize,
    ic_decay_horizons, start, end, min_listed_days)."""
    defaults = {"rebalance_every": 5, "horizon": 5, "price": "vwap", "n_quantiles": 10, "mad_k": 5.0,
                "neutralize": ["industry", "size"], "ic_decay_horizons": [1, 5, 10, 20], "start": None, "end": None,
                "min_listed_days": 63}

    def g(key):
        v = cfg.get(key, None)
        return defaults[key] if v is None and key not in ("start", "end", "mad_k") else v

    every, horizon, n_q = int(g("rebalance_every")), int(g("horizon")), int(g("n_quantiles"))
    price, mad_k = str(g("price")), g("mad_k")
    neutral = set(g("neutralize") or [])
    min_listed = int(g("min_listed_days"))
    panel = build_panel(market.daily) if panel is None else panel
    x_all = signal_to_wide(signal, panel, column)
    has_signal = np.isfinite(x_all).any(axis=1)
    start = pd.Timestamp(g("start")) if g("start") else panel.dates[0]
    end = pd.Timestamp(g("end")) if g("end") else panel.dates[-1]
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

    univ, reasons = universe_mask(panel, rows, min_listed)
    raw = x_all[rows]
    has = np.isfinite(raw)
    drops = {f"names_{k}": int((has & m).sum()) for k, m in reasons.items()}
    fwd = forward_return(panel, horizon=horizon, price=price, lag=1)[rows].astype(np.float64)
    x = np.where(univ, raw, np.nan)

    industry = size = None
    if "industry" in neutral:
        ind = market.industry.assign(code=market.industry["code"].astype(str)).set_index("code")["industry"]
        labels = ind.reindex(panel.codes)
        codes, _ = pd.factorize(labels)
        industry = codes  # -1 = no label -> its own group
        drops["names_no_industry"] = int((np.isfinite(x) & (industry < 0)[None, :]).sum())
    if "size" in neutral:
        cap = panel.field("close")[rows].astype(np.float64) * panel.field("float_shares")[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            size = np.log(cap)
        size[~np.isfinite(size)] = np.nan
        drops["names_no_size"] = int((np.isfinite(x) & ~np.isfinite(size)).sum())
    f = preprocess(x, mad_k=None if mad_k is None else float(mad_k), industry=industry, size=size)
    drops["names_no_forward_return"] = int((np.isfinite(f) & ~np.isfinite(fwd)).sum())
    drops["names_tested"] = int((np.isfinite(f) & np.isfinite(fwd)).sum())

    ic_s, ric_s = ic_rows(f, fwd), rank_ic_rows(f, fwd)
    n_names = (np.isfinite(f) & np.isfinite(fwd)).sum(axis=1)
    ic_df = pd.DataFrame({"ic": ic_s, "rank_ic": ric_s, "n_names": n_names}, index=dates)
    decay = []
    for h in g("ic_decay_horizons") or []:
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
    layer_annual = pd.Series([annualized(lr[keep, k], ppy) for k in range(n_q)],
                             index=[f"L{k}" for k in range(1, n_q + 1)], name="ann_return")
    drops["dates_skipped_fewer_names_than_layers"] = int(skipped.sum())
    drops["dates_tested"] = int(keep.sum())

    ric, icst, ex = _series_stats(ric_s, ppy), _series_stats(ic_s, ppy), _series_stats(excess[keep], ppy)
    summary = {
        "rank_ic_mean": ric["mean"], "rank_ic_std": ric["std"], "rank_icir": ric["ir"], "rank_icir_ann": ric["ir_ann"],
        "rank_ic_t": ric["t"], "rank_ic_pos": ric["pos"],
        "ic_mean": icst["mean"], "ic_std": icst["std"], "icir": icst["ir"], "icir_ann": icst["ir_ann"],
        "ic_t": icst["t"], "ic_pos": icst["pos"],
        "top_ann_return": annualized(top[keep], ppy), "bench_ann_return": annualized(bench[keep], ppy),
        "top_excess_ann": annualized(excess[keep], ppy), "top_ir": ex["ir_ann"], "top_win_rate": ex["pos"],
        "top_turnover": float(np.nanmean(turnover[keep])) if np.isfinite(turnover[keep]).any() else float("nan"),
        "long_short_ann": annualized((top - bottom)[keep], ppy),
        "monotonicity": float(stats.spearmanr(np.arange(n_q), layer_annual.to_numpy()).statistic),
        "n_dates": float(keep.sum()),
        **{f"layer{k + 1}_ann": float(v) for k, v in enumerate(layer_annual.to_numpy())},
        **{f"rank_ic_decay_h{int(r['horizon'])}": r["rank_ic_mean"] for r in decay},
    }
    table = pd.Series({"RankIC mean": summary["rank_ic_mean"], "RankIC std": summary["rank_ic_std"],
                       "ICIR": summary["rank_icir"], "IC>0": summary["rank_ic_pos"],
                       "TOP excess": summary["top_excess_ann"], "TOP IR": summary["top_ir"],
                       "TOP win": summary["top_win_rate"], "TOP turnover": summary["top_turnover"]}, name="value")
    log.info("factor test: %d dates (%d skipped), RankIC %.4f, ICIR %.2f, TOP excess %.2f%%; drops %s",
             keep.sum(), skipped.sum(), summary["rank_ic_mean"], summary["rank_icir"],
             100 * summary["top_excess_ann"], drops)
    rep = FactorReport(summary=summary, table=table, ic=ic_df, ic_decay=decay_df, layers=layers_df,
                       layer_annual=layer_annual, drops=drops)
    if figures:
        from quantsam.factor_test.figures import factor_figures

        rep.figures = factor_figures(rep)
    return rep
