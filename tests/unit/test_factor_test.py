"""Factor tests: wide-frame API vs scipy / pandas qcut, preprocessing, the whole stage, look-ahead and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quantsam.config.schema import FactorTestConfig
from quantsam.errors import DataError
from quantsam.factor_test import analyze, ic, quantile_returns, rank_ic
from quantsam.factor_test.analysis import universe_mask
from quantsam.factor_test.preprocess import mad_winsorize, neutralize
from quantsam.factor_test.quantiles import assign_layers


@pytest.fixture
def wide():
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2020-01-01", periods=30)
    codes = [f"{i:06d}.SZ" for i in range(80)]
    f = rng.normal(size=(30, 80))
    r = 0.2 * f + rng.normal(size=(30, 80))
    f[rng.random(f.shape) < 0.15] = np.nan
    r[rng.random(r.shape) < 0.1] = np.nan
    f[:, :12] = np.round(f[:, :12] * 2) / 2  # ties
    r[4] = np.round(r[4])
    f[9, 5:] = np.nan  # a date with fewer names than layers
    return pd.DataFrame(f, dates, codes), pd.DataFrame(r, dates, codes)


def test_rank_ic_and_ic_match_scipy(wide):
    f, r = wide
    got_r, got_p = rank_ic(f, r), ic(f, r)
    for d in f.index:
        ok = f.loc[d].notna() & r.loc[d].notna()
        if ok.sum() < 3:
            assert np.isnan(got_r[d])
            continue
        assert got_r[d] == pytest.approx(stats.spearmanr(f.loc[d, ok], r.loc[d, ok]).statistic, abs=1e-12)
        assert got_p[d] == pytest.approx(stats.pearsonr(f.loc[d, ok], r.loc[d, ok]).statistic, abs=1e-12)


def qcut_reference(f: pd.DataFrame, r: pd.DataFrame, n: int) -> pd.DataFrame:
    rows = {}
    for d in f.index:
        ok = f.loc[d].notna() & r.loc[d].notna()
        if ok.sum() < n:
            continue
        layer = pd.qcut(f.loc[d, ok], n, labels=False) + 1
        rows[d] = r.loc[d, ok].groupby(layer).mean()
    return pd.DataFrame(rows).T


def test_quantile_returns_match_pandas_qcut(wide):
    f, r = wide
    got = quantile_returns(f, r, n_quantiles=10)
    ref = qcut_reference(f, r, 10)
    assert got.attrs["skipped_dates"] == 1 and got.loc[f.index[9]].isna().all()
    np.testing.assert_allclose(got.loc[ref.index].to_numpy(), ref.reindex(columns=range(1, 11)).to_numpy(),
                               atol=1e-12)
    assert list(got.columns) == list(range(1, 11))


def test_layers_equal_qcut_with_heavy_ties():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(20, 300)), 1)  # many ties, unique edges
    layer, skipped = assign_layers(x, 5)
    assert not skipped.any()
    for t in range(20):
        assert np.array_equal(layer[t], pd.qcut(x[t], 5, labels=False) + 1)


def test_misaligned_or_bad_inputs_raise(wide):
    f, r = wide
    with pytest.raises(DataError, match="misaligned"):
        rank_ic(f, r.iloc[1:])
    with pytest.raises(DataError, match="non-numeric"):
        ic(f.astype(str), r)
    dup = pd.concat([f, f.iloc[:1]])
    with pytest.raises(DataError, match="duplicate"):
        quantile_returns(dup, pd.concat([r, r.iloc[:1]]))


def test_mad_winsorize_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 100.0, np.nan]])
    # median 3, |x - 3| = 2 1 0 1 97 -> MAD 1; k = 5 clips to [-2, 8]
    assert np.allclose(mad_winsorize(x, 5.0), [[1, 2, 3, 4, 8, np.nan]], equal_nan=True)


def test_neutralized_factor_is_orthogonal_to_regressors():
    rng = np.random.default_rng(0)
    T, N, K = 6, 120, 7
    ind = rng.integers(0, K, N)
    ind[:3] = -1  # no label: its own group
    size = rng.normal(size=(T, N))
    y = rng.normal(size=(T, N)) + 0.5 * size + ind[None, :] * 0.3
    y[rng.random((T, N)) < 0.1] = np.nan
    size[0, 10] = np.nan
    res = neutralize(y, ind, size)
    for t in range(T):
        ok = np.isfinite(y[t]) & np.isfinite(size[t])
        groups = np.where(ind < 0, K, ind)[ok]
        X = np.column_stack([(groups == g).astype(float) for g in np.unique(groups)] + [size[t, ok]])
        assert np.allclose(X.T @ res[t, ok], 0, atol=1e-9)
        beta, *_ = np.linalg.lstsq(X, y[t, ok], rcond=None)  # independent least squares: same residual
        assert np.allclose(res[t, ok], y[t, ok] - X @ beta, atol=1e-9)
        assert np.isnan(res[t, ~ok]).all()


CFG = FactorTestConfig(ic_decay_horizons=[1, 5, 10], start="2019-01-01", end=None)


def test_planted_signal_has_positive_rank_ic_and_shuffled_has_none(small_market, small_panel):
    rep = analyze(small_market.alpha, small_panel, small_market.industry, CFG, figures=False)
    assert rep.summary["rank_ic_mean"] > 0.03 and rep.summary["top_excess_ann"] > 0
    assert rep.summary["monotonicity"] > 0.7
    rng = np.random.default_rng(0)
    a = small_market.alpha
    shuffled = pd.DataFrame(rng.permuted(a.to_numpy(), axis=1), a.index, a.columns)
    rep0 = analyze(shuffled, small_panel, small_market.industry, CFG, figures=False)
    assert abs(rep0.summary["rank_ic_mean"]) < 0.015
    assert abs(rep0.summary["rank_ic_t"]) < 3


def test_report_tables_figures_and_counted_drops(small_market, small_panel, tmp_path):
    rep = analyze(small_market.alpha, small_panel, small_market.industry, CFG)
    assert list(rep.table.index) == ["RankIC mean", "RankIC std", "ICIR", "IC>0", "IC (Pearson) mean",
                                     "score kurtosis (median)", "TOP excess", "TOP IR", "TOP win", "TOP turnover"]
    # the calibrated alpha: the expected give-back of news jumps sits on the few names that jumped -> heavy tails
    assert rep.summary["score_kurtosis_median"] > 3
    assert rep.drops["names_st"] > 0 and rep.drops["names_suspended_next_day"] > 0
    assert rep.drops["names_tested"] == int(rep.ic["n_names"].sum())
    assert set(rep.ic_decay.index) == {1, 5, 10}
    files = {p.name for p in rep.save(tmp_path)}
    assert {"ic.parquet", "layers.parquet", "factor_table.parquet", "summary.json", "ic.png", "layer_nav.png",
            "layer_annual.png", "top_excess.png"} <= files
    assert set(rep.metrics()) >= {"factor/rank_ic_mean", "factor/top_excess_ann", "factor/top_ir"}


def test_universe_uses_next_day_tradability_but_nothing_later(small_panel):
    import copy

    p = copy.copy(small_panel)
    rows = np.array([300])
    base, _ = universe_mask(p, rows)
    p.traded = small_panel.traded.copy()
    p.limit_up_one = small_panel.limit_up_one.copy()
    p.traded[302] = ~p.traded[302]  # t+2 changes: nothing may move
    p.limit_up_one[302] = True
    same, _ = universe_mask(p, rows)
    assert np.array_equal(base, same)
    p.limit_up_one[301] = True  # t+1 one-price limit-up: excluded
    changed, _ = universe_mask(p, rows)
    assert not changed.any()


def test_signal_with_unknown_codes_is_an_error(small_market, small_panel):
    sig = pd.DataFrame({"date": [small_panel.dates[400]], "code": ["999999.SH"], "score": [1.0]})
    with pytest.raises(DataError, match="codes not in the market"):
        analyze(sig, small_panel, small_market.industry, CFG)


def _qcut_or_none(row: np.ndarray, n: int) -> np.ndarray | None:
    """``pandas.qcut(row, n, labels=False) + 1`` (0 = NaN), or None where qcut refuses (duplicate edges)."""
    try:
        out = pd.qcut(row, n, labels=False)
    except ValueError:
        return None
    return np.where(np.isnan(out), 0, out + 1).astype(int)


@pytest.mark.parametrize("seed", range(6))
def test_layers_equal_pandas_qcut_on_random_panels(seed):
    """Property test: random cross-sections with ties, NaNs, tiny sizes, values placed exactly on edges and sizes
    where ``(m - 1) k / q`` is an integer — every row with unique qcut edges gets qcut's layers, value for value."""
    rng = np.random.default_rng(seed)
    rows, checked = [], 0
    for _ in range(300):
        n = int(rng.choice([2, 3, 4, 5, 7, 10, 20]))
        m = int(rng.choice([n, n + 1, 2 * n + 1, 10 * n + 1, int(rng.integers(n, 400)), 1431]))
        kind = rng.integers(0, 4)
        if kind == 0:
            x = rng.normal(size=m)
        elif kind == 1:
            x = np.round(rng.normal(size=m), 1)  # ties
        elif kind == 2:
            x = rng.normal(size=m) * 10.0 ** rng.integers(-8, 8)  # scales where rounding shows
        else:  # values exactly on numpy's own quantile edges
            x = rng.normal(size=m)
            x[rng.integers(0, m, n)] = np.quantile(x, np.linspace(0, 1, n + 1))[rng.integers(1, n, n)]
        x[rng.random(m) < 0.05] = np.nan
        rows.append((n, x))
    for n, x in rows:
        ref = _qcut_or_none(x, n)
        layer, skipped = assign_layers(x[None, :], n)
        if skipped[0]:
            assert np.isfinite(x).sum() < n and (layer == 0).all()
            continue
        if ref is None:
            continue
        checked += 1
        assert np.array_equal(layer[0], ref), (n, np.isfinite(x).sum())
    assert checked > 200


def test_layer_edges_equal_numpy_quantile_bit_for_bit():
    from quantsam.factor_test.quantiles import _edges_sorted, qcut_quantiles

    rng = np.random.default_rng(11)
    for m in (10, 11, 101, 1431, 1500):
        for n in (3, 5, 10):
            v = np.sort(rng.normal(size=m) * 1e3)[None, :]
            got = _edges_sorted(v, np.array([m]), n)[0]
            assert np.array_equal(got, np.quantile(v[0], qcut_quantiles(n)))


def test_a_single_date_signal_is_an_error_not_an_annualised_figure(small_market, small_panel):
    """One testable date would give an 'annualised' TOP excess from one week: a clear DataError instead."""
    a = small_market.alpha
    one = a.iloc[[300]]
    with pytest.raises(DataError, match="1 testable rebalance date.*at least 2.*factor_test.start/end"):
        analyze(one, small_panel, small_market.industry, CFG, figures=False)
