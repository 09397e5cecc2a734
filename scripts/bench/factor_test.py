"""Benchmark: the factor-test kernels and the whole factor-test stage on a 2,000-date x 5,000-name panel.

1. ``rank_ic`` + ``quantile_returns(n=10)`` (wide-frame API) vs a straightforward ``groupby(date)`` +
   ``scipy.stats.spearmanr`` / ``pd.qcut`` implementation of the same numbers (checked equal), timed in one run.
2. Parity and speed against alphalens itself (``pip install -e .[bench]``: alphalens-reloaded, bench-only) on a
   400-date x 1,500-name panel with 5% missing names: ``get_clean_factor_and_forward_returns(quantiles=10)`` +
   ``factor_information_coefficient`` + ``mean_return_by_quantile(by_date=True)`` vs our forward return + ``rank_ic``
   + ``quantile_returns`` on the same prices; prints mismatching layer cells (must be 0), max |diff| of layer returns
   and RankIC, and the speed ratio.
3. ``factor_report`` (filters, MAD, industry + size neutralisation, IC stats and decay, layers, TOP vs benchmark,
   figures off) on a synthetic market with 5,000 stocks and ~2,000 trading days, signal = the planted alpha.

    python scripts/bench/factor_test.py [--dates 2000] [--names 5000] [--skip-stage] [--skip-alphalens]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _util import peak_mb  # noqa: E402


def baseline(f: pd.DataFrame, r: pd.DataFrame, n: int) -> tuple[pd.Series, pd.DataFrame]:
    long = pd.DataFrame({"date": np.repeat(f.index.to_numpy(), f.shape[1]), "f": f.to_numpy().ravel(),
                         "r": r.to_numpy().ravel()}).dropna()
    g = long.groupby("date")
    ric = g.apply(lambda d: stats.spearmanr(d.f, d.r).statistic)
    q = g.apply(lambda d: d.r.groupby(pd.qcut(d.f, n, labels=False) + 1).mean())
    q = q.unstack() if isinstance(q, pd.Series) else q
    return ric, q


def alphalens_parity(T: int = 400, N: int = 1500) -> None:
    """Section 2 of the module docstring."""
    try:
        import alphalens.performance as alp
        import alphalens.utils as alu
    except ImportError:
        print("alphalens parity: skipped (pip install -e '.[bench]' for alphalens-reloaded)")
        return
    import logging
    import warnings

    from quantsam.factor_test import quantile_returns, rank_ic
    from quantsam.factor_test.quantiles import assign_layers

    logging.getLogger("alphalens").setLevel(logging.ERROR)
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2020-01-01", periods=T + 1)
    cols = [f"{i:06d}" for i in range(N)]
    ret = rng.normal(0.0, 0.02, (T + 1, N))
    prices = pd.DataFrame(10.0 * np.cumprod(1.0 + ret, axis=0), index=dates, columns=cols)
    x = 0.1 * np.vstack([ret[1:], ret[-1:]]) + rng.normal(size=(T + 1, N))
    x[rng.random((T + 1, N)) < 0.05] = np.nan
    f = pd.DataFrame(x, index=dates, columns=cols)
    factor = f.iloc[:T].stack().rename("factor")
    factor.index.names = ["date", "asset"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fd = alu.get_clean_factor_and_forward_returns(factor, prices, quantiles=10, periods=(1,), max_loss=1.0)
        ic_al = alp.factor_information_coefficient(fd)["1D"]
        mq_al = alp.mean_return_by_quantile(fd, by_date=True, demeaned=False)[0]["1D"].unstack(0)
        t_al = time.perf_counter() - t0
    t0 = time.perf_counter()
    fwd = (prices.shift(-1) / prices - 1.0).iloc[:T]
    ric = rank_ic(f.iloc[:T], fwd)
    q = quantile_returns(f.iloc[:T], fwd, 10)
    t_us = time.perf_counter() - t0

    d = mq_al.index
    layer, _ = assign_layers(f.loc[d].to_numpy(), 10)
    ours_layer = pd.DataFrame(layer, index=d, columns=cols).stack()
    ours_layer = ours_layer[ours_layer > 0]
    al_layer = fd["factor_quantile"]
    both = al_layer.index.intersection(ours_layer.index)
    mismatch = int((al_layer.loc[both].to_numpy() != ours_layer.loc[both].to_numpy()).sum())
    assert len(both) == len(al_layer) == len(ours_layer), "the two sides kept different names"
    dq = float(np.nanmax(np.abs(q.loc[d].to_numpy() - mq_al.reindex(columns=range(1, 11)).to_numpy())))
    dic = float(np.nanmax(np.abs(ric.loc[d].to_numpy() - ic_al.loc[d].to_numpy())))
    print(f"alphalens parity on {len(d)} dates x {N} names (5% missing): layer cells differing {mismatch} of "
          f"{len(both):,}; layer returns max |diff| {dq:.1e}; RankIC max |diff| {dic:.1e}; "
          f"alphalens {t_al:.2f} s vs ours {t_us:.3f} s = {t_al / t_us:.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dates", type=int, default=2000)
    ap.add_argument("--names", type=int, default=5000)
    ap.add_argument("--skip-stage", action="store_true")
    ap.add_argument("--skip-alphalens", action="store_true")
    a = ap.parse_args()
    from quantsam.factor_test import factor_report, quantile_returns, rank_ic

    rng = np.random.default_rng(0)
    T, N = a.dates, a.names
    x = rng.normal(size=(T, N))
    y = 0.05 * x + rng.normal(size=(T, N))
    x[rng.random((T, N)) < 0.2] = np.nan
    y[rng.random((T, N)) < 0.05] = np.nan
    f = pd.DataFrame(x, index=pd.bdate_range("2016-01-01", periods=T), columns=[f"{i:06d}" for i in range(N)])
    r = pd.DataFrame(y, index=f.index, columns=f.columns)
    t0 = time.perf_counter()
    ric = rank_ic(f, r)
    q = quantile_returns(f, r, 10)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ric_b, q_b = baseline(f, r, 10)
    base = time.perf_counter() - t0
    assert np.allclose(ric.to_numpy(), ric_b.reindex(f.index).to_numpy(), atol=1e-10)
    assert np.allclose(q.to_numpy(), q_b.reindex(f.index).to_numpy(), atol=1e-10, equal_nan=True)
    print(f"{T} dates x {N} names: rank_ic + quantile_returns {ours:.2f} s; groupby + spearmanr + qcut {base:.2f} s; "
          f"speed-up {base / ours:.1f}x (results equal to 1e-10)")
    if not a.skip_alphalens:
        alphalens_parity()
    if a.skip_stage:
        return
    from quantsam.data.synthetic import generate_market
    from quantsam.features.panel import build_panel

    days = int(T * 1.03 * 365 / 252)
    end = (pd.Timestamp("2016-01-01") + pd.Timedelta(days=days)).date()
    m = generate_market(seed=0, n_stocks=N, start="2016-01-01", end=str(end))
    panel = build_panel(m.daily)
    cfg = {"rebalance_every": 5, "horizon": 5, "price": "vwap", "n_quantiles": 10, "mad_k": 5.0,
           "neutralize": ["industry", "size"], "ic_decay_horizons": [1, 5, 10, 20], "start": None, "end": None}
    t0 = time.perf_counter()
    rep = factor_report(m.alpha, m, cfg, panel=panel, figures=False)
    stage = time.perf_counter() - t0
    print(f"factor_report on {panel.shape[0]} days x {panel.shape[1]} stocks ({int(rep.summary['n_dates'])} "
          f"rebalances, weekly): {stage:.2f} s (panel prebuilt; process peak RSS {peak_mb():,.0f} MB); "
          f"RankIC {rep.summary['rank_ic_mean']:.4f}")


if __name__ == "__main__":
    main()
