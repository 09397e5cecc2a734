"""IC and RankIC on dense ``[T, N]`` arrays: per-date Pearson / Spearman over names where both values are finite.

Written with numpy rather than ``groupby(date).apply(scipy.stats.spearmanr)`` because it is the hot path of the
factor tests and of every validation epoch; ranks use argsort along the name axis with average ranks for ties
(``scipy.stats.rankdata(method="average")``), masked for NaN.
"""

from __future__ import annotations

import numpy as np


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


BLOCK = 128  # rows per block: keeps temporaries in cache instead of page-faulting [T, N] arrays


def ic_rows(x: np.ndarray, y: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Per-row Pearson correlation of ``x`` and ``y`` (``[T, N]``) over names where both are finite."""
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
