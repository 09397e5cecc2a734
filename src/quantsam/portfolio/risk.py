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


class RiskModel:
    """EWMA factor covariance and specific variance from :class:`FactorReturns`, queried at decision dates; with
    ``vra_halflife`` both scaled by the volatility regime adjustment (:func:`vra_multipliers`)."""

    def __init__(self, fr: FactorReturns, halflife: float = 90.0, min_obs: int = 42,
                 vra_halflife: float | None = None):
        self.fr, self.halflife, self.min_obs = fr, halflife, min_obs
        self._a = 0.5 ** (1.0 / halflife)
        self.vra = None if vra_halflife is None else vra_multipliers(fr, halflife, vra_halflife, min_obs)

    def at(self, t: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(daily factor covariance ``[K, K]``, daily specific variance ``[N]``) known at t's close: factor returns of
        days ``start .. t-1`` (the return t-1 -> t is realised at t), newest weighted most. Names with fewer than
        ``min_obs`` specific returns get the cross-sectional median."""
        f = self.fr.f[start:t]
        u = self.fr.u[start:t]
        k = len(f)
        w = self._a ** np.arange(k - 1, -1, -1)
        fz = np.nan_to_num(f)
        F = (fz * w[:, None]).T @ fz / w.sum()
        ok = np.isfinite(u)
        wu = np.where(ok, w[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            spec = (wu * np.nan_to_num(u) ** 2).sum(axis=0) / wu.sum(axis=0)
        enough = ok.sum(axis=0) >= self.min_obs
        med = np.nanmedian(spec[enough]) if enough.any() else np.nan
        spec = np.where(enough & np.isfinite(spec), spec, med)
        if self.vra is not None:  # lambda^2 at t uses the returns before t, as F and spec do
            i = min(t, len(self.vra[0]) - 1)
            F, spec = F * self.vra[0][i], spec * self.vra[1][i]
        return F, spec


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
        """(daily factor covariance, daily specific variance ``[N]``) known at t's close."""
        return self.model.at(t - self.row0)


def build_risk_inputs(adjusted_close: np.ndarray, styles: StyleExposures, industry: np.ndarray, n_industries: int,
                      industry_names: list[str], row0: int, row1: int, halflife: float,
                      vra_halflife: float | None = None) -> RiskInputs:
    """Factor returns over panel rows ``row0 .. row1 - 1`` (each row's return to the next) and the EWMA model."""
    p = adjusted_close[row0:row1 + 1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_next = p[1:] / p[:-1] - 1.0
    sub = StyleExposures(styles.names, styles.values[row0:row1], styles.cap[row0:row1], styles.estimation[row0:row1])
    fr = factor_returns(r_next[: row1 - row0], industry, n_industries, sub, industry_names)
    return RiskInputs(styles, industry, n_industries, row0, fr, RiskModel(fr, halflife, vra_halflife=vra_halflife))
