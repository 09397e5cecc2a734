"""Daily and weekly K-line fields (the study's 6 inputs) and their window normalisation.

Fields, in order: open, high, low, close, vwap, volume — back-adjusted prices (raw x adj_factor) and split-adjusted
volume (volume / adj_factor), so ex-rights days do not look like crashes.

Weekly bars come from daily bars: first open, max high, min low, last close, summed volume and amount,
vwap = sum(amount) / sum(volume); a week is a calendar (ISO) week and its bar is dated on its last trading day.
Only completed bars ``[W, N, 6]`` (W ~ T / 5) are stored; to stay free of look-ahead, a weekly window seen on day t
ends with the *week-to-date* bar of t's week, aggregated on demand from that week's days <= t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsam.config.schema import KLINE_FIELDS, NORMALIZE_METHODS
from quantsam.data.calendar import week_ids
from quantsam.features.panel import Panel

__all__ = ["KLINE_FIELDS", "NORMALIZE_METHODS", "adjust", "aggregate", "daily_kline", "kline_index",
           "normalize_window", "weekly_kline"]

_PRICE = slice(0, 5)
_VOLUME = 5


def adjust(vals: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Raw ``[..., 6]`` K-line fields and ``[...]`` adj factors -> adjusted prices and volume (float32)."""
    out = np.empty(vals.shape, dtype=np.float32)
    out[..., _PRICE] = vals[..., _PRICE] * adj[..., None]
    out[..., _VOLUME] = vals[..., _VOLUME] / adj
    return out


def kline_index(panel: Panel) -> tuple[list[int], int]:
    """Positions of the 6 K-line fields and of adj_factor in ``panel.fields``."""
    missing = [f for f in (*KLINE_FIELDS, "adj_factor") if f not in panel.fields]
    if missing:
        raise KeyError(f"panel lacks fields {missing}; build it with the default PANEL_FIELDS")
    return [panel.fields.index(f) for f in KLINE_FIELDS], panel.fields.index("adj_factor")


