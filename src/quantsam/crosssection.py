"""Cross-sectional math on dense arrays: z-scores, ranks, per-date IC / RankIC, annualisation, series statistics.

The ground floor every stage uses (training's validation metrics, the signal, the factor test, the portfolio's
exposures, the backtest and report metrics), so each of these operations exists once. ``[T, N]`` arrays hold one row
per date and one column per name; NaN marks a name without a value on that date.

IC and RankIC are written with numpy rather than ``groupby(date).apply(scipy.stats.spearmanr)`` because they are the
hot path of the factor tests and of every validation epoch: average ranks come from one argsort per row with ties
sharing their mean rank (``scipy.stats.rankdata(method="average")``), masked for NaN, and rows are processed in blocks
so temporaries stay in cache.
"""

from __future__ import annotations

import warnings

import numpy as np

BLOCK = 128  # rows per block: keeps temporaries in cache instead of page-faulting [T, N] arrays


# ---- z-scores -----------------------------------------------------------------------------------------------------
def zscore(x: np.ndarray, mask: np.ndarray | None = None, axis: int = 1) -> np.ndarray:
    """Cross-sectional z-score along ``axis`` (names) over finite values (and ``mask``), sample std (ddof 1); NaN
    elsewhere. Rows with fewer than 2 valid names, or no dispersion, are NaN."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x) if mask is None else np.isfinite(x) & mask
    n = ok.sum(axis=axis, keepdims=True)
    xs = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = xs.sum(axis=axis, keepdims=True) / n
        d = np.where(ok, x - mu, 0.0)
        sd = np.sqrt((d * d).sum(axis=axis, keepdims=True) / (n - 1))
        z = np.where(ok & (n >= 2) & (sd > 0), d / sd, np.nan)
    return z


def zscore_vector(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """z-score of a 1-D ``x`` over ``mask`` and its finite values, population std (ddof 0); 0 elsewhere (a neutral
    exposure for names without a value). Fewer than 2 valid values -> all 0."""
    x = np.asarray(x, dtype=np.float64)
    ok = mask & np.isfinite(x)
    out = np.zeros(len(x))
    if ok.sum() >= 2:
        v = x[ok]
        sd = v.std()
        out[ok] = (v - v.mean()) / (sd if sd > 0 else 1.0)
    return out


def mad_winsorize(x: np.ndarray, k: float = 5.0) -> np.ndarray:
    """Clip each row to ``median +- k * MAD`` with ``MAD = median(|x - median|)`` (unscaled), over finite values
    (the factor test's ``factor_test.mad_k`` and the signal's ``signal.mad_k``)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        med = np.nanmedian(x, axis=1, keepdims=True)
        mad = np.nanmedian(np.abs(x - med), axis=1, keepdims=True)
    return np.clip(x, med - k * mad, med + k * mad)


