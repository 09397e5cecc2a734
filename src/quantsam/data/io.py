"""Reading and writing the data contract's parquet layout, and data fingerprints.

Layout of a market directory (what the data stage writes and every later stage reads)::

    <dir>/daily.parquet           the daily contract (quantsam.data.contract)
    <dir>/index_members.parquet   index_code, code, start_date, end_date
    <dir>/index_weights.parquet   date, index_code, code, weight
    <dir>/industry.parquet        code, industry
    <dir>/alpha.parquet           (synthetic only) date, code, alpha: the planted expected return
    <dir>/meta.json               generator parameters, row counts, fingerprint
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quantsam.errors import DataError

TABLES = ("daily", "index_members", "index_weights", "industry")


@dataclass
class MarketData:
    """The market tables a pipeline run reads (synthetic or real)."""

    daily: pd.DataFrame
    index_members: pd.DataFrame
    index_weights: pd.DataFrame
    industry: pd.DataFrame
    alpha: pd.DataFrame | None = None  # wide [dates x codes], synthetic only
    meta: dict = field(default_factory=dict)
    index_daily: pd.DataFrame | None = None  # date, index_code, close (real data; benchmark returns)


def frame_fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a frame (values and column names, not the index): sha256 of pandas' per-row hashes."""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def market_fingerprint(m) -> str:
    """Fingerprint of a market's tables (order-sensitive)."""
    h = hashlib.sha256()
    for t in TABLES:
        h.update(frame_fingerprint(getattr(m, t)).encode())
    return h.hexdigest()[:16]


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def save_market(m, directory: str | Path, extra_meta: dict | None = None) -> Path:
    """Write a market (``SyntheticMarket`` or ``MarketData``) to ``directory`` atomically, table by table;
    ``meta.json`` is written last, so its presence marks a complete directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for t in TABLES:
        _atomic_parquet(getattr(m, t), d / f"{t}.parquet")
    idx = getattr(m, "index_daily", None)
    if idx is not None and len(idx):
        _atomic_parquet(idx, d / "index_daily.parquet")
    alpha = getattr(m, "alpha", None)
    if alpha is not None:
        long = alpha.stack().rename("alpha").reset_index()
        _atomic_parquet(long, d / "alpha.parquet")
    meta = {
        "params": getattr(m, "params", None) or getattr(m, "meta", {}).get("params", {}),
        "rows": {t: int(len(getattr(m, t))) for t in TABLES},
        "fingerprint": market_fingerprint(m),
        **(extra_meta or {}),
    }
    tmp = d / f"meta.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    os.replace(tmp, d / "meta.json")
    return d


def load_market(directory: str | Path, with_alpha: bool = True) -> MarketData:
    """Read a market directory written by :func:`save_market` (or by an ingest script)."""
    d = Path(directory)
    missing = [f"{t}.parquet" for t in TABLES if not (d / f"{t}.parquet").exists()]
    if missing:
        raise DataError(f"market directory '{d}': missing {missing}. Fix: run the data stage (`make data`) or an "
                        "ingest script (scripts/ingest_*.py) to create it.")
    tables = {t: pd.read_parquet(d / f"{t}.parquet") for t in TABLES}
    for df in tables.values():
        for c in ("date", "start_date", "end_date"):
            if c in df.columns:
                df[c] = pd.to_datetime(df[c])
    alpha = None
    if with_alpha and (d / "alpha.parquet").exists():
        a = pd.read_parquet(d / "alpha.parquet")
        a["date"] = pd.to_datetime(a["date"])
        alpha = a.pivot(index="date", columns="code", values="alpha")
    meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
    idx = None
    if (d / "index_daily.parquet").exists():
        idx = pd.read_parquet(d / "index_daily.parquet")
        idx["date"] = pd.to_datetime(idx["date"])
    return MarketData(alpha=alpha, meta=meta, index_daily=idx, **tables)

