"""Training building blocks: loss, splits (purge, look-ahead), signal combination, the GRU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from quantsam.features.dataset import rolling_splits
from quantsam.models import GRUFactor
from quantsam.signals.combine import combine_equal_weight
from quantsam.signals.io import seed_averaged, to_long
from quantsam.train.losses import ic_loss, mse_loss


def test_ic_loss_is_negative_pearson_over_finite_labels():
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=50), rng.normal(size=50)
    y[[3, 9, 20]] = np.nan
    ok = np.isfinite(y)
    got = float(ic_loss(torch.tensor(p), torch.tensor(y)))
    assert got == pytest.approx(-stats.pearsonr(p[ok], y[ok]).statistic, abs=1e-12)
    assert float(mse_loss(torch.tensor(p), torch.tensor(y))) == pytest.approx(np.mean((p[ok] - y[ok]) ** 2))


def test_gru_shapes():
    m = GRUFactor(6, 64, 2)
    assert m(torch.randn(11, 30, 6)).shape == (11,)
    assert sum(p.numel() for p in m.parameters()) == 3 * (6 * 64 + 64 * 64 + 2 * 64) + 3 * (2 * 64 * 64 + 2 * 64) + 65


def test_rolling_splits_purge_and_grid():
    dates = pd.bdate_range("2014-01-01", "2020-12-31")
    splits = rolling_splits(dates, first_usable=150, train_days=756, valid_days=252, test_days=126, purge_days=10,
                            sample_every=5, test_start="2018-01-01")
    assert len(splits) > 5
    h = 10
    for s in splits:
        # the last train label (t+1 .. t+11) ends before the first valid label starts; same for valid -> test
        assert s.train[-1] + h + 1 <= s.valid[0] + 1
        assert s.valid[-1] + h + 1 <= s.test[0]
        assert s.train[0] >= 150
        assert (np.diff(s.train) == 5).all() and (np.diff(s.valid) == 5).all()
        assert (np.diff(s.test) == 1).all() and len(s.test) <= 126
    # consecutive test blocks tile the period
    assert all(a.test[-1] + 1 == b.test[0] for a, b in zip(splits, splits[1:], strict=False))
    assert splits[0].test[0] == np.searchsorted(dates, pd.Timestamp("2018-01-01"))


def test_rolling_splits_too_early_is_a_clear_error():
    from quantsam.errors import ConfigError

    dates = pd.bdate_range("2014-01-01", "2016-12-31")
    with pytest.raises(ConfigError, match="test_start"):
        rolling_splits(dates, 150, 756, 252, 126, 10, 5, "2014-06-01")


def test_combine_equal_weight_by_hand():
    preds = pd.DataFrame({
        "date": pd.to_datetime(["2020-01-02"] * 6),
        "code": ["a", "b", "c"] * 2,
        "model": ["daily"] * 3 + ["weekly"] * 3,
        "seed": 0,
        "score": [1.0, 2.0, 3.0, 30.0, 10.0, 20.0],
    })
    # the two seeds of the daily model average to (0, 2, 4): the same z-score as (1, 2, 3)
    preds = pd.concat([preds, preds.assign(seed=1, score=preds.score.where(preds.model == "weekly",
                                                                          preds.score * 3 - 4))])
    dates, codes, scores = seed_averaged(preds)
    assert list(codes) == ["a", "b", "c"] and np.allclose(scores["daily"][0], [0.0, 2.0, 4.0])
    score, z = combine_equal_weight(scores, ["daily", "weekly"])
    out = to_long(dates, codes, {"score": score, "daily": z["daily"], "weekly": z["weekly"]}).set_index("code")
    d = np.array([-1.0, 0.0, 1.0])
    w = (np.array([30.0, 10.0, 20.0]) - 20.0) / 10.0
    assert np.allclose(out.loc[["a", "b", "c"], "daily"], d)
    assert np.allclose(out.loc[["a", "b", "c"], "weekly"], w)
    assert np.allclose(out.loc[["a", "b", "c"], "score"], (d + w) / 2)


def test_combine_averages_the_models_present():
    nan = np.nan
    daily = np.array([[1.0, 2.0, 3.0, nan]])
    weekly = np.array([[nan, 4.0, 6.0, 8.0]])
    score, z = combine_equal_weight({"daily": daily, "weekly": weekly}, ["daily", "weekly"])
    # a name scored by one model takes that model's z-score; by none: NaN
    assert np.allclose(score[0], [z["daily"][0, 0], (z["daily"][0, 1] + z["weekly"][0, 1]) / 2,
                                  (z["daily"][0, 2] + z["weekly"][0, 2]) / 2, z["weekly"][0, 3]])
    assert np.isnan(combine_equal_weight({"daily": np.full((1, 2), nan)}, ["daily"])[0]).all()
    with pytest.raises(ValueError, match="signal.models"):
        combine_equal_weight({"daily": daily}, ["daily", "weekly"])


def test_threads_follow_the_cpu_affinity_not_the_machine():
    """Under `taskset -c 0` (or a container's cpuset) a job gets the cores it may run on: one here, not all."""
    import os
    import subprocess
    import sys

    if not hasattr(os, "sched_setaffinity"):
        return
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from quantsam.train.runtime import set_threads, usable_cores; import torch; "
            "print(usable_cores(), set_threads(), torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "1", "1"], out.stderr[-1000:]
