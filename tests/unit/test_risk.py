"""Style descriptors, the factor risk model and the return attribution against independent formulations: full-design
weighted least squares (not the two-step Frisch-Waugh-Lovell of the module), per-date weighted regressions (not the
recursion), pandas rolling sums, dense covariance matrices, and an exactly factor-generated market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantsam.backtest.attribution import annual_attribution, attribute
from quantsam.features.styles import (
    STYLES,
    StyleExposures,
    ewma_regression,
    ewma_sum,
    rolling_sum,
    standardise,
)
from quantsam.portfolio.risk import (
    RiskInputs,
    RiskModel,
    factor_returns,
    risk_loadings,
    tracking_error,
)


def _styles(rng, T, N, est=None):
    vals = rng.standard_normal((T, N, len(STYLES))).astype(np.float32)
    cap = np.exp(rng.normal(22, 1, (T, N)))
    est = np.ones((T, N), bool) if est is None else est
    return StyleExposures(STYLES, vals, cap, est)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factor_returns_equal_full_design_wls(seed):
    rng = np.random.default_rng(seed)
    T, N, K = 4, 60, 5
    st = _styles(rng, T, N)
    st.estimation[:, :3] = False  # outside the estimation universe: not in the fit
    industry = rng.integers(0, K, N)
    r = rng.normal(0, 0.02, (T, N))
    r[1, 7] = np.nan  # a suspended name
    fr = factor_returns(r, industry, K, st, [f"i{k}" for k in range(K)])
    for t in range(T):
        ok = st.estimation[t] & np.isfinite(r[t])
        X = np.concatenate([np.eye(K)[industry], st.values[t].astype(np.float64)], axis=1)[ok]
        w = np.sqrt(np.sqrt(st.cap[t, ok]))  # sqrt of the sqrt-cap regression weight
        f, *_ = np.linalg.lstsq(X * w[:, None], r[t, ok] * w, rcond=None)
        np.testing.assert_allclose(fr.f[t], f, rtol=1e-9, atol=1e-12)
        full = np.concatenate([np.eye(K)[industry], st.values[t].astype(np.float64)], axis=1)
        np.testing.assert_allclose(fr.u[t][np.isfinite(r[t])], (r[t] - full @ f)[np.isfinite(r[t])], atol=1e-12)
    assert np.isnan(fr.u[1, 7])


def test_ewma_regression_equals_weighted_polyfit_per_date():
    rng = np.random.default_rng(3)
    T, N = 150, 4
    m = rng.normal(0, 0.01, T)
    r = 1.3 * m[:, None] + rng.normal(0, 0.01, (T, N))
    r[20:30, 1] = np.nan  # suspension: those days carry no weight
    beta, _, count = ewma_regression(r, m, hl_beta=63.0)
    for t in (40, 99, 149):
        for i in range(N):
            ok = np.isfinite(r[: t + 1, i])
            age = t - np.arange(t + 1)
            w = 0.5 ** (age / 63.0)
            # np.polyfit weights multiply the residuals: sqrt of the regression weights
            b, _ = np.polyfit(m[: t + 1][ok], r[: t + 1, i][ok], 1, w=np.sqrt(w[ok]))
            assert beta[t, i] == pytest.approx(b, rel=1e-8)
            assert count[t, i] == ok.sum()


def test_rolling_and_ewma_sums_equal_pandas():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 3))
    x[50:60, 0] = np.nan
    s, c = rolling_sum(x, 231, lag=21)
    df = pd.DataFrame(x)
    exp = df.rolling(231, min_periods=1).sum().shift(21)
    exp_c = df.notna().astype(float).rolling(231, min_periods=1).sum().shift(21)
    np.testing.assert_allclose(s[21:], exp.to_numpy()[21:], atol=1e-10)
    np.testing.assert_allclose(c[21:], exp_c.to_numpy()[21:])
    e = ewma_sum(x, 21, 5.0)
    w = 0.5 ** (np.arange(21)[::-1] / 5.0)  # oldest first
    exp_e = df.fillna(0.0).rolling(21, min_periods=1).apply(lambda v: float((v * w[-len(v):]).sum()), raw=True)
    np.testing.assert_allclose(e, exp_e.to_numpy(), atol=1e-10)


def test_standardise_has_cap_weighted_mean_zero_and_unit_std_and_winsorises():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 200))
    x[0, 0] = 50.0  # an outlier: winsorised at 3 std before the moments
    cap = np.exp(rng.normal(22, 1, (3, 200)))
    mask = np.ones_like(x, bool)
    mask[:, -5:] = False  # outside the estimation universe: standardised with the same moments
    z = standardise(x, cap, mask)
    for t in range(3):
        m = mask[t]
        assert np.average(z[t, m], weights=cap[t, m]) == pytest.approx(0.0, abs=1e-12)
        assert np.std(z[t, m], ddof=1) == pytest.approx(1.0, rel=1e-12)
    mu, sd = x[0, mask[0]].mean(), x[0, mask[0]].std(ddof=1)
    clipped = np.clip(x[0], mu - 3 * sd, mu + 3 * sd)
    ranks = np.argsort(np.argsort(clipped[mask[0]]))
    assert (np.argsort(np.argsort(z[0, mask[0]])) == ranks).all()
    assert z[0, 0] == pytest.approx(z[0, mask[0]].max())


def test_risk_model_covariance_and_tracking_error_against_dense_matrices():
    rng = np.random.default_rng(6)
    T, N, K = 120, 30, 4
    f = rng.normal(0, 0.01, (T, K))
    u = rng.normal(0, 0.02, (T, N))
    u[:100, 0] = np.nan  # too little history: gets the cross-sectional median
    from quantsam.portfolio.risk import FactorReturns
    model = RiskModel(FactorReturns([f"f{k}" for k in range(K)], f, u), halflife=30.0, min_obs=42)
    F, spec = model.at(T)
    age = np.arange(T)[::-1]
    w = 0.5 ** (age / 30.0)
    exp_F = sum(w[s] * np.outer(f[s], f[s]) for s in range(T)) / w.sum()
    np.testing.assert_allclose(F, exp_F, rtol=1e-10)
    exp_spec = np.array([np.sum(w * u[:, i] ** 2) / w.sum() for i in range(1, N)])
    np.testing.assert_allclose(spec[1:], exp_spec, rtol=1e-10)
    assert spec[0] == pytest.approx(np.median(exp_spec))
    X = rng.standard_normal((N, K))
    V = X @ F @ X.T + np.diag(spec)
    a = rng.normal(0, 0.01, N)
    assert tracking_error(a, X, F, spec) == pytest.approx(np.sqrt(252 * a @ V @ a), rel=1e-12)
    B = risk_loadings(X, F)
    np.testing.assert_allclose(B @ B.T, X @ F @ X.T, atol=1e-14)


def test_attribution_of_an_exact_factor_market_has_no_specific_return():
    """Returns generated exactly by industries + styles: the regression recovers the factor returns, and the
    attribution of any portfolio puts all its excess on the factors (specific = 0) and the costs on costs."""
    rng = np.random.default_rng(7)
    T, N, K = 30, 80, 4
    st = _styles(rng, T, N)
    industry = rng.integers(0, K, N)
    f_true = rng.normal(0, 0.01, (T, K + len(STYLES)))
    X = [np.concatenate([np.eye(K)[industry], st.values[t].astype(np.float64)], axis=1) for t in range(T)]
    r = np.stack([X[t] @ f_true[t] for t in range(T)])
    fr = factor_returns(r, industry, K, st, [f"i{k}" for k in range(K)])
    np.testing.assert_allclose(fr.f, f_true, atol=1e-12)
    risk = RiskInputs(st, industry, K, 0, fr, RiskModel(fr))
    rows = np.arange(T)
    w = rng.dirichlet(np.ones(N), T)
    b = rng.dirichlet(np.ones(N), T)
    excess = np.einsum("tn,tn->t", w - b, r)
    costs = np.full(T, 1e-4)
    df = attribute(risk, rows, w, b, excess - costs, costs, pd.date_range("2020-01-01", periods=T))
    np.testing.assert_allclose(df["specific"], 0.0, atol=1e-12)
    # the industry column, written out from the test's own exposures: sum_k (X_ind' (w - b))_k f_k
    ind = np.array([np.eye(K)[industry].T @ (w[t] - b[t]) @ f_true[t, :K] for t in range(T)])
    np.testing.assert_allclose(df["industry"], ind, atol=1e-15)
    ann = annual_attribution(df)
    assert ann["attr_costs"] == pytest.approx(-252e-4)


def test_vra_multipliers_equal_a_pandas_ewm_computation():
    """The volatility regime adjustment against pandas' own EWMA (``adjust=True``, absolute positions): returns
    standardised by their one-step-ahead EWMA volatility, the day's mean square, its EWMA over the previous days.
    A market whose volatility doubles half-way gets multipliers well above 1 after the change."""
    import pandas as pd

    from quantsam.portfolio.risk import FactorReturns, RiskModel, vra_multipliers

    rng = np.random.default_rng(5)
    T, K, N = 300, 4, 30
    scale = np.r_[np.full(150, 0.01), np.full(150, 0.02)]
    f = rng.normal(size=(T, K)) * scale[:, None]
    u = rng.normal(size=(T, N)) * 0.02
    u[rng.random(u.shape) < 0.05] = np.nan
    fr = FactorReturns([f"k{i}" for i in range(K)], f, u)
    lam_f, lam_s = vra_multipliers(fr, halflife=30, vra_halflife=20, min_obs=10)

    def reference(x):
        df = pd.DataFrame(x)
        var = (df ** 2).ewm(halflife=30, adjust=True).mean().shift(1)
        n = df.notna().cumsum().shift(1).fillna(0)
        z2 = (df ** 2 / var).where(n >= 10)
        b2 = z2.mean(axis=1)
        return b2.ewm(halflife=20, adjust=True).mean().shift(1).fillna(1.0).to_numpy()

    assert np.allclose(lam_f, reference(f), rtol=1e-10) and np.allclose(lam_s, reference(u), rtol=1e-10)
    # right after the change the lagging volatilities under-forecast: scaled up; the specific side did not change
    assert lam_f[160:190].mean() > 1.5 and abs(lam_s[160:190].mean() - 1) < 0.2 and abs(lam_f[100:150].mean() - 1) < 0.2
    plain, adj = RiskModel(fr, 30, min_obs=10), RiskModel(fr, 30, min_obs=10, vra_halflife=20)
    F0, s0 = plain.at(250)
    F1, s1 = adj.at(250)
    assert np.allclose(F1, F0 * lam_f[250]) and np.allclose(s1, s0 * lam_s[250])


def test_vra_leaves_out_a_residual_a_factor_absorbed():
    """A name alone in its industry has a specific return of exactly 0 (the industry factor is its return) until a
    second name joins; its forecast variance is ~0 and its first non-zero residual would be an "infinite" surprise
    that dominates the day's mean square (on the real market: lambda^2 of 1e24). Such variances are left out, so the
    multipliers equal those of the market without that name (hand-built case)."""
    from quantsam.portfolio.risk import FactorReturns, vra_multipliers

    rng = np.random.default_rng(9)
    T, N = 200, 20
    f = rng.normal(size=(T, 3)) * 0.01
    u = rng.normal(size=(T, N)) * 0.02
    u_deg = u.copy()
    u_deg[:120, 0] = 1e-19  # the absorbed residual: zero up to rounding
    lam_ref = vra_multipliers(FactorReturns(["a", "b", "c"], f, np.where(np.arange(N) == 0, np.nan, u)), 30, 20, 10)
    lam = vra_multipliers(FactorReturns(["a", "b", "c"], f, u_deg), 30, 20, 10)
    assert np.isfinite(lam[1]).all() and lam[1].max() < 3
    # up to day 120 the name is left out entirely; after it, its variance is still degenerate for a while
    np.testing.assert_allclose(lam[1][:121], lam_ref[1][:121], rtol=1e-12)


def test_newey_west_term_by_hand():
    """nw_lags=2 against explicit loops: F = G0 + (2/3)(G1 + G1') + (1/3)(G2 + G2'), EWMA-weighted sums over the pairs
    of days present; the specific variance the same per name, skipping pairs with a missing day."""
    from quantsam.portfolio.risk import FactorReturns

    rng = np.random.default_rng(4)
    T, K, N = 30, 3, 4
    f = rng.normal(size=(T, K))
    u = rng.normal(size=(T, N))
    u[5, 1] = np.nan
    model = RiskModel(FactorReturns(["a", "b", "c"], f, u), halflife=10.0, min_obs=5, nw_lags=2)
    F, spec = model.at(T)
    a = 0.5 ** (1 / 10)
    w = a ** np.arange(T - 1, -1, -1)

    def G(lag):
        out = np.zeros((K, K))
        for s in range(lag, T):
            out += w[s] * np.outer(f[s], f[s - lag])
        return out / w[lag:].sum()

    expect = G(0) + (2 / 3) * (G(1) + G(1).T) + (1 / 3) * (G(2) + G(2).T)
    np.testing.assert_allclose(F, expect, rtol=1e-12)
    for i in range(N):
        def g(lag, i=i):
            num = den = 0.0
            for s in range(lag, T):
                if np.isfinite(u[s, i]) and np.isfinite(u[s - lag, i]):
                    num += w[s] * u[s, i] * u[s - lag, i]
                    den += w[s]
            return num / den
        v = g(0) + 2 * (2 / 3) * g(1) + 2 * (1 / 3) * g(2)
        assert spec[i] == pytest.approx(max(v, 0.1 * g(0)), rel=1e-12)


def test_statistical_factors_capture_residuals_that_co_move():
    """Residuals with a common component (a small-cap shock every name half of the market loads on): the plain model
    under-forecasts an equal-weighted basket of those names by the common part; one statistical factor recovers its
    loadings (orthonormal, on the loaded names) and forecasts the basket's variance within sampling error."""
    from quantsam.portfolio.risk import FactorReturns

    rng = np.random.default_rng(5)
    T, N = 600, 200
    load = np.where(np.arange(N) < 100, 1.0, 0.0)
    common = rng.normal(scale=0.01, size=T)
    u = common[:, None] * load[None, :] + rng.normal(scale=0.02, size=(T, N))
    fr = FactorReturns(["x"], rng.normal(scale=0.01, size=(T, 1)), u)
    basket = np.where(load > 0, 1.0 / 100, 0.0)
    realised = np.var(u @ basket)  # ~ 0.01^2 + 0.02^2 / 100
    plain = RiskModel(fr, halflife=1e9, min_obs=20)
    _, spec = plain.at(T)
    assert (basket ** 2 * spec).sum() < 0.1 * realised  # the plain model misses the common part
    stat = RiskModel(fr, halflife=1e9, min_obs=20, stat_factors=1, stat_window=T)
    F, spec1, lo = stat.at(T)
    assert F.shape == (2, 2) and lo.shape == (N, 1)
    assert np.linalg.norm(lo[:, 0]) == pytest.approx(1.0)
    assert abs(lo[:100, 0]).mean() > 5 * abs(lo[100:, 0]).mean()
    forecast = (basket @ lo) @ F[1:, 1:] @ (lo.T @ basket) + (basket ** 2 * spec1).sum()
    assert forecast == pytest.approx(realised, rel=0.15)
    assert np.median(spec1) < np.median(spec)  # the common part left the specific variances


