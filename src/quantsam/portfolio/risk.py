"""A factor risk model from price-volume data: industries + style exposures (:mod:`quantsam.features.styles`), daily
factor returns from cross-sectional regressions, EWMA factor covariance and specific variance (the structure of Barra's
CNE5; Orr, Mashtaler & Nagy, "The Barra China Equity Model (CNE5)", MSCI 2012: factor covariance and specific risk
with exponential weights, half-lives of ~90 days).

On each date t the stock returns from t to t+1 are regressed on the exposures known at t's close — industry
dummies and the styles — by weighted least squares with square-root float-cap weights (CNE5 §3) over the estimation
universe. Because the industry dummies partition the names, the regression is solved exactly in two steps
(Frisch-Waugh-Lovell): styles on within-industry-demeaned data, then each industry's return as the weighted mean of
what the styles leave. The covariance at a decision date uses only factor returns realised by then.

Active risk of weights ``w`` against ``b``: ``TE^2 = (w - b)' (X F X' + D) (w - b)`` per day, annualised x 252.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from quantsam.features.styles import StyleExposures


@dataclass
class FactorReturns:
    """Daily factor returns ``f[t]`` (return from t to t+1 on exposures at t) and specific returns ``u[t]``."""

    names: list[str]  # industries then styles
    f: np.ndarray  # [T, K]
    u: np.ndarray  # [T, N]


def _group_mean(v: np.ndarray, w: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Per row and group, the ``w``-weighted mean of ``v``: ``[T, k]`` (NaN for an empty group)."""
    T = v.shape[0]
    s = np.zeros((T, k))
    sw = np.zeros((T, k))
    for g in range(k):
        m = groups == g
        s[:, g] = (v[:, m] * w[:, m]).sum(axis=1)
        sw[:, g] = w[:, m].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / sw


def factor_returns(r_next: np.ndarray, industry: np.ndarray, n_industries: int, styles: StyleExposures,
                   industry_names: list[str]) -> FactorReturns:
    """Cross-sectional WLS of ``r_next[t]`` (``[T, N]`` simple returns t -> t+1) on industry dummies (``industry``:
    ``[N]`` codes 0..n_industries-1) and the styles at t, over the estimation universe (see module docstring)."""
    X = np.nan_to_num(styles.values.astype(np.float64))  # [T, N, S]; a missing exposure counts as neutral (0)
    ok = styles.estimation & np.isfinite(r_next) & np.isfinite(styles.cap)
    w = np.where(ok, np.sqrt(np.where(ok, styles.cap, 0.0)), 0.0)
    r = np.where(ok, r_next, 0.0)
    mr = _group_mean(r, w, industry, n_industries)
    mX = np.stack([_group_mean(X[:, :, s], w, industry, n_industries) for s in range(X.shape[2])], axis=-1)
    rt = np.where(ok, r - np.nan_to_num(mr)[:, industry], 0.0)
    Xt = np.where(ok[..., None], X - np.nan_to_num(mX)[:, industry, :], 0.0)
    T, N, S = X.shape
    fs = np.zeros((T, S))
    for t in range(T):
        if ok[t].sum() > S + n_industries:
            sw = np.sqrt(w[t])
            fs[t], *_ = np.linalg.lstsq(Xt[t] * sw[:, None], rt[t] * sw, rcond=None)
    fi = np.nan_to_num(mr - np.einsum("tks,ts->tk", np.nan_to_num(mX), fs))
    fitted = fi[:, industry] + np.einsum("tns,ts->tn", X, fs)
    u = np.where(np.isfinite(r_next), r_next - fitted, np.nan)
    return FactorReturns([*industry_names, *styles.names], np.concatenate([fi, fs], axis=1), u)


