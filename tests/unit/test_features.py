"""Panel, weekly bars, normalisation, labels and lazy windows — against pandas references and a look-ahead test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantsam.features.kline import KLINE_FIELDS, daily_kline, normalize_window, weekly_kline
from quantsam.features.labels import forward_return, make_label
from quantsam.features.panel import build_panel
from quantsam.features.windows import DailyWindows, WeeklyWindows


def test_panel_matches_pivot(small_market, small_panel):
    d = small_market.daily
    for f in ("close", "volume", "adj_factor"):
        ref = d.pivot(index="date", columns="code", values=f).reindex(index=small_panel.dates,
                                                                       columns=small_panel.codes)
        got = small_panel.field(f)
        assert np.array_equal(np.isnan(got), ref.isna().to_numpy())
        assert np.allclose(got[~np.isnan(got)], ref.to_numpy()[~np.isnan(got)], rtol=1e-6)
    assert small_panel.traded.sum() == len(d)
    assert small_panel.values.dtype == np.float32
    assert (small_panel.traded <= small_panel.listed).all()


def weekly_reference(d: pd.DataFrame) -> pd.DataFrame:
    """Weekly bars by plain pandas groupby over (code, ISO week) on adjusted fields."""
    x = d.assign(
        open=d.open * d.adj_factor, high=d.high * d.adj_factor, low=d.low * d.adj_factor,
        close=d.close * d.adj_factor, volume=d.volume / d.adj_factor,
        week=(d.date - pd.to_timedelta(d.date.dt.dayofweek, unit="D")).dt.normalize(),
    )
    x["amount"] = d.amount  # invariant to adjustment
    g = x.sort_values("date").groupby(["code", "week"], observed=True)
    out = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                volume=("volume", "sum"), amount=("amount", "sum"))
    out["vwap"] = out.amount / out.volume
    return out


def test_weekly_bars_match_pandas_groupby(small_market, small_panel):
    wk = weekly_kline(small_panel)
    bars = wk.bars
    assert bars.shape[0] == len(wk.week_end) < len(small_panel.dates) / 4
    ref = weekly_reference(small_market.daily)
    cal = small_panel.dates
    week_start = (cal[wk.week_end] - pd.to_timedelta(cal[wk.week_end].dayofweek, unit="D")).normalize()
    code_idx = {c: i for i, c in enumerate(small_panel.codes)}
    w_idx = {w: i for i, w in enumerate(week_start)}
    rows = [(w_idx[w], code_idx[c]) for c, w in ref.index]
    wi, ci = map(np.array, zip(*rows, strict=True))
    for k, f in enumerate(KLINE_FIELDS):
        assert np.allclose(bars[wi, ci, k], ref[f].to_numpy(), rtol=2e-6), f
    # no bar where the stock never traded that week
    has = np.zeros(bars.shape[:2], bool)
    has[wi, ci] = True
    assert np.isnan(bars[~has][:, 3]).all()
    # the bar is dated on the week's last trading day
    assert (pd.Series(cal[wk.week_end]).groupby(week_start).size() == 1).all()


def test_normalize_window_float64_reference():
    rng = np.random.default_rng(0)
    win = rng.lognormal(size=(50, 5, 3)).astype(np.float32)
    win[3, 1, 0] = np.nan  # a suspended day inside the window
    win[7, -1, 2] = np.nan  # missing last value: the whole field of that name becomes 0
    z = normalize_window(win)
    x = win.astype(np.float64) / win[:, -1:, :].astype(np.float64)
    for step in range(5):
        for f in range(3):
            col = x[:, step, f]
            ok = np.isfinite(col)
            mu, sd = col[ok].mean(), col[ok].std()
            expect = np.where(ok, (col - mu) / sd if sd > 0 else 0.0, 0.0)
            assert np.allclose(z[:, step, f], expect, atol=1e-5), (step, f)
    assert (z[7, :, 2] == 0).all() and z[3, 1, 0] == 0
    assert (z[:, -1, :] == 0).all()  # last step is 1 for everyone -> z-score 0


def test_forward_return_and_label_reference(small_market, small_panel):
    d = small_market.daily
    adj = (d.close * d.adj_factor).to_frame("p").assign(date=d.date, code=d.code.astype(str))
    wide = adj.pivot(index="date", columns="code", values="p").reindex(index=small_panel.dates,
                                                                        columns=small_panel.codes)
    ref = wide.shift(-11) / wide.shift(-1) - 1
    got = forward_return(small_panel, horizon=10)
    assert np.array_equal(np.isnan(got), ref.isna().to_numpy())
    assert np.allclose(got[np.isfinite(got)], ref.to_numpy()[np.isfinite(got)], rtol=1e-5, atol=2e-6)  # float32 panel
    lab = make_label(small_panel)
    ok = np.isfinite(lab[100])
    assert abs(lab[100, ok].mean()) < 1e-5 and abs(lab[100, ok].std(ddof=1) - 1) < 1e-4
    assert np.isnan(lab[-11:]).all()


def test_windows_are_views_and_shapes(small_panel):
    dw = DailyWindows(small_panel, 30)
    assert np.shares_memory(dw.view(100), small_panel.values)  # a view into the panel, no copy
    names = np.nonzero(small_panel.traded[100])[0]
    raw = dw.raw(100, names)
    assert raw.shape == (len(names), 30, 6)
    assert np.allclose(raw, daily_kline(small_panel)[71:101][:, names].transpose(1, 0, 2), equal_nan=True)
    assert dw.batch(100, names).shape == (len(names), 30, 6)
    ww = WeeklyWindows(small_panel, 30)
    t = ww.first_valid() + 3
    assert ww.batch(t, names).shape == (len(names), 30, 6)
    with pytest.raises(IndexError):
        dw.view(5)
    with pytest.raises(IndexError):
        ww.raw(ww.first_valid() - 1, names)


def test_week_to_date_bar(small_market, small_panel):
    ww = WeeklyWindows(small_panel, 30)
    wk = ww.weekly
    names = np.arange(len(small_panel.codes))
    w = 60
    s, e = wk.week_start[w], wk.week_end[w]
    assert np.allclose(ww.week_to_date(int(e), names), wk.bars[w], equal_nan=True, rtol=1e-6)
    if e > s:  # a partial week: aggregate of its first days only, by pandas on the long frame
        t = int(s) + 1
        d = small_market.daily
        part = d[(d.date >= small_panel.dates[s]) & (d.date <= small_panel.dates[t])]
        ref = weekly_reference(part).droplevel("week").reindex(small_panel.codes)
        got = ww.week_to_date(t, names)
        for k, f in enumerate(KLINE_FIELDS):
            assert np.allclose(got[:, k], ref[f].to_numpy(), rtol=2e-6, equal_nan=True), f


def test_features_have_no_look_ahead(small_market):
    """Change every value after date t: the daily and weekly inputs of date t must not change."""
    d = small_market.daily
    t_date = small_market.calendar[400]
    p1 = build_panel(d)
    rng = np.random.default_rng(1)
    d2 = d.copy()
    future = d2["date"] > t_date
    scale = rng.uniform(0.5, 1.5, future.sum())
    for c in ("open", "high", "low", "close", "vwap", "preclose"):
        d2.loc[future, c] = d2.loc[future, c] * scale
    d2.loc[future, "volume"] *= rng.uniform(0.1, 3, future.sum())
    d2.loc[future, "adj_factor"] *= 1.7
    d2 = d2[~(future & (rng.random(len(d2)) < 0.2))]  # and suspend some names in the future
    p2 = build_panel(d2, dates=p1.dates)
    t = int(np.searchsorted(p1.dates, t_date))
    names = np.nonzero(p1.traded[t])[0]
    assert np.array_equal(DailyWindows(p1, 30).batch(t, names), DailyWindows(p2, 30).batch(t, names))
    w1, w2 = WeeklyWindows(p1, 30), WeeklyWindows(p2, 30)
    assert np.array_equal(w1.batch(t, names), w2.batch(t, names))
    # sanity: the future did change
    assert not np.array_equal(DailyWindows(p1, 30).batch(t + 20, names), DailyWindows(p2, 30).batch(t + 20, names))
    assert not np.array_equal(w1.batch(t + 20, names), w2.batch(t + 20, names))


def test_normalize_window_robust_float64_reference():
    """``method="robust"`` against pandas' median (float64): (x - median) / (1.4826 MAD), clipped at +-3."""
    rng = np.random.default_rng(1)
    win = rng.lognormal(size=(61, 4, 3)).astype(np.float32)
    win[5, 0, 1] = 1e6  # an extreme value: clipped, and it moves neither the median nor the MAD much
    win[9, 2, 0] = np.nan
    win[11, -1, 2] = np.nan
    z = normalize_window(win, "robust")
    x = pd.DataFrame((win.astype(np.float64) / win[:, -1:, :].astype(np.float64)).reshape(61, -1))
    med = x.median()
    mad = (x - med).abs().median() * 1.4826
    expect = ((x - med) / mad).clip(-3, 3).fillna(0.0).replace([np.inf, -np.inf], 0.0).to_numpy().reshape(61, 4, 3).copy()
    expect[:, -1, :] = 0.0  # the last step is 1 for everyone: MAD 0 -> 0
    assert np.allclose(z, expect, atol=1e-5)
    assert z.max() <= 3 and z.min() >= -3 and z[5, 0, 1] == 3.0 and z[9, 2, 0] == 0 and (z[11, :, 2] == 0).all()


