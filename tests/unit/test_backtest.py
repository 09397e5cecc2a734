"""Backtest engine by hand, trading rules, metrics, and the index-enhanced runner on the synthetic market."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from quantsam.backtest import MarketArrays, run_index_enhanced, simulate
from quantsam.backtest.engine import benchmark_returns, enforce_rules
from quantsam.backtest.metrics import perf_stats, yearly_table
from quantsam.config.schema import BacktestConfig, PortfolioConfig
from quantsam.crosssection import max_drawdown

NAN = np.nan


def three_stocks():
    # days 0..3; C is suspended on day 2 (no row)
    close = np.array([[10.0, 20.0, 5.0], [11.0, 20.0, 5.0], [12.0, 18.0, NAN], [12.0, 19.0, 6.0]])
    vwap = np.array([[10.0, 20.0, 5.0], [10.5, 19.8, 5.1], [11.5, 19.0, NAN], [12.0, 19.0, 5.5]])
    traded = np.isfinite(close)
    no = np.zeros_like(traded)
    return MarketArrays(close=close, vwap=vwap, traded=traded, limit_up=no, limit_down=no)


def test_hand_computed_three_stock_backtest():
    m = three_stocks()
    targets = {1: np.array([0.4, 0.4, 0.2]), 2: np.array([0.2, 0.2, 0.6])}
    seen = {}

    def decide(f, w_pre):
        seen[f] = w_pre
        return targets[f]

    sim = simulate(m, [1, 2], decide, cost_per_side=0.002)
    # day 0: all cash
    assert sim.nav[0] == 1.0
    # day 1: buy 0.4/0.4/0.2 at VWAP (turnover 1.0, cost 0.002), then VWAP -> close
    g2 = 0.4 * 11 / 10.5 + 0.4 * 20 / 19.8 + 0.2 * 5 / 5.1
    v1 = 0.998 * g2
    w1 = np.array([0.4 * 11 / 10.5, 0.4 * 20 / 19.8, 0.2 * 5 / 5.1]) / g2
    assert sim.nav[1] == pytest.approx(v1, rel=1e-12)
    assert sim.turnover[1] == pytest.approx(1.0)
    # day 2: close(1) -> VWAP(2) for A, B; C suspended (flat). Then rebalance; C cannot trade: stays at its weight,
    # A and B share the rest 1:1 (the target's proportions)
    g1 = w1[0] * 11.5 / 11 + w1[1] * 19.0 / 20 + w1[2]
    pre = np.array([w1[0] * 11.5 / 11, w1[1] * 19.0 / 20, w1[2]]) / g1
    assert np.allclose(seen[2], pre)
    tgt = np.array([(1 - pre[2]) / 2, (1 - pre[2]) / 2, pre[2]])
    cost = 0.002 * np.abs(tgt - pre).sum()
    g2b = tgt[0] * 12 / 11.5 + tgt[1] * 18 / 19.0 + tgt[2]
    v2 = v1 * g1 * (1 - cost) * g2b
    assert sim.nav[2] == pytest.approx(v2, rel=1e-12)
    w2 = np.array([tgt[0] * 12 / 11.5, tgt[1] * 18 / 19.0, tgt[2]]) / g2b
    # day 3: drift close to close; C resumes from its last close 5 to 6
    v3 = v2 * (w2[0] * 12 / 12 + w2[1] * 19 / 18 + w2[2] * 6 / 5)
    assert sim.nav[3] == pytest.approx(v3, rel=1e-12)
    assert sim.returns[3] == pytest.approx(v3 / v2 - 1, rel=1e-10)


def test_enforce_rules():
    cur = np.array([0.3, 0.3, 0.2, 0.2, 0.0])
    tgt = np.array([0.5, 0.1, 0.0, 0.4, 0.0])
    traded = np.array([True, True, False, True, True])
    lu = np.array([True, False, False, False, False])  # A: no buy
    ld = np.array([False, True, False, False, False])  # B: no sell
    out = enforce_rules(tgt, cur, traded, lu, ld)
    assert out[0] == 0.3 and out[1] == 0.3 and out[2] == 0.2  # A capped, B floored, C (suspended) kept
    assert out[3] == pytest.approx(0.2) and out.sum() == pytest.approx(1.0)  # D takes what is left


def test_lots_hold_whole_lots_and_cash():
    m = three_stocks()
    m.raw_vwap = m.vwap.copy()
    sim = simulate(m, [1], lambda f, w: np.array([0.5, 0.3, 0.2]), cost_per_side=0.0, lot_size=100, capital=10_000)
    # 10,000 CNY: A 5,000 / (10.5 x 100) -> 4 lots, B 3,000 / 1,980 -> 1 lot, C 2,000 / 510 -> 3 lots
    spent = 4 * 1050 + 1 * 1980 + 3 * 510
    assert sim.cash[1] > 0
    hold = np.array([400 * 11, 100 * 20, 300 * 5])
    assert sim.nav[1] == pytest.approx((hold.sum() + 10_000 - spent) / 10_000, rel=1e-12)


def test_benchmark_returns_use_previous_close_weights():
    close = np.array([[10.0, 20.0], [11.0, 20.0], [11.0, 22.0]])
    w = np.array([[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]])
    r = benchmark_returns(w, close)
    assert r[0] == 0 and r[1] == pytest.approx(0.5 * 0.1) and r[2] == pytest.approx(0.75 * 0.1)


def test_metrics_by_hand():
    idx = pd.bdate_range("2023-12-27", periods=6)
    rp = pd.Series([0.01, -0.02, 0.03, 0.0, 0.01, -0.01], idx)
    rb = pd.Series([0.0, -0.01, 0.01, 0.01, 0.0, 0.0], idx)
    s = perf_stats(rp, rb, pd.Series([0.3, 0.2]))
    e = (rp - rb).to_numpy()
    assert s["excess_ann"] == pytest.approx(np.prod(1 + e) ** (252 / 6) - 1)
    assert s["tracking_error"] == pytest.approx(np.std(e, ddof=1) * np.sqrt(252))
    assert s["info_ratio"] == pytest.approx(e.mean() * 252 / (np.std(e, ddof=1) * np.sqrt(252)))
    nav = np.cumprod(1 + e)
    assert s["excess_max_drawdown"] == pytest.approx((nav / np.maximum.accumulate(nav) - 1).min())
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(-0.5)
    assert s["turnover"] == pytest.approx(0.25)
    # months: Dec 2023 (3 days: +0.01, -0.01, +0.02) and Jan 2024 (-0.01, +0.01, -0.01)
    assert s["monthly_win_rate"] == pytest.approx(0.5)
    y = yearly_table(rp, rb)
    assert list(y.index) == [2023, 2024] and y.loc[2024, "days"] == 3


PC = PortfolioConfig(max_active=0.02, industry_tol=0.03, size_tol=0.3, n_extra_candidates=30, fallback_solver="SCIPY")
BC = BacktestConfig(start="2020-06-01", end="2021-06-30")


@pytest.fixture(scope="module")
def signal(small_market):
    rng = np.random.default_rng(0)
    a = small_market.alpha
    return (a / a.std(axis=1).to_numpy()[:, None] + rng.normal(size=a.shape)).where(a.notna())


def test_runner_on_synthetic_market(small_market, small_panel, signal, tmp_path):
    rep = run_index_enhanced(signal, small_market, small_panel, "000905.SH", "csi500", PC, BC)
    r = rep.rebalances
    assert (r["index_weight"] >= 0.8 - 1e-6).all()
    assert (r.loc[r.index[1:], "turnover"] <= 0.3 + 1e-5).all() or (r["relaxed"] != "").any()
    assert rep.summary["tracking_error"] < 0.15 and np.isfinite(rep.summary["info_ratio"])
    assert rep.daily.index[0] > pd.Timestamp("2020-06-01") and rep.yearly.index.tolist() == [2020, 2021]
    files = {p.name for p in rep.save(tmp_path)}
    assert {"daily.parquet", "yearly.parquet", "rebalances.parquet", "nav.png", "excess.png", "turnover.png",
            "active_industry.png", "summary.json"} <= files
    assert "bt/csi500/excess_ann" in rep.metrics()


def test_fill_decision_ignores_flags_after_the_fill_day(small_market, small_panel, signal):
    bc = BacktestConfig(**{**BC.__dict__, "end": "2020-07-15"})
    a = run_index_enhanced(signal, small_market, small_panel, "000905.SH", "csi500", PC, bc, figures=False)
    fill = a.rebalances["fill_date"].iloc[0]
    f = int(np.searchsorted(small_panel.dates, fill))
    p2 = copy.copy(small_panel)
    p2.limit_up_one = small_panel.limit_up_one.copy()
    p2.limit_down_one = small_panel.limit_down_one.copy()
    p2.limit_up_one[f + 1] = True  # T+2 (the day after the fill): everything one-price limit-up
    b = run_index_enhanced(signal, small_market, p2, "000905.SH", "csi500", PC, bc, figures=False)
    assert b.rebalances["objective"].iloc[0] == a.rebalances["objective"].iloc[0]
    assert b.daily["ret"].iloc[0] == a.daily["ret"].iloc[0]
    p2.limit_up_one[f] = True  # the fill day itself: nothing can be bought -> a different first fill
    c = run_index_enhanced(signal, small_market, p2, "000905.SH", "csi500", PC, bc, figures=False)
    assert c.daily["cash"].iloc[0] > 0.99


def test_te_bias_statistic_is_one_for_a_right_forecast_and_flags_under_forecasts():
    """Barra's bias statistic: std of (period active return / its forecast); a model whose forecast equals the true
    TE gives ~1 (inside 1 +- 2 sqrt(1/2K)), one that forecasts half the true TE gives ~2."""
    from quantsam.backtest.runner import te_bias

    rng = np.random.default_rng(7)
    days = pd.bdate_range("2020-01-01", periods=5 * 400)
    true_te = 0.05
    excess = pd.Series(rng.normal(0, true_te / np.sqrt(252), len(days)), index=days)
    fills = pd.Series(days[::5])
    right = te_bias(excess, fills, pd.Series(np.full(400, true_te)))
    half = te_bias(excess, fills, pd.Series(np.full(400, true_te / 2)))
    assert right["te_bias_periods"] == 400 and abs(right["te_bias"] - 1) < right["te_bias_band"]
    assert abs(half["te_bias"] - 2 * right["te_bias"]) < 1e-12
    assert abs(right["te_realised_over_forecast"] - 1) < 0.05
    # hand-derived: two periods of 5 days, +0.1% a day then -0.2% a day, forecasts 4% and 8%
    d = pd.bdate_range("2021-01-04", periods=10)
    e = pd.Series([0.001] * 5 + [-0.002] * 5, index=d)
    got = te_bias(e, pd.Series(d[[0, 5]]), pd.Series([0.04, 0.08]))
    z = [0.005 / (0.04 * np.sqrt(5 / 252)), -0.010 / (0.08 * np.sqrt(5 / 252))]
    assert np.allclose(got["z"], z) and np.isclose(got["te_bias"], np.std(z, ddof=1))


def test_a_single_date_signal_is_an_error(small_market, small_panel, signal):
    from quantsam.errors import DataError

    day = signal.index[signal.index >= pd.Timestamp("2020-09-01")][0]
    one = signal.where(pd.Series(signal.index == day, index=signal.index), axis=0)
    with pytest.raises(DataError, match="1 rebalance date.*at least 2"):
        run_index_enhanced(one, small_market, small_panel, "000905.SH", "csi500", PC, BC, figures=False)


@pytest.mark.parametrize("rule", ["top_n", "topk_dropout"])
def test_rule_baselines_through_the_runner(small_market, small_panel, signal, rule):
    """The rule policies plug into the same simulator and tables; gross-of-cost numbers are the net ones plus the
    costs the simulator charged."""
    pc = PortfolioConfig(rule=rule, top_n=20, n_drop=2)
    rep = run_index_enhanced(signal, small_market, small_panel, "000905.SH", "csi500", pc, BC, figures=False)
    s, r = rep.summary, rep.rebalances
    assert (r["n_held"] == 20).all() and (r["status"] == "rule").all()
    assert s["cost_ann"] > 0 and s["excess_ann_gross"] > s["excess_ann"]
    assert np.isfinite(s["transfer_coefficient"]) and s["transfer_coefficient"] > 0
    if rule == "topk_dropout":  # n_drop of top_n swapped: ~2 x 2 / 20 two-sided, more when names leave the index
        assert r["turnover"].iloc[1:].median() < 0.3
        assert r["turnover"].iloc[1:].mean() < rep_top_n_turnover(small_market, small_panel, signal)


def rep_top_n_turnover(small_market, small_panel, signal) -> float:
    pc = PortfolioConfig(rule="top_n", top_n=20)
    rep = run_index_enhanced(signal, small_market, small_panel, "000905.SH", "csi500", pc, BC, figures=False)
    return float(rep.rebalances["turnover"].iloc[1:].mean())


def test_cost_aware_optimiser_trades_less_than_the_score_lp(small_market, small_panel, signal):
    """portfolio.objective=alpha with costs in the objective: the same bounds and TE target as the score LP, far less
    turnover (a trade must pay for itself), an IC forecast from past periods only, and no worse net of costs here."""
    bc = BacktestConfig(**{**BC.__dict__, "start": "2020-06-01", "end": "2021-06-30"})
    base = dict(te_target=0.06, max_turnover=0.6, style_bounds={"size": 0.3})
    out = {}
    arms = {"score": {}, "alpha": {"objective": "alpha", "cost_aversion": 1.0},
            "alpha_x10": {"objective": "alpha", "cost_aversion": 10.0}}
    for name, extra in arms.items():
        pc = PortfolioConfig(**{**base, **extra})
        risk = risk_for(small_panel, small_market, bc, pc)
        out[name] = run_index_enhanced(signal, small_market, small_panel, "000905.SH", "csi500", pc, bc,
                                       figures=False, risk=risk)
    turn = {k: v.rebalances["turnover"].iloc[1:].mean() for k, v in out.items()}
    assert turn["score"] == pytest.approx(0.6, abs=1e-3)  # the score LP spends its cap every week
    assert turn["alpha_x10"] < 0.5 * turn["alpha"] < 0.5 * turn["score"]  # the cost decides how much is traded
    a, s = out["alpha"], out["score"]
    ic = a.rebalances["ic_forecast"]
    assert ic.iloc[0] == pytest.approx(0.03) and ic.iloc[5:].std() > 0  # the prior first, then the record
    assert a.summary["cost_ann"] < s.summary["cost_ann"]
    # the TE forecast is of the active return against the weights it tracks; against a published index that the
    # reconstruction misses (here: its total return plus noise), the realised TE holds risk no weight model sees
    import copy

    from quantsam.backtest.runner import te_bias

    d, r = a.daily, a.rebalances
    assert a.summary["te_bias"] == te_bias(d["ret"] - d["bench_tracked"], r["fill_date"], r["ex_ante_te"])["te_bias"]
    assert a.summary["te_bias_vs_benchmark"] == pytest.approx(a.summary["te_bias"])  # total return: the same
    noise = np.random.default_rng(3).normal(0, 0.003, len(d))
    level = pd.Series(np.cumprod(1 + d["bench_tracked"].to_numpy() + noise), index=d.index)
    level = level.reindex(small_panel.dates).bfill().ffill()
    idx = pd.DataFrame({"date": level.index, "index_code": "000905.SH", "close": level.to_numpy()})
    published = copy.copy(small_market)
    published.index_daily = idx  # the tables the real data has and the synthetic market lacks
    pub = run_index_enhanced(signal, published, small_panel, "000905.SH", "csi500",
                             PortfolioConfig(**{**base, **arms["alpha"]}),
                             BacktestConfig(**{**bc.__dict__, "benchmark": "price_index"}), figures=False,
                             risk=risk)
    assert pub.summary["te_bias"] == pytest.approx(a.summary["te_bias"], rel=1e-9)
    assert pub.summary["te_bias_vs_benchmark"] > 1.2 * pub.summary["te_bias"]
    # the forecast's industry + style part and the rest add up in variance; each has its bias against the attribution
    np.testing.assert_allclose(r["ex_ante_te_factor"] ** 2 + r["ex_ante_te_rest"] ** 2, r["ex_ante_te"] ** 2,
                               rtol=1e-9)
    attr = a.extra_tables["attribution"]
    factor_part = attr.drop(columns=["costs", "specific", "excess"]).sum(axis=1)
    assert a.summary["te_bias_factor"] == te_bias(factor_part, r["fill_date"], r["ex_ante_te_factor"])["te_bias"]
    assert 0.3 < a.summary["te_bias_factor"] < 3 and 0.3 < a.summary["te_bias_rest"] < 3



def test_cash_dividends_splits_and_the_price_plus_dividends_benchmark():
    """Hand-derived: A pays a 0.5 cash dividend on day 2 (preclose 10 -> 9.5), B has a 10-for-10 bonus on day 2
    (preclose 20 -> 10: a split the price index adjusts for, not a dividend); the add-on is A's yield at A's weight."""
    from quantsam.backtest.runner import cash_dividend_yield, dividend_addon, reconstruction_gap

    close = np.array([[10.0, 20.0], [10.0, 20.0], [9.6, 10.2], [9.7, 10.1]])
    preclose = np.array([[10.0, 20.0], [10.0, 20.0], [9.5, 10.0], [9.6, 10.2]])
    y = cash_dividend_yield(close, preclose)
    np.testing.assert_allclose(y, [[0, 0], [0, 0], [10.0 / 9.5 - 1, 0], [0, 0]])
    w = np.array([[0.25, 0.75]] * 4)
    add = dividend_addon(w, y, 1, 4)  # rows 1..3
    np.testing.assert_allclose(add, [0.0, 0.25 * (10.0 / 9.5 - 1), 0.0])
    r_tr = np.array([0.01, 0.02, -0.01])
    r_price = np.array([0.01, 0.02 - add[1], np.nan])
    g = reconstruction_gap(r_tr, add, r_price)
    assert g["bench_recon_gap_ann"] == pytest.approx(0.0, abs=1e-12) and g["bench_recon_te"] == pytest.approx(0.0)
    assert g["bench_dividend_yield_ann"] == pytest.approx(add.mean() * 252)


def risk_for(panel, market, bc, pc):
    from quantsam.backtest.runner import industry_codes, risk_window
    from quantsam.features.dataset import eligible_mask
    from quantsam.features.styles import style_exposures
    from quantsam.portfolio.risk import build_risk_inputs

    codes, labels = industry_codes(market.industry, panel)
    styles = style_exposures(panel, eligible_mask(panel, 63, True))
    r0, r1 = risk_window(panel, bc, pc)
    adj = panel.field("adj_factor").astype(np.float64)
    return build_risk_inputs(panel.field("close") * adj, styles, codes, len(labels), labels, r0, r1, 90.0)
