"""A small synthetic market in qlib's on-disk layout, for smoke runs of qlib workflows (tests, ``scripts/bench/
qlib_gru.py --toy``) where no qlib data is at hand. Needs numpy and pandas only (not pyqlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_toy_qlib_market(root: Path, n_names: int = 24, n_days: int = 330, seed: int = 0) -> pd.DatetimeIndex:
    """A small market in qlib's on-disk layout (``calendars/day.txt``, ``instruments/all.txt``,
    ``features/<code>/<field>.day.bin``: little-endian float32, the first value the series' start index in the
    calendar): back-adjusted OHLC, vwap, volume, factor 1 and the daily change, with a weak planted momentum."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-05", periods=n_days)
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("\n".join(d.strftime("%Y-%m-%d") for d in days) + "\n")
    lines = []
    for i in range(n_names):
        code = f"SH6{i:05d}"
        r = rng.normal(0, 0.02, n_days)
        r[1:] += 0.1 * r[:-1]
        close = 10 * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.005, n_days))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, n_days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, n_days)))
        fields = {"open": open_, "high": high, "low": low, "close": close, "vwap": (open_ + high + low + close) / 4,
                  "volume": rng.lognormal(12, 0.5, n_days), "factor": np.ones(n_days),
                  "change": np.r_[np.nan, close[1:] / close[:-1] - 1]}
        d = root / "features" / code.lower()
        d.mkdir(parents=True)
        for k, v in fields.items():
            np.r_[0.0, v].astype("<f4").tofile(d / f"{k}.day.bin")
        lines.append(f"{code}\t{days[0]:%Y-%m-%d}\t{days[-1]:%Y-%m-%d}")
    (root / "instruments" / "all.txt").write_text("\n".join(lines) + "\n")
    return days
