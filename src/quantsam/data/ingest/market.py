"""Ingest a whole market (daily bars + index members/weights + industry + index bars) into the parquet layout.

The ingest key hashes the adapter parameters and a stamp (size, content hash) of every source file, so a changed export is
ingested again and the data stage never serves the old copy.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from quantsam import stageio
from quantsam.data.contract import validate_daily
from quantsam.data.ingest.checks import limit_consistency, summary
from quantsam.data.io import DataRef, MarketData, write_market
from quantsam.data.side_tables import side_table_notes, validate_side_tables

log = logging.getLogger(__name__)

#: bump when the adapters' output changes for the same source files and parameters
INGEST_VERSION = 3  # 3: float shares carried forward split-adjusted


def source_stamp(*paths: str | Path | None) -> str:
    """Hash of (relative path, size, content hash) of every file under ``paths``. The content is hashed (sha256,
    ~1 GB/s here: the 133 MiB of ``../shared/data/real`` in 0.13 s) because a corrected export copied with
    ``cp -p`` / ``rsync -a`` keeps its size and mtime; the mtime is left out, so touching a file re-ingests
    nothing."""
    items = []
    for p in paths:
        if p is None:
            continue
        root = Path(p).expanduser()
        files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file()) if root.exists() else []
        for f in files:
            items.append((str(f.relative_to(root.parent)), f.stat().st_size, stageio.file_hash(f)))
    return stageio.digest(items)


def ingest_key(source: str, params: dict) -> str:
    """The data-stage key of an ingested directory: adapter version, parameters, and the source files' stamp."""
    stamp = source_stamp(params.get("path"), params.get("tables_path"))
    return stageio.stage_key("data", INGEST_VERSION, source=source, params=params, source_stamp=stamp)


def ingest_market(source: str, path: str | Path, out_dir: str | Path, preset: str = "shared_real",
                  instruments: str = "all", start=None, end=None, ffill_float_shares_days: int = 250,
                  volume_is_adjusted: bool = False, tables_path: str | Path | None = None) -> tuple[DataRef, dict]:
    """Load (``source`` = ``tidy`` | ``qlib``), validate, summarise and write ``out_dir`` all-or-nothing; returns
    (its DataRef, the ingest summary). For qlib, index members/weights/industry can come from a tidy folder
    (``tables_path``, preset layout)."""
    params = ingest_params(source, path, preset, instruments, start, end, ffill_float_shares_days, volume_is_adjusted,
                           tables_path)
    m, rep = load_source(**params)
    ref = write_market(m, out_dir, ingest_key(source, params), extra_meta=ingest_meta(source, rep, params))
    log.info("ingested %s -> %s in %.0fs", path, ref.dir, rep["seconds"])
    return ref, rep


def ingest_params(source: str, path: str | Path, preset: str = "shared_real", instruments: str = "all", start=None,
                  end=None, ffill_float_shares_days: int = 250, volume_is_adjusted: bool = False,
                  tables_path: str | Path | None = None) -> dict:
    """The adapter parameters as :func:`load_source` takes them and :func:`ingest_key` hashes them."""
    return dict(source=source, path=None if path is None else str(path), preset=preset, instruments=instruments,
                start=start, end=end,
                ffill_float_shares_days=int(ffill_float_shares_days), volume_is_adjusted=bool(volume_is_adjusted),
                tables_path=None if tables_path is None else str(tables_path))


def ingest_meta(source: str, rep: dict, params: dict) -> dict:
    return {"source": source, "ingest_report": rep, "ingest_params": params}


def tidy_missing_effect() -> str:
    from quantsam.data.ingest.tidy import MISSING_EFFECT

    return MISSING_EFFECT


def load_source(source: str, path: str | Path, preset: str = "shared_real", instruments: str = "all", start=None,
                end=None, ffill_float_shares_days: int = 250, volume_is_adjusted: bool = False,
                tables_path: str | Path | None = None) -> tuple[MarketData, dict]:
    """Read and validate a tidy or qlib source into a :class:`MarketData` plus its ingest summary."""
    from quantsam.data.ingest.qlib import load_qlib
    from quantsam.data.ingest.tidy import load_tables, load_tidy

    t0 = time.perf_counter()
    if source == "tidy":
        daily = load_tidy(path, preset=preset, start=start, end=end, ffill_float_shares_days=ffill_float_shares_days)
        tables = load_tables(path, preset, end=daily["date"].max())
    elif source == "qlib":
        daily = load_qlib(path, instruments=instruments, start=start, end=end, volume_is_adjusted=volume_is_adjusted)
        tables = (load_tables(tables_path, preset, end=daily["date"].max()) if tables_path else
                  {"index_members": _qlib_members(path, daily), "index_weights": pd.DataFrame(
                      columns=["date", "index_code", "code", "weight"]), "industry": pd.DataFrame(
                      columns=["code", "industry"])})
        idx = daily.attrs.get("index_daily")
        if idx is not None and len(idx):
            tables["index_daily"] = idx
    else:
        raise ValueError(f"source='{source}': use 'tidy' or 'qlib'")
    ingest = dict(daily.attrs.get("ingest", {}))
    report = validate_daily(daily, source=str(path)) if not daily.attrs.get("validated") else daily.attrs["validated"]
    lim = limit_consistency(daily)
    rep = {"summary": summary(daily), "ingest": ingest, "validation": report.summary(),
           "limit_consistency": json.loads(lim.to_json(orient="index")), "seconds": 0.0,
           "notes": [f"is_st not available after {ingest['is_st_available_until']}: treated as not ST"]
           if "is_st_available_until" in ingest else []}
    files = dict(tables.pop("files", {}) or {})
    if source == "qlib" and not tables_path:
        files["index_members"] = f"{path}/instruments/<index>.txt"
    rep["side_tables"] = validate_side_tables(daily, tables["index_members"], tables["index_weights"],
                                              tables["industry"], files)
    tables["industry"] = tables["industry"].dropna(subset=["industry"]).reset_index(drop=True)  # counted: 'unknown'
    rep["notes"] += side_table_notes(rep["side_tables"])
    missing = list(tables.pop("missing", []) or [])
    if missing:
        rep["notes"].append(f"no {', '.join(missing)} found: {tidy_missing_effect()}")
        rep["missing_tables"] = missing
    if tables["industry"].empty:
        rep["notes"].append("no industry labels: every name in one 'unknown' group")
    else:
        rep["notes"].append("industry labels are a snapshot, used as static")
    m = MarketData(daily=daily, index_members=tables["index_members"], index_weights=tables["index_weights"],
                   industry=tables["industry"], index_daily=tables.get("index_daily"),
                   meta={"params": {"source": source, "path": str(path), "preset": preset, "start": str(start),
                                    "end": str(end)}})
    rep["seconds"] = round(time.perf_counter() - t0, 1)
    return m, rep


def _qlib_members(path, daily) -> pd.DataFrame:
    """Membership intervals from qlib ``instruments/csi*.txt`` files (one interval per line)."""
    from quantsam.config.schema import INDEX_CODES as codes
    from quantsam.data.ingest.qlib import qlib_to_code

    rows = []
    for name, code in codes.items():
        f = Path(path).expanduser() / "instruments" / f"{name}.txt"
        if f.exists():
            t = pd.read_csv(f, sep="\t", header=None, names=["code", "start_date", "end_date"])
            rows.append(pd.DataFrame({"index_code": code, "code": t["code"].map(qlib_to_code),
                                      "start_date": pd.to_datetime(t["start_date"]),
                                      "end_date": pd.to_datetime(t["end_date"])}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["index_code", "code", "start_date", "end_date"])
