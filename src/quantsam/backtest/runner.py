"""Index-enhanced backtest: signal -> weekly cvxpy portfolios -> daily VWAP simulation -> metrics, tables, figures.

On each decision day t (every ``rebalance_every`` trading days from ``start``) the candidates are the index
constituents at t, the ``n_extra_candidates`` best-scored non-constituents with a row on t, and every current holding.
Scores are the signal at t's close; benchmark weights, size (log float cap) and industries are as of t; the freeze
flags (suspended, one-price limit-up/-down) are those of the fill day t+1 and of no later day.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantsam import progress, stageio
from quantsam.backtest.engine import MarketArrays, benchmark_returns, ffill, simulate
from quantsam.backtest.metrics import perf_stats, yearly_table
from quantsam.errors import DataError
from quantsam.features.dataset import membership_mask
from quantsam.features.panel import Panel
from quantsam.portfolio.problem import IndexEnhancedProblem
from quantsam.signals.io import to_dense

log = logging.getLogger(__name__)


@dataclass
class BacktestResult:
    universe: str
    summary: dict[str, float]
    daily: pd.DataFrame
    rebalances: pd.DataFrame
    yearly: pd.DataFrame
    active_industry: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {f"bt/{self.universe}/{k}": v for k, v in self.summary.items()}

    def save(self, directory: str | Path) -> list[Path]:
        """Tables as parquet, figures as PNG, summary + notes as JSON."""
        tables = {"daily": self.daily, "rebalances": self.rebalances, "yearly": self.yearly,
                  "active_industry": self.active_industry}
        return stageio.save_outputs(directory, tables, {"summary": self.summary, "notes": self.notes}, self.figures)


def index_weight_matrix(panel: Panel, market, index_code: str) -> tuple[np.ndarray, str]:
    """``[T, N]`` end-of-day constituent weights of ``index_code`` (rows sum to 1 where the index has members) and
    their source: the published weights where the market has them for a date, else float-cap weights within the
    point-in-time membership (an approximation, said so in the report)."""
    T, N = panel.traded.shape
    out = np.zeros((T, N))
    have = np.zeros(T, dtype=bool)
    iw = market.index_weights
    if iw is not None and len(iw):
        sel = iw[iw["index_code"].astype(str) == index_code]
        if len(sel):
            ti = pd.Series(np.arange(T), index=panel.dates).reindex(pd.to_datetime(sel["date"])).to_numpy()
            ni = pd.Series(np.arange(N), index=panel.codes).reindex(sel["code"].astype(str)).to_numpy()
            ok = np.isfinite(ti) & np.isfinite(ni)
            out[ti[ok].astype(int), ni[ok].astype(int)] = sel["weight"].to_numpy()[ok]
            have[np.unique(ti[ok].astype(int))] = True
    source = "published weights"
    if not have.all():
        members = membership_mask(panel, market.index_members, index_code)
        cap = ffill(panel.field("close").astype(np.float64)) * ffill(panel.field("float_shares").astype(np.float64))
        approx = np.where(members & np.isfinite(cap), cap, 0.0)
        out[~have] = approx[~have]
        source = "float-cap weights within membership" if not have.any() else (
            f"published weights on {have.sum()} days, float-cap approximation on {(~have).sum()}")
    tot = out.sum(axis=1, keepdims=True)
    out = np.divide(out, tot, out=np.zeros_like(out), where=tot > 0)
    return out, source


def run_index_enhanced(signal: pd.DataFrame | np.ndarray, market, panel: Panel, index_code: str, universe: str,
                       portfolio_cfg, backtest_cfg, figures: bool = True) -> BacktestResult:
    """Backtest the index-enhanced portfolio of ``signal`` (a long frame or a ``[T, N]`` array on ``panel``'s grid)
    against ``index_code`` (see module docstring). ``market``: the tables (index weights/members/bars, industry);
    ``portfolio_cfg`` / ``backtest_cfg``: the ``portfolio`` and ``backtest`` configs (every key is read; the schema
    holds the defaults)."""
    t_start = time.perf_counter()
    T, N = panel.traded.shape
    sig = signal if isinstance(signal, np.ndarray) else to_dense(signal, panel)
    bench_w, weight_source = index_weight_matrix(panel, market, index_code)
    ind = market.industry.assign(code=market.industry["code"].astype(str)).set_index("code")["industry"]
    ind_codes, ind_names = pd.factorize(ind.reindex(panel.codes))
    n_ind = len(ind_names) + 1
    ind_codes = np.where(ind_codes < 0, n_ind - 1, ind_codes)  # unknown industry -> its own column
    onehot_all = np.eye(n_ind)[ind_codes]

    bc = backtest_cfg
    every = int(bc.rebalance_every)
    start = pd.Timestamp(bc.start) if bc.start else panel.dates[0]
    end = pd.Timestamp(bc.end) if bc.end else panel.dates[-1]
    has_sig = np.isfinite(sig).any(axis=1)
    window = (panel.dates >= start) & (panel.dates <= end)
    if not (window & has_sig).any():
        raise DataError(f"signal has no values between backtest.start={start.date()} and backtest.end={end.date()}")
    t0 = int(np.argmax(window & has_sig))
    # the backtest ends one holding period after the signal's last date (no drifting on stale weights beyond it)
    t_last = min(int(np.nonzero(window)[0][-1]), int(np.nonzero(window & has_sig)[0][-1]) + every)
    decisions = [t for t in range(t0, t_last, every) if has_sig[t]]
    s0, s1 = decisions[0] + 1, t_last + 1  # simulate from the first fill day through the end
    adj = panel.field("adj_factor").astype(np.float64)
    arrays = MarketArrays(
        close=(panel.field("close") * adj)[s0:s1], vwap=(panel.field(str(bc.fill_price)) * adj)[s0:s1],
        traded=panel.traded[s0:s1], limit_up=panel.limit_up_one[s0:s1], limit_down=panel.limit_down_one[s0:s1],
        raw_vwap=panel.field(str(bc.fill_price)).astype(np.float64)[s0:s1])
    cap_raw = panel.field("close").astype(np.float64) * panel.field("float_shares")
    with np.errstate(invalid="ignore", divide="ignore"):
        log_cap = np.log(cap_raw)

    n_extra = int(portfolio_cfg.n_extra_candidates)
    cons_max = int((bench_w[t0:s1] > 0).sum(axis=1).max())
    state: dict[str, Any] = {"prob": IndexEnhancedProblem(cons_max + n_extra + 64, n_ind, portfolio_cfg)}
    rebal_rows: list[dict] = []
    active_rows: list[np.ndarray] = []

    pbar = progress.bar(len(decisions), f"backtest {universe}")

    def decide(f_local: int, w_pre: np.ndarray) -> np.ndarray:
        f = f_local + s0
        t = f - 1
        score = sig[t]
        cons = bench_w[t] > 0
        elig = ~cons & panel.traded[t] & np.isfinite(score)
        extra = np.nonzero(elig)[0]
        if len(extra) > n_extra:
            extra = extra[np.argsort(-score[extra], kind="stable")[:n_extra]]
        cand = np.union1d(np.union1d(np.nonzero(cons)[0], extra), np.nonzero(w_pre > 1e-12)[0])
        if len(cand) > state["prob"].n:
            state["prob"] = IndexEnhancedProblem(len(cand) + 64, n_ind, state["prob"].c)
        first = not (w_pre > 1e-12).any()
        res = state["prob"].solve(
            score=score[cand], bench_weight=bench_w[t, cand], in_index=cons[cand].astype(float),
            industry_onehot=onehot_all[cand], size=log_cap[t, cand], prev_weight=None if first else w_pre[cand],
            suspended=~panel.traded[f, cand], limit_up=panel.limit_up_one[f, cand],
            limit_down=panel.limit_down_one[f, cand], date=str(panel.dates[t].date()))
        target = np.zeros(N)
        target[cand] = res.weights
        rebal_rows.append({"date": panel.dates[t], "fill_date": panel.dates[f], "fill": f_local, "status": res.status,
                           "relaxed": ",".join(res.relaxed), "n_candidates": len(cand),
                           "objective": res.objective, "index_weight": float(target[cons].sum())})
        active_rows.append(onehot_all.T @ (target - bench_w[t]))
        pbar.update(1)
        return target

    sim = simulate(arrays, [t + 1 - s0 for t in decisions], decide, cost_per_side=float(bc.cost_per_side),
                   stamp_duty=float(bc.stamp_duty), lot_size=bc.lot_size, capital=bc.capital)
    pbar.close()
    dates = panel.dates[s0:s1]
    r_b = benchmark_returns(bench_w[s0 - 1:s1], np.vstack([(panel.field("close") * adj)[s0 - 1:s0], arrays.close]))[1:]
    idx_daily = getattr(market, "index_daily", None)
    if idx_daily is not None and len(idx_daily) and (idx_daily["index_code"].astype(str) == index_code).any():
        # the index's own daily series where it exists (the real benchmark); constituents x returns elsewhere
        s = idx_daily[idx_daily["index_code"].astype(str) == index_code].set_index("date")["close"].sort_index()
        ri = s.pct_change().reindex(panel.dates[s0 - 1:s1]).to_numpy()[1:]
        have = np.isfinite(ri)
        r_b = np.where(have, ri, r_b)
        weight_source += f"; benchmark returns from the index series on {int(have.sum())} of {len(have)} days"
    r_p = pd.Series(sim.returns, index=dates)
    r_b = pd.Series(r_b, index=dates)
    rebal = pd.DataFrame(rebal_rows)
    fills = rebal.pop("fill")
    rebal["turnover"] = fills.map(sim.turnover)
    rebal["cost"] = fills.map(sim.costs)
    summary = perf_stats(r_p, r_b, rebal["turnover"].iloc[1:])
    summary["n_rebalances"] = float(len(rebal))
    summary["relaxed_share"] = float((rebal["relaxed"] != "").mean())
    summary["held_share"] = float((rebal["status"] == "held").mean())
    daily = pd.DataFrame({"ret": r_p, "bench": r_b, "excess": r_p - r_b, "nav": np.cumprod(1 + r_p),
                          "bench_nav": np.cumprod(1 + r_b), "excess_nav": np.cumprod(1 + (r_p - r_b)),
                          "cash": sim.cash}, index=dates)
    labels = [*map(str, ind_names), "unknown"]
    active = pd.DataFrame(np.array(active_rows), index=rebal["date"], columns=labels)
    notes = {"index_code": index_code, "benchmark_weights": weight_source, "seconds": time.perf_counter() - t_start,
             "relaxations": rebal["relaxed"].value_counts().to_dict()}
    log.info("backtest %s: excess %.2f%% p.a., IR %.2f, TE %.2f%%, turnover %.2f, %d rebalances in %.0fs", universe,
             100 * summary["excess_ann"], summary["info_ratio"], 100 * summary["tracking_error"], summary["turnover"],
             len(rebal), notes["seconds"])
    rep = BacktestResult(universe, summary, daily, rebal, yearly_table(r_p, r_b), active, notes)
    if figures:
        from quantsam.backtest.figures import backtest_figures

        rep.figures = backtest_figures(rep)
    return rep
