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
