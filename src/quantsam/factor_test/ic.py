"""IC and RankIC on dense ``[T, N]`` arrays: per-date Pearson / Spearman over names where both values are finite.

Written with numpy rather than ``groupby(date).apply(scipy.stats.spearmanr)`` because it is the hot path of the
factor tests and of every validation epoch; ranks use argsort along the name axis with average ranks for ties
(``scipy.stats.rankdata(method="average")``), masked for NaN.
"""

from __future__ import annotations

import numpy as np


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) along axis 1 over finite values; NaN stays NaN. Ties get the mean of their ranks."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    filled = np.where(finite, x, np.inf)
    order = np.argsort(filled, axis=1, kind="stable")
    v = np.take_along_axis(filled, order, axis=1)
    T, N = x.shape
    pos = np.broadcast_to(np.arange(N), (T, N))
    new_group = np.ones((T, N), dtype=bool)
    new_group[:, 1:] = v[:, 1:] != v[:, :-1]
    start = np.maximum.accumulate(np.where(new_group, pos, 0), axis=1)
    end_group = np.ones((T, N), dtype=bool)
    end_group[:, :-1] = new_group[:, 1:]
    end = np.flip(np.minimum.accumulate(np.flip(np.where(end_group, pos, N), axis=1), axis=1), axis=1)
    ranks_sorted = (start + end) / 2.0 + 1.0
    out = np.empty((T, N))
    np.put_along_axis(out, order, ranks_sorted, axis=1)
    out[~finite] = np.nan
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


def ic_rows(x: np.ndarray, y: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Per-row Pearson correlation of ``x`` and ``y`` (``[T, N]``) over names where both are finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return _pearson_rows(x, y, np.isfinite(x) & np.isfinite(y), min_names)


def rank_ic_rows(x: np.ndarray, y: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Per-row Spearman correlation: Pearson of average ranks, ranked over the names where both are finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    rx = rank_rows(np.where(ok, x, np.nan))
    ry = rank_rows(np.where(ok, y, np.nan))
    return _pearson_rows(rx, ry, ok, min_names)
