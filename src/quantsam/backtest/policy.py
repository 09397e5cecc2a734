"""The rebalance decision of an index-enhanced backtest, as a policy object handed to the simulator.

cvxportfolio's shape: a policy turns what is known at a decision date into target weights; the simulator
(:func:`quantsam.backtest.engine.simulate`) owns time, fills at the next day's VWAP, costs and drift, and calls the
policy as ``policy(fill_day, weights_before) -> target``. :class:`IndexEnhancedPolicy` picks the candidates (the
index's constituents at t, the ``n_extra_candidates`` best-scored others — optionally only names of the index's size —
and every holding), solves the portfolio problem (:class:`~quantsam.portfolio.problem.IndexEnhancedProblem`) with
the freeze flags of the fill day, and records each decision (its status, relaxations, active industry and style
exposures, ex-ante tracking error) for the backtest's tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quantsam.errors import DataError
from quantsam.features.panel import Panel
from quantsam.portfolio.alpha import expected_alpha, period_rank_ic, shrunk_ic, zscores
from quantsam.portfolio.problem import IndexEnhancedProblem
from quantsam.portfolio.risk import RiskInputs, covariance_root, tracking_error


def transfer_coefficient(active: np.ndarray, score: np.ndarray) -> float:
    """Grinold & Kahn's transfer coefficient as used here: the cross-sectional correlation of the active weights
    with the signal's z-scores over the names considered (1 = every unit of signal became a position)."""
    z = zscores(score)
    if len(z) < 3 or np.std(active) == 0 or np.std(z) == 0:
        return float("nan")
    return float(np.corrcoef(active, z)[0, 1])


def record_decision(policy, t: int, active: np.ndarray, row: dict, cov: tuple | None) -> None:
    """Book one decision of ``policy`` (an optimiser or rule policy: ``risk``, ``onehot``, ``rebalances``,
    ``active_industry``, ``active_style``, ``on_decision``): the row — with the held portfolio's ex-ante TE when the
    risk model's covariance ``cov`` at ``t`` is known —, the active industry and style exposures; then the callback."""
    risk = policy.risk
    if risk is not None:
        policy.active_style.append(np.nan_to_num(risk.styles.values[t].astype(np.float64)).T @ active)
        if cov is not None:
            held = np.nonzero(np.abs(active) > 0)[0]
            X = risk.risk_exposures(t, held)
            row["ex_ante_te"] = tracking_error(active[held], X, cov[0], cov[1][held])
            # its industry + style part (what the attribution's factor columns realise) and the rest (statistical
            # factors and specific risk: the attribution's "specific"), for a bias statistic of each
            k = risk.n_industries + len(risk.styles.names)
            row["ex_ante_te_factor"] = tracking_error(active[held], X[:, :k], cov[0][:k, :k], np.zeros(len(held)))
            row["ex_ante_te_rest"] = float(np.sqrt(max(row["ex_ante_te"] ** 2 - row["ex_ante_te_factor"] ** 2, 0.0)))
    policy.rebalances.append(row)
    policy.active_industry.append(policy.onehot.T @ active)
    if policy.on_decision is not None:
        policy.on_decision()


class RealisedIC:
    """The signal's rank IC over the index members in each holding period that has ended: decision ``k``'s period
    runs from its fill to the next decision's fill (both at the fill price), so at decision ``t`` the periods whose
    closing fill is on or before ``t`` are known — past data only."""

    def __init__(self, sig: np.ndarray, bench_w: np.ndarray, fill_adj: np.ndarray):
        self.sig, self.bench_w, self.fill_adj = sig, bench_w, fill_adj
        self.decisions: list[tuple[int, int]] = []  # (decision row, fill row)
        self.ics: list[float] = []

    def update(self, t: int) -> list[float]:
        while len(self.ics) + 1 < len(self.decisions) and self.decisions[len(self.ics) + 1][1] <= t:
            tk, fk = self.decisions[len(self.ics)]
            fn = self.decisions[len(self.ics) + 1][1]
            with np.errstate(invalid="ignore", divide="ignore"):
                ret = self.fill_adj[fn] / self.fill_adj[fk] - 1.0
            members = self.bench_w[tk] > 0
            self.ics.append(period_rank_ic(np.where(members, self.sig[tk], np.nan), ret))
        return self.ics


