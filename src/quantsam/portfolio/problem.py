"""Index-enhanced portfolio optimisation, compiled once with ``cp.Parameter`` (DPP) and re-solved every rebalance.

Maximise ``score' w`` subject to (methodology "Index-enhanced portfolios"):

* ``w >= 0``, ``sum(w) == 1``;
* weight in index constituents ``in_index' w >= min_index_weight``;
* ``|w_i - b_i| <= max_active`` for every candidate (b_i = 0 for non-constituents);
* industry active exposure ``|X' w - X' b| <= industry_tol`` for every industry;
* size active exposure ``|s' w - s' b| <= size_tol``, s = log float cap z-scored over the candidates;
* two-sided turnover ``sum |w - w_prev| <= max_turnover`` (no limit on the first rebalance);
* untradable names frozen: suspended -> ``w_i == w_prev_i``; one-price limit-up -> ``w_i <= w_prev_i``;
  one-price limit-down -> ``w_i >= w_prev_i``.

The per-name rules are box bounds ``lb <= w <= ub`` computed in numpy: a tradable name gets
``[max(0, b - max_active), b + max_active]``; a frozen name keeps as much of that box as its freeze allows (a name
that cannot be traded cannot be forced into its active band). Products of two parameters are not DPP, so the
benchmark's exposures ``X' b`` and ``s' b`` are parameters of their own. Relaxing a constraint group only changes
parameter values (its tolerance becomes non-binding), so the relaxation chain re-uses the compiled problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from quantsam.config.schema import PortfolioConfig
from quantsam.crosssection import zscore_vector
from quantsam.errors import InfeasibleError

log = logging.getLogger(__name__)

RELAX_ORDER = ("turnover", "size", "industry")
_LOOSE = 1e6  # a tolerance that never binds (weights are in [0, 1])


@dataclass
class PortfolioResult:
    weights: np.ndarray
    status: str
    relaxed: list[str] = field(default_factory=list)
    objective: float = float("nan")
    solver: str = ""


def box_bounds(bench: np.ndarray, prev: np.ndarray, max_active: float, suspended: np.ndarray,
               limit_up: np.ndarray, limit_down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-name bounds from the active band and the freeze rules (see module docstring)."""
    lo = np.maximum(0.0, bench - max_active)
    hi = bench + max_active
    lb, ub = lo.copy(), hi.copy()
    up = limit_up & ~suspended  # no buy: at most the current weight
    ub[up] = np.minimum(hi[up], prev[up])
    lb[up] = np.minimum(lo[up], ub[up])
    dn = limit_down & ~suspended & ~limit_up  # no sell: at least the current weight
    lb[dn] = np.maximum(lo[dn], prev[dn])
    ub[dn] = np.maximum(hi[dn], lb[dn])
    lb[suspended] = prev[suspended]
    ub[suspended] = prev[suspended]
    return lb, ub


