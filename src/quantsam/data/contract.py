"""The daily-bar data contract shared by the synthetic market and real-data adapters.

One row per (date, code) on which the stock traded; suspended days have **no row**. Prices are raw (unadjusted) CNY;
``adj_factor`` is the cumulative back-adjustment factor (adjusted price = raw price x adj_factor); ``preclose`` is the
exchange's previous close after ex-rights adjustment, so ``close / preclose - 1`` is the official daily change and the
base of the price limits. ``board`` is one of :data:`BOARDS`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantsam.data.calendar import EXCHANGE_TZ
from quantsam.errors import DataError

log = logging.getLogger(__name__)

BOARDS = ("main", "chinext", "star", "bse")

REQUIRED = ("date", "code", "open", "high", "low", "close", "preclose", "volume", "vwap", "adj_factor", "board")
OPTIONAL = ("amount", "float_shares", "is_st")
COLUMNS = (
    "date", "code", "open", "high", "low", "close", "preclose", "volume", "amount", "vwap", "adj_factor",
    "float_shares", "is_st", "board",
)
PRICE_COLUMNS = ("open", "high", "low", "close", "preclose", "vwap")
NUMERIC_COLUMNS = (*PRICE_COLUMNS, "volume", "amount", "adj_factor", "float_shares")

#: Relative tolerance for ``vwap`` outside ``[low, high]``: real VWAPs are rounded amounts / volumes.
VWAP_TOLERANCE = 5e-3
#: A-share codes: six digits and the exchange (``600000.SH``, ``000001.SZ``, ``830799.BJ``)
CODE_PATTERN = re.compile(r"^\d{6}\.(SH|SZ|BJ)$")


@dataclass(frozen=True)
class ValidationSummary:
    """What :func:`validate_daily` found but tolerated (counted, never silently dropped)."""

    n_rows: int
    n_codes: int
    n_dates: int
    missing_optional: dict[str, int]

    def summary(self) -> str:
        miss = ", ".join(f"{k}: {v:,} missing" for k, v in self.missing_optional.items() if v) or "none missing"
        return f"{self.n_rows:,} rows, {self.n_codes:,} codes, {self.n_dates:,} dates; optional fields: {miss}"


def _rows(df: pd.DataFrame, mask: np.ndarray, cols: list[str], k: int = 3) -> str:
    show = [c for c in ("date", "code", *cols) if c in df.columns]
    return df.loc[np.asarray(mask), show].head(k).to_string(index=False)


def _fail(column: str, count: int, what: str, fix: str, rows: str = "") -> DataError:
    msg = f"column '{column}': {count:,} row(s) {what}. Fix: {fix}"
    if rows:
        msg += f"\nfirst offending rows:\n{rows}"
    return DataError(msg)


def _check_codes(df: pd.DataFrame, source: str) -> None:
    col = df["code"]
    uniq = (col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else pd.unique(col)).astype(str)
    bad = [c for c in uniq if not CODE_PATTERN.match(c)]
    if bad:
        mask = col.astype(str).isin(bad).to_numpy()
        raise _fail("code", int(mask.sum()), f"are not A-share codes like '600000.SH' (e.g. {bad[:3]})",
                    "six digits and the exchange suffix .SH/.SZ/.BJ; read CSV codes as strings "
                    "(dtype={'code': str}) so leading zeros survive, and add the suffix "
                    "(6xxxxx -> .SH, 0xxxxx/3xxxxx -> .SZ, 4xxxxx/8xxxxx -> .BJ)", _rows(df, mask, []))


def _check_dates(df: pd.DataFrame) -> None:
    if pd.api.types.is_integer_dtype(df["date"]):
        v = df["date"].to_numpy()
        yyyymmdd = (v >= 19000101) & (v <= 21001231)
        fix = ("integer yyyymmdd dates: convert with pd.to_datetime(df['date'].astype(str), format='%Y%m%d')"
               if yyyymmdd.all() else "convert to datetime64 (ISO dates YYYY-MM-DD)")
        raise _fail("date", len(df), f"are integers (dtype {df['date'].dtype}), expected datetime64", fix,
                    _rows(df, np.ones(len(df), bool), []))
    if not pd.api.types.is_datetime64_any_dtype(df["date"]):
        parsed = pd.to_datetime(df["date"], errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise _fail("date", int(bad.sum()), "are not parseable dates",
                        "use ISO dates (YYYY-MM-DD) or datetime64", _rows(df, bad, []))
        raise _fail("date", len(df), f"have dtype {df['date'].dtype}, expected datetime64",
                    "convert with pd.to_datetime(df['date'])")
    tz = getattr(df["date"].dtype, "tz", None)
    if tz is not None:
        raise _fail("date", len(df), f"are timezone-aware ({tz}), expected naive exchange-local dates",
                    f"df['date'] = df['date'].dt.tz_convert('{EXCHANGE_TZ}').dt.tz_localize(None).dt.normalize() "
                    "(the tidy and dir readers do this for you)", _rows(df, np.ones(len(df), bool), []))
    if df["date"].isna().any():
        bad = df["date"].isna().to_numpy()
        raise _fail("date", int(bad.sum()), "are missing (NaT)", "drop or fill these rows", _rows(df, bad, []))


def validate_daily(df: pd.DataFrame, source: str = "daily frame") -> ValidationSummary:
    """Check ``df`` against the contract; raise :class:`DataError` naming the column, the count and first bad rows.

    Checks: an empty frame, missing required columns, dtypes, integer/unparseable/unsorted dates, code format,
    duplicate (date, code), prices that are not finite and positive, ``high < low``, open/close outside
    ``[low, high]``, vwap outside ``[low, high]`` beyond :data:`VWAP_TOLERANCE`, volume missing or negative,
    ``adj_factor`` not finite and positive, unknown boards. Missing optional fields (amount, float_shares, is_st)
    are counted and logged.
    """
    if len(df) == 0:
        raise DataError(f"{source}: the daily frame is empty (0 rows). Fix: check the file, the date range "
                        "(data.start / data.end) and the column mapping")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {missing}. Fix: provide them (contract columns: {list(COLUMNS)}); "
            "for real data map source names with a column mapping (see quantsam.data.ingest)."
        )
    _check_dates(df)
    for c in NUMERIC_COLUMNS:
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
            raise _fail(c, len(df), f"have dtype {df[c].dtype}, expected a numeric dtype",
                        f"convert with pd.to_numeric(df['{c}'])")
    if not (pd.api.types.is_string_dtype(df["code"]) or isinstance(df["code"].dtype, pd.CategoricalDtype)):
        raise _fail("code", len(df), f"have dtype {df['code'].dtype}, expected str/category",
                    "codes look like '600000.SH'; convert with df['code'].astype(str)")
    _check_codes(df, source)

    dates = df["date"].to_numpy()
    if len(dates) > 1 and (dates[1:] < dates[:-1]).any():
        bad = np.r_[False, dates[1:] < dates[:-1]]
        raise _fail("date", int(bad.sum()), "are out of order (rows must be sorted by date, then code)",
                    "df.sort_values(['date', 'code'])", _rows(df, bad, []))
    dup = df.duplicated(["date", "code"]).to_numpy()
    if dup.any():
        raise _fail("date, code", int(dup.sum()), "are duplicate (date, code) pairs",
                    "keep one row per stock and day (df.drop_duplicates(['date', 'code']))", _rows(df, dup, []))
    for c in PRICE_COLUMNS:
        v = df[c].to_numpy(dtype=float)
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            raise _fail(c, int(bad.sum()), "are not finite positive prices (<= 0, NaN or inf)",
                        "suspended days must have no row; check the price unit (CNY, not fen)", _rows(df, bad, [c]))
    hi, lo = df["high"].to_numpy(float), df["low"].to_numpy(float)
    bad = hi < lo
    if bad.any():
        raise _fail("high", int(bad.sum()), "have high < low", "swap or repair these bars", _rows(df, bad, ["high", "low"]))
    eps = 1e-9 * hi
    for c in ("open", "close"):
        v = df[c].to_numpy(float)
        bad = (v > hi + eps) | (v < lo - eps)
        if bad.any():
            raise _fail(c, int(bad.sum()), "are outside [low, high]", "repair the bar (OHLC must be consistent)",
                        _rows(df, bad, [c, "low", "high"]))
    v = df["vwap"].to_numpy(float)
    tol = VWAP_TOLERANCE * hi
    bad = (v > hi + tol) | (v < lo - tol)
    if bad.any():
        raise _fail("vwap", int(bad.sum()), f"are outside [low, high] by more than {VWAP_TOLERANCE:.1%}",
                    "vwap = amount / volume in CNY per share; check units (amount in CNY, volume in shares)",
                    _rows(df, bad, ["vwap", "low", "high"]))
    vol = df["volume"].to_numpy(float)
    bad = ~np.isfinite(vol)
    if bad.any():
        raise _fail("volume", int(bad.sum()), "are missing or infinite",
                    "volume is shares traded (>= 0); a suspended day has no row", _rows(df, bad, ["volume"]))
    bad = vol < 0
    if bad.any():
        raise _fail("volume", int(bad.sum()), "are negative", "volume is shares traded (>= 0)", _rows(df, bad, ["volume"]))
    adj = df["adj_factor"].to_numpy(float)
    bad = ~(np.isfinite(adj) & (adj > 0))
    if bad.any():
        raise _fail("adj_factor", int(bad.sum()), "are not finite positive factors (<= 0, NaN or inf)",
                    "adj_factor is the cumulative back-adjustment factor (1.0 when a stock never had ex-rights)",
                    _rows(df, bad, ["adj_factor"]))
    boards = pd.unique(df["board"].astype(str))
    unknown = sorted(set(boards) - set(BOARDS))
    if unknown:
        bad = df["board"].astype(str).isin(unknown).to_numpy()
        raise _fail("board", int(bad.sum()), f"have unknown board(s) {unknown}", f"use one of {list(BOARDS)}",
                    _rows(df, bad, ["board"]))

    missing_opt = {}
    for c in OPTIONAL:
        n = len(df) if c not in df.columns else int(df[c].isna().sum())
        missing_opt[c] = n
        if n:
            log.warning("%s: optional column '%s' missing on %s of %s rows", source, c, f"{n:,}", f"{len(df):,}")
    return ValidationSummary(
        n_rows=len(df), n_codes=int(df["code"].nunique()), n_dates=int(df["date"].nunique()),
        missing_optional=missing_opt,
    )


def board_of(code: str) -> str:
    """Board of an A-share code ``'600000.SH'`` by its prefix: STAR 688/689, ChiNext 300/301, BSE 4/8, else main."""
    num = code.split(".")[0]
    if num.startswith(("688", "689")):
        return "star"
    if num.startswith(("300", "301")):
        return "chinext"
    if code.endswith(".BJ") or num.startswith(("4", "8")):
        return "bse"
    return "main"


#: ChiNext moved from +-10% to +-20% limits on this date (registration reform).
CHINEXT_20PCT_FROM = pd.Timestamp("2020-08-24")


def limit_pct(board: np.ndarray, is_st: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Daily price-limit fraction per row: main 10%, ChiNext 20% from 2020-08-24 (10% before), STAR 20%, BSE 30%,
    ST 5% (main board; ST on ChiNext/STAR follows the board's limit)."""
    board = np.asarray(board).astype(str)
    dates = np.asarray(dates, dtype="datetime64[ns]")
    out = np.full(board.shape, 0.10)
    out[board == "star"] = 0.20
    out[board == "bse"] = 0.30
    chinext = board == "chinext"
    out[chinext & (dates >= CHINEXT_20PCT_FROM.to_datetime64())] = 0.20
    st = np.asarray(is_st, dtype=bool) & (board == "main")
    out[st] = 0.05
    return out


def limit_prices(preclose: np.ndarray, pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exchange limit prices: ``round(preclose * (1 +- pct), 2)`` (half-up on fen, as the exchanges round)."""
    up = np.floor(preclose * (1 + pct) * 100 + 0.5) / 100
    down = np.floor(preclose * (1 - pct) * 100 + 0.5) / 100
    return up, down
