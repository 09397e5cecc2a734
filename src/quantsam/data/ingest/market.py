"""Ingest a whole market (daily bars + index members/weights + industry + index bars) into the parquet layout."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from quantsam.data.contract import validate_daily
from quantsam.data.ingest.checks import limit_consistency, summary
from quantsam.data.io import MarketData, save_market

log = logging.getLogger(__name__)


def ingest_market(source: str, path: str | Path, out_dir: str | Path, preset: str = "shared_real",
                  instruments: str = "all", start=None, end=None, ffill_float_shares_days: int = 250,
                  volume_is_adjusted: bool = False, tables_path: str | Path | None = None) -> tuple[Path, dict]:
    """Load (``source`` = ``tidy`` | ``qlib``), validate, report and write ``out_dir``; returns (dir, report).
    For qlib, index members/weights/industry can come from a tidy folder (``tables_path``, preset layout)."""
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
    report = validate_daily(daily, source=str(path))
    lim = limit_consistency(daily)
    rep = {"summary": summary(daily), "ingest": ingest, "validation": report.summary(),
           "limit_consistency": json.loads(lim.to_json(orient="index")), "seconds": 0.0,
           "notes": [f"is_st not available after {ingest['is_st_available_until']}: treated as not ST"]
           if "is_st_available_until" in ingest else []}
    if tables["industry"].empty:
        rep["notes"].append("no industry labels: every name in one 'unknown' group")
    else:
        rep["notes"].append("industry labels are a snapshot, used as static")
    m = MarketData(daily=daily, index_members=tables["index_members"], index_weights=tables["index_weights"],
                   industry=tables["industry"], index_daily=tables.get("index_daily"),
                   meta={"params": {"source": source, "path": str(path), "preset": preset, "start": str(start),
                                    "end": str(end)}})
    rep["seconds"] = round(time.perf_counter() - t0, 1)
    d = save_market(m, out_dir, extra_meta={"source": source, "ingest_report": rep})
    log.info("ingested %s -> %s in %.0fs", path, d, rep["seconds"])
    return d, rep


def _qlib_members(path, daily) -> pd.DataFrame:
    """Membership intervals from qlib ``instruments/csi*.txt`` files (one interval per line)."""
    from quantsam.data.ingest.qlib import qlib_to_code

    codes = {"csi300": "000300.SH", "csi500": "000905.SH", "csi1000": "000852.SH"}
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
