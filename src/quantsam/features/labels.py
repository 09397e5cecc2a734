"""Labels: forward returns and their cross-sectional z-score.

The study's label on day t is the return from the close of t+1 to the close of t+11 (10 trading days; the position is
entered at t+1), back-adjusted, cross-sectionally z-scored over names with a label. Price type close (option: vwap).
"""

from __future__ import annotations

import numpy as np

from quantsam.crosssection import zscore
from quantsam.features.panel import Panel


def forward_return(panel: Panel, horizon: int = 10, price: str = "close", lag: int = 1) -> np.ndarray:
    """``[T, N]`` float32 ``p[t + lag + horizon] / p[t + lag] - 1`` on adjusted prices; NaN where either is missing
    or the window runs past the panel's end."""
    if horizon < 1 or lag < 0:
        raise ValueError(f"horizon={horizon} must be >= 1 and lag={lag} >= 0")
    if price not in ("close", "vwap", "open"):
        raise ValueError(f"price='{price}': use 'close', 'vwap' or 'open'")
    p = panel.adjusted(price)
    T = p.shape[0]
    out = np.full(p.shape, np.nan, dtype=np.float32)
    a, b = lag, lag + horizon
    if b < T:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[: T - b] = (p[b:].astype(np.float64) / p[a: T - b + a] - 1.0).astype(np.float32)
    return out


def make_label(panel: Panel, horizon: int = 10, price: str = "close", mask: np.ndarray | None = None) -> np.ndarray:
    """The study label: z-scored ``forward_return(panel, horizon, price)`` (float32 ``[T, N]``, NaN = no label).
    Z-scored in blocks of dates to bound the float64 temporaries."""
    fwd = forward_return(panel, horizon=horizon, price=price)
    for t0 in range(0, len(fwd), 256):
        rows = slice(t0, t0 + 256)
        fwd[rows] = zscore(fwd[rows], mask=None if mask is None else mask[rows])
    return fwd
