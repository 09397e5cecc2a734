"""Style exposures from price-volume data, point in time, in the conventions of Barra's China equity model (CNE5;
Orr & Mashtaler, "Barra China Equity Model (CNE5) Descriptor Definitions", MSCI 2012), with the short-term reversal
of CNE6. Only what the shared data holds (prices, volumes, float shares) is used — no fundamentals.

Descriptors on date t use data up to t's close only:

* ``size``: ln(float market cap) = ln(close x float shares) (CNE5 LNCAP, float cap as Chinese index makers use);
* ``nonlinear_size``: size^3 orthogonalised to size by cap-weighted regression, then standardised (CNE5 NLSIZE);
* ``beta``: the slope of the stock's daily return on the market's (the cap-weighted return of the estimation
  universe) in an exponentially weighted regression with a 63-day half-life (CNE5 BETA: 252 days, half-life 63;
  here the EWMA runs over all history, whose weight beyond 252 days is 6%);
* ``momentum``: the sum of daily log returns from t-252 to t-21 (12-1 months, skipping the last month);
* ``residual_volatility``: the EWMA standard deviation (half-life 42, CNE5 DASTD) of the residual of that beta
  regression, orthogonalised to beta and size (as CNE5 RESVOL);
* ``liquidity``: 0.35 STOM + 0.35 STOQ + 0.30 STOA with STOM = ln(sum of daily turnover over 21 days), STOQ / STOA
  = ln(mean monthly turnover over 3 / 12 months), turnover = volume / float shares; orthogonalised to size (CNE5);
* ``reversal``: the exponentially weighted (half-life 5) sum of daily log returns over the last 21 days (CNE6 STREV).

Each descriptor is winsorised at 3 standard deviations and standardised per date to a **cap-weighted mean of 0 and
an equal-weighted standard deviation of 1** over the estimation universe (CNE5 §2: traded, listed >= 63 days, not ST),
names outside it standardised with the same moments. Descriptors that cannot be estimated (too little history, no
float shares) are NaN; the consumers count them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsam.config.schema import STYLES
from quantsam.features.panel import Panel

__all__ = ["STYLES", "StyleExposures", "style_exposures"]
MIN_OBS = {"beta": 63, "momentum": 120, "liquidity": 42, "reversal": 10}


@dataclass
class StyleExposures:
    """``values[t, i, k]``: standardised exposure of name i to style ``names[k]`` on date t (NaN = not estimable)."""

    names: tuple[str, ...]
    values: np.ndarray  # [T, N, K] float32
    cap: np.ndarray  # [T, N] float64 float market cap (NaN where unknown): the weights of the standardisation
    estimation: np.ndarray  # [T, N] bool: the estimation universe

    def style(self, name: str) -> np.ndarray:
        return self.values[:, :, self.names.index(name)]


def _decay(halflife: float) -> float:
    return 0.5 ** (1.0 / halflife)


def daily_returns(panel: Panel) -> np.ndarray:
    """``[T, N]`` log returns of the adjusted close on consecutive rows where both days traded (NaN otherwise)."""
    p = panel.adjusted("close").astype(np.float64)
    out = np.full(p.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.log(p[1:] / p[:-1])
    return out


def market_return(r: np.ndarray, cap: np.ndarray, estimation: np.ndarray) -> np.ndarray:
    """``[T]`` cap-weighted mean of ``r`` over the estimation universe, with the previous day's caps."""
    w = np.zeros_like(r)
    w[1:] = np.where(estimation[:-1] & np.isfinite(cap[:-1]), cap[:-1], 0.0)
    ok = np.isfinite(r) & (w > 0)
    tot = np.where(ok, w, 0.0).sum(axis=1)
    return np.where(tot > 0, np.where(ok, w * r, 0.0).sum(axis=1) / np.where(tot > 0, tot, 1.0), np.nan)


def ewma_regression(r: np.ndarray, m: np.ndarray, hl_beta: float = 63.0, hl_vol: float = 42.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beta, residual volatility, observation count) per date: exponentially weighted least squares of ``r[:, i]``
    on ``m`` (and a constant) over each name's history up to t; the residual's EWMA variance uses ``hl_vol``.
    A recursion over dates (vectorised over names): sums decay by the half-life's factor each day and take the day's
    values where the stock traded."""
    T, N = r.shape
    a, av = _decay(hl_beta), _decay(hl_vol)
    sw = sx = sy = sxx = sxy = np.zeros(N)
    vw = vres = np.zeros(N)
    cnt = np.zeros(N)
    beta = np.full((T, N), np.nan)
    resvol = np.full((T, N), np.nan)
    count = np.zeros((T, N))
    for t in range(T):
        y = r[t]
        x = m[t]
        ok = np.isfinite(y) & np.isfinite(x)
        xv, yv = (x if np.isfinite(x) else 0.0), np.where(ok, y, 0.0)
        sw = a * sw + ok
        sx = a * sx + ok * xv
        sy = a * sy + yv
        sxx = a * sxx + ok * xv * xv
        sxy = a * sxy + yv * xv
        cnt = cnt + ok
        with np.errstate(invalid="ignore", divide="ignore"):
            var_x = sxx / sw - (sx / sw) ** 2
            b = (sxy / sw - (sx / sw) * (sy / sw)) / var_x
            alpha = sy / sw - b * sx / sw
            e = np.where(ok, y - alpha - b * xv, 0.0)
        e = np.where(np.isfinite(e), e, 0.0)
        vw = av * vw + ok
        vres = av * vres + ok * e * e
        beta[t] = b
        with np.errstate(invalid="ignore", divide="ignore"):
            resvol[t] = np.sqrt(vres / vw)
        count[t] = cnt
    return beta, resvol, count


def rolling_sum(x: np.ndarray, window: int, lag: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count of finite values) of ``x`` over rows ``t - lag - window + 1 .. t - lag``."""
    v = np.where(np.isfinite(x), x, 0.0)
    c = np.isfinite(x).astype(np.float64)
    cs = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(v, axis=0)])
    cc = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(c, axis=0)])
    T = len(x)
    hi = np.arange(T) - lag + 1  # exclusive end index into cs
    lo = np.maximum(hi - window, 0)
    hi = np.clip(hi, 0, T)
    return cs[hi] - cs[lo], cc[hi] - cc[lo]


