"""The index-enhanced problem: constraints hold, optimum equals an independent scipy LP, freeze rules, relaxations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from quantsam.config.schema import PortfolioConfig
from quantsam.crosssection import zscore_vector
from quantsam.errors import InfeasibleError
from quantsam.portfolio import IndexEnhancedProblem

C = PortfolioConfig(min_index_weight=0.8, max_active=0.05, industry_tol=0.03, size_tol=0.3, max_turnover=0.4)


def random_case(rng, m=40, k=4, n_index=30):
    ind = rng.integers(0, k, m)
    ind[:k] = np.arange(k)
    X = np.eye(k)[ind]
    b = np.zeros(m)
    b[:n_index] = rng.dirichlet(np.ones(n_index) * 3)
    return dict(score=rng.normal(size=m), bench_weight=b, in_index=(b > 0).astype(float), industry_onehot=X,
                size=rng.normal(22, 1, m))


def check_constraints(w, case, c: PortfolioConfig, prev=None, susp=None, lu=None, ld=None, tol=1e-6):
    b, X = case["bench_weight"], case["industry_onehot"]
    s = zscore_vector(case["size"], np.ones(len(b), bool))
    assert (w >= -tol).all() and abs(w.sum() - 1) < tol
    assert case["in_index"] @ w >= c.min_index_weight - tol
    free = np.ones(len(w), bool) if susp is None else ~(susp | lu | ld)
    assert (np.abs(w - b)[free] <= c.max_active + tol).all()
    assert (np.abs(X.T @ (w - b)) <= c.industry_tol + tol).all()
    assert abs(s @ (w - b)) <= c.size_tol + tol
    if prev is not None:
        assert np.abs(w - prev).sum() <= c.max_turnover + tol
        assert np.allclose(w[susp], prev[susp], atol=tol)
        assert (w[lu] <= prev[lu] + tol).all() and (w[ld] >= prev[ld] - tol).all()


def scipy_lp(case, c: PortfolioConfig, prev=None, lb=None, ub=None):
    """Independent LP: variables [w (m), u (m)], u >= |w - prev|; maximise score'w with scipy's HiGHS."""
    b, X = case["bench_weight"], case["industry_onehot"]
    m, k = X.shape
    s = zscore_vector(case["size"], np.ones(m, bool))
    lb = np.maximum(0, b - c.max_active) if lb is None else lb
    ub = b + c.max_active if ub is None else ub
    Z = np.zeros(m)
    A_ub, b_ub = [np.r_[-case["in_index"], Z]], [-c.min_index_weight]
    for j in range(k):
        A_ub += [np.r_[X[:, j], Z], np.r_[-X[:, j], Z]]
        b_ub += [c.industry_tol + X[:, j] @ b, c.industry_tol - X[:, j] @ b]
    A_ub += [np.r_[s, Z], np.r_[-s, Z]]
    b_ub += [c.size_tol + s @ b, c.size_tol - s @ b]
    bounds = [(lo, hi) for lo, hi in zip(lb, ub, strict=True)] + [(0, None)] * m
    if prev is not None:
        eye = np.eye(m)
        for i in range(m):
            A_ub += [np.r_[eye[i], -eye[i]], np.r_[-eye[i], -eye[i]]]
            b_ub += [prev[i], -prev[i]]
        A_ub.append(np.r_[Z, np.ones(m)])
        b_ub.append(c.max_turnover)
    res = linprog(np.r_[-case["score"], Z], A_ub=np.array(A_ub), b_ub=np.array(b_ub),
                  A_eq=np.array([np.r_[np.ones(m), Z]]), b_eq=[1.0], bounds=bounds, method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(6))
def test_constraints_hold_and_optimum_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    case = random_case(rng)
    prob = IndexEnhancedProblem(50, 6, C)  # padded: 40 candidates in a 50-slot problem
    first = prob.solve(**case)
    assert first.status == "optimal" and first.relaxed == []
    check_constraints(first.weights, case, C)
    assert case["score"] @ first.weights == pytest.approx(scipy_lp(case, C), abs=1e-6)
    case2 = {**case, "score": rng.normal(size=40)}  # next rebalance: turnover-limited
    second = prob.solve(**case2, prev_weight=first.weights)
    no = np.zeros(40, bool)
    check_constraints(second.weights, case2, C, first.weights, no, no, no)
    assert case2["score"] @ second.weights == pytest.approx(scipy_lp(case2, C, prev=first.weights), abs=1e-6)


def test_frozen_names():
    rng = np.random.default_rng(11)
    case = random_case(rng)
    prob = IndexEnhancedProblem(40, 4, C)
    prev = prob.solve(**case).weights
    susp, lu, ld = np.zeros(40, bool), np.zeros(40, bool), np.zeros(40, bool)
    order = np.argsort(-prev)
    susp[order[0]], lu[order[1]], ld[order[2]] = True, True, True
    case2 = {**case, "score": -case["score"]}  # scores flip: the optimiser wants to sell winners, buy losers
    case2["score"][order[1]] = 10.0  # would love to buy the limit-up name
    case2["score"][order[2]] = -10.0  # and to sell the limit-down name
    res = prob.solve(**case2, prev_weight=prev, suspended=susp, limit_up=lu, limit_down=ld)
    check_constraints(res.weights, case2, C, prev, susp, lu, ld)
    assert res.weights[order[0]] == pytest.approx(prev[order[0]], abs=1e-7)
    assert res.weights[order[1]] <= prev[order[1]] + 1e-7
    assert res.weights[order[2]] >= prev[order[2]] - 1e-7


def test_relaxation_chain_and_hold():
    rng = np.random.default_rng(5)
    case = random_case(rng)
    prob = IndexEnhancedProblem(40, 4, C)
    # previous portfolio all in non-constituents: reaching 80% in the index needs turnover > 0.4
    prev = np.zeros(40)
    prev[30:] = 0.1
    res = prob.solve(**case, prev_weight=prev)
    assert res.relaxed == ["turnover"] and res.status == "optimal"
    # plus a suspended giant position in the smallest name: the size exposure cannot be met either
    small = int(np.argmin(case["size"][:30]))
    prev2 = np.full(40, 0.5 / 39)
    prev2[small] = 0.5
    susp = np.zeros(40, bool)
    susp[small] = True
    tight = PortfolioConfig(**{**C.__dict__, "max_active": 0.6})
    res2 = IndexEnhancedProblem(40, 4, tight).solve(**case, prev_weight=prev2, suspended=susp)
    assert res2.relaxed[:2] == ["turnover", "size"] and res2.status == "optimal"
    # suspended weights summing above 1 cannot be fixed by any relaxation: hold
    prev3 = np.zeros(40)
    prev3[:2] = 0.6
    res3 = prob.solve(**case, prev_weight=prev3, suspended=np.arange(40) < 2)
    assert res3.status == "held" and res3.relaxed == ["turnover", "size", "industry"]
    assert np.array_equal(res3.weights, prev3)


def test_graded_relaxation_widens_risk_then_bounds_the_extra_turnover():
    """A portfolio drifted to small caps (weights x exp(-a z_size)): turnover_first frees turnover at once; graded
    widens the size band first and then allows 1.5x / 2x turnover, and trades no more than that."""
    rng = np.random.default_rng(5)
    case = random_case(rng)
    old_cfg = PortfolioConfig(**{**C.__dict__, "size_tol": 0.2})
    graded = PortfolioConfig(**{**C.__dict__, "size_tol": 0.2, "relax": "graded"})
    s = zscore_vector(np.asarray(case["size"], float), np.ones(40, bool))

    def drifted(a):
        w = np.asarray(case["bench_weight"], float) * np.exp(-a * s)
        return w / w.sum()

    expect = {1.0: (["risk x1.5"], 0.4), 1.5: (["risk x1.5", "risk x2", "risk x3", "turnover x1.5"], 0.6),
              2.0: (["risk x1.5", "risk x2", "risk x3", "turnover x1.5", "turnover x2"], 0.8)}
    for a, (relaxed, turnover) in expect.items():
        prev = drifted(a)
        res = IndexEnhancedProblem(40, 4, graded).solve(**case, prev_weight=prev)
        assert res.status == "optimal" and res.relaxed == relaxed
        assert np.abs(res.weights - prev).sum() <= turnover + 1e-7
        old = IndexEnhancedProblem(40, 4, old_cfg).solve(**case, prev_weight=prev)
        if a == 2.0:  # the old chain: turnover first, unbounded
            assert old.relaxed == ["turnover"] and np.abs(old.weights - prev).sum() > 1.4
    # all in non-constituents (80% back in the index needs turnover 1.6): bounded steps fail, then the old chain
    prev = np.zeros(40)
    prev[30:] = 0.1
    res = IndexEnhancedProblem(40, 4, graded).solve(**case, prev_weight=prev)
    assert res.relaxed == ["risk x1.5", "risk x2", "risk x3", "turnover x1.5", "turnover x2", "turnover"]


def test_first_rebalance_infeasible_names_the_group():
    rng = np.random.default_rng(2)
    case = random_case(rng, n_index=5)  # 5 constituents with +-0.01 bands cannot hold 80%
    c = PortfolioConfig(**{**C.__dict__, "max_active": 0.01})
    case["bench_weight"][:5] = 0.02
    with pytest.raises(InfeasibleError, match="rebalance 2024-01-05.*index_weight"):
        IndexEnhancedProblem(40, 4, c).solve(**case, date="2024-01-05")


def test_too_many_candidates_is_an_error():
    with pytest.raises(ValueError, match="n_assets"):
        IndexEnhancedProblem(10, 4, C).solve(**random_case(np.random.default_rng(0)))


def risk_case(rng, m=60, k=4, n_index=40, n_styles=3, n_factors=7):
    case = random_case(rng, m, k, n_index)
    case["styles"] = rng.normal(size=(m, n_styles))
    B = rng.normal(scale=0.01, size=(m, n_factors))
    spec = rng.uniform(1e-4, 4e-4, m)
    case["risk"] = (B, spec)
    return case


def cfg(backend, **kw):
    base = dict(min_index_weight=0.8, max_active=0.05, industry_tol=0.03, size_tol=0.3, max_turnover=0.4)
    return PortfolioConfig(**{**base, **kw, "backend": backend})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("te", [None, 0.04])
def test_direct_and_cvxpy_give_the_same_weights(seed, te):
    """HiGHS / Clarabel on hand-assembled matrices vs the cvxpy model (CLARABEL): same optimum, same weights."""
    rng = np.random.default_rng(seed)
    case = risk_case(rng)
    bounds = {"size": 0.3, "beta": 0.25, "momentum": 0.2}
    prev = rng.dirichlet(np.ones(60))
    out = {}
    for backend in ("direct", "cvxpy"):
        c = cfg(backend, style_bounds=bounds, te_target=te)
        prob = IndexEnhancedProblem(70, 4, c, n_risk_factors=7 if te else 0)
        kw = dict(styles=case["styles"], risk=case["risk"] if te else None)
        first = prob.solve(**{k: v for k, v in case.items() if k not in ("styles", "risk")}, **kw)
        second = prob.solve(**{k: v for k, v in case.items() if k not in ("styles", "risk")}, prev_weight=prev,
                            suspended=np.zeros(60, bool), limit_up=np.zeros(60, bool), limit_down=np.zeros(60, bool),
                            **kw)
        out[backend] = (first, second)
    for a, b in zip(out["direct"], out["cvxpy"], strict=True):
        assert a.status.startswith("optimal") and b.status.startswith("optimal")
        assert a.objective == pytest.approx(b.objective, abs=1e-7)
        assert np.abs(a.weights - b.weights).max() < 1e-5
        assert a.relaxed == b.relaxed


def test_style_bounds_and_tracking_error_hold():
    rng = np.random.default_rng(11)
    case = risk_case(rng)
    bounds = {"size": 0.1, "beta": 0.1, "momentum": 0.1}
    prob = IndexEnhancedProblem(70, 4, cfg("direct", style_bounds=bounds, te_target=0.03), n_risk_factors=7)
    res = prob.solve(**{k: v for k, v in case.items() if k not in ("styles", "risk")}, styles=case["styles"],
                     risk=case["risk"])
    a = res.weights - case["bench_weight"]
    assert res.relaxed == [] and (np.abs(case["styles"].T @ a) <= 0.1 + 1e-7).all()
    B, spec = case["risk"]
    te = np.sqrt(252 * ((B.T @ a) @ (B.T @ a) + (spec * a * a).sum()))
    assert te <= 0.03 + 1e-6
    loose = IndexEnhancedProblem(70, 4, cfg("direct"), n_risk_factors=0).solve(
        **{k: v for k, v in case.items() if k not in ("styles", "risk")})
    assert loose.objective > res.objective  # the constraints bind: risk control costs expected return


def test_a_numerical_failure_is_reported_not_relaxed(monkeypatch):
    """A solve that fails numerically (neither optimal nor infeasible) loosens nothing: the first rebalance raises
    SolverFailure naming the status and the fix; a later one holds its weights as 'solver_failed'."""
    from quantsam.errors import SolverFailure

    rng = np.random.default_rng(5)
    case = random_case(rng)
    prob = IndexEnhancedProblem(40, 4, C)
    prev = prob.solve(**case).weights
    calls = []

    def failing(self, d, tol, m, first):
        calls.append(dict(tol))
        return "solver_error", None, float("nan"), "HIGHS (direct)"

    monkeypatch.setattr(IndexEnhancedProblem, "_solve_step", failing)
    with pytest.raises(SolverFailure, match="solver_error.*numerical failure.*portfolio.backend=cvxpy"):
        prob.solve(**case)
    assert len(calls) == 1  # no relaxation was tried
    res = prob.solve(**case, prev_weight=prev)
    assert res.status == "solver_failed" and res.relaxed == [] and np.array_equal(res.weights, prev)


def scipy_lp_with_costs(case, c: PortfolioConfig, prev, cost):
    """Independent LP with the cost term: maximise score'w - cost * sum u, u >= |w - prev| (scipy's HiGHS); the
    turnover row as in :func:`scipy_lp`. Returns (objective incl. costs, w)."""
    b, X = case["bench_weight"], case["industry_onehot"]
    m, k = X.shape
    s = zscore_vector(case["size"], np.ones(m, bool))
    Z, eye = np.zeros(m), np.eye(m)
    A_ub, b_ub = [np.r_[-case["in_index"], Z]], [-c.min_index_weight]
    for j in range(k):
        A_ub += [np.r_[X[:, j], Z], np.r_[-X[:, j], Z]]
        b_ub += [c.industry_tol + X[:, j] @ b, c.industry_tol - X[:, j] @ b]
    A_ub += [np.r_[s, Z], np.r_[-s, Z], np.r_[Z, np.ones(m)]]
    b_ub += [c.size_tol + s @ b, c.size_tol - s @ b, c.max_turnover]
    for i in range(m):
        A_ub += [np.r_[eye[i], -eye[i]], np.r_[-eye[i], -eye[i]]]
        b_ub += [prev[i], -prev[i]]
    bounds = [(lo, hi) for lo, hi in zip(np.maximum(0, b - c.max_active), b + c.max_active, strict=True)]
    res = linprog(np.r_[-case["score"], np.full(m, cost)], A_ub=np.array(A_ub), b_ub=np.array(b_ub),
                  A_eq=np.array([np.r_[np.ones(m), Z]]), b_eq=[1.0], bounds=bounds + [(0, None)] * m, method="highs")
    assert res.status == 0
    return -res.fun, res.x[:m]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("te", [None, 0.04])
def test_trading_cost_in_the_objective_direct_cvxpy_and_scipy_agree(seed, te):
    """score'w - cost * sum|w - prev|: the direct backends (HiGHS / Clarabel) against the cvxpy model, and the LP
    against an independent scipy model; a trade is made only where its score gain beats its cost."""
    rng = np.random.default_rng(40 + seed)
    case = risk_case(rng)
    case["score"] = case["score"] * 0.01  # expected-return-like scale, beside a cost of 0.2% per unit traded
    flags = dict(suspended=np.zeros(60, bool), limit_up=np.zeros(60, bool), limit_down=np.zeros(60, bool))
    base = {k: v for k, v in case.items() if k not in ("styles", "risk")}
    start = IndexEnhancedProblem(70, 4, cfg("direct", te_target=te, max_turnover=1.5), n_risk_factors=7 if te else 0)
    p0 = start.solve(**base, risk=case["risk"] if te else None).weights  # the same holdings for both backends
    base["score"] = base["score"] + rng.normal(scale=0.01, size=60)  # next week's signal
    case["score"] = base["score"]
    out = {}
    for backend in ("direct", "cvxpy"):
        prob = IndexEnhancedProblem(70, 4, cfg(backend, te_target=te, max_turnover=1.5), n_risk_factors=7 if te else 0)
        out[backend] = prob.solve(**base, prev_weight=p0, risk=case["risk"] if te else None, trade_cost=0.002, **flags)
    a, b = out["direct"], out["cvxpy"]
    assert a.status.startswith("optimal") and b.status.startswith("optimal")
    assert np.abs(a.weights - b.weights).max() < 1e-5
    net = lambda r: r.objective - 0.002 * np.abs(r.weights - p0).sum()  # noqa: E731
    assert net(a) == pytest.approx(net(b), abs=1e-7)
    if te is None:
        ref, _ = scipy_lp_with_costs(case, cfg("direct", max_turnover=1.5), p0, 0.002)
        assert net(a) == pytest.approx(ref, abs=1e-8)
    assert 0 < np.abs(a.weights - p0).sum() < 1.5  # it trades, and less than the cap allows


def test_a_cost_above_every_score_spread_means_no_trade():
    """Hand-derived: holding the previous (feasible) portfolio costs nothing; any trade gains at most
    max(score) - min(score) per unit of weight moved (0.02 here) and pays 2 x cost per unit moved (sold + bought).
    With cost 0.02 > 0.02 / 2 nothing is traded; with cost 0 the LP's optimum moves."""
    rng = np.random.default_rng(5)
    case = random_case(rng)
    case["score"] = np.linspace(-0.01, 0.01, 40)
    c = cfg("direct", max_turnover=1.0)
    prob = IndexEnhancedProblem(50, 4, c)
    first = prob.solve(**{**case, "score": np.zeros(40)})  # some feasible portfolio
    flags = dict(suspended=np.zeros(40, bool), limit_up=np.zeros(40, bool), limit_down=np.zeros(40, bool))
    held = prob.solve(**case, prev_weight=first.weights, trade_cost=0.02, **flags)
    assert np.abs(held.weights - first.weights).max() < 1e-9
    moved = prob.solve(**case, prev_weight=first.weights, trade_cost=0.0, **flags)
    assert np.abs(moved.weights - first.weights).sum() > 0.1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cost", [0.0, 0.002])