def kurtosis_rows(x: np.ndarray, min_names: int = 4) -> np.ndarray:
    """Per-row excess kurtosis (Fisher, biased: ``m4 / m2^2 - 3``, as ``scipy.stats.kurtosis``'s defaults) over the
    finite values; NaN for rows with fewer than ``min_names`` values or no dispersion. A normal cross-section gives
    ~0; heavy-tailed scores (a few extreme names) give tens."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    n = ok.sum(axis=1)
    xs = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = xs.sum(axis=1, keepdims=True) / n[:, None]
        d = np.where(ok, x - mu, 0.0)
        m2 = (d ** 2).sum(axis=1) / n
        m4 = (d ** 4).sum(axis=1) / n
        k = m4 / (m2 * m2) - 3.0
    return np.where((n >= min_names) & (m2 > 0), k, np.nan)


# ---- ranks --------------------------------------------------------------------------------------------------------
def _tie_average(v: np.ndarray) -> np.ndarray:
    """Average 1-based ranks of already sorted rows ``v`` (inf = missing, at the end), ties sharing their mean rank."""
    T, N = v.shape
    pos = np.broadcast_to(np.arange(N), (T, N))
    new_group = np.ones((T, N), dtype=bool)
    new_group[:, 1:] = v[:, 1:] != v[:, :-1]
    start = np.maximum.accumulate(np.where(new_group, pos, 0), axis=1)
    end_group = np.ones((T, N), dtype=bool)
    end_group[:, :-1] = new_group[:, 1:]
    end = np.flip(np.minimum.accumulate(np.flip(np.where(end_group, pos, N), axis=1), axis=1), axis=1)
    return (start + end) / 2.0 + 1.0


def sort_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argsort, sorted values) of each row with NaN -> +inf at the end; one sort per call."""
    filled = np.where(np.isfinite(x), x, np.inf)
    order = np.argsort(filled, axis=1)
    return order, np.take_along_axis(filled, order, axis=1)


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) along axis 1 over finite values; NaN stays NaN. Ties get the mean of their ranks
    (``scipy.stats.rankdata(method="average")``). One sort per row; the tie pass runs only on rows with ties."""
    x = np.asarray(x, dtype=np.float64)
    order, v = sort_rows(x)
    T, N = x.shape
    ranks = np.broadcast_to(np.arange(1.0, N + 1.0), (T, N)).copy()
    tied = ((v[:, 1:] == v[:, :-1]) & np.isfinite(v[:, 1:])).any(axis=1)
    if tied.any():
        ranks[tied] = _tie_average(v[tied])
    out = np.empty((T, N))
    np.put_along_axis(out, order, ranks, axis=1)
    out[~np.isfinite(x)] = np.nan
    return out


# ---- per-date correlations ------------------------------------------------------------------------------------------
def _pearson_rows(x: np.ndarray, y: np.ndarray, ok: np.ndarray, min_names: int) -> np.ndarray:
    n = ok.sum(axis=1)
    xs, ys = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xs.sum(1, keepdims=True) / n[:, None]
        my = ys.sum(1, keepdims=True) / n[:, None]
        dx, dy = np.where(ok, x - mx, 0.0), np.where(ok, y - my, 0.0)
        r = (dx * dy).sum(1) / np.sqrt((dx * dx).sum(1) * (dy * dy).sum(1))
    r[n < min_names] = np.nan
    return r


def ic_rows(x: np.ndarray, y: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Per-row Pearson correlation of ``x`` and ``y`` (``[T, N]``) over names where both are finite (NaN with fewer
    than ``min_names`` such names, or no dispersion)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.empty(len(x))
    for r0 in range(0, len(x), BLOCK):
        xb, yb = x[r0:r0 + BLOCK], y[r0:r0 + BLOCK]
        out[r0:r0 + BLOCK] = _pearson_rows(xb, yb, np.isfinite(xb) & np.isfinite(yb), min_names)
    return out


def rank_ic_rows(x: np.ndarray, y: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Per-row Spearman correlation: Pearson of average ranks, ranked over the names where both are finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.empty(len(x))
    for r0 in range(0, len(x), BLOCK):
        xb, yb = x[r0:r0 + BLOCK], y[r0:r0 + BLOCK]
        ok = np.isfinite(xb) & np.isfinite(yb)
        rx = rank_rows(np.where(ok, xb, np.nan))
        ry = rank_rows(np.where(ok, yb, np.nan))
        out[r0:r0 + BLOCK] = _pearson_rows(rx, ry, ok, min_names)
    return out


# ---- time-series statistics -----------------------------------------------------------------------------------------
def annualize(r: np.ndarray, periods_per_year: float) -> float:
    """Compounded annual return of per-period returns ``r`` (non-finite values dropped):
    ``prod(1 + r) ** (periods_per_year / n) - 1``; NaN for an empty series."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return float("nan")
    return float(np.prod(1.0 + r) ** (periods_per_year / len(r)) - 1.0)


def max_drawdown(r: np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded NAV ``prod(1 + r)`` (negative; the start counts as a peak)."""
    nav = np.cumprod(1 + np.asarray(r, dtype=np.float64))
    if not len(nav):
        return float("nan")
    peak = np.maximum.accumulate(np.r_[1.0, nav])[1:]
    return float((nav / peak - 1).min())


def series_stats(x: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """Mean, sample std, IR = mean / std (and x sqrt(periods_per_year)), t = IR x sqrt(n), share positive, over the
    finite values of a per-period series (an IC series, an excess-return series)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(np.mean(x)) if n else float("nan")
    sd = float(np.std(x, ddof=1)) if n > 1 else float("nan")
    ir = mean / sd if sd and np.isfinite(sd) and sd > 0 else float("nan")
    return {"mean": mean, "std": sd, "ir": ir, "ir_ann": ir * np.sqrt(periods_per_year), "t": ir * np.sqrt(n),
            "pos": float(np.mean(x > 0)) if n else float("nan")}
