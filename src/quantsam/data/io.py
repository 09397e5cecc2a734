"""Reading and writing the data contract's parquet layout; data fingerprints.

Layout of a market directory (what the data stage writes and every later stage reads)::

    <dir>/daily.parquet           the daily contract (quantsam.data.contract)
    <dir>/index_members.parquet   index_code, code, start_date, end_date
    <dir>/index_weights.parquet   date, index_code, code, weight
    <dir>/industry.parquet        code, industry
    <dir>/index_daily.parquet     (when the source has it) date, index_code, close
    <dir>/alpha.parquet           (synthetic only) date, code, alpha: the planted expected return
    <dir>/meta.json               parameters, row counts, fingerprint, ingest summary
    <dir>/manifest.json           the stage manifest (key, file sizes, fingerprint): written last

A directory is written all-or-nothing (:func:`quantsam.stageio.write_folder`). Its **fingerprint** hashes the bytes of
its parquet tables: every later stage's cache key includes it, so a changed market never serves old results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quantsam import stageio
from quantsam.data.calendar import naive_exchange_dates
from quantsam.errors import DataError

log = logging.getLogger(__name__)

TABLES = ("daily", "index_members", "index_weights", "industry")
FIX = "run the data stage (`make data`) or an ingest script (scripts/ingest_*.py) to (re)create the directory"


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


@dataclass(frozen=True)
class DataRef:
    """A market directory and its data fingerprint: what the data stage hands to every later stage."""

    dir: Path
    fingerprint: str


def files_fingerprint(directory: str | Path) -> str:
    """Hash of the bytes of every parquet table in ``directory`` (names included)."""
    d = Path(directory)
    return stageio.digest({p.name: stageio.file_hash(p) for p in sorted(d.glob("*.parquet"))})


def save_market(m, directory: str | Path, extra_meta: dict | None = None) -> dict:
    """Write a market's tables (``SyntheticMarket`` or ``MarketData``) and ``meta.json`` into ``directory`` (an
    existing, empty folder); returns ``{"fingerprint": ...}`` for the manifest."""
    out = Path(directory)

    def plain(df: pd.DataFrame) -> pd.DataFrame:  # adapters keep their reports in .attrs: not table data
        df = df.copy(deep=False)
        df.attrs = {}
        return df

    for t in TABLES:
        plain(getattr(m, t)).to_parquet(out / f"{t}.parquet", index=False)
    idx = getattr(m, "index_daily", None)
    if idx is not None and len(idx):
        plain(idx).to_parquet(out / "index_daily.parquet", index=False)
    alpha = getattr(m, "alpha", None)
    if alpha is not None:
        alpha.stack().rename("alpha").reset_index().to_parquet(out / "alpha.parquet", index=False)
    fingerprint = files_fingerprint(out)
    meta = {
        "params": getattr(m, "params", None) or getattr(m, "meta", {}).get("params", {}),
        "rows": {t: int(len(getattr(m, t))) for t in TABLES},
        "fingerprint": fingerprint,
        **(extra_meta or {}),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return {"fingerprint": fingerprint}


@dataclass
class MarketWrite:
    """A market to be written by the data stage's cached run (:func:`quantsam.stageio.run_cached`)."""

    market: object
    extra_meta: dict = field(default_factory=dict)

    def save(self, directory: Path) -> dict:
        return save_market(self.market, directory, self.extra_meta)


def write_market(m, directory: str | Path, key: str, extra_meta: dict | None = None) -> DataRef:
    """Write a market to ``directory`` all-or-nothing, with ``meta.json`` and a manifest recording ``key`` and the
    data fingerprint (what the ingest scripts do; the data stage goes through its cached run). Returns its ref."""
    extra = stageio.write_folder(directory, "data", key, MarketWrite(m, extra_meta or {}).save,
                                 code=stageio.code_version("data"))
    return DataRef(Path(directory), extra["fingerprint"])


def market_ref(directory: str | Path) -> DataRef | None:
    """The :class:`DataRef` of a directory written by :func:`write_market` whose files are intact (per its manifest),
    else None (no manifest, or files changed since)."""
    d = Path(directory)
    doc = stageio.read_manifest(d / stageio.MANIFEST)
    if doc is None or "fingerprint" not in doc or not stageio.is_done(d / stageio.MANIFEST, doc["key"]):
        return None
    return DataRef(d, str(doc["fingerprint"]))


def _read_table(d: Path, name: str) -> pd.DataFrame:
    df = stageio.read_parquet(d / f"{name}.parquet", "market table", FIX)
    for c in ("date", "start_date", "end_date"):
        if c in df.columns:
            if pd.api.types.is_integer_dtype(df[c]) or pd.api.types.is_float_dtype(df[c]):
                # pd.to_datetime would read 20200102 as nanoseconds after 1970: refuse instead of guessing
                raise DataError(f"{d / f'{name}.parquet'}: column '{c}' holds numbers ({df[c].iloc[0]!r}, ...), "
                                f"expected dates. Fix: integer yyyymmdd dates: convert with "
                                f"pd.to_datetime(df['{c}'].astype(str), format='%Y%m%d') before writing")
            df[c] = naive_exchange_dates(pd.to_datetime(df[c]), str(d / f"{name}.parquet"), c)
    return df


def load_market(directory: str | Path, with_alpha: bool = True) -> MarketData:
    """Read a market directory written by :func:`write_market` (or by an ingest script); unreadable or missing
    tables raise :class:`DataError` naming the file."""
    d = Path(directory)
    missing = [f"{t}.parquet" for t in TABLES if not (d / f"{t}.parquet").exists()]
    if missing:
        raise DataError(f"market directory '{d}': missing {missing}. Fix: {FIX}.")
    tables = {t: _read_table(d, t) for t in TABLES}
    alpha = None
    if with_alpha and (d / "alpha.parquet").exists():
        a = _read_table(d, "alpha")
        alpha = a.pivot(index="date", columns="code", values="alpha")
    meta = {}
    if (d / "meta.json").exists():
        try:
            meta = json.loads((d / "meta.json").read_text())
        except ValueError:
            log.warning("%s: unreadable meta.json (ignored)", d)
    idx = _read_table(d, "index_daily") if (d / "index_daily.parquet").exists() else None
    return MarketData(alpha=alpha, meta=meta, index_daily=idx, **tables)