def test_factor_form_cone_equals_the_loadings_cone(seed, cost):
    """The TE cone in factor form (y = X'(w - b), ||[L'y; sd (w - b)]||) gives the optimum of the loadings form
    (||[B'(w - b); ...]||, B = X L) and of the cvxpy model; first rebalance and one with turnover and costs."""
    from quantsam.portfolio.risk import covariance_root

    rng = np.random.default_rng(70 + seed)
    case = risk_case(rng)
    m, K = 60, 7
    X = np.concatenate([case["industry_onehot"], rng.normal(size=(m, K - 4))], axis=1)
    A = rng.normal(size=(K, K))
    F = (A @ A.T + np.eye(K)) * 1e-5
    L = covariance_root(F)
    np.testing.assert_allclose(L @ L.T, F, rtol=1e-10, atol=1e-18)
    case["risk"] = (X @ L, case["risk"][1])
    base = {k: v for k, v in case.items() if k not in ("styles", "risk")}
    flags = dict(suspended=np.zeros(m, bool), limit_up=np.zeros(m, bool), limit_down=np.zeros(m, bool))
    prev = IndexEnhancedProblem(70, 4, cfg("direct", te_target=0.05), n_risk_factors=K).solve(
        **base, risk=case["risk"]).weights
    base["score"] = base["score"] + rng.normal(size=m)
    out = {}
    for name, backend, extra in (("loadings", "direct", {}), ("factors", "direct", {"risk_factors": (X, L)}),
                                 ("cvxpy", "cvxpy", {})):
        prob = IndexEnhancedProblem(70, 4, cfg(backend, te_target=0.04, max_turnover=0.5), n_risk_factors=K)
        first = prob.solve(**base, risk=case["risk"], **extra)
        again = prob.solve(**base, prev_weight=prev, risk=case["risk"], trade_cost=cost, **flags, **extra)
        out[name] = (first, again)
    for name in ("loadings", "cvxpy"):
        for a, b in zip(out["factors"], out[name], strict=True):
            assert a.status.startswith("optimal") and b.status.startswith("optimal")
            assert a.objective == pytest.approx(b.objective, abs=1e-6)
            assert np.abs(a.weights - b.weights).max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_the_socp_answer_does_not_depend_on_the_objectives_scale(seed):
    """Expected returns of ~1e-6 a name (a weak IC on quiet names) against the same problem at ~1e-2: the same
    optimum (the argmax is scale-invariant), both solved — the objective is normalised before Clarabel sees it, whose
    absolute gap tolerance (1e-8) a 1e-6 objective would sit under (real rebalances stopped with NumericalError)."""
    rng = np.random.default_rng(60 + seed)
    case = risk_case(rng)
    base = {k: v for k, v in case.items() if k not in ("styles", "risk")}
    out = {}
    for scale in (1e-2, 1e-6):
        prob = IndexEnhancedProblem(70, 4, cfg("direct", te_target=0.04, max_turnover=1.5), n_risk_factors=7)
        out[scale] = prob.solve(**{**base, "score": base["score"] * scale}, risk=case["risk"])
    assert all(r.status == "optimal" for r in out.values())
    assert np.abs(out[1e-2].weights - out[1e-6].weights).max() < 1e-6
