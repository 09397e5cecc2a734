"""qlib binary adapter: read a qlib data folder (e.g. ``~/.qlib/qlib_data/cn_data``) into the data contract.

Layout: ``calendars/day.txt`` (one date per line), ``instruments/<name>.txt`` (``CODE<TAB>start<TAB>end``), and
``features/<code>/<field>.day.bin``: little-endian float32 where the first value is the index of the series' first
date in the calendar and the rest are one value per calendar day from there. Prices in qlib are back-adjusted
(adjusted = raw x ``factor``) and suspended days are forward-filled with volume 0 — so raw prices are adjusted /
factor (rounded to the fen), ``adj_factor`` = factor, ``preclose`` = previous adjusted close / today's factor (the
exchange's ex-rights previous close), and rows with volume 0 or NaN are suspensions and dropped (counted). Without
``amount`` (qlib has none; some exports add ``vwap``), VWAP is the proxy (H + L + C) / 3, flagged. Index codes
(``SH000xxx``, ``SZ399xxx``) become index daily bars, not stocks. Written by hand (no ``pyqlib`` dependency): the
format is a few lines of numpy, and the package pins old numpy/pandas versions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from quantsam.data.contract import validate_daily
from quantsam.data.ingest.tidy import finish_contract
from quantsam.errors import DataError

log = logging.getLogger(__name__)

FIELDS = ("open", "high", "low", "close", "volume", "factor", "vwap", "amount")


def qlib_to_code(q: str) -> str:
    """``SH600000`` / ``sh600000`` -> ``600000.SH``."""
    q = q.upper()
    return f"{q[2:]}.{q[:2]}"


def is_index(q: str) -> bool:
    q = q.upper()
    return (q.startswith("SH") and q[2:5] == "000") or (q.startswith("SZ") and q[2:5] == "399")


def read_bin(path: Path, n_calendar: int) -> tuple[int, np.ndarray]:
    """(start index into the calendar, float32 values) of one ``.day.bin`` file."""
    a = np.fromfile(path, dtype="<f4")
    if len(a) < 1:
        raise DataError(f"{path}: empty qlib feature file")
    start = int(a[0])
    if start < 0 or start + len(a) - 1 > n_calendar:
        raise DataError(f"{path}: start index {start} + {len(a) - 1} values exceed the calendar ({n_calendar} days)")
    return start, a[1:]


def _feature_dirs(root: Path) -> dict[str, Path]:
    return {p.name.upper(): p for p in (root / "features").iterdir() if p.is_dir()}


def load_qlib(qlib_dir: str | Path, instruments: str = "all", start=None, end=None,
              volume_is_adjusted: bool = False) -> pd.DataFrame:
    """Daily contract frame of the stocks in ``instruments/<instruments>.txt`` (``df.attrs["ingest"]`` has the counts;
    ``df.attrs["index_daily"]`` the index bars found). ``volume_is_adjusted``: qlib's Yahoo-collected ``cn_data``
    stores volume / factor; the tushare-style exports (like ``../shared/data/real/qlib_slice``) store raw volume."""
    root = Path(qlib_dir).expanduser()
    cal_file = root / "calendars" / "day.txt"
    if not cal_file.exists():
        raise DataError(f"{root}: no calendars/day.txt — not a qlib data folder (expected calendars/, instruments/, "
                        "features/)")
    cal = pd.DatetimeIndex(pd.to_datetime(cal_file.read_text().split()))
    inst_file = root / "instruments" / f"{instruments}.txt"
    if not inst_file.exists():
        have = sorted(p.stem for p in (root / "instruments").glob("*.txt"))
        raise DataError(f"{inst_file}: not found; instruments available: {have}")
    inst = pd.read_csv(inst_file, sep="\t", header=None, names=["code", "start", "end"])
    feats = _feature_dirs(root)
    lo = 0 if start is None else int(np.searchsorted(cal, pd.Timestamp(start)))
    hi = len(cal) if end is None else int(np.searchsorted(cal, pd.Timestamp(end), side="right"))
    frames, index_frames = [], []
    rep = {"instruments": len(inst), "missing_feature_dirs": 0, "suspended_rows_dropped": 0}
    for q in inst["code"].astype(str):
        d = feats.get(q.upper())
        if d is None:
            rep["missing_feature_dirs"] += 1
            continue
        cols = {}
        for f in FIELDS:
            fp = d / f"{f}.day.bin"
            if fp.exists():
                s, v = read_bin(fp, len(cal))
                full = np.full(len(cal), np.nan, dtype=np.float64)
                full[s:s + len(v)] = v
                cols[f] = full[lo:hi]
        if "close" not in cols:
            rep["missing_feature_dirs"] += 1
            continue
        g = pd.DataFrame(cols)
        g["date"] = cal[lo:hi]
        if is_index(q):
            index_frames.append(pd.DataFrame({"date": g["date"], "index_code": qlib_to_code(q), "close": g["close"]})
                                .dropna())
            continue
        factor = g["factor"].to_numpy() if "factor" in g else np.ones(len(g))
        adj_close = g["close"].to_numpy()
        vol = g["volume"].to_numpy() if "volume" in g else np.full(len(g), np.nan)
        traded = np.isfinite(adj_close) & np.isfinite(vol) & (vol > 0) & np.isfinite(factor)
        rep["suspended_rows_dropped"] += int((np.isfinite(adj_close) & ~traded).sum())
        prev_adj = pd.Series(np.where(traded, adj_close, np.nan)).ffill().shift().to_numpy()
        out = pd.DataFrame({"date": g["date"], "code": qlib_to_code(q)})
        for f in ("open", "high", "low", "close"):
            out[f] = np.round(g[f].to_numpy() / factor, 2)
        out["preclose"] = np.round(prev_adj / factor, 2)
        out["volume"] = vol * factor if volume_is_adjusted else vol
        out["adj_factor"] = factor
        if "amount" in g:
            out["amount"] = g["amount"].to_numpy()
        elif "vwap" in g:
            out["amount"] = np.round(g["vwap"].to_numpy() / factor, 4) * out["volume"]
        frames.append(out[traded])
    if not frames:
        raise DataError(f"{inst_file}: none of the {len(inst)} instruments has stock features under {root / 'features'}")
    df = pd.concat(frames, ignore_index=True)
    for c in ("open", "high", "low", "close"):  # float32 rounding can push a rounded price a fen outside the bar
        df[c] = df[c].astype(np.float64)
    df["high"] = df[["open", "high", "low", "close"]].max(axis=1)
    df["low"] = df[["open", "high", "low", "close"]].min(axis=1)
    df["preclose"] = df["preclose"].fillna(df["open"])  # a listing's first row has no previous close in the data
    out = finish_contract(df, source=str(root))
    out.attrs["validated"] = validate_daily(out, source=str(root))
    out.attrs["ingest"] = {**rep, **out.attrs["ingest"]}
    out.attrs["index_daily"] = (pd.concat(index_frames, ignore_index=True) if index_frames
                                else pd.DataFrame(columns=["date", "index_code", "close"]))
    return out
