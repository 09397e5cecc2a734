"""Factor preprocessing on dense ``[T, N]`` arrays: MAD winsorisation, industry + size neutralisation, z-score.

Neutralisation is the per-date least squares residual of the factor on industry dummies and log float cap. It is
computed batched over dates with the Frisch-Waugh-Lovell decomposition: regressing on the dummies demeans within
industry, so the residual is ``y~ - b s~`` with ``~`` = within-industry demeaned and ``b = sum(s~ y~) / sum(s~^2)``.
That needs only per-industry sums (one pass per industry), not a ``[T, N, K]`` design matrix.
"""

from __future__ import annotations

import numpy as np

from quantsam.crosssection import mad_winsorize, zscore

__all__ = ["mad_winsorize", "neutralize", "preprocess"]


def _group_mean(v: np.ndarray, ok: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``[T, N]`` mean of ``v`` over the names of the same group (per row, over ``ok`` names)."""
    out = np.zeros(v.shape)
    for g in range(n_groups):
        m = ok & (groups == g)[None, :]
        cnt = m.sum(axis=1, keepdims=True)
        s = np.where(m, v, 0.0).sum(axis=1, keepdims=True)
        mean = s / np.maximum(cnt, 1)
        out = np.where(m, mean, out)
    return out


def neutralize(y: np.ndarray, industry: np.ndarray | None = None, size: np.ndarray | None = None) -> np.ndarray:
    """Residual of ``y`` ``[T, N]`` on industry dummies (``industry``: ``[N]`` int codes, -1 = unknown -> its own
    group) and ``size`` ``[T, N]``, per row over names where ``y`` (and ``size``, if given) are finite."""
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    if size is not None:
        ok &= np.isfinite(size)
    if industry is None:
        groups, k = np.zeros(y.shape[1], dtype=np.int64), 1
    else:
        codes = np.asarray(industry, dtype=np.int64)
        groups = np.where(codes < 0, codes.max() + 1, codes)
        k = int(groups.max()) + 1
    yt = np.where(ok, y - _group_mean(y, ok, groups, k), 0.0)
    if size is None:
        return np.where(ok, yt, np.nan)
    s = np.asarray(size, dtype=np.float64)
    st = np.where(ok, s - _group_mean(np.where(ok, s, 0.0), ok, groups, k), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = (st * yt).sum(axis=1, keepdims=True) / (st * st).sum(axis=1, keepdims=True)
    b = np.where(np.isfinite(b), b, 0.0)
    return np.where(ok, yt - b * st, np.nan)


def preprocess(x: np.ndarray, mad_k: float | None = 5.0, industry: np.ndarray | None = None,
               size: np.ndarray | None = None) -> np.ndarray:
    """MAD winsorise -> neutralise (industry and/or size, when given) -> z-score, per row."""
    out = np.asarray(x, dtype=np.float64)
    if mad_k is not None:
        out = mad_winsorize(out, mad_k)
    if industry is not None or size is not None:
        out = neutralize(out, industry, size)
    return zscore(out)
