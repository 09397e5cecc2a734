"""Index-enhanced portfolio optimisation, compiled once with ``cp.Parameter`` (DPP) and re-solved every rebalance.

Maximise ``score' w`` subject to (methodology "Index-enhanced portfolios"):

* ``w >= 0``, ``sum(w) == 1``;
* weight in index constituents ``in_index' w >= min_index_weight``;
* ``|w_i - b_i| <= max_active`` for every candidate (b_i = 0 for non-constituents);
* industry active exposure ``|X' w - X' b| <= industry_tol`` for every industry;
* size active exposure ``|s' w - s' b| <= size_tol``, s = log float cap z-scored over the candidates;
* two-sided turnover ``sum |w - w_prev| <= max_turnover`` (no limit on the first rebalance);
* optional risk control: active exposure ``|S_j' (w - b)| <= style_bounds[j]`` to each style j (Barra-style
  exposures, :mod:`quantsam.features.styles`), and an ex-ante tracking error
  ``sqrt(252 ((w-b)' X F X' (w-b) + sum_i d_i (w_i-b_i)^2)) <= te_target`` through a factor risk model
  (:mod:`.risk`), written as a second-order cone ``||[B'(w - b); sqrt(d) (w - b)]|| <= te / sqrt(252)``
  with ``B = X L``, ``F = L L'`` — the problem becomes an SOCP, compiled once like the LP;
* untradable names frozen: suspended -> ``w_i == w_prev_i``; one-price limit-up -> ``w_i <= w_prev_i``;
  one-price limit-down -> ``w_i >= w_prev_i``.

The per-name rules are box bounds ``lb <= w <= ub`` computed in numpy: a tradable name gets
``[max(0, b - max_active), b + max_active]``; a frozen name keeps as much of that box as its freeze allows (a name
that cannot be traded cannot be forced into its active band). Products of two parameters are not DPP, so the
benchmark's exposures ``X' b`` and ``s' b`` are parameters of their own. Relaxing a constraint group only changes
parameter values (its tolerance becomes non-binding), so the relaxation chain re-uses the compiled problem.

:class:`IndexEnhancedProblem` owns the model's rules (bounds, tolerances, the relaxation chain, the infeasibility
diagnosis); one solve of the chain is its backend's, behind one interface ``solve(RebalanceInputs, tol, m,
new_inputs)`` (:data:`BACKENDS`, ``portfolio.backend``): :class:`CvxpyBackend` (the model in cvxpy, the reference) or
:class:`DirectBackend` (the same matrices straight to HiGHS / Clarabel).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from quantsam.config.schema import PortfolioConfig
from quantsam.crosssection import zscore_vector
from quantsam.errors import InfeasibleError, SolverFailure

log = logging.getLogger(__name__)

RELAX_ORDER = ("turnover", "tracking_error", "style", "size", "industry")
#: portfolio.relax=graded: before RELAX_ORDER, widen the risk bounds (size, styles, tracking error, industries) in steps,
#: then allow a bounded extra turnover — (label, risk tolerance multiplier, turnover multiplier). A drifted portfolio then drifts
#: back over a few rebalances instead of being rebuilt at once (turnover_first frees turnover entirely at the first
#: infeasibility: on real CSI500 that cost 4-7%/yr in trading, docs/results/real_csi500_cpu)
GRADED_STEPS = (("risk x1.5", 1.5, 1.0), ("risk x2", 2.0, 1.0), ("risk x3", 3.0, 1.0), ("turnover x1.5", 3.0, 1.5),
                ("turnover x2", 3.0, 2.0))
_LOOSE = 1e6  # a tolerance that never binds (weights are in [0, 1])


#: solver statuses (cvxpy's names; the direct paths map theirs onto them) that mean the constraints cannot be met
INFEASIBLE = ("infeasible", "infeasible_inaccurate")


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

    def __init__(self, n_assets: int, n_industries: int, cfg: PortfolioConfig | dict | None = None,
                 n_risk_factors: int = 0):
        """``cfg``: the ``portfolio`` config (a :class:`~quantsam.config.schema.PortfolioConfig`, the composed
        DictConfig, or a plain dict of fields to change from the schema's defaults). ``n_risk_factors``: the risk
        model's factor count, needed when
        ``cfg.te_target`` is set."""
        self.n, self.k = int(n_assets), int(n_industries)
        self.c = PortfolioConfig(**(cfg or {})) if cfg is None or isinstance(cfg, dict) else cfg
        self.style_names = list(self.c.style_bounds or {})
        self.te = self.c.te_target is not None
        if self.te and n_risk_factors < 1:
            raise ValueError("portfolio.te_target needs a risk model: pass n_risk_factors (its factor count)")
        self.backend = str(self.c.backend)
        if self.backend not in BACKENDS:
            raise ValueError(f"portfolio.backend={self.backend!r}: one of {sorted(BACKENDS)}")
        self._backend = BACKENDS[self.backend](self.n, self.k, self.c, self.style_names, int(n_risk_factors))

    def solve(self, score, bench_weight, in_index, industry_onehot, size, prev_weight=None, suspended=None,
              limit_up=None, limit_down=None, date=None, styles=None, risk=None, trade_cost: float = 0.0,
              risk_factors=None) -> PortfolioResult:
        """One rebalance over ``m <= n_assets`` candidates (arrays of length m; ``industry_onehot`` is ``[m, K']``
        with ``K' <= n_industries``; ``size`` = log float cap, z-scored here over the candidates; ``prev_weight=None``
        means the first rebalance: no turnover limit, no frozen names). ``styles``: ``[m, len(style_bounds)]``
        exposures (NaN -> 0, neutral) when style bounds are configured; ``risk``: ``(B [m, K], specific variance
        [m])`` daily, when ``te_target`` is. ``trade_cost``: the objective becomes ``score' w - trade_cost *
        sum|w - prev|`` (scores in expected-return units, :mod:`quantsam.portfolio.alpha`). ``risk_factors``:
        ``(X, L)`` with ``B = X L``, for the direct backend's factor-form cone (the same constraint). If infeasible
        (``portfolio.relax=turnover_first``), relax turnover, then the tracking error, the styles, size and
        industry; ``relax=graded`` first widens the risk bounds (industries included) x1.5, x2, x3 and then allows
        turnover x1.5, x2 (:data:`GRADED_STEPS`) before that chain; if still infeasible, hold ``prev_weight``
        (``status='held'``)."""
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
        tol = {"turnover": 2.0 + 1e-9 if first else float(self.c.max_turnover), "size": float(self.c.size_tol),
               "industry": float(self.c.industry_tol), "style": 1.0,
               "tracking_error": 1.0 if not self.te else float(self.c.te_target) / np.sqrt(252.0)}
        data = RebalanceInputs(score=sc, b=b, in_index=np.asarray(in_index, dtype=np.float64), X=X, s=s, lb=lb, ub=ub,
                               prev=None if first else prev,
                               S=np.nan_to_num(np.asarray(styles, dtype=np.float64)) if self.style_names else None,
                               risk=risk, trade_cost=0.0 if first else float(trade_cost), factors=risk_factors)
        relaxed: list[str] = []
        base = dict(tol)
        graded = [] if str(self.c.relax) != "graded" else \
            [g for g in GRADED_STEPS if not (first and g[2] != 1.0)]
        for step in (None, *graded, *RELAX_ORDER):
            if isinstance(step, tuple):
                label, risk_x, turn_x = step
                relaxed.append(label)
                for k in ("size", "style", "tracking_error", "industry"):
                    tol[k] = base[k] * risk_x
                tol["turnover"] = base["turnover"] * turn_x
                log.info("rebalance %s: infeasible, %s", date, label)
            elif step is not None:
                if (step == "turnover" and first) or (step == "style" and not self.style_names) or (
                        step == "tracking_error" and not self.te):
                    continue
                relaxed.append(step)
                tol[step] = 2.0 + 1e-9 if step == "turnover" else _LOOSE
                log.info("rebalance %s: infeasible, relaxing %s", date, step)
            status, w, objective, solver = self._solve_step(data, tol, m, first=step is None)
            if status in ("optimal", "optimal_inaccurate"):
                w = np.clip(w, 0.0, None)
                return PortfolioResult(w / w.sum(), status, relaxed, objective, solver)
            if status not in INFEASIBLE:  # a numerical failure says nothing about the constraints: never relax on it
                msg = (f"rebalance {date}: the solver returned '{status}' ({solver or 'no solver succeeded'}) with "
                       f"{', '.join(relaxed) or 'no constraint'} relaxed — a numerical failure, not infeasibility, so "
                       "nothing is loosened on its account")
                if first:
                    raise SolverFailure(f"{msg}. Fix: another path (portfolio.backend=cvxpy with portfolio.solver="
                                        "CLARABEL or HIGHS), or check the scores and risk inputs of that date")
                log.warning("%s; holding the previous weights (status 'solver_failed', counted in the backtest's "
                            "failed_share)", msg)
                return PortfolioResult(prev.copy(), "solver_failed", relaxed, float(sc @ prev), solver)
        binding = self._binding_group(lb, ub, in_index)
        if first:
            raise InfeasibleError(f"rebalance {date}: no feasible portfolio even with {', '.join(RELAX_ORDER[1:])} "
                                  f"relaxed; binding constraint group: {binding}. Fix: more candidates "
                                  "(portfolio.n_extra_candidates) or a lower portfolio.min_index_weight")
        log.warning("rebalance %s: infeasible after relaxing %s (binding: %s); holding the previous weights",
                    date, relaxed, binding)
        return PortfolioResult(prev.copy(), "held", relaxed, float(sc @ prev), "")

    def _solve_step(self, d: RebalanceInputs, tol: dict, m: int, first: bool
                    ) -> tuple[str, np.ndarray | None, float, str]:
        """One solve with the tolerances ``tol`` by the configured backend: (status, weights, objective, solver)."""
        return self._backend.solve(d, tol, m, new_inputs=first)

    def _binding_group(self, lb, ub, in_index) -> str:
        """Name the constraint group that makes the problem infeasible, by cheap necessary conditions."""
        if lb.sum() > 1 + 1e-9:
            return "bounds (frozen/lower bounds sum above 1)"
        if ub.sum() < 1 - 1e-9:
            return "bounds (upper bounds sum below 1: too few candidates or max_active too tight)"
        if (ub * np.asarray(in_index)).sum() < float(self.c.min_index_weight) - 1e-9:
            return "index_weight (constituents cannot reach min_index_weight)"
        return "bounds/index_weight jointly"


@dataclass
class RebalanceInputs:
    """One rebalance's data as every backend takes it: scores, benchmark weights, index membership, industry
    one-hot ``X``, z-scored size ``s``, the box bounds, previous weights (None on the first rebalance), style
    exposures ``S`` (None without style bounds), ``risk`` = (loadings B, specific variance) with a TE target and the
    objective's ``trade_cost``."""

    score: np.ndarray
    b: np.ndarray
    in_index: np.ndarray
    X: np.ndarray
    s: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    prev: np.ndarray | None
    S: np.ndarray | None
    risk: tuple | None
    trade_cost: float = 0.0  # per unit of two-sided turnover, in the scores' units (0: the AI-84 objective)
    factors: tuple | None = None  # (exposures X [m, K], L with L L' = F): the TE cone in factor form (direct backend)


def style_bounds(cfg: PortfolioConfig, names: list[str]) -> np.ndarray:
    return np.array([float(cfg.style_bounds[j]) for j in names])


class CvxpyBackend:
    """The model written in cvxpy with ``cp.Parameter`` (DPP), compiled once for ``n`` candidates and re-solved by
    ``portfolio.solver`` (then ``fallback_solver``): the reference formulation (tests compare the direct backend
    with it)."""

    def __init__(self, n: int, k: int, cfg: PortfolioConfig, style_names: list[str], n_risk_factors: int):
        self.n, self.k, self.c, self.style_names = n, k, cfg, style_names
        self.te = cfg.te_target is not None
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
        if self.style_names:
            ns = len(self.style_names)
            self.p_S = cp.Parameter((n, ns), name="style_exposure")
            self.p_S_b = cp.Parameter(ns, name="style_bench_exposure")
            self.p_style_tol = cp.Parameter(ns, nonneg=True, name="style_tol")
            style_active = self.p_S.T @ w - self.p_S_b
            self.groups["style"] = [style_active <= self.p_style_tol, -style_active <= self.p_style_tol]
        if self.te:
            kr = int(n_risk_factors)
            self.p_B = cp.Parameter((n, kr), name="risk_loadings")
            self.p_B_b = cp.Parameter(kr, name="risk_bench_loadings")
            self.p_sd = cp.Parameter(n, nonneg=True, name="specific_vol")
            self.p_sd_b = cp.Parameter(n, name="specific_vol_x_bench")
            self.p_te = cp.Parameter(nonneg=True, name="daily_te")
            active_risk = cp.hstack([self.p_B.T @ w - self.p_B_b, cp.multiply(self.p_sd, w) - self.p_sd_b])
            self.groups["tracking_error"] = [cp.norm(active_risk, 2) <= self.p_te]
        self.p_cost = cp.Parameter(nonneg=True, name="trade_cost")
        self.problem = cp.Problem(cp.Maximize(self.p_score @ w - self.p_cost * cp.sum(self.u)),
                                  [c for g in self.groups.values() for c in g])
        assert self.problem.is_dcp(dpp=True)

    def solve(self, d: RebalanceInputs, tol: dict, m: int, new_inputs: bool
              ) -> tuple[str, np.ndarray | None, float, str]:
        if new_inputs:
            self._set_parameters(d, m)
        self.p_turnover.value = tol["turnover"]
        self.p_cost.value = float(d.trade_cost) if d.prev is not None else 0.0
        self.p_size_tol.value = tol["size"]
        self.p_ind_tol.value = tol["industry"]
        if self.style_names:
            self.p_style_tol.value = style_bounds(self.c, self.style_names) * tol["style"]
        if self.te:
            self.p_te.value = tol["tracking_error"]
        status, solver = self._solve()
        if status not in ("optimal", "optimal_inaccurate"):
            return status, None, float("nan"), solver
        w = np.asarray(self.w.value)[:m]
        return status, w, float(d.score @ w), solver

    def _set_parameters(self, d: RebalanceInputs, m: int) -> None:
        """The cvxpy model's parameter values for one rebalance (padded to the compiled size)."""
        sc, b, X, s, prev, lb, ub = d.score, d.b, d.X, d.s, d.prev, d.lb, d.ub
        prev = np.zeros(m) if prev is None else prev
        in_index, styles, risk = d.in_index, d.S, d.risk
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
        if self.style_names:
            S = np.zeros((self.n, len(self.style_names)))
            S[:m] = np.nan_to_num(np.asarray(styles, dtype=np.float64))
            self.p_S.value = S
            self.p_S_b.value = S[:m].T @ b
        if self.te:
            B, spec = risk
            Bp = np.zeros(self.p_B.shape)
            Bp[:m] = B
            sd = np.sqrt(np.clip(np.nan_to_num(np.asarray(spec, dtype=np.float64)), 0.0, None))
            self.p_B.value = Bp
            self.p_B_b.value = Bp[:m].T @ b
            self.p_sd.value = self._pad(sd)
            self.p_sd_b.value = self._pad(sd * b)

    def _pad(self, x, fill=0.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.full(self.n, fill)
        out[: len(x)] = x
        return out

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



class DirectBackend:
    """The same model's matrices handed straight to HiGHS (LP; warm-started between rebalances) or Clarabel (SOCP,
    with a TE target) — no cvxpy compilation (:mod:`quantsam.portfolio.direct`)."""

    def __init__(self, n: int, k: int, cfg: PortfolioConfig, style_names: list[str], n_risk_factors: int):
        self.c, self.style_names = cfg, style_names
        self.te = cfg.te_target is not None
        self._warm = None  # the LP's HiGHS model, re-used while the constraint matrix is unchanged

    def solve(self, d: RebalanceInputs, tol: dict, m: int, new_inputs: bool
              ) -> tuple[str, np.ndarray | None, float, str]:
        from quantsam.portfolio.direct import WarmLP, range_rows, solve_lp_highs, solve_socp_clarabel

        rows = range_rows(d.b, d.in_index, float(self.c.min_index_weight), d.X, d.s, d.S, tol,
                          style_bounds(self.c, self.style_names) if self.style_names else None)
        if not self.te:
            self._warm = self._warm or WarmLP()
            return (*solve_lp_highs(d.score, d.lb, d.ub, rows, d.prev, tol["turnover"], self._warm, d.trade_cost),
                    "HIGHS (direct)")
        B, spec = d.risk
        sd = np.sqrt(np.clip(np.nan_to_num(np.asarray(spec, dtype=np.float64)), 0.0, None))
        return (*solve_socp_clarabel(d.score, d.lb, d.ub, rows, d.prev, tol["turnover"], B, sd, d.b,
                                     tol["tracking_error"], d.trade_cost, d.factors), "CLARABEL (direct)")


#: portfolio.backend -> the class that solves one step of the relaxation chain (``solve(inputs, tol, m, new_inputs)``)
BACKENDS = {"cvxpy": CvxpyBackend, "direct": DirectBackend}