def test_normalize_window_rejects_unknown_method():
    with pytest.raises(ValueError, match="zscore"):
        normalize_window(np.ones((3, 2, 1), np.float32), "minmax")


def test_nanmedian_names_equals_numpy_bit_for_bit():
    import warnings

    from quantsam.features.kline import nanmedian_names

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 40, 801):
        x = rng.lognormal(size=(n, 5, 3)).astype(np.float32)
        x[rng.random(x.shape) < 0.3] = np.nan
        x[:, 0, 0] = np.nan  # a column with no finite value
        if n > 1:
            x[: n // 2, 1, 1] = np.nan  # even and odd finite counts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmedian(x, axis=0, keepdims=True)
        got = nanmedian_names(x)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_feature_cache_evicts_least_recently_used(small_panel):
    from quantsam.features.dataset import FeatureSet

    fs = FeatureSet(small_panel, frequencies=("daily",), cache_mb=0.0)
    t0 = next(t for t in range(fs.first_usable, len(small_panel.dates))
              if all(len(fs.names(t + k)) > 0 for k in range(4)))
    size = {t: fs.inputs("daily", t)[0].nbytes for t in range(t0, t0 + 4)}
    assert not fs._cache
    fs._cache_limit = size[t0] + size[t0 + 2] + size[t0 + 3]  # room for the three dates that must stay
    for t in (t0, t0 + 1, t0 + 2):
        fs.inputs("daily", t)
    fs.inputs("daily", t0)  # used again: now the most recent
    fs.inputs("daily", t0 + 3)  # evicts t0 + 1, the least recently used
    assert list(fs._cache) == [("daily", t0 + 2), ("daily", t0), ("daily", t0 + 3)]
    assert fs._cache_bytes == sum(x.nbytes for x, _ in fs._cache.values()) <= fs._cache_limit
