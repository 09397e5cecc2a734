"""Issue 32's pieces on their own: the alpha mapping (vs scipy), the past-only realised IC, and the rule baselines
(top-N, qlib's TopkDropout) against independent pandas statements of the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quantsam.backtest.policy import RealisedIC, transfer_coefficient
from quantsam.backtest.rules import TopkDropoutPolicy, TopNPolicy
from quantsam.portfolio.alpha import expected_alpha, period_rank_ic, shrunk_ic, zscores


def test_alpha_pieces_against_scipy_and_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    x[[3, 7]] = np.nan
    z = zscores(x)
    ok = np.isfinite(x)
    np.testing.assert_allclose(z[ok], stats.zscore(x[ok]), rtol=1e-12)
    assert (z[~ok] == 0).all()
    r = rng.normal(size=50)
    assert period_rank_ic(x, r) == pytest.approx(stats.spearmanr(x[ok], r[ok]).statistic, abs=1e-12)
    assert np.isnan(period_rank_ic(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0])))
    # (sum of the last 3 + 2 x 0.03) / (3 + 2), floored at 0
    assert shrunk_ic([0.5, 0.1, np.nan, 0.04, 0.07], 0.03, 2, 3) == pytest.approx((0.1 + 0.04 + 0.07 + 0.06) / 5)
    assert shrunk_ic([-0.2, -0.1], 0.03, 1, 52) == 0.0
    assert shrunk_ic([], 0.03, 8, 52) == pytest.approx(0.03)
    d = np.array([4e-4, np.nan, 1e-4, 9e-4])
    a = expected_alpha(np.array([1.0, 2.0, 3.0, 4.0]), d, 0.05, 5)
    zz = stats.zscore([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(a, 0.05 * np.sqrt(5 * np.array([4e-4, 4e-4, 1e-4, 9e-4])) * zz, rtol=1e-12)


def test_realised_ic_uses_only_periods_that_have_ended():
    rng = np.random.default_rng(1)
    T, N = 40, 30
    sig = rng.normal(size=(T, N))
    px = np.cumprod(1 + rng.normal(scale=0.02, size=(T, N)), axis=0)
    bench = np.full((T, N), 1.0 / N)
    ric = RealisedIC(sig, bench, px)
    ric.decisions = [(4, 5), (9, 10), (14, 15)]
    assert ric.update(9) == []  # the period 5 -> 10 closes with the fill on day 10, after decision day 9
    ics = ric.update(14)
    assert len(ics) == 1  # 5 -> 10 has ended; 10 -> 15 has not
    assert ics[0] == pytest.approx(stats.spearmanr(sig[4], px[10] / px[5] - 1).statistic, abs=1e-12)


class _Panel:
    def __init__(self, T):
        self.dates = pd.bdate_range("2020-01-01", periods=T)


def _rule(cls, sig, bench, **kw):
    T, N = sig.shape
    return cls(sig, _Panel(T), bench, np.ones((N, 1)), 0, **kw)


def test_top_n_is_the_n_best_members_equal_weighted():
    rng = np.random.default_rng(2)
    T, N = 6, 40
    sig = rng.normal(size=(T, N))
    sig[2, 5] = np.nan
    bench = np.where(rng.random((T, N)) < 0.6, 1.0, 0.0)
    bench /= bench.sum(1, keepdims=True)
    pol = _rule(TopNPolicy, sig, bench, top_n=7, n_drop=0)
    w = pol(3, np.zeros(N))  # decision row 2, fill row 3
    s = pd.Series(sig[2])[(bench[2] > 0) & np.isfinite(sig[2])]
    expect = np.zeros(N)
    expect[s.nlargest(7).index] = 1 / 7
    np.testing.assert_allclose(w, expect)
    assert pol.rebalances[0]["n_held"] == 7 and pol.rebalances[0]["index_weight"] == pytest.approx(1.0)


def _qlib_topk_dropout(score: pd.Series, held: list, topk: int, n_drop: int) -> tuple[list, list]:
    """qlib's TopkDropoutStrategy selection as its docs state it (method_sell=bottom, method_buy=top), in pandas."""
    last = score.reindex(held).fillna(-np.inf).sort_values(ascending=False).index
    today = score[~score.index.isin(last)].sort_values(ascending=False).index[: n_drop + topk - len(last)]
    comb = score.reindex(last.union(today)).fillna(-np.inf).sort_values(ascending=False).index
    sell = last[last.isin(comb[-n_drop:])] if n_drop else last[:0]
    buy = today[: len(sell) + topk - len(last)]
    return sorted(sell), sorted(buy)


@pytest.mark.parametrize("seed", range(5))
def test_topk_dropout_matches_qlibs_rule(seed):
    rng = np.random.default_rng(10 + seed)
    T, N, k, nd = 8, 60, 10, 3
    sig = rng.normal(size=(T, N))
    bench = np.ones((T, N)) / N
    pol = _rule(TopkDropoutPolicy, sig, bench, top_n=k, n_drop=nd)
    w0 = pol(1, np.zeros(N))  # first: the top k
    assert (w0 > 0).sum() == k
    w_pre = w0 * rng.uniform(0.8, 1.2, N)  # drifted
    w_pre /= w_pre.sum()
    w1 = pol(2, w_pre)  # decision row 1
    sold = sorted(np.nonzero((w_pre > 0) & (w1 == 0))[0])
    bought = sorted(np.nonzero((w_pre == 0) & (w1 > 0))[0])
    e_sell, e_buy = _qlib_topk_dropout(pd.Series(sig[1]), list(np.nonzero(w_pre > 0)[0]), k, nd)
    assert sold == e_sell and bought == e_buy
    kept = (w_pre > 0) & (w1 > 0)
    np.testing.assert_allclose(w1[kept], w_pre[kept])  # kept names keep their drifted weight
    assert w1.sum() == pytest.approx(1.0) and (w1 > 0).sum() == k
    assert np.ptp(w1[bought]) < 1e-15 if bought else True


def test_transfer_coefficient_is_a_correlation():
    rng = np.random.default_rng(3)
    s = rng.normal(size=30)
    assert transfer_coefficient(2 * stats.zscore(s) + 1, s) == pytest.approx(1.0)
    a = rng.normal(size=30)
    assert transfer_coefficient(a, s) == pytest.approx(np.corrcoef(a, s)[0, 1])