def test_statistical_block_with_newey_west_against_an_explicit_svd_and_loops():
    """stat_factors=2 and nw_lags=2 with missing days and a name with a short history, against numpy's SVD of the
    weighted window and per-name loops over the residuals: the loadings span the same space (their projector), the
    covariance of the block seen through them (V G V') and its covariance with the style factor, and every specific
    variance agree."""
    from quantsam.portfolio.risk import FactorReturns

    rng = np.random.default_rng(11)
    T, N, kk, W = 80, 25, 2, 50
    common = rng.normal(size=(T, 2)) * [0.02, 0.01]
    load = rng.normal(size=(N, 2))
    u = common @ load.T + rng.normal(scale=0.01, size=(T, N))
    u[rng.random((T, N)) < 0.05] = np.nan
    u[:72, 3] = np.nan  # too few days in the window: not in the PCA
    f = rng.normal(scale=0.01, size=(T, 1))
    model = RiskModel(FactorReturns(["x"], f, u), halflife=20.0, min_obs=10, nw_lags=2, stat_factors=kk,
                      stat_window=W)
    F, spec, lo = model.at(T)
    a = 0.5 ** (1 / 20)
    w = a ** np.arange(T - 1, -1, -1)
    ok = np.isfinite(u)
    names = ok[T - W:].sum(axis=0) >= 10
    assert not names[3] and names.sum() == N - 1
    M = np.nan_to_num(u[T - W:][:, names]) * np.sqrt(w[T - W:] / w[T - W:].sum())[:, None]
    V = np.linalg.svd(M, full_matrices=False)[2][:kk].T
    Vf = np.zeros((N, kk))
    Vf[names] = V
    np.testing.assert_allclose(lo @ lo.T, Vf @ Vf.T, atol=1e-10)
    g = np.nan_to_num(u) @ Vf
    resid = np.where(ok, u - g @ Vf.T, np.nan)

    def cov(x, y, lag):
        return sum(w[s] * np.outer(x[s], y[s - lag]) for s in range(lag, T)) / w[lag:].sum()

    x = np.concatenate([f, g], axis=1)  # the style and the statistical factors' returns, covaried together
    G = cov(x, x, 0) + (2 / 3) * (cov(x, x, 1) + cov(x, x, 1).T) + (1 / 3) * (cov(x, x, 2) + cov(x, x, 2).T)
    np.testing.assert_allclose(F[:1, :1], G[:1, :1], rtol=1e-12)
    np.testing.assert_allclose(lo @ F[1:, 1:] @ lo.T, Vf @ G[1:, 1:] @ Vf.T, atol=1e-12)
    np.testing.assert_allclose(lo @ F[1:, :1], Vf @ G[1:, :1], atol=1e-12)  # the cross-covariance
    assert np.abs(G[1:, :1]).max() > 0
    for i in range(N):
        def gam(lag, i=i):
            pairs = [(w[s], resid[s, i] * resid[s - lag, i]) for s in range(lag, T)
                     if ok[s, i] and ok[s - lag, i]]
            return sum(q * p for q, p in pairs) / sum(q for q, _ in pairs)
        expect = max(gam(0) + 2 * (2 / 3) * gam(1) + 2 * (1 / 3) * gam(2), 0.1 * gam(0))
        if ok[:, i].sum() >= 10:
            assert spec[i] == pytest.approx(expect, rel=1e-9)