def daily_kline(panel: Panel, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """``[T', N, 6]`` float32 adjusted daily K-line fields of the given date rows (NaN where not traded)."""
    idx, a = kline_index(panel)
    v = panel.values[rows]
    return adjust(v[..., idx], v[..., a])


def aggregate(days: np.ndarray) -> np.ndarray:
    """One bar from ``[k, ..., 6]`` consecutive adjusted daily bars (NaN = no trade): first open, max high,
    min low, last close, vwap = sum(vwap * volume) / sum(volume), summed volume. All-NaN -> NaN bar."""
    traded = np.isfinite(days[..., 3])
    any_t = traded.any(axis=0)
    k = days.shape[0]
    first = np.argmax(traded, axis=0)
    last = k - 1 - np.argmax(traded[::-1], axis=0)
    take = np.take_along_axis
    out = np.full(days.shape[1:], np.nan, dtype=np.float32)
    out[..., 0] = take(days[..., 0], first[None], axis=0)[0]
    out[..., 3] = take(days[..., 3], last[None], axis=0)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[..., 1] = np.fmax.reduce(days[..., 1], axis=0)
        out[..., 2] = np.fmin.reduce(days[..., 2], axis=0)
        vol = np.nansum(days[..., 5], axis=0, dtype=np.float64)
        amt = np.nansum(days[..., 4].astype(np.float64) * days[..., 5], axis=0)
        out[..., 4] = np.where(vol > 0, amt / np.where(vol > 0, vol, 1.0), np.nan)
    out[..., 5] = vol
    out[~any_t] = np.nan
    return out


@dataclass
class WeeklyKline:
    """Completed weekly bars and the calendar's week structure."""

    bars: np.ndarray  # [W, N, 6] completed bars (each week's days aggregated)
    week_of_day: np.ndarray  # [T] week id of each day
    week_start: np.ndarray  # [W] index of the first trading day of each week
    week_end: np.ndarray  # [W] index of the last trading day of each week


def weekly_kline(panel: Panel) -> WeeklyKline:
    """Aggregate adjusted daily K-lines into weekly bars. Vectorised over weeks and stocks; the loop runs over the
    (at most 5) positions inside a week, and only one position's days are adjusted at a time (bounded memory)."""
    T = len(panel.dates)
    wk = week_ids(panel.dates)
    starts = np.r_[0, np.nonzero(np.diff(wk))[0] + 1]
    ends = np.r_[starts[1:] - 1, T - 1]
    pos = np.arange(T) - starts[wk]
    W, N = len(starts), len(panel.codes)
    bars = np.full((W, N, 6), np.nan, dtype=np.float32)
    cum_amt = np.zeros((W, N), dtype=np.float64)
    cum_vol = np.zeros((W, N), dtype=np.float64)
    for p in range(int(pos.max()) + 1):
        rows = np.nonzero(pos == p)[0]
        w = wk[rows]
        d = daily_kline(panel, rows)
        b = bars[w]
        o, h, lo, c, vw, v = (d[..., k] for k in range(6))
        b[..., 0] = np.where(np.isnan(b[..., 0]), o, b[..., 0])
        b[..., 1] = np.fmax(b[..., 1], h)
        b[..., 2] = np.fmin(b[..., 2], lo)
        b[..., 3] = np.where(np.isnan(c), b[..., 3], c)
        bars[w] = b
        ok = np.isfinite(vw) & np.isfinite(v)
        cum_amt[w] += np.where(ok, vw.astype(np.float64) * v, 0.0)
        cum_vol[w] += np.where(ok, v, 0.0)
    has = cum_vol > 0
    bars[..., 4] = np.where(has, cum_amt / np.where(has, cum_vol, 1.0), np.nan)
    bars[..., 5] = np.where(np.isnan(bars[..., 3]), np.nan, cum_vol)
    return WeeklyKline(bars=bars, week_of_day=wk, week_start=starts, week_end=ends)


#: 1.4826 x MAD estimates the standard deviation of a normal distribution (consistency constant)
MAD_SCALE = 1.4826
#: robust z-scores are clipped to [-ROBUST_CLIP, ROBUST_CLIP]
ROBUST_CLIP = 3.0


def nanmedian_names(x: np.ndarray) -> np.ndarray:
    """``np.nanmedian(x, axis=0, keepdims=True)`` (NaN where a column has no finite value), equal to it bit for bit.

    By hand because numpy's ``nanmedian`` over axis 0 runs a 1-D median per (step, field) column in a Python-level
    loop: one sort of the whole block, then the middle of each column's finite values, is ~3x faster on an
    A-share cross-section (``[~3,000, 30, 6]``) and the robust normalisation runs once per date and window
    (tests/unit/test_features.py compares with numpy on NaN-rich inputs)."""
    s = np.sort(x, axis=0)  # NaN sort last
    k = np.isfinite(x).sum(axis=0, keepdims=True)
    lo, hi = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
    with np.errstate(invalid="ignore"):
        m = (np.take_along_axis(s, lo, 0) + np.take_along_axis(s, hi, 0)) / x.dtype.type(2)
    return np.where(k > 0, m, x.dtype.type(np.nan))


def normalize_window(win: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Study normalisation of a batch of windows ``[n, L, F]``.

    Each field's window is divided by its own last value, then standardised across the ``n`` names for every
    (step, field); NaN (suspended days, or a missing/zero last value) -> 0.

    ``method="zscore"`` (the source's recipe, Huatai AI-84): mean / standard deviation. ``method="robust"``: median
    / (1.4826 x MAD), clipped to [-3, 3] — qlib's ``RobustZScoreNorm(clip_outlier=True)`` used by its Alpha158/360
    handlers; a name whose last value is tiny (e.g. a near-zero volume day) no longer gets z-scores in the tens
    that dominate the GRU's input (issue 25: median per-date kurtosis of the scores 24 under ``zscore``).
    """
    if method not in NORMALIZE_METHODS:
        raise ValueError(f"normalize method {method!r}: choose one of {NORMALIZE_METHODS}")
    with np.errstate(invalid="ignore", divide="ignore"):
        x = win / win[:, -1:, :]
    ok = np.isfinite(x)
    if method == "robust":
        xf = np.where(ok, x, np.nan).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            med = nanmedian_names(xf)
            mad = nanmedian_names(np.abs(xf - med)) * np.float32(MAD_SCALE)
            z = (xf - med) / mad
        z = np.where(np.isfinite(z), np.clip(z, -ROBUST_CLIP, ROBUST_CLIP), 0.0)
        return z.astype(np.float32, copy=False)
    x = np.where(ok, x, 0.0).astype(np.float32)
    n = ok.sum(axis=0, keepdims=True).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = x.sum(axis=0, keepdims=True) / n
        d = np.where(ok, x - mu, 0.0)
        sd = np.sqrt((d * d).sum(axis=0, keepdims=True) / n)
        z = np.where(ok, d / sd, 0.0)
    z[~np.isfinite(z)] = 0.0
    return z.astype(np.float32, copy=False)
