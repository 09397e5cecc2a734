"""The index-enhanced problem handed to the solvers directly: HiGHS (dual simplex) for the LP, Clarabel (interior
point) for the SOCP with a tracking-error target — the same formulation as the cvxpy model in :mod:`.problem`.

Written by hand because it is faster for this problem, not because cvxpy is wrong: cvxpy maps parameters to solver
data through a tensor whose size grows with the parameter matrices (the ``[n, K]`` industry one-hots, styles and risk
loadings), so with the ~110 industries of real data one rebalance took seconds in cvxpy for a few milliseconds of
solver work. Here the sparse constraint matrix is assembled once per rebalance in numpy/scipy.

Variables ``x = [w (m), u (m)]`` (``u`` only with a binding turnover limit or a trading cost in the objective:
``u >= |w - w_prev|``, ``sum u <= max_turnover``; the objective's cost term is ``trade_cost * sum u``). Rows are
ranges ``lo <= A w <= hi``: budget, index weight, industries, size, styles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

INF = 1e30


def quiet_highs():
    """A ``highspy.Highs`` with its output off. The first one in a process prints HiGHS's copyright banner from C++
    straight to file descriptor 1 before any option can be set (``output_flag`` only silences later output), so that
    one construction runs with fd 1 pointed at /dev/null."""
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


@dataclass
class Rows:
    """Linear range rows on the weights: ``lo <= A w <= hi``."""

    A: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray


def range_rows(b: np.ndarray, in_index: np.ndarray, min_index_weight: float, X: np.ndarray, s: np.ndarray,
               S: np.ndarray | None, tol: dict[str, float], style_bounds: np.ndarray | None) -> Rows:
    """Budget, index weight, industry, size and style rows (active exposures within their tolerance)."""
    m = len(b)
    blocks = [np.ones((1, m)), in_index[None, :], X.T, s[None, :]]
    lo = [np.array([1.0]), np.array([min_index_weight]), X.T @ b - tol["industry"], np.array([s @ b - tol["size"]])]
    hi = [np.array([1.0]), np.array([INF]), X.T @ b + tol["industry"], np.array([s @ b + tol["size"]])]
    if S is not None:
        blocks.append(S.T)
        lo.append(S.T @ b - style_bounds * tol["style"])
        hi.append(S.T @ b + style_bounds * tol["style"])
    return Rows(sp.csr_matrix(np.vstack(blocks)), np.concatenate(lo), np.concatenate(hi))


class WarmLP:
    """A HiGHS model kept between rebalances: when the next LP has the same constraint matrix (same candidates,
    industries and index membership — the usual week to week with unchanged candidates), only costs and bounds are
    updated and the dual simplex starts from the previous optimal basis; otherwise the model is rebuilt.
    ``scripts/bench/portfolio_backtest.py``: 7 ms warm vs 12 ms cold on a CSI1000-sized LP, same optimum."""

    def __init__(self):
        self.h = None
        self.A: sp.csc_matrix | None = None

    def _same(self, A: sp.csc_matrix) -> bool:
        B = self.A
        return (B is not None and B.shape == A.shape and B.nnz == A.nnz and np.array_equal(B.indptr, A.indptr)
                and np.array_equal(B.indices, A.indices) and np.array_equal(B.data, A.data))

    def run(self, A: sp.csc_matrix, cost, col_lo, col_hi, row_lo, row_hi):
        import highspy

        if self.h is not None and self._same(A):
            n, k = A.shape[1], A.shape[0]
            cols = np.arange(n, dtype=np.int32)
            self.h.changeColsCost(n, cols, np.asarray(cost, dtype=np.float64))
            self.h.changeColsBounds(n, cols, np.asarray(col_lo, dtype=np.float64), np.asarray(col_hi, np.float64))
            rws = np.arange(k, dtype=np.int32)
            self.h.changeRowsBounds(k, rws, np.asarray(row_lo, dtype=np.float64), np.asarray(row_hi, np.float64))
        else:
            h = quiet_highs()
            # HiGHS's presolve spends ~1.5 s on the turnover block (w - u <= prev <= w + u) of a 1,250-name problem
            # that the dual simplex then solves in ~10 ms (scripts/bench/portfolio_backtest.py)
            h.setOptionValue("presolve", "off")
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
            lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lo, col_hi
            lp.row_lower_, lp.row_upper_ = row_lo, row_hi
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
            h.passModel(lp)
            self.h, self.A = h, A
        self.h.run()
        return self.h


def solve_lp_highs(score: np.ndarray, lb: np.ndarray, ub: np.ndarray, rows: Rows, prev: np.ndarray | None,
                   max_turnover: float, warm: WarmLP | None = None, trade_cost: float = 0.0
                   ) -> tuple[str, np.ndarray | None, float]:
    """Maximise ``score' w - trade_cost * sum|w - prev|`` with HiGHS; returns (status, w, objective) with cvxpy's
    status names (the objective is ``score' w``). ``warm``: a :class:`WarmLP` to start from the previous basis when the
    constraint matrix is unchanged."""
    import highspy

    m = len(score)
    turnover = prev is not None and (max_turnover < 2.0 or trade_cost > 0)
    A = rows.A
    col_lo, col_hi, cost = lb, ub, -score
    row_lo, row_hi = rows.lo, rows.hi
    if turnover:
        eye = sp.identity(m, format="csr")
        A = sp.vstack([sp.hstack([A, sp.csr_matrix((A.shape[0], m))]),
                       sp.hstack([eye, -eye]),  # w - u <= prev
                       sp.hstack([eye, eye]),  # w + u >= prev
                       sp.hstack([sp.csr_matrix((1, m)), np.ones((1, m))])])  # sum u <= T
        col_lo = np.concatenate([lb, np.zeros(m)])
        col_hi = np.concatenate([ub, np.full(m, INF)])
        cost = np.concatenate([-score, np.full(m, float(trade_cost))])
        row_lo = np.concatenate([row_lo, np.full(m, -INF), prev, [-INF]])
        row_hi = np.concatenate([row_hi, prev, np.full(m, INF), [max_turnover]])
    A = sp.csc_matrix(A)
    A.sort_indices()
    h = (warm or WarmLP()).run(A, cost, col_lo, col_hi, row_lo, row_hi)
    st = h.getModelStatus()
    if st == highspy.HighsModelStatus.kOptimal:
        x = np.asarray(h.getSolution().col_value)
        return "optimal", x[:m], float(score @ x[:m])
    if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return "infeasible", None, float("nan")  # the weights are boxed: "unbounded or infeasible" is infeasible
    return str(st), None, float("nan")


def solve_socp_clarabel(score: np.ndarray, lb: np.ndarray, ub: np.ndarray, rows: Rows, prev: np.ndarray | None,
                        max_turnover: float, B: np.ndarray | None, sd: np.ndarray, b: np.ndarray, te_daily: float,
                        trade_cost: float = 0.0, factors: tuple[np.ndarray, np.ndarray] | None = None
                        ) -> tuple[str, np.ndarray | None, float]:
    """Maximise ``score' w - trade_cost * sum|w - prev|`` subject to the rows, bounds, turnover and
    ``||[B'(w - b); sd (w - b)]|| <= te_daily`` with Clarabel; returns (status, w, objective ``score' w``).

    ``factors=(X, L)`` (exposures ``[m, K]``, ``L L' = F``; then ``B`` is not needed) states the same cone in factor
    form, with the active factor exposures as variables: ``y = X'(w - b)`` and ``||[L' y; sd (w - b)]|| <= te_daily``.
    ``B = X L`` is dense (every name loads on every eigen-factor: ~150,000 non-zeros for 1,300 names and 117
    factors), while ``X`` is a one-hot plus the styles and ``L`` is ``K x K``: ~6x fewer non-zeros, and the
    interior-point factorisation is that much cheaper (``scripts/bench/real_backtest.py``)."""
    import clarabel

    m = len(score)
    turnover = prev is not None and (max_turnover < 2.0 or trade_cost > 0)
    ky = factors[1].shape[1] if factors is not None else 0
    n_u = m if turnover else 0
    n = m + n_u + ky

    def on_w(M):
        M = sp.csr_matrix(M)
        return sp.hstack([M, sp.csr_matrix((M.shape[0], n - m))]) if n > m else M

    def on_y(M):
        M = sp.csr_matrix(M)
        return sp.hstack([sp.csr_matrix((M.shape[0], m + n_u)), M])

    def on_u(M):
        M = sp.csr_matrix(M)
        return sp.hstack([sp.csr_matrix((M.shape[0], m)), M, sp.csr_matrix((M.shape[0], ky))])

    eq = rows.lo == rows.hi
    A_rows = rows.A
    # inequality rows g x <= h (Clarabel: A x + s = b, s in the cone)
    G = [on_w(A_rows[~eq & (rows.hi < INF / 2)]), on_w(-A_rows[~eq & (rows.lo > -INF / 2)]),
         on_w(sp.identity(m)), on_w(-sp.identity(m))]
    h = [rows.hi[~eq & (rows.hi < INF / 2)], -rows.lo[~eq & (rows.lo > -INF / 2)], ub, -lb]
    if turnover:
        eye = sp.identity(m)
        G += [on_w(eye) + on_u(-eye), on_w(-eye) + on_u(-eye), on_u(np.ones((1, m))), on_u(-eye)]
        h += [prev, -prev, np.array([max_turnover]), np.zeros(m)]
    Gm, hv = sp.vstack(G), np.concatenate(h)
    E, e = [on_w(A_rows[eq])], [rows.lo[eq]]
    if factors is not None:  # y = X'(w - b)
        X, L = factors
        E.append(on_w(sp.csr_matrix(X).T) + on_y(-sp.identity(ky)))
        e.append(np.asarray(X).T @ b)
        # the cone: s = [te; L' y; sd (w - b)]  ->  A rows are minus the coefficients
        soc_A = sp.vstack([sp.csr_matrix((1, n)), on_y(-np.asarray(L).T), on_w(-sp.diags(sd))])
        soc_b = np.concatenate([[te_daily], np.zeros(ky), -(sd * b)])
    else:  # s = [te; B'(w - b); sd (w - b)]
        soc_A = sp.vstack([sp.csr_matrix((1, n)), on_w(-B.T), on_w(-sp.diags(sd))])
        soc_b = np.concatenate([[te_daily], -(B.T @ b), -(sd * b)])
    Em = sp.vstack(E)
    A = sp.csc_matrix(sp.vstack([Em, Gm, soc_A]))
    bvec = np.concatenate([*e, hv, soc_b])
    cones = [clarabel.ZeroConeT(Em.shape[0]), clarabel.NonnegativeConeT(Gm.shape[0]),
             clarabel.SecondOrderConeT(soc_A.shape[0])]
    q = np.concatenate([-score, np.full(n_u, float(trade_cost)), np.zeros(ky)])
    # the same argmax with the objective scaled to a unit maximum: expected returns of ~1e-4 a name sit at the
    # interior-point method's absolute gap tolerance (1e-8), and Clarabel then stops with NumericalError
    scale = float(np.abs(q).max()) if np.abs(q).max() > 0 else 1.0
    for retry in (False, True):
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        if retry:  # a numerical failure (a near-singular KKT system): more regularisation and refinement, once
            settings.static_regularization_constant = 1e-6
            settings.iterative_refinement_max_iter = 50
            settings.max_iter = 400
        sol = clarabel.DefaultSolver(sp.csc_matrix((n, n)), q / scale, A, bvec, cones, settings).solve()
        status = str(sol.status)
        if status not in ("NumericalError", "InsufficientProgress", "MaxIterations"):
            break
    if status in ("Solved", "AlmostSolved"):
        w = np.asarray(sol.x)[:m]
        return "optimal" if status == "Solved" else "optimal_inaccurate", w, float(score @ w)
    if "Infeasible" in status:
        return "infeasible", None, float("nan")
    return status.lower(), None, float("nan")