def test_eigen_adjustment_corrects_the_minimum_variance_eigenportfolios():
    """Menchero, Wang & Orr's simulation on a known truth: 12 factors, 60 days. The sample covariance under-states
    the variance of its own smallest eigenportfolios (what an optimiser buys); after the adjustment their forecast
    is closer to the truth, the largest ones barely move, and a = 0 returns the input."""
    from quantsam.portfolio.risk import eigen_adjust, simulated_moments

    rng = np.random.default_rng(0)
    K, T = 12, 60
    A = rng.normal(size=(K, K))
    truth = A @ A.T / K + np.eye(K) * 0.05
    w = np.ones(T)
    under, adjusted = [], []
    for rep in range(40):
        f = rng.multivariate_normal(np.zeros(K), truth, size=T)
        F = f.T @ f / T
        S = simulated_moments(np.random.default_rng(rep).standard_normal((100, T, K)), w)
        Fa = eigen_adjust(F, S, 1.0)
        np.testing.assert_allclose(eigen_adjust(F, S, 0.0), F, atol=1e-15)
        d, U = np.linalg.eigh(F)
        for k in range(3):  # the three smallest eigenportfolios of the estimate
            u = U[:, k]
            under.append(u @ truth @ u / (u @ F @ u))
            adjusted.append(u @ truth @ u / (u @ Fa @ u))
        top = U[:, -1]
        assert (top @ Fa @ top) / (top @ F @ top) < 1.1
    assert np.mean(under) > 1.5  # the sample covariance under-forecasts them badly
    assert abs(np.mean(adjusted) - 1.0) < 0.25 * abs(np.mean(under) - 1.0)
