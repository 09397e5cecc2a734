"""Vectorised IC / RankIC against scipy, with NaNs and ties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from quantsam.crosssection import ic_rows, rank_ic_rows, rank_rows


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 60))
    y = 0.3 * x + rng.normal(size=(40, 60))
    x[rng.random(x.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.1] = np.nan
    x[:, :10] = np.round(x[:, :10])  # ties
    y[5] = np.round(y[5] * 2)
    x[7, :] = np.nan  # an empty date
    return x, y


def test_rank_rows_is_scipy_rankdata(data):
    x, _ = data
    r = rank_rows(x)
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t])
        if ok.any():
            assert np.allclose(r[t, ok], stats.rankdata(x[t, ok], method="average"), atol=1e-12)
        assert np.isnan(r[t, ~ok]).all()


def test_rank_ic_and_ic_are_scipy(data):
    x, y = data
    ric, ic = rank_ic_rows(x, y), ic_rows(x, y)
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(y[t])
        if ok.sum() < 3:
            assert np.isnan(ric[t]) and np.isnan(ic[t])
            continue
        assert ric[t] == pytest.approx(stats.spearmanr(x[t, ok], y[t, ok]).statistic, abs=1e-12)
        assert ic[t] == pytest.approx(stats.pearsonr(x[t, ok], y[t, ok]).statistic, abs=1e-12)


def test_kurtosis_rows_equal_scipy():
    """Per-date excess kurtosis against scipy.stats.kurtosis (Fisher, biased), NaN-aware, with too-small rows NaN."""
    from scipy import stats

    from quantsam.crosssection import kurtosis_rows

    rng = np.random.default_rng(3)
    x = np.vstack([rng.standard_t(3, 400), rng.normal(size=400), np.r_[rng.normal(size=398), 40.0, -35.0]])
    x[0, :17] = np.nan
    got = kurtosis_rows(x)
    want = [stats.kurtosis(r[np.isfinite(r)]) for r in x]
    assert np.allclose(got, want, rtol=1e-10)
    assert np.isnan(kurtosis_rows(np.array([[1.0, 2.0, np.nan, np.nan, np.nan], [1.0] * 5]))).all()


def test_signal_winsorisation_bounds_one_extreme_name():
    """signal.mad_k: one name 1000 MADs out no longer sets the day's z-scores (the others keep their spread)."""
    from quantsam.signals.combine import combine_equal_weight

    rng = np.random.default_rng(4)
    s = rng.normal(size=(3, 300))
    s[:, 0] = -1000.0
    plain, _ = combine_equal_weight({"daily": s}, ["daily"])
    clipped, _ = combine_equal_weight({"daily": s}, ["daily"], mad_k=5.0)
    assert plain[:, 1:].std() < 0.1 and abs(plain[0, 0]) > 15  # the outlier squeezes everyone else to ~0
    assert 0.8 < clipped[:, 1:].std() < 1.1 and abs(clipped[0, 0]) < 10
    rank = np.argsort(np.argsort(s[:, 1:], axis=1), axis=1)  # clipping keeps the order of the other names
    assert (np.argsort(np.argsort(clipped[:, 1:], axis=1), axis=1) == rank).all()
