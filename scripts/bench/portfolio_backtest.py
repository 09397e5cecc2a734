"""Benchmark: the index-enhanced portfolio solve and the whole weekly backtest.

1. One rebalance of a CSI1000-sized problem (~1,250 candidates, 30 industries): median time of the compiled problem
   (parameters updated, cvxpy's canonicalisation cached) vs building and solving a new problem each time; plus the
   split of the compiled solve into solver time and cvxpy overhead.
2. The whole weekly backtest 2017-01 .. 2024-09 for the CSI1000 analogue of the default synthetic market, signal =
   planted alpha + noise.

    python scripts/bench/portfolio_backtest.py [--rounds 9] [--skip-backtest]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _copy_params(src, dst) -> None:
    for p_src, p_dst in zip(src.problem.parameters(), dst.problem.parameters(), strict=True):
        p_dst.value = p_src.value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--skip-backtest", action="store_true")
    a = ap.parse_args()
    from quantsam.portfolio import IndexEnhancedProblem

    rng = np.random.default_rng(0)
    n, k, n_idx = 1250, 30, 1000
    X = np.eye(k)[rng.integers(0, k, n)]
    b = np.zeros(n)
    b[:n_idx] = rng.dirichlet(np.ones(n_idx) * 2)
    case = dict(bench_weight=b, in_index=(b > 0).astype(float), industry_onehot=X, size=rng.normal(22, 1, n))
    prob = IndexEnhancedProblem(n, k, {})
    prev = prob.solve(score=rng.normal(size=n), **case).weights
    compiled, rebuilt, canon_c, canon_f = [], [], [], []
    for _ in range(a.rounds):  # interleaved, so machine noise hits both alike
        score = rng.normal(size=n)
        t0 = time.perf_counter()
        res = prob.solve(score=score, prev_weight=prev, **case)
        compiled.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        prob.problem.get_problem_data("CLARABEL")  # parameters -> solver data, canonicalisation cached
        canon_c.append(time.perf_counter() - t0)
        fresh = IndexEnhancedProblem(n, k, {})
        t0 = time.perf_counter()
        fresh.solve(score=score, prev_weight=prev, **case)
        rebuilt.append(time.perf_counter() - t0)
        other = IndexEnhancedProblem(n, k, {})
        _copy_params(fresh, other)
        t0 = time.perf_counter()
        other.problem.get_problem_data("CLARABEL")  # canonicalisation from scratch
        canon_f.append(time.perf_counter() - t0)
        prev = res.weights
    c, r = statistics.median(compiled), statistics.median(rebuilt)
    cc, cf = statistics.median(canon_c), statistics.median(canon_f)
    print(f"CSI1000-sized rebalance ({n} candidates, {k} industries, CLARABEL), median of {a.rounds}:")
    print(f"  solve with the compiled problem: {1e3 * c:.0f} ms; building + solving a new problem: {1e3 * r:.0f} ms "
          f"-> {r / c:.2f}x")
    print(f"  cvxpy parameters -> solver data: {1e3 * cc:.1f} ms compiled vs {1e3 * cf:.1f} ms canonicalising anew "
          f"-> {cf / cc:.0f}x; the rest is the interior-point solve itself")
    if a.skip_backtest:
        return
    from quantsam.backtest import run_index_enhanced
    from quantsam.data.synthetic import generate_market
    from quantsam.features.panel import build_panel

    m = generate_market(seed=0, n_stocks=2000)
    panel = build_panel(m.daily)
    al = m.alpha
    sig = (al / al.std(axis=1).to_numpy()[:, None] + rng.normal(size=al.shape) * 2).where(al.notna())
    pc = {"n_extra_candidates": 250}
    bc = {"rebalance_every": 5, "cost_per_side": 0.002, "start": "2017-01-01", "end": "2024-09-30"}
    t0 = time.perf_counter()
    rep = run_index_enhanced(sig, m, "000852.SH", "csi1000", pc, bc, panel=panel, figures=False)
    wall = time.perf_counter() - t0
    s = rep.summary
    print(f"weekly backtest 2017-01..2024-09, CSI1000 analogue ({int(s['n_rebalances'])} rebalances): {wall:.0f} s; "
          f"excess {100 * s['excess_ann']:.1f}% p.a., IR {s['info_ratio']:.2f}, turnover {s['turnover']:.2f}")


if __name__ == "__main__":
    main()
