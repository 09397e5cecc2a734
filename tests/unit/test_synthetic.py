"""Invariants of the embedded synthetic A-share market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantsam.data.contract import limit_pct, validate_daily
from quantsam.data.synthetic import INDEX_CODES, STAR_OPEN, generate_market


def test_passes_the_contract(small_market):
    rep = validate_daily(small_market.daily)
    assert rep.n_codes == 400
    assert sum(rep.missing_optional.values()) == 0


def test_determinism_per_seed():
    a = generate_market(seed=3, n_stocks=60, start="2019-01-01", end="2020-06-30")
    b = generate_market(seed=3, n_stocks=60, start="2019-01-01", end="2020-06-30")
    c = generate_market(seed=4, n_stocks=60, start="2019-01-01", end="2020-06-30")
    pd.testing.assert_frame_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.index_weights, b.index_weights)
    pd.testing.assert_frame_equal(a.alpha, b.alpha)
    assert not a.daily["close"].equals(c.daily["close"])


def test_price_limits_by_board_and_date(small_market):
    d = small_market.daily
    first_day = d.groupby("code", observed=True)["date"].transform("min") == d["date"]
    r = d["close"] / d["preclose"] - 1
    pct = limit_pct(d["board"].astype(str).to_numpy(), d["is_st"].to_numpy(), d["date"].to_numpy())
    tol = 0.0051 / d["preclose"]  # limit prices are rounded to the fen
    ok = (r.abs() <= pct + tol) | first_day  # IPO day has no limit
    assert ok.all(), d.loc[~ok, ["date", "code", "board", "close", "preclose"]].head()
    chinext = d["board"] == "chinext"
    before = d["date"] < "2020-08-24"
    assert (r[chinext & before & ~first_day].abs() <= 0.10 + tol[chinext & before & ~first_day]).all()
    assert (r[chinext & ~before].abs() > 0.11).any()  # 20% moves do happen after the switch
    st = d["is_st"] & (d["board"] == "main")
    assert st.any() and (r[st & ~first_day].abs() <= 0.05 + tol[st & ~first_day]).all()


def test_limit_days_some_one_price(small_market, small_panel):
    assert small_panel.limit_up_one.sum() > 20 and small_panel.limit_down_one.sum() > 20
    d = small_market.daily
    flat = (d.open == d.high) & (d.high == d.low) & (d.low == d.close)
    assert flat.sum() >= small_panel.limit_up_one.sum() + small_panel.limit_down_one.sum()


def test_vwap_is_amount_over_volume_inside_bar(small_market):
    d = small_market.daily
    assert np.allclose(d.vwap, d.amount / d.volume)
    assert ((d.vwap >= d.low - 1e-9) & (d.vwap <= d.high + 1e-9)).all()
    assert (d.volume % 100 == 0).all()


def test_adj_factor_links_preclose_to_previous_close(small_market):
    d = small_market.daily.sort_values(["code", "date"])
    g = d.groupby("code", observed=True)
    prev_close, prev_adj = g["close"].shift(), g["adj_factor"].shift()
    m = prev_close.notna()
    # adjusted total return from raw quotes: adj_t / adj_{t-1} == close_{t-1} / preclose_t
    assert np.allclose((d.adj_factor / prev_adj)[m], (prev_close / d.preclose)[m], rtol=1e-9)
    assert ((d.adj_factor / prev_adj)[m] > 1.001).sum() > 50  # ex-rights events happen


def test_suspensions_ipos_delistings_st(small_market):
    d, cal = small_market.daily, small_market.calendar
    pos = pd.Series(np.arange(len(cal)), index=cal)
    t = pos.reindex(d["date"]).to_numpy()
    span = pd.DataFrame({"code": d["code"].astype(str), "t": t}).groupby("code")["t"].agg(["min", "max", "count"])
    assert ((span["max"] - span["min"] + 1) > span["count"]).sum() > 20  # gaps inside a listing = suspensions
    assert (span["min"] > 0).sum() > 30  # IPOs after the start
    assert (span["max"] < len(cal) - 1).sum() > 3  # delistings (no survivorship)
    star_first = d[d.board == "star"].groupby("code", observed=True)["date"].min()
    assert len(star_first) > 0 and (star_first >= STAR_OPEN).all()
    assert d["is_st"].mean() > 0.005


def test_index_tiers(small_market):
    m = small_market
    w = m.index_weights
    sums = w.groupby(["date", "index_code"], observed=True)["weight"].sum()
    assert np.allclose(sums, 1.0)
    sizes = w.groupby(["date", "index_code"], observed=True).size().unstack()
    # 400 stocks: tiers scale with eligible names / 1800 of (300, 500, 1000); never more than that
    for code, full in zip(INDEX_CODES, (300, 500, 1000), strict=True):
        assert sizes[code].max() <= round(full * 400 / 1800) + 1
        assert sizes[code].min() > 0
    # tiers are disjoint on every date and members hold a row or a recent one (point-in-time)
    assert not w.duplicated(["date", "code"]).any()
    # larger caps in higher tiers: median weight-implied rank ordering
    mem = m.index_members
    assert set(mem.columns) == {"index_code", "code", "start_date", "end_date"}
    assert (mem.end_date >= mem.start_date).all()
    starts = mem.start_date.dt.month.isin([1, 6, 12]).mean()
    assert starts > 0.95  # reconstitutions in June / December (plus the initial build)


def test_full_tiers_with_many_stocks():
    m = generate_market(seed=1, n_stocks=2000, start="2023-01-01", end="2024-03-31")
    sizes = m.index_weights.groupby(["date", "index_code"], observed=True).size().unstack()
    # full on a reconstitution day (2023-12-11, after the 2nd Friday of December); a delisting member leaves early
    assert sizes.loc["2023-12-11"].to_dict() == {"000300.SH": 300, "000852.SH": 1000, "000905.SH": 500}
    floor = pd.Series({"000300.SH": 297, "000905.SH": 495, "000852.SH": 990})
    assert (sizes.loc["2023-12-11":] >= floor[sizes.columns.astype(str)].to_numpy()).all().all()


def test_planted_signal_is_learnable(small_market, small_panel):
    from quantsam.features.labels import forward_return

    fwd = forward_return(small_panel, horizon=10)
    a = small_market.alpha.reindex(index=small_panel.dates, columns=small_panel.codes).to_numpy()
    ics = []
    for t in range(100, len(fwd) - 15, 5):
        ok = np.isfinite(a[t]) & np.isfinite(fwd[t]) & (a[t] != 0)
        ics.append(pd.Series(a[t, ok]).corr(pd.Series(fwd[t, ok]), method="spearman"))
    assert 0.02 < np.mean(ics) < 0.25
    rng = np.random.default_rng(0)
    shuffled = [pd.Series(rng.permutation(a[t][np.isfinite(a[t])])).corr(
        pd.Series(fwd[t][np.isfinite(a[t])]), method="spearman") for t in range(100, len(fwd) - 15, 5)]
    assert abs(np.nanmean(shuffled)) < 0.02


@pytest.mark.parametrize("kw", [{"n_stocks": 5}, {"n_industries": 99}, {"start": "2020-01-01", "end": "2020-03-01"}])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        generate_market(**kw)
