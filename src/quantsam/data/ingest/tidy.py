"""Tidy parquet/CSV adapter: map a long daily table (one row per stock-day) onto the data contract.

A *preset* names the files, the column mapping and the unit conversions of a known layout; ``shared_real`` is the
layout of ``../shared/data/real`` (prices in integer fen, amount/float shares/ST flags ending 2022-01-14, CSI500
weights only, industry snapshots). Other layouts pass ``mapping={contract column: source column}`` and ``scale``.

Gaps are handled explicitly and counted in the returned report (``df.attrs["ingest"]``):
missing amount -> VWAP proxy ``(high + low + close) / 3`` with ``vwap_proxy = True``; zero-volume rows -> the same
proxy; missing float shares -> last known value carried forward (split-adjusted through ``adj_factor``) up to
``ffill_float_shares_days`` trading days, else
NaN (the name drops out of size exposures, counted downstream); missing ST flag -> left missing ("not available after
<date>", said in the report; the pipeline treats unknown as not ST).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quantsam.data.calendar import naive_exchange_dates
from quantsam.data.contract import board_of, validate_daily
from quantsam.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    daily_file: str
    mapping: dict[str, str]  # contract column -> source column
    scale: dict[str, float] = field(default_factory=dict)  # contract column -> multiplier (fen -> CNY: 0.01)
    members_file: str | None = None
    members_source_preference: dict[str, str] = field(default_factory=dict)  # index -> preferred `source` value
    weights_file: str | None = None
    industry_file: str | None = None
    industry_column: str | None = None
    index_daily_file: str | None = None


PRESETS: dict[str, Preset] = {
    "shared_real": Preset(
        daily_file="daily.parquet",
        mapping={"date": "date", "code": "code", "open": "open_fen", "high": "high_fen", "low": "low_fen",
                 "close": "close_fen", "preclose": "preclose_fen", "volume": "volume", "amount": "amount",
                 "adj_factor": "adj_factor", "float_shares": "float_shares", "is_st": "is_st"},
        scale={"open": 0.01, "high": 0.01, "low": 0.01, "close": 0.01, "preclose": 0.01},
        members_file="index_members.parquet",
        members_source_preference={"000300.SH": "index_constitution"},
        weights_file="index_weights.parquet",
        industry_file="industry.parquet",
        industry_column="industry_tushare",
        index_daily_file="index_daily.parquet",
    ),
    # a plain export already in contract units: date, code, open, high, low, close, preclose, volume, amount, ...
    "contract": Preset(daily_file="daily.parquet", mapping={}),
}


def _read(path: Path, columns: list[str] | None = None, filters=None, categorical: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read only the needed columns; string key columns as dictionary -> pandas categoricals (millions of rows of
    repeated codes would otherwise be one Python string each). CSV key columns are read as strings, so codes keep
    their leading zeros (``000114`` stays ``000114``)."""
    if not path.exists():
        raise DataError(f"{path}: file not found. Fix: point data.path at the folder holding it")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes). Fix: re-export it")
    if path.suffix == ".csv":
        header = list(pd.read_csv(path, nrows=0).columns)
        want = None if columns is None else [c for c in columns if c in header]  # the caller names what is missing
        df = pd.read_csv(path, usecols=want, dtype={c: str for c in categorical})
        for c in categorical:
            if c in df.columns:
                df[c] = df[c].astype("category")
        df.attrs["available"] = header
        return df
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (OSError, ValueError) as e:  # truncated / foreign files (pyarrow's ArrowInvalid is a ValueError)
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {str(e)[:120]}). "
                        "Fix: re-export it") from None
    names = schema.names
    if columns is not None:  # a missing column is named by the caller's check, with the available ones
        columns = [c for c in columns if c in names]
    if filters and "date" in names and (not pa.types.is_temporal(schema.field("date").type)
                                        or getattr(schema.field("date").type, "tz", None)):
        # yyyymmdd integers, or timezone-aware stamps (Arrow would compare their UTC instants with the dates): the
        # dates are parsed and filtered after reading
        filters = None
    try:
        t = pq.read_table(path, columns=columns, filters=filters,
                          read_dictionary=[c for c in categorical if c in names and (columns is None or c in columns)])
    except (OSError, ValueError, pa.ArrowException) as e:
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {str(e)[:120]}). "
                        "Fix: re-export it") from None
    # free Arrow buffers column by column while converting (halves the peak for a 12 M-row file)
    df = t.to_pandas(self_destruct=True, split_blocks=True)
    df.attrs["available"] = list(names)  # every column of the file, for the caller's "not found" message
    return df