def ewma_sum(x: np.ndarray, window: int, halflife: float) -> np.ndarray:
    """Exponentially weighted sum of the last ``window`` rows (weights 0.5^(k / halflife), k = 0 for today)."""
    w = 0.5 ** (np.arange(window) / halflife)
    v = np.where(np.isfinite(x), x, 0.0)
    out = np.zeros_like(v)
    for k in range(window):
        out[k:] += w[k] * v[: len(v) - k]
    return out


def _orthogonalise(y: np.ndarray, xs: list[np.ndarray], weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per date, the residual of ``y`` on a constant and ``xs`` by weighted least squares over ``mask`` (the fit is
    applied to every name with finite inputs)."""
    T, N = y.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        cols = [np.ones(N), *[x[t] for x in xs]]
        X = np.column_stack(cols)
        ok_all = np.isfinite(y[t]) & np.isfinite(X).all(axis=1)
        fit = ok_all & mask[t] & np.isfinite(weight[t]) & (weight[t] > 0)
        if fit.sum() <= X.shape[1] + 2:
            continue
        sw = np.sqrt(weight[t, fit])
        coef, *_ = np.linalg.lstsq(X[fit] * sw[:, None], y[t, fit] * sw, rcond=None)
        out[t, ok_all] = y[t, ok_all] - X[ok_all] @ coef
    return out


def standardise(x: np.ndarray, cap: np.ndarray, mask: np.ndarray, clip: float = 3.0) -> np.ndarray:
    """Per date: winsorise at +-``clip`` equal-weighted std around the mean of the estimation universe ``mask``, then
    shift to a cap-weighted mean of 0 and scale to an equal-weighted std of 1 (CNE5); NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    est = mask & np.isfinite(x)
    n = est.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(est, x, 0.0).sum(axis=1, keepdims=True) / n
        sd = np.sqrt(np.where(est, (x - mu) ** 2, 0.0).sum(axis=1, keepdims=True) / np.maximum(n - 1, 1))
        xw = np.clip(x, mu - clip * sd, mu + clip * sd)
        w = np.where(est & np.isfinite(cap), cap, 0.0)
        cmu = (w * np.where(est, xw, 0.0)).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
        wmu = np.where(est, xw, 0.0).sum(axis=1, keepdims=True) / n
        d = np.where(est, xw - wmu, 0.0)  # the equal-weighted std is about the equal-weighted mean
        esd = np.sqrt((d * d).sum(axis=1, keepdims=True) / np.maximum(n - 1, 1))
        z = (xw - cmu) / esd
    z[(n[:, 0] < 3)] = np.nan
    return np.where(np.isfinite(z), z, np.nan)


def style_exposures(panel: Panel, estimation: np.ndarray) -> StyleExposures:
    """The seven style exposures of every name on every date (see the module docstring). ``estimation``: ``[T, N]``
    estimation universe (typically :func:`quantsam.features.dataset.eligible_mask`)."""
    close = panel.field("close").astype(np.float64)
    fs = panel.field("float_shares").astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cap = close * fs
        cap = np.where(np.isfinite(cap) & (cap > 0), cap, np.nan)
        size = np.log(cap)
    est = estimation & np.isfinite(cap)
    r = daily_returns(panel)
    m = market_return(r, cap, est)
    beta, resvol, count = ewma_regression(r, m)
    beta[count < MIN_OBS["beta"]] = np.nan
    resvol[count < MIN_OBS["beta"]] = np.nan
    mom, n_mom = rolling_sum(r, 231, lag=21)
    mom[n_mom < MIN_OBS["momentum"]] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        turn = panel.field("volume").astype(np.float64) / fs
    turn = np.where(panel.traded, np.where(np.isfinite(turn), turn, np.nan), 0.0)  # a suspended day trades nothing
    s21, n21 = rolling_sum(turn, 21)
    s63, n63 = rolling_sum(turn, 63)
    s252, n252 = rolling_sum(turn, 252)
    with np.errstate(invalid="ignore", divide="ignore"):
        stom = np.log(s21)
        stoq = np.log(s63 / 3.0)
        stoa = np.log(s252 / 12.0)
    liq = 0.35 * stom + 0.35 * stoq + 0.30 * stoa
    liq[(n21 < 21) | (n63 < MIN_OBS["liquidity"]) | ~np.isfinite(liq)] = np.nan
    rev_cnt = rolling_sum(r, 21)[1]
    rev = ewma_sum(r, 21, 5.0)
    rev[rev_cnt < MIN_OBS["reversal"]] = np.nan

    z_size = standardise(size, cap, est)
    nls = _orthogonalise(z_size ** 3, [z_size], cap, est)
    z_beta = standardise(beta, cap, est)
    res = _orthogonalise(standardise(resvol, cap, est), [z_beta, z_size], cap, est)
    liq_o = _orthogonalise(standardise(liq, cap, est), [z_size], cap, est)
    values = np.stack([z_size, standardise(nls, cap, est), z_beta, standardise(mom, cap, est),
                       standardise(res, cap, est), standardise(liq_o, cap, est), standardise(rev, cap, est)],
                      axis=-1).astype(np.float32)
    return StyleExposures(STYLES, values, cap, est)