def _ewma_forecast(x: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """One-step-ahead EWMA mean of ``x`` (``[T, ...]``, NaN = no observation): ``out[t]`` = the weighted mean of
    ``x[0 .. t-1]`` with weights ``a^(t-1-s)`` (absolute positions: a missing day still ages the older ones), and the
    count of observations behind it. ``pandas.Series.ewm(alpha=1-a, adjust=True).mean().shift(1)`` per column."""
    num = np.zeros(x.shape[1:])
    den = np.zeros(x.shape[1:])
    cnt = np.zeros(x.shape[1:])
    out = np.full(x.shape, np.nan)
    n_obs = np.zeros(x.shape)
    for t in range(len(x)):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        n_obs[t] = cnt
        ok = np.isfinite(x[t])
        num = a * num + np.where(ok, x[t], 0.0)
        den = a * den + ok
        cnt = cnt + ok
    return out, n_obs


DEGENERATE = 1e-4  # a forecast variance below this share of the day's median is a residual a factor absorbs


def usable_variance(var: np.ndarray, n_obs: np.ndarray, min_obs: int) -> np.ndarray:
    """``var`` (``[T, ...]`` one-step-ahead forecast variances) where it can standardise a return: at least
    ``min_obs`` observations behind it and not degenerate — below ``DEGENERATE`` x the day's median (a name alone in
    its industry has a residual of exactly 0, so its variance is ~0 until a second name joins and the first residual
    is "infinitely" surprising); NaN elsewhere."""
    v = np.where((n_obs >= min_obs) & (var > 0), var, np.nan)
    if v.ndim > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days without any usable variance
            med = np.nanmedian(v.reshape(len(v), -1), axis=1)
        v = np.where(v >= DEGENERATE * med.reshape(-1, *([1] * (v.ndim - 1))), v, np.nan)
    return v


def vra_multipliers(fr: FactorReturns, halflife: float, vra_halflife: float, min_obs: int = 42
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Volatility regime adjustment (Menchero, Orr & Wang, *The Barra US Equity Model (USE4)*, MSCI 2011, §4.3; CNE5
    §4): ``[T]`` multipliers of the factor covariance and of the specific variances at each date. Each day's
    cross-sectional bias statistic ``B_t^2 = mean_k (f_kt / sigma_kt)^2`` of the returns standardised by their own
    one-step-ahead EWMA volatility (``halflife``; names / factors with at least ``min_obs`` past returns, equally
    weighted; degenerate variances left out, see :func:`usable_variance`), then ``lambda_t^2`` = the EWMA of ``B_s^2``
    over the days before t (``vra_halflife``). A model whose volatilities lag a rising market has ``B^2 > 1`` and is
    scaled up; 1 where no history."""
    a = 0.5 ** (1.0 / halflife)
    b = 0.5 ** (1.0 / vra_halflife)
    out = []
    for x in (fr.f, fr.u):
        var, n = _ewma_forecast(x * x, a)
        z2 = x * x / usable_variance(var, n, min_obs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days without a standardised return
            B2 = np.nanmean(z2, axis=1)
        lam2, _ = _ewma_forecast(B2, b)
        out.append(np.where(np.isfinite(lam2), lam2, 1.0))
    return out[0], out[1]


def simulated_moments(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``[sims, K, K]``: each simulated history's weighted second moments ``sum_s w_s z_s z_s' / sum w`` of the
    standard normals ``z`` (``[sims, len(w), K]``) — what :func:`eigen_adjust` turns into simulated covariances."""
    wn = w / w.sum()
    return np.swapaxes(z * wn[:, None], 1, 2) @ z


def eigen_adjust(F: np.ndarray, S: np.ndarray, scale: float) -> np.ndarray:
    """The eigenfactor risk adjustment of an estimated factor covariance ``F`` (Menchero, Wang & Orr, "Improving risk
    forecasts for optimized portfolios", *Financial Analysts Journal* 68(3), 2012; Barra USE4 §4.1, CNE5 §4).

    An optimiser favours the eigenfactors whose variance the sample covariance under-states (the smallest ones are
    biased low by sampling error), so an optimised portfolio's factor risk is under-forecast. The simulation measures
    that bias and undoes it: with ``F = U0 D0 U0' = R R'``, each simulated history of factor returns ``f = z R'``
    (``z`` standard normals, weighted as the real history) has the estimated covariance ``F_m = R S_m R'``
    (``S``: :func:`simulated_moments`, drawn once by :class:`RiskModel` so every date uses the same random numbers and
    the adjustment does not jitter from date to date). Each of ``F_m``'s eigenfactors has an estimated variance
    ``D_m(k)`` and a true one ``(U_m' F U_m)_kk``; the bias of rank ``k`` is ``v(k)^2 = mean_m (U_m' F U_m)_kk /
    D_m(k)``, inflated by the empirical ``scale`` a, ``gamma(k) = a (v(k) - 1) + 1``, and ``F`` is rebuilt from
    ``U0 gamma^2 D0 U0'``. Eigenvalues that are ~0 (an empty industry) are left alone."""
    F = (F + F.T) / 2
    d0, U0 = np.linalg.eigh(F)
    live = d0 > 1e-12 * max(d0.max(), 0.0)
    if not live.any() or not len(S):
        return F
    R = U0 * np.sqrt(np.clip(d0, 0.0, None))
    dm, Um = np.linalg.eigh(R @ S @ R.T)  # [sims, K], [sims, K, K]
    true = (Um * (F @ Um)).sum(axis=1)  # diag(U_m' F U_m) per history
    ok = dm > 1e-12 * dm.max(axis=1, keepdims=True)
    v = np.sqrt(np.where(ok, true / np.where(ok, dm, 1.0), 1.0).mean(axis=0))
    gamma = np.where(live, scale * (v - 1.0) + 1.0, 1.0)
    return (U0 * (gamma ** 2 * d0)) @ U0.T


def newey_west_weights(lags: int) -> np.ndarray:
    """Bartlett weights ``1 - l / (lags + 1)`` of lags ``1 .. lags`` (Newey & West 1987)."""
    return 1.0 - np.arange(1, lags + 1) / (lags + 1.0)


def ewma_autocov(x: np.ndarray, w: np.ndarray, lag: int) -> np.ndarray:
    """``sum_s w_s x_s x_{s-lag}' / sum_s w_s`` over the rows of ``x`` (``[T, K]``, no NaN) with both rows present:
    the EWMA lag-``lag`` autocovariance (zero mean, as the model's covariance)."""
    if lag >= len(x):
        return np.zeros((x.shape[1], x.shape[1]))
    ws = w[lag:]
    return (x[lag:] * ws[:, None]).T @ x[:-lag] / ws.sum()


class RiskModel:
    """EWMA factor covariance and specific variance from :class:`FactorReturns`, queried at decision dates.

    Options (each measured by ``scripts/bench/risk_bias.py``):

    * ``vra_halflife``: both scaled by the volatility regime adjustment (:func:`vra_multipliers`);
    * ``nw_lags``: the Newey-West serial-correlation term of the rebalance horizon (Barra CNE5 §4 / USE4 §4.1:
      daily factor and specific returns are autocorrelated, so a 5-day variance is not 5 daily ones):
      ``F = G_0 + sum_l (1 - l/(L+1)) (G_l + G_l')`` with EWMA-weighted autocovariances ``G_l``, and the same per
      name for the specific variance (floored at a tenth of the plain one); still a *daily* variance, so
      ``TE^2 = 252 x ...`` is unchanged;
    * ``eigen_scale``: the eigenfactor risk adjustment of the factor covariance (:func:`eigen_adjust`, ``eigen_sims``
      simulated histories drawn once with a fixed seed, so forecasts are reproducible and smooth in time); 0 = off;
    * ``stat_factors``: ``k`` statistical factors of the specific returns (a POET-style block; Fan, Liao & Mincheva
      2013; qlib's ``StructuredCovEstimator`` on residuals): the first ``k`` principal components of the EWMA-weighted
      specific returns of the last ``stat_window`` days (names with ``min_obs`` returns), their returns' EWMA
      covariance added as a block to ``F`` and their part taken out of each name's specific variance. It captures
      the co-movement of residuals the industries and styles miss — on real A-shares small-cap residuals move
      together, so an equal-weighted small-cap basket carries 2-3x the specific risk the plain model gives it.
      :meth:`at` then returns the names' loadings too (``[N, k]``, 0 for names left out).
    """

    MEMO = 256  # forecasts kept (a 4.5-year weekly backtest has ~230 dates; ~0.6 MB each with 10 statistical factors)

    def __init__(self, fr: FactorReturns, halflife: float = 90.0, min_obs: int = 42,
                 vra_halflife: float | None = None, nw_lags: int = 0, stat_factors: int = 0,
                 stat_window: int = 252, eigen_scale: float = 0.0, eigen_sims: int = 100):
        self.fr, self.halflife, self.min_obs = fr, halflife, min_obs
        self.eigen_scale, self.eigen_sims = float(eigen_scale), int(eigen_sims)
        self._a = 0.5 ** (1.0 / halflife)
        self.vra = None if vra_halflife is None else vra_multipliers(fr, halflife, vra_halflife, min_obs)
        self.nw_lags, self.stat_factors, self.stat_window = int(nw_lags), int(stat_factors), int(stat_window)
        # forecasts by (t, start): the indices of one backtest stage share one model and rebalance on the same dates,
        # so each date's covariance (and statistical block: an SVD) is computed once for all of them
        self._memo: dict[tuple[int, int], tuple] = {}
        self._S: tuple[int, np.ndarray] | None = None  # the eigenfactor adjustment's (history length, moments)

    @cached_property
    def _zero_filled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the specific returns with 0 for a missing day, the mask as 0/1, its running count ``[T + 1, N]``): made
        on the first forecast, not at construction (risk inputs built for the attribution alone never need them)."""
        okf = np.isfinite(self.fr.u).astype(np.float64)
        count = np.vstack([np.zeros((1, okf.shape[1])), np.cumsum(okf, axis=0)])
        return np.where(okf > 0, self.fr.u, 0.0), okf, count

    def _factor_cov(self, fz: np.ndarray, w: np.ndarray) -> np.ndarray:
        F = (fz * w[:, None]).T @ fz / w.sum()
        for lag, c in enumerate(newey_west_weights(self.nw_lags), start=1):
            G = ewma_autocov(fz, w, lag)
            F = F + c * (G + G.T)
        return F

    def _specific_var(self, uz: np.ndarray, okf: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Per name the EWMA variance of ``uz`` (``[k, N]`` specific returns, 0 where missing; ``okf`` 1.0 where
        present) over the days it has, plus the Newey-West terms over the pairs of days both present; NaN for a name
        without a day. Each weighted sum is one ``einsum`` pass over the ``[k, N]`` block (no temporaries of that
        size: this runs at every rebalance over the whole history, and memory passes are its cost)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            spec = np.einsum("s,sn,sn->n", w, uz, uz) / (w @ okf)
            plain = spec
            for lag, c in enumerate(newey_west_weights(self.nw_lags), start=1):
                if lag >= len(uz):
                    break
                num = np.einsum("s,sn,sn->n", w[lag:], uz[lag:], uz[:-lag])
                den = np.einsum("s,sn,sn->n", w[lag:], okf[lag:], okf[:-lag])
                spec = spec + 2 * c * np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
            return np.maximum(spec, 0.1 * plain)

    def at(self, t: int, start: int = 0):
        """(daily factor covariance ``[K, K]``, daily specific variance ``[N]``) known at t's close — and, with
        ``stat_factors``, the ``[N, k]`` statistical loadings as a third element (the covariance then ``[K + k,
        K + k]``): factor returns of days ``start .. t-1`` (the return t-1 -> t is realised at t), newest weighted
        most. Names with fewer than ``min_obs`` specific returns get the cross-sectional median."""
        hit = self._memo.get((t, start))
        if hit is not None:
            return hit
        uz_all, okf_all, count = self._zero_filled
        f = self.fr.f[start:t]
        uz, okf = uz_all[start:t], okf_all[start:t]
        k = len(f)
        w = self._a ** np.arange(k - 1, -1, -1)
        fz = np.nan_to_num(f)
        loadings = None
        if self.stat_factors:
            uz, F, loadings = self._statistical_block(uz, okf, w, fz)
        else:
            F = self._factor_cov(fz, w)
        if self.eigen_scale:
            F = eigen_adjust(F, self._simulated(w), self.eigen_scale)
        spec = self._specific_var(uz, okf, w)
        n_obs = count[t] - count[start]
        enough = n_obs >= self.min_obs
        med = np.nanmedian(spec[enough]) if enough.any() else np.nan
        spec = np.where(enough & np.isfinite(spec), spec, med)
        if self.vra is not None:  # lambda^2 at t uses the returns before t, as F and spec do
            i = min(t, len(self.vra[0]) - 1)
            F, spec = F * self.vra[0][i], spec * self.vra[1][i]
        out = (F, spec) if loadings is None else (F, spec, loadings)
        if len(self._memo) >= self.MEMO:
            self._memo.pop(next(iter(self._memo)))
        self._memo[(t, start)] = out
        return out

    @cached_property
    def _z(self) -> np.ndarray:
        """The eigenfactor adjustment's simulated histories: ``eigen_sims`` x days x factors standard normals, drawn
        once (seed 0) over the days whose weight can be >= 2^-6 of the newest (six half-lives: older days change the
        simulated sampling error by < 1% and would be most of a long history's cost)."""
        days = min(int(np.ceil(6 * self.halflife)) + 1, len(self.fr.f))
        K = self.fr.f.shape[1] + self.stat_factors
        return np.random.default_rng(0).standard_normal((self.eigen_sims, days, K))

    def _simulated(self, w: np.ndarray) -> np.ndarray:
        """The simulated moments for weights ``w`` (those days of them the simulation keeps), kept for the last
        history length: after the first ~6 half-lives every date has the same."""
        w = w[w >= w.max() / 64.0]
        if self._S is None or self._S[0] != len(w):
            self._S = (len(w), simulated_moments(self._z[:, : len(w)], w))
        return self._S[1]

    def _statistical_block(self, uz: np.ndarray, okf: np.ndarray, w: np.ndarray, fz: np.ndarray):
        """(the specific returns less the statistical factors (0 where missing), the covariance of the factor returns
        ``fz`` and the statistical factors' returns together — their cross-covariance included: a small-cap residual
        component co-moves with size and with industries, so the two blocks are not independent —, their ``[N, k]``
        loadings).

        The loadings are the top right singular vectors of the weighted window ``M`` (``[W, n]``), found from the
        eigen-decomposition of its ``[W, W]`` Gram matrix ``M M' = U S^2 U'`` as ``V = M' U S^-1``: the same vectors
        as ``numpy.linalg.svd(M)`` (up to each one's sign, which the covariance ``V G V'`` does not see) at a tenth
        of the cost, since only ``k`` of them are needed (tested against the SVD)."""
        kk = self.stat_factors
        W = min(self.stat_window, len(uz))
        ww = w[len(w) - W:]
        names = okf[len(okf) - W:].sum(axis=0) >= min(self.min_obs, W)
        N = uz.shape[1]
        loadings = np.zeros((N, kk))
        if names.sum() <= kk or W <= kk:
            return uz, np.pad(self._factor_cov(fz, w), ((0, kk), (0, kk))), loadings
        M = uz[len(uz) - W:, names] * np.sqrt(ww / ww.sum())[:, None]
        vals, vecs = np.linalg.eigh(M @ M.T)
        top = np.argsort(vals)[::-1][:kk]
        s = np.sqrt(np.clip(vals[top], 0.0, None))
        V = (M.T @ vecs[:, top]) / np.where(s > 0, s, 1.0)  # [n_names, k], orthonormal columns
        loadings[names] = V
        g = uz @ loadings  # the statistical factors' daily returns (names missing a day: 0)
        resid = uz - g @ loadings.T
        resid *= okf
        return resid, self._factor_cov(np.concatenate([fz, g], axis=1), w), loadings


def covariance_root(F: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = F`` (eigen-decomposition, so a singular ``F`` — an empty industry — is fine)."""
    vals, vecs = np.linalg.eigh((F + F.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def risk_loadings(X: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``B`` with ``B B' = X F X'`` (``X`` ``[n, K]`` exposures): ``X L`` for ``F = L L'``."""
    return X @ covariance_root(F)


def tracking_error(active: np.ndarray, X: np.ndarray, F: np.ndarray, spec: np.ndarray) -> float:
    """Annualised ex-ante tracking error of active weights ``active`` (``[n]``)."""
    e = X.T @ active
    return float(np.sqrt(252.0 * (e @ F @ e + (spec * active * active).sum())))


@dataclass
class RiskInputs:
    """What the portfolio and the attribution need over a window of dates: styles, factor returns, the risk model."""

    styles: StyleExposures
    industry: np.ndarray  # [N] industry codes 0..n_industries-1 (the last: unknown)
    n_industries: int
    row0: int  # factor returns / specific returns are stored from this panel row
    fr: FactorReturns
    model: RiskModel

    def exposures(self, t: int, names: np.ndarray) -> np.ndarray:
        """``[len(names), K]`` risk exposures on date t: industry one-hots then styles (NaN -> 0)."""
        onehot = np.eye(self.n_industries)[self.industry[names]]
        return np.concatenate([onehot, np.nan_to_num(self.styles.values[t, names].astype(np.float64))], axis=1)

    def covariance(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(daily factor covariance, daily specific variance ``[N]``) known at t's close — of the factors of
        :meth:`risk_exposures` (with statistical factors: the fundamental ones then the statistical block)."""
        return self.model.at(t - self.row0)[:2]

    def risk_exposures(self, t: int, names: np.ndarray) -> np.ndarray:
        """The exposures the risk forecast uses: :meth:`exposures` and, with statistical factors, the names'
        loadings on them at t (what :meth:`covariance` covers)."""
        X = self.exposures(t, names)
        out = self.model.at(t - self.row0)
        return X if len(out) == 2 else np.concatenate([X, out[2][names]], axis=1)


def build_risk_inputs(adjusted_close: np.ndarray, styles: StyleExposures, industry: np.ndarray, n_industries: int,
                      industry_names: list[str], row0: int, row1: int, halflife: float,
                      vra_halflife: float | None = None, nw_lags: int = 0, stat_factors: int = 0,
                      stat_window: int = 252, eigen_scale: float = 0.0, eigen_sims: int = 100) -> RiskInputs:
    """Factor returns over panel rows ``row0 .. row1 - 1`` (each row's return to the next) and the EWMA model."""
    p = adjusted_close[row0:row1 + 1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_next = p[1:] / p[:-1] - 1.0
    sub = StyleExposures(styles.names, styles.values[row0:row1], styles.cap[row0:row1], styles.estimation[row0:row1])
    fr = factor_returns(r_next[: row1 - row0], industry, n_industries, sub, industry_names)
    return RiskInputs(styles, industry, n_industries, row0, fr,
                      RiskModel(fr, halflife, vra_halflife=vra_halflife, nw_lags=nw_lags, stat_factors=stat_factors,
                                stat_window=stat_window, eigen_scale=eigen_scale, eigen_sims=eigen_sims))