def side_file(folder: Path, name: str) -> Path:
    """``folder / name``, or its ``.csv`` sibling when only that exists (a preset names the parquet file)."""
    f = Path(folder) / name
    alt = f.with_suffix(".csv")
    return alt if not f.exists() and alt.exists() else f


def _date_filters(start, end):
    f = []
    if start is not None:
        f.append(("date", ">=", pd.Timestamp(start).date()))
    if end is not None:
        f.append(("date", "<=", pd.Timestamp(end).date()))
    return f or None


def load_tidy(path: str | Path, preset: str = "shared_real", start=None, end=None,
              mapping: dict[str, str] | None = None, scale: dict[str, float] | None = None,
              ffill_float_shares_days: int = 250) -> pd.DataFrame:
    """Daily bars of a tidy table as a contract frame (raw CNY prices, adj_factor set, sorted by date, code).

    ``path`` is the folder (or the daily file itself); ``preset`` one of :data:`PRESETS`; ``mapping``/``scale``
    override the preset's. The ingest report (counts of every gap handled) is in ``df.attrs["ingest"]``.
    """
    if preset not in PRESETS:
        raise DataError(f"preset '{preset}': unknown; choose one of {list(PRESETS)} or pass mapping=")
    p = PRESETS[preset]
    path = Path(path)
    daily_path = side_file(path, p.daily_file) if path.is_dir() else path
    m = {**p.mapping, **(mapping or {})}
    sc = {**p.scale, **(scale or {})}
    src_cols = list(dict.fromkeys(m.values())) if m else None
    raw = _read(daily_path, src_cols, filters=_date_filters(start, end) if daily_path.suffix != ".csv" else None,
                categorical=(m.get("code", "code"),))
    missing = [s for s in (src_cols or []) if s not in raw.columns]
    if missing:
        raise DataError(f"{daily_path}: columns {missing} (mapped from {[k for k, v in m.items() if v in missing]}) "
                        f"not found; available: {raw.attrs.get('available', list(raw.columns))}. Fix: pass "
                        "mapping={contract: source}")
    if m and len(set(m.values())) == len(m):  # rename in place: no copy of 12 M rows
        df = raw.rename(columns={v: k for k, v in m.items()})[list(m)]
    else:
        df = pd.DataFrame({k: raw[v] for k, v in m.items()}) if m else raw
    del raw
    df["date"] = parse_dates(df["date"], str(daily_path))
    if start is not None or end is not None:  # CSV or unfiltered sources
        keep = np.ones(len(df), bool)
        if start is not None:
            keep &= (df["date"] >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= (df["date"] <= pd.Timestamp(end)).to_numpy()
        df = df[keep]
    for c, f in sc.items():
        col = df[c].to_numpy(dtype=np.float64, copy=True)  # a float64 column gives a read-only view otherwise
        col *= f
        df[c] = col
    out = finish_contract(df, ffill_float_shares_days=ffill_float_shares_days, source=str(daily_path))
    out.attrs["validated"] = validate_daily(out, source=str(daily_path))
    return out


def parse_dates(col: pd.Series, source: str, column: str = "date") -> pd.Series:
    """Dates of a source column: datetime64 as is; integers as ``yyyymmdd`` (``20200102``, never nanoseconds since
    1970); strings as ISO or ``yyyymmdd``; timezone-aware stamps as naive exchange-local dates, said in the log
    (:func:`~quantsam.data.calendar.naive_exchange_dates`). Unparseable values raise :class:`DataError` naming the
    file."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return naive_exchange_dates(col, source, column)
    first = col.dropna().iloc[0] if col.notna().any() else None
    if isinstance(first, datetime.date):  # parquet date32 arrives as datetime.date objects (datetimes: tz-aware ones)
        return naive_exchange_dates(pd.to_datetime(col), source, column)
    if pd.api.types.is_integer_dtype(col) or pd.api.types.is_float_dtype(col):
        text = col.astype("Int64").astype(str)
        out = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    else:
        text = col.astype(str)
        digits = text.str.fullmatch(r"\d{8}")
        out = pd.to_datetime(text.where(~digits), errors="coerce")
        if digits.any():
            out[digits] = pd.to_datetime(text[digits], format="%Y%m%d", errors="coerce")
    bad = out.isna().to_numpy()
    if bad.any():
        raise DataError(f"{source}: column '{column}': {int(bad.sum()):,} value(s) are not dates "
                        f"(e.g. {list(col[bad].astype(str).head(3))}). Fix: ISO dates (YYYY-MM-DD) or yyyymmdd")
    return naive_exchange_dates(out, source, column)  # ISO strings with an offset ("...+08:00") parse tz-aware


def finish_contract(df: pd.DataFrame, ffill_float_shares_days: int = 250, source: str = "") -> pd.DataFrame:
    """Shared last steps of every adapter: types, board, VWAP (or its proxy), float-share carry-forward, ordering,
    and the ingest report in ``attrs``."""
    rep: dict[str, object] = {"source": source}
    # codes as a categorical with sorted categories: its integer codes order like the strings (no 12 M-string copy)
    code_cat = df["code"].astype("category")
    code_cat = code_cat.cat.rename_categories(code_cat.cat.categories.astype(str))
    code_cat = code_cat.cat.reorder_categories(sorted(code_cat.cat.categories))
    df["code"] = code_cat
    d, c = df["date"].to_numpy(), code_cat.cat.codes.to_numpy()
    sorted_already = len(df) < 2 or bool(((d[1:] > d[:-1]) | ((d[1:] == d[:-1]) & (c[1:] > c[:-1]))).all())
    if not sorted_already:  # a full copy: only when the source is not already in (date, code) order
        df = df.sort_values(["date", "code"], kind="stable").reset_index(drop=True)
    for c in ("open", "high", "low", "close", "preclose", "volume", "adj_factor"):
        if df[c].dtype != np.float64:
            df[c] = df[c].astype(np.float64)
    n = len(df)
    amount = df["amount"].astype(np.float64) if "amount" in df.columns else pd.Series(np.nan, index=df.index)
    vol = df["volume"]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = (amount / vol).to_numpy()
    proxy = ~np.isfinite(vwap) | (vol.to_numpy() <= 0)
    hlc = ((df["high"] + df["low"] + df["close"]) / 3).to_numpy()
    vwap = np.where(proxy, hlc, vwap)
    rep["rows"] = n
    rep["vwap_proxy_rows_missing_amount"] = int((proxy & amount.isna().to_numpy()).sum())
    rep["vwap_proxy_rows_zero_volume"] = int((proxy & (vol.to_numpy() <= 0) & amount.notna().to_numpy()).sum())
    lo, hi = df["low"].to_numpy(), df["high"].to_numpy()
    outside = (vwap < lo) | (vwap > hi)
    rep["vwap_clipped_into_bar"] = int(outside.sum())  # amount/volume rounding at the bar's edge
    df["vwap"] = np.clip(vwap, lo, hi)
    df["amount"] = amount
    df["vwap_proxy"] = proxy
    if "float_shares" in df.columns:
        fs = df["float_shares"].astype(np.float64)
        before = int(fs.isna().sum())
        # carried forward split-adjusted: shares x (adj_factor now / adj_factor on the last known day), so a bonus
        # issue or split after the last known day scales the share count as it does the price (cash dividends move
        # adj_factor by their yield too: the carried count drifts by ~1-2% a year, a small error in log cap)
        known_adj = df["adj_factor"].where(fs.notna())
        g = df["code"]
        limit = int(ffill_float_shares_days)
        fs_f = fs.groupby(g, sort=False, observed=True).ffill(limit=limit)
        adj_f = known_adj.groupby(g, sort=False, observed=True).ffill(limit=limit)
        fs = fs.where(fs.notna(), fs_f * (df["adj_factor"] / adj_f))
        df["float_shares"] = fs
        rep["float_shares_carried_forward"] = before - int(fs.isna().sum())
        rep["float_shares_missing"] = int(fs.isna().sum())
    else:
        df["float_shares"] = np.nan
        rep["float_shares_missing"] = n
    if "is_st" in df.columns:
        st = df["is_st"]
        miss = st.isna()
        rep["is_st_missing"] = int(miss.sum())
        if miss.any():
            last_known = df.loc[~miss, "date"].max()
            rep["is_st_available_until"] = str(pd.Timestamp(last_known).date()) if pd.notna(last_known) else "never"
        df["is_st"] = st.astype("boolean")
    else:
        df["is_st"] = pd.array([pd.NA] * n, dtype="boolean")
        rep["is_st_missing"] = n
    code_cat = df["code"]
    cats = code_cat.cat.categories.astype(str)
    board_cats = pd.Index(sorted({board_of(c) for c in cats}))
    per_cat = board_cats.get_indexer([board_of(c) for c in cats])
    df["board"] = pd.Categorical.from_codes(per_cat[code_cat.cat.codes.to_numpy()], categories=board_cats)
    df["code"] = code_cat
    df.attrs["ingest"] = rep
    cols = ["date", "code", "open", "high", "low", "close", "preclose", "volume", "amount", "vwap", "adj_factor",
            "float_shares", "is_st", "board", "vwap_proxy"]
    return df[cols]


def load_tables(path: str | Path, preset: str = "shared_real", end=None) -> dict[str, pd.DataFrame]:
    """Index members, weights, industry and index daily bars of a preset's folder — the folder of ``path`` when it
    is the daily file itself; each as parquet or CSV. A missing table gives an empty frame and is listed in
    ``out["missing"]`` (the ingest report says what that disables); an unreadable one raises :class:`DataError`."""
    p = PRESETS[preset]
    path = Path(path)
    folder = path.parent if path.is_file() else path
    out: dict[str, pd.DataFrame] = {}
    missing: list[str] = []
    files: dict[str, str] = {}  # table -> the file it was read from (named by the side tables' checks)

    def table(key: str, name: str | None, columns: list[str]) -> pd.DataFrame | None:
        if not name:
            return None
        f = side_file(folder, name)
        if not f.exists():
            missing.append(name)
            return None
        files[key] = str(f)
        df = _read(f, categorical=("code",))
        lack = [c for c in columns if c not in df.columns]
        if lack:
            raise DataError(f"{f}: columns {lack} not found; available: {list(df.columns)}. Fix: re-export it with "
                            f"{columns}")
        return df

    mem = pd.DataFrame(columns=["index_code", "code", "start_date", "end_date"])
    m = table("index_members", p.members_file, ["index_code", "code", "start_date", "end_date"])
    if m is not None:
        m["index_code"] = m["index_code"].astype(str)
        if "source" in m.columns and p.members_source_preference:
            keep = np.ones(len(m), bool)
            for idx, src in p.members_source_preference.items():
                sel = m["index_code"] == idx
                if (sel & (m["source"] == src)).any():
                    keep &= ~(sel & (m["source"] != src)).to_numpy()
            m = m[keep]
        if "source" in m.columns:
            dup = m.groupby("index_code")["source"].nunique()
            for idx in dup[dup > 1].index:  # no preference given: keep the source with most intervals
                best = m[m["index_code"] == idx]["source"].value_counts().index[0]
                m = m[(m["index_code"] != idx) | (m["source"] == best)]
        m = m[["index_code", "code", "start_date", "end_date"]].copy()
        m["code"] = m["code"].astype(str)
        m["start_date"] = parse_dates(m["start_date"], files["index_members"], "start_date")
        m["end_date"] = naive_exchange_dates(pd.to_datetime(m["end_date"]), files["index_members"], "end_date")
        if end is not None:
            m["end_date"] = m["end_date"].fillna(pd.Timestamp(end))
        mem = m.reset_index(drop=True)
    out["index_members"] = mem
    w = table("index_weights", p.weights_file, ["date", "index_code", "code", "weight"])
    if w is None:
        w = pd.DataFrame(columns=["date", "index_code", "code", "weight"])
    else:
        w = w[["date", "index_code", "code", "weight"]].copy()
        w["date"] = parse_dates(w["date"], files["index_weights"])
        w["index_code"], w["code"] = w["index_code"].astype(str), w["code"].astype(str)
    out["index_weights"] = w
    ind = pd.DataFrame(columns=["code", "industry"])
    i = table("industry", p.industry_file, ["code", p.industry_column] if p.industry_column else ["code"])
    if i is not None:
        # names without a label stay (counted by the side tables' checks; the ingest drops them: 'unknown' group)
        ind = i[["code", p.industry_column]].rename(columns={p.industry_column: "industry"}).dropna(subset=["code"])
        ind["code"] = ind["code"].astype(str)
    out["industry"] = ind.reset_index(drop=True)
    idx = table("index_daily", p.index_daily_file, ["date", "index_code", "close"])
    if idx is None:
        idx = pd.DataFrame(columns=["date", "index_code", "close"])
    else:
        idx = idx[["date", "index_code", "close"]].copy()
        idx["date"] = parse_dates(idx["date"], files["index_daily"])
        idx["index_code"] = idx["index_code"].astype(str)
    out["index_daily"] = idx
    if missing:
        log.warning("%s: no %s beside the daily bars — %s", folder, ", ".join(missing), MISSING_EFFECT)
    out["missing"] = missing  # type: ignore[assignment]
    out["files"] = files  # type: ignore[assignment]
    return out


#: what a missing side table disables (said in the log and the ingest report)
MISSING_EFFECT = ("without index members there is no index universe, benchmark or train_on_members; without weights "
                  "benchmarks are float-cap weights within the members; without industry every name is in one "
                  "'unknown' group; without index bars there is no price-index benchmark")