class IndexEnhancedPolicy:
    """Decide the target weights of one rebalance (module docstring). ``sig``, ``bench_w``: ``[T, N]`` scores and
    end-of-day benchmark weights on ``panel``'s grid; ``onehot``: ``[N, K]`` industries; ``cap_raw`` / ``log_cap``:
    ``[T, N]`` float cap and its log; ``s0``: the panel row of the simulation's first day (fill days are counted
    from it); ``risk``: the risk inputs (style bounds, TE target, diagnostics) or None."""

    def __init__(self, sig: np.ndarray, panel: Panel, bench_w: np.ndarray, onehot: np.ndarray, cap_raw: np.ndarray,
                 log_cap: np.ndarray, portfolio_cfg, risk: RiskInputs | None, style_cols: list[int], s0: int,
                 n_candidates: int, on_decision: Callable[[], None] | None = None, cost_per_side: float = 0.0,
                 horizon: int = 5, fill_adj: np.ndarray | None = None):
        self.sig, self.panel, self.bench_w, self.onehot = sig, panel, bench_w, onehot
        self.cap_raw, self.log_cap, self.risk, self.style_cols, self.s0 = cap_raw, log_cap, risk, style_cols, s0
        self.n_extra = int(portfolio_cfg.n_extra_candidates)
        self.neighbours = str(portfolio_cfg.extra_pool) == "neighbours"
        self.te = portfolio_cfg.te_target is not None
        self.n_ind = onehot.shape[1]
        self.k_risk = self.n_ind + len(risk.styles.names) + int(getattr(portfolio_cfg, "risk_stat_factors", 0) or 0) \
            if self.te else 0
        self.prob = IndexEnhancedProblem(n_candidates, self.n_ind, portfolio_cfg, self.k_risk)
        self.on_decision = on_decision
        # portfolio.objective=alpha: IC x specific vol x z-score (portfolio.alpha) net of cost_aversion x the costs
        self.alpha = str(getattr(portfolio_cfg, "objective", "score")) == "alpha"
        self.cfg = portfolio_cfg
        self.trade_cost = float(portfolio_cfg.cost_aversion) * float(cost_per_side) if self.alpha else 0.0
        self.horizon = int(horizon)
        if self.alpha and (not self.te or fill_adj is None):
            raise ValueError("portfolio.objective=alpha needs the risk model's specific variances "
                             "(portfolio.te_target) and the fill prices (fill_adj)")
        self.realised = RealisedIC(sig, bench_w, fill_adj) if self.alpha else None
        self.rebalances: list[dict] = []  # one row per decision
        self.active_industry: list[np.ndarray] = []
        self.active_style: list[np.ndarray] = []

    def candidates(self, t: int, w_pre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(candidate columns, constituent mask) at decision row ``t``."""
        panel, score = self.panel, self.sig[t]
        cons = self.bench_w[t] > 0
        elig = ~cons & panel.traded[t] & np.isfinite(score)
        if self.neighbours:  # out-of-index names of the index's own size: float cap within its constituents' range
            caps = self.cap_raw[t]
            lo, hi = np.nanmin(np.where(cons, caps, np.nan)), np.nanmax(np.where(cons, caps, np.nan))
            elig &= (caps >= lo) & (caps <= hi) & (panel.age[t] >= 63) & ~panel.is_st[t]
        extra = np.nonzero(elig)[0]
        if len(extra) > self.n_extra:
            extra = extra[np.argsort(-score[extra], kind="stable")[:self.n_extra]]
        return np.union1d(np.union1d(np.nonzero(cons)[0], extra), np.nonzero(w_pre > 1e-12)[0]), cons

    def __call__(self, f_local: int, w_pre: np.ndarray) -> np.ndarray:
        panel, risk = self.panel, self.risk
        f = f_local + self.s0
        t = f - 1
        score = self.sig[t]
        cand, cons = self.candidates(t, w_pre)
        if len(cand) > self.prob.n:
            self.prob = IndexEnhancedProblem(len(cand) + 64, self.n_ind, self.prob.c, self.k_risk)
        first = not (w_pre > 1e-12).any()
        cov = risk.covariance(t) if risk is not None and t - risk.row0 >= 21 else None
        if self.te and cov is None:
            raise DataError(f"rebalance {panel.dates[t].date()}: fewer than 21 days of factor returns before it. Fix: "
                            "a later backtest.start or an earlier data.start (portfolio.risk_history)")
        objective_score, ic = score[cand], float("nan")
        X_cand, L = (risk.risk_exposures(t, cand), covariance_root(cov[0])) if self.te else (None, None)
        if self.alpha:
            self.realised.decisions.append((t, f))
            ic = shrunk_ic(self.realised.update(t), float(self.cfg.alpha_ic_prior), float(self.cfg.alpha_ic_prior_weight),
                           int(self.cfg.alpha_ic_window))
            objective_score = expected_alpha(score[cand], cov[1][cand], ic, self.horizon)
        res = self.prob.solve(
            score=objective_score, trade_cost=self.trade_cost, bench_weight=self.bench_w[t, cand],
            in_index=cons[cand].astype(float),
            industry_onehot=self.onehot[cand], size=self.log_cap[t, cand], prev_weight=None if first else w_pre[cand],
            suspended=~panel.traded[f, cand], limit_up=panel.limit_up_one[f, cand],
            limit_down=panel.limit_down_one[f, cand], date=str(panel.dates[t].date()),
            styles=risk.styles.values[t, cand][:, self.style_cols] if self.style_cols else None,
            risk=(X_cand @ L, cov[1][cand]) if self.te else None, risk_factors=(X_cand, L) if self.te else None)
        target = np.zeros(len(w_pre))
        target[cand] = res.weights
        row = {"date": panel.dates[t], "fill_date": panel.dates[f], "fill": f_local, "status": res.status,
               "relaxed": ",".join(res.relaxed), "n_candidates": len(cand), "objective": res.objective,
               "index_weight": float(target[cons].sum())}
        active = target - self.bench_w[t]
        row["tc"] = transfer_coefficient(active[cand], score[cand])
        if self.alpha:
            row["ic_forecast"] = ic
        record_decision(self, t, active, row, cov)
        return target