class IndexEnhancedProblem:
    """The problem for up to ``n_assets`` candidates and ``n_industries`` industries, compiled on the first solve and
    re-used (cvxpy caches the DPP canonicalisation; later solves only update parameter values)."""

    def __init__(self, n_assets: int, n_industries: int, cfg: PortfolioConfig | None = None):
        """``cfg``: the ``portfolio`` config (a :class:`~quantsam.config.schema.PortfolioConfig` or the composed
        DictConfig); its schema holds the defaults."""
        self.n, self.k = int(n_assets), int(n_industries)
        self.c = PortfolioConfig() if cfg is None else cfg
        n, k = self.n, self.k
        self.w = cp.Variable(n, name="w")
        self.p_score = cp.Parameter(n, name="score")
        self.p_in_index = cp.Parameter(n, nonneg=True, name="in_index")
        self.p_X = cp.Parameter((n, k), nonneg=True, name="industry_onehot")
        self.p_ind_b = cp.Parameter(k, name="industry_bench_exposure")
        self.p_s = cp.Parameter(n, name="size")
        self.p_s_b = cp.Parameter(name="size_bench_exposure")
        self.p_prev = cp.Parameter(n, nonneg=True, name="prev_weight")
        self.p_lb = cp.Parameter(n, nonneg=True, name="lower")
        self.p_ub = cp.Parameter(n, nonneg=True, name="upper")
        self.p_ind_tol = cp.Parameter(nonneg=True, name="industry_tol")
        self.p_size_tol = cp.Parameter(nonneg=True, name="size_tol")
        self.p_turnover = cp.Parameter(nonneg=True, name="max_turnover")
        w = self.w
        # |a| <= t written as two linear inequalities, and turnover through a slack u >= |w - w_prev|: a plain LP
        # (cvxpy 1.9's abs() canonicalisation of scalar-parameter expressions fails for the LP solvers SCIPY/HiGHS)
        self.u = cp.Variable(n, nonneg=True, name="trade")
        ind_active = self.p_X.T @ w - self.p_ind_b
        size_active = self.p_s @ w - self.p_s_b
        self.groups = {
            "budget": [cp.sum(w) == 1],
            "bounds": [w >= self.p_lb, w <= self.p_ub],
            "index_weight": [self.p_in_index @ w >= float(self.c.min_index_weight)],
            "industry": [ind_active <= self.p_ind_tol, -ind_active <= self.p_ind_tol],
            "size": [size_active <= self.p_size_tol, -size_active <= self.p_size_tol],
            "turnover": [self.u >= w - self.p_prev, self.u >= self.p_prev - w, cp.sum(self.u) <= self.p_turnover],
        }
        self.problem = cp.Problem(cp.Maximize(self.p_score @ w), [c for g in self.groups.values() for c in g])
        assert self.problem.is_dcp(dpp=True)

    def _pad(self, x, fill=0.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.full(self.n, fill)
        out[: len(x)] = x
        return out

    def solve(self, score, bench_weight, in_index, industry_onehot, size, prev_weight=None, suspended=None,
              limit_up=None, limit_down=None, date=None) -> PortfolioResult:
        """One rebalance over ``m <= n_assets`` candidates (arrays of length m; ``industry_onehot`` is ``[m, K']``
        with ``K' <= n_industries``; ``size`` = log float cap, z-scored here over the candidates; ``prev_weight=None``
        means the first rebalance: no turnover limit, no frozen names). If infeasible, relax turnover, then size,
        then industry; if still infeasible, hold ``prev_weight`` (``status='held'``)."""
        m = len(score)
        if m > self.n:
            raise ValueError(f"{m} candidates exceed the compiled size n_assets={self.n}")
        X = np.asarray(industry_onehot, dtype=np.float64)
        if X.shape[0] != m or X.shape[1] > self.k:
            raise ValueError(f"industry_onehot has shape {X.shape}; expected ({m}, <= {self.k})")
        first = prev_weight is None
        prev = np.zeros(m) if first else np.asarray(prev_weight, dtype=np.float64)
        zeros = np.zeros(m, dtype=bool)
        susp = zeros if first or suspended is None else np.asarray(suspended, bool)
        lu = zeros if first or limit_up is None else np.asarray(limit_up, bool)
        ld = zeros if first or limit_down is None else np.asarray(limit_down, bool)
        b = np.asarray(bench_weight, dtype=np.float64)
        s = zscore_vector(np.asarray(size, dtype=np.float64), np.ones(m, bool))
        lb, ub = box_bounds(b, prev, float(self.c.max_active), susp, lu, ld)
        sc = np.asarray(score, dtype=np.float64)
        sc = np.where(np.isfinite(sc), sc, np.nanmin(sc) if np.isfinite(sc).any() else 0.0)
        self.p_score.value = self._pad(sc)
        self.p_in_index.value = self._pad(np.asarray(in_index, dtype=np.float64))
        Xp = np.zeros((self.n, self.k))
        Xp[:m, : X.shape[1]] = X
        self.p_X.value = Xp
        self.p_ind_b.value = Xp[:m].T @ b
        self.p_s.value = self._pad(s)
        self.p_s_b.value = float(s @ b)
        self.p_prev.value = self._pad(prev)
        self.p_lb.value = self._pad(lb)
        self.p_ub.value = self._pad(ub)  # padding: 0 <= w <= 0
        tol = {"turnover": 2.0 + 1e-9 if first else float(self.c.max_turnover), "size": float(self.c.size_tol),
               "industry": float(self.c.industry_tol)}
        relaxed: list[str] = []
        for step in (None, *RELAX_ORDER):
            if step is not None:
                if step == "turnover" and first:
                    continue
                relaxed.append(step)
                tol[step] = 2.0 + 1e-9 if step == "turnover" else _LOOSE
                log.info("rebalance %s: infeasible, relaxing %s", date, step)
            self.p_turnover.value = tol["turnover"]
            self.p_size_tol.value = tol["size"]
            self.p_ind_tol.value = tol["industry"]
            status, solver = self._solve()
            if status in ("optimal", "optimal_inaccurate"):
                w = np.clip(np.asarray(self.w.value)[:m], 0.0, None)
                return PortfolioResult(w / w.sum(), status, relaxed, float(self.problem.value), solver)
        binding = self._binding_group(lb, ub, in_index)
        if first:
            raise InfeasibleError(f"rebalance {date}: no feasible portfolio even with turnover, size and industry "
                                  f"relaxed; binding constraint group: {binding}. Fix: more candidates "
                                  "(portfolio.n_extra_candidates) or a lower portfolio.min_index_weight")
        log.warning("rebalance %s: infeasible after relaxing %s (binding: %s); holding the previous weights",
                    date, relaxed, binding)
        return PortfolioResult(prev.copy(), "held", relaxed, float(sc @ prev), "")

    def _solve(self) -> tuple[str, str]:
        for solver in (self.c.solver, self.c.fallback_solver):
            if not solver:
                continue
            try:
                self.problem.solve(solver=solver)
                return self.problem.status, solver
            except (cp.error.SolverError, ValueError) as e:  # cvxpy 1.9 HiGHS interface may raise ValueError
                log.warning("solver %s failed (%s); trying the fallback", solver, e)
        return "solver_error", ""

    def _binding_group(self, lb, ub, in_index) -> str:
        """Name the constraint group that makes the problem infeasible, by cheap necessary conditions."""
        if lb.sum() > 1 + 1e-9:
            return "bounds (frozen/lower bounds sum above 1)"
        if ub.sum() < 1 - 1e-9:
            return "bounds (upper bounds sum below 1: too few candidates or max_active too tight)"
        if (ub * np.asarray(in_index)).sum() < float(self.c.min_index_weight) - 1e-9:
            return "index_weight (constituents cannot reach min_index_weight)"
        return "bounds/index_weight jointly"
