"""Benchmark: the index-enhanced portfolio solve and the whole weekly backtest.

1. One rebalance of a CSI1000-sized problem (~1,250 candidates, 30 industries): median time of the compiled problem
   (parameters updated, cvxpy's canonicalisation cached) vs building and solving a new problem each time; plus the
   split of the compiled solve into solver time and cvxpy overhead.
2. Every solver option on the same sequence of weekly problems (scores drift, turnover limit binding), same optimum:
   CLARABEL via cvxpy, HiGHS via cvxpy, HiGHS via ``highspy`` directly rebuilt each time (cold), and the default
   ``portfolio.backend=direct``, which keeps its HiGHS model while the constraint matrix is unchanged and starts
   from the previous basis (costs and bounds updated). Prints each one's median solve and its largest objective
   gap / constraint violation against CLARABEL.
3. The whole weekly backtest 2017-01 .. 2024-09 for the CSI1000 analogue of the default synthetic market, signal =
   planted alpha + noise, with ``backend=cvxpy`` (CLARABEL) and ``backend=direct``.

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


def _violation(w, lb, ub, rows, prev, max_turnover) -> float:
    """Largest violation of any constraint of the problem by weights ``w``."""
    aw = rows.A @ w
    v = [np.max(lb - w), np.max(w - ub), np.max(rows.lo - aw), np.max(aw - rows.hi)]
    if prev is not None:
        v.append(np.abs(w - prev).sum() - max_turnover)
    return max(0.0, *map(float, v))


class WarmHighs:
    """A HiGHS model of the same LP, written out independently of quantsam.portfolio.direct (set ``h = None`` before
    a solve to build it anew: the cold baseline)."""

    def __init__(self):
        self.h = None

    def solve(self, score, lb, ub, rows, prev, max_turnover):
        import highspy
        import scipy.sparse as sp

        from quantsam.portfolio.direct import INF

        m = len(score)
        k = rows.A.shape[0]
        row_lo = np.concatenate([rows.lo, np.full(m, -INF), prev, [-INF]])
        row_hi = np.concatenate([rows.hi, prev, np.full(m, INF), [max_turnover]])
        cost = np.concatenate([-score, np.zeros(m)])
        if self.h is None:
            eye = sp.identity(m, format="csr")
            A = sp.csc_matrix(sp.vstack([sp.hstack([rows.A, sp.csr_matrix((k, m))]), sp.hstack([eye, -eye]),
                                         sp.hstack([eye, eye]), sp.hstack([sp.csr_matrix((1, m)), np.ones((1, m))])]))
            self.h = highspy.Highs()
            self.h.setOptionValue("output_flag", False)
            self.h.setOptionValue("presolve", "off")  # as quantsam.portfolio.direct
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
            lp.col_cost_ = cost
            lp.col_lower_, lp.col_upper_ = np.concatenate([lb, np.zeros(m)]), np.concatenate([ub, np.full(m, INF)])
            lp.row_lower_, lp.row_upper_ = row_lo, row_hi
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
            self.h.passModel(lp)
        else:
            idx = np.arange(2 * m, dtype=np.int32)
            self.h.changeColsCost(2 * m, idx, cost)
            self.h.changeColsBounds(m, idx[:m], lb, ub)
            ridx = np.arange(len(row_lo), dtype=np.int32)
            self.h.changeRowsBounds(len(ridx), ridx, row_lo, row_hi)
        self.h.run()
        x = np.asarray(self.h.getSolution().col_value)[:m]
        return x, float(score @ x)


def solver_options(rounds: int) -> None:
    """Section 2 of the module docstring."""
    from quantsam.config.schema import PortfolioConfig
    from quantsam.crosssection import zscore_vector
    from quantsam.portfolio import IndexEnhancedProblem
    from quantsam.portfolio.direct import range_rows
    from quantsam.portfolio.problem import box_bounds

    rng = np.random.default_rng(1)
    n, k, n_idx = 1250, 30, 1000
    X = np.eye(k)[rng.integers(0, k, n)]
    b = np.zeros(n)
    b[:n_idx] = rng.dirichlet(np.ones(n_idx) * 2)
    size = rng.normal(22, 1, n)
    case = dict(bench_weight=b, in_index=(b > 0).astype(float), industry_onehot=X, size=size)
    cfg = PortfolioConfig()
    probs = {"CLARABEL via cvxpy": IndexEnhancedProblem(n, k, {"backend": "cvxpy", "solver": "CLARABEL"}),
             "HiGHS via cvxpy": IndexEnhancedProblem(n, k, {"backend": "cvxpy", "solver": "HIGHS"}),
             "HiGHS direct, warm (the default)": IndexEnhancedProblem(n, k, {"backend": "direct"})}
    warm = WarmHighs()
    alpha = rng.normal(size=n)
    prev = probs["HiGHS direct, warm (the default)"].solve(score=alpha, **case).weights
    times: dict[str, list[float]] = {name: [] for name in [*probs, "HiGHS direct, cold"]}
    gaps = dict.fromkeys(times, 0.0)
    viol = dict.fromkeys(times, 0.0)
    s = zscore_vector(size, np.ones(n, bool))
    tol = {"industry": cfg.industry_tol, "size": cfg.size_tol, "style": 1.0}
    rows = range_rows(b, case["in_index"], cfg.min_index_weight, X, s, None, tol, None)
    for _ in range(rounds + 1):  # the first round warms every option (compilation, the first basis)
        alpha = 0.9 * alpha + np.sqrt(1 - 0.81) * rng.normal(size=n)  # weekly scores change a little
        lb, ub = box_bounds(b, prev, cfg.max_active, *(np.zeros(n, bool),) * 3)
        out = {}
        for name, prob in probs.items():
            t0 = time.perf_counter()
            res = prob.solve(score=alpha, prev_weight=prev, **case)
            times[name].append(time.perf_counter() - t0)
            out[name] = (res.weights, res.objective)
        warm.h = None  # a new model every time: the cold solve
        t0 = time.perf_counter()
        out["HiGHS direct, cold"] = warm.solve(alpha, lb, ub, rows, prev, cfg.max_turnover)
        times["HiGHS direct, cold"].append(time.perf_counter() - t0)
        ref = float(alpha @ out["CLARABEL via cvxpy"][0])
        for name, (w, _) in out.items():
            gaps[name] = max(gaps[name], abs(float(alpha @ w) - ref) / max(abs(ref), 1e-12))
            viol[name] = max(viol[name], _violation(w, lb, ub, rows, prev, cfg.max_turnover))
        prev = out["HiGHS direct, warm (the default)"][0]
    print(f"solver options on {rounds} consecutive weekly problems ({n} candidates, {k} industries, turnover "
          "binding), median solve / largest relative objective gap to CLARABEL / largest constraint violation:")
    base = statistics.median(times["CLARABEL via cvxpy"][1:])
    for name, ts in times.items():
        med = statistics.median(ts[1:])
        print(f"  {name:34s} {1e3 * med:7.1f} ms  ({base / med:5.1f}x CLARABEL)  gap {gaps[name]:.1e}  "
              f"violation {viol[name]:.1e}")


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
    prob = IndexEnhancedProblem(n, k, {"backend": "cvxpy"})
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
        fresh = IndexEnhancedProblem(n, k, {"backend": "cvxpy"})
        t0 = time.perf_counter()
        fresh.solve(score=score, prev_weight=prev, **case)
        rebuilt.append(time.perf_counter() - t0)
        other = IndexEnhancedProblem(n, k, {"backend": "cvxpy"})
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
    solver_options(a.rounds)
    if a.skip_backtest:
        return
    from quantsam.backtest import run_index_enhanced
    from quantsam.data.synthetic import generate_market
    from quantsam.features.panel import build_panel

    m = generate_market(seed=0, n_stocks=2000)
    panel = build_panel(m.daily)
    al = m.alpha
    sig = (al / al.std(axis=1).to_numpy()[:, None] + rng.normal(size=al.shape) * 2).where(al.notna())
    bc = {"rebalance_every": 5, "cost_per_side": 0.002, "start": "2017-01-01", "end": "2024-09-30"}
    walls = {}
    for backend in ("cvxpy", "direct"):
        pc = {"n_extra_candidates": 250, "backend": backend}
        t0 = time.perf_counter()
        rep = run_index_enhanced(sig, m, panel, "000852.SH", "csi1000", pc, bc, figures=False)
        walls[backend] = time.perf_counter() - t0
        s = rep.summary
        print(f"weekly backtest 2017-01..2024-09, CSI1000 analogue ({int(s['n_rebalances'])} rebalances), "
              f"backend={backend}: {walls[backend]:.0f} s; excess {100 * s['excess_ann']:.2f}% p.a., "
              f"IR {s['info_ratio']:.3f}, turnover {s['turnover']:.3f}")
    print(f"  direct vs cvxpy: {walls['cvxpy'] / walls['direct']:.1f}x")


if __name__ == "__main__":
    main()
