"""Daily and weekly K-line fields (the study's 6 inputs) and their window normalisation.

Fields, in order: open, high, low, close, vwap, volume — back-adjusted prices (raw x adj_factor) and split-adjusted
volume (volume / adj_factor), so ex-rights days do not look like crashes.

Weekly bars come from daily bars: first open, max high, min low, last close, summed volume and amount,
vwap = sum(amount) / sum(volume); a week is a calendar (ISO) week and its bar is dated on its last trading day.
To stay free of look-ahead, a weekly window seen on day t ends with the *week-to-date* bar of t's week (only days <= t),
preceded by completed weeks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsam.data.calendar import week_ids
from quantsam.features.panel import Panel

KLINE_FIELDS = ("open", "high", "low", "close", "vwap", "volume")


def daily_kline(panel: Panel) -> np.ndarray:
    """``[T, N, 6]`` float32 adjusted daily K-line fields (NaN where not traded)."""
    out = np.empty((*panel.traded.shape, len(KLINE_FIELDS)), dtype=np.float32)
    for k, f in enumerate(KLINE_FIELDS):
        out[:, :, k] = panel.adjusted(f)
    return out


@dataclass
class WeeklyKline:
    """Week-to-date bars per day and the completed bars per week."""

    week_to_date: np.ndarray  # [T, N, 6]: bar of day t's week using days <= t only
    week_of_day: np.ndarray  # [T] week id of each day
    week_end: np.ndarray  # [W] index of the last trading day of each week

    @property
    def bars(self) -> np.ndarray:
        """``[W, N, 6]`` completed weekly bars (a copy): the week-to-date bar on each week's last trading day."""
        return self.week_to_date[self.week_end]


def weekly_kline(panel: Panel, daily: np.ndarray | None = None) -> WeeklyKline:
    """Aggregate adjusted daily K-lines into weekly bars (see module docstring).

    Vectorised over stocks; the loop runs over the (at most 5) positions inside a week, not over days.
    """
    d = daily_kline(panel) if daily is None else daily
    T = d.shape[0]
    wk = week_ids(panel.dates)
    starts = np.r_[0, np.nonzero(np.diff(wk))[0] + 1]
    pos = np.arange(T) - starts[wk]  # position of each day inside its week
    week_end = np.r_[starts[1:] - 1, T - 1]
    o, h, lo, c, vw, v = (d[:, :, k] for k in range(6))
    amount = np.where(np.isfinite(vw * v), vw * v, 0.0).astype(np.float64)
    vol = np.nan_to_num(v).astype(np.float64)
    out = np.full_like(d, np.nan)
    cum_amt = np.zeros_like(amount)
    cum_vol = np.zeros_like(vol)
    for p in range(int(pos.max()) + 1):
        rows = np.nonzero(pos == p)[0]
        if p == 0:
            out[rows, :, 0] = o[rows]
            out[rows, :, 1] = h[rows]
            out[rows, :, 2] = lo[rows]
            out[rows, :, 3] = c[rows]
            cum_amt[rows] = amount[rows]
            cum_vol[rows] = vol[rows]
        else:
            prev = rows - 1
            first_open = out[prev, :, 0]
            out[rows, :, 0] = np.where(np.isnan(first_open), o[rows], first_open)
            out[rows, :, 1] = np.fmax(out[prev, :, 1], h[rows])
            out[rows, :, 2] = np.fmin(out[prev, :, 2], lo[rows])
            out[rows, :, 3] = np.where(np.isnan(c[rows]), out[prev, :, 3], c[rows])
            cum_amt[rows] = cum_amt[prev] + amount[rows]
            cum_vol[rows] = cum_vol[prev] + vol[rows]
    traded_wtd = cum_vol > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, :, 4] = np.where(traded_wtd, cum_amt / np.where(traded_wtd, cum_vol, 1.0), np.nan)
    out[:, :, 5] = np.where(np.isnan(out[:, :, 3]), np.nan, cum_vol)
    return WeeklyKline(week_to_date=out, week_of_day=wk, week_end=week_end)


def normalize_window(win: np.ndarray) -> np.ndarray:
    """Study normalisation of a batch of windows ``[n, L, F]`` (float32, in place on a copy).

    Each field's window is divided by its own last value, then z-scored across the ``n`` names for every (step, field);
    NaN (suspended days, or a zero last value) -> 0.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        x = win / win[:, -1:, :]
    ok = np.isfinite(x)
    x = np.where(ok, x, 0.0).astype(np.float32)
    n = ok.sum(axis=0, keepdims=True).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = x.sum(axis=0, keepdims=True) / n
        d = np.where(ok, x - mu, 0.0)
        sd = np.sqrt((d * d).sum(axis=0, keepdims=True) / n)
        z = np.where(ok, d / sd, 0.0)
    z[~np.isfinite(z)] = 0.0
    return z.astype(np.float32, copy=False)
