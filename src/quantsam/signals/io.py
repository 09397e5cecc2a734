"""Signals and predictions between their long artifact form (parquet rows ``date, code, ...``) and dense ``[T, N]``
arrays on a panel's grid — the only two shapes a signal takes. Reading checks the file the way a user's file must be
checked: duplicates, non-numeric or infinite scores, dates or codes the market does not know are clear errors;
missing (NaN) scores are allowed and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.data.calendar import naive_exchange_dates
from quantsam.errors import DataError
from quantsam.features.panel import Panel

FIX = "write one row per (date, code) with a finite numeric score (NaN = not scored), codes like '600000.SH'"


def check_signal_frame(df: pd.DataFrame, column: str, source: str) -> None:
    """Raise :class:`DataError` naming ``source`` for a frame that is not a valid signal."""
    missing = [c for c in ("date", "code", column) if c not in df.columns]
    if missing:
        raise DataError(f"signal {source}: column(s) {missing} missing (columns: {list(df.columns)}). Fix: {FIX}")
    if not pd.api.types.is_numeric_dtype(df[column]):
        raise DataError(f"signal {source}: column '{column}' is {df[column].dtype}, expected numeric. Fix: {FIX}")
    v = df[column].to_numpy(dtype=np.float64)
    inf = np.isinf(v)
    if inf.any():
        rows = df.loc[inf, ["date", "code", column]].head(3).to_string(index=False)
        raise DataError(f"signal {source}: {int(inf.sum())} score(s) are +-inf (a score must be a finite number; "
                        f"quantsam does not clip them).\nfirst rows:\n{rows}\nFix: {FIX}")
    dup = df.duplicated(["date", "code"]).to_numpy()
    if dup.any():
        raise DataError(f"signal {source}: {int(dup.sum())} duplicate (date, code) rows. Fix: average seeds/models "
                        "first (one row per date and code)")


def to_dense(df: pd.DataFrame, panel: Panel, column: str = "score", source: str = "frame") -> np.ndarray:
    """``[T, N]`` float64 array of ``df[column]`` on the panel's grid (NaN where the frame has no row or a NaN
    score). ``df`` is long (``date, code, <column>``) or wide (index dates, columns codes)."""
    if isinstance(df, pd.DataFrame) and not {"date", "code"} <= set(df.columns):
        long = df.stack()
        df = pd.DataFrame({"date": long.index.get_level_values(0), "code": long.index.get_level_values(1),
                           column: long.to_numpy(dtype=np.float64)})
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"signal {source}: expected a DataFrame, got {type(df).__name__}")
    check_signal_frame(df, column, source)
    dates = naive_exchange_dates(pd.to_datetime(df["date"]), f"signal {source}").to_numpy()
    codes = df["code"].astype(str).to_numpy()
    ti = pd.Series(np.arange(len(panel.dates)), index=panel.dates).reindex(dates).to_numpy()
    ni = pd.Series(np.arange(len(panel.codes)), index=panel.codes).reindex(codes).to_numpy()
    if np.isnan(ti).any():
        raise DataError(f"signal {source}: {int(np.isnan(ti).sum())} rows on dates not in the market calendar "
                        f"(first: {pd.Timestamp(dates[np.isnan(ti)][0]).date()}). Fix: use the same market data")
    if np.isnan(ni).any():
        raise DataError(f"signal {source}: {int(np.isnan(ni).sum())} rows with codes not in the market "
                        f"(first: {codes[np.isnan(ni)][0]}). Fix: use the same market data")
    out = np.full(panel.traded.shape, np.nan)
    out[ti.astype(np.int64), ni.astype(np.int64)] = df[column].to_numpy(dtype=np.float64)
    return out


def seed_averaged(preds: pd.DataFrame) -> tuple[pd.DatetimeIndex, pd.Index, dict[str, np.ndarray]]:
    """Predictions (``date, code, model, seed, score``) -> (dates, codes, ``{model: [D, C]}``): the mean over seeds
    on the grid of the dates and codes that any model predicts (both sorted)."""
    avg = preds.groupby(["date", "code", "model"], observed=True, sort=True)["score"].mean()
    dates = pd.DatetimeIndex(np.unique(avg.index.get_level_values("date")), name="date")
    codes = pd.Index(np.unique(avg.index.get_level_values("code").astype(str)), name="code")
    ti = dates.get_indexer(avg.index.get_level_values("date"))
    ni = codes.get_indexer(avg.index.get_level_values("code").astype(str))
    model = avg.index.get_level_values("model").astype(str)
    out = {}
    for m in pd.unique(model):
        a = np.full((len(dates), len(codes)), np.nan)
        sel = np.asarray(model == m)
        a[ti[sel], ni[sel]] = avg.to_numpy()[sel]
        out[str(m)] = a
    return dates, codes, out


def to_long(dates: pd.DatetimeIndex, codes: pd.Index, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Rows ``date, code, <columns>`` for the (date, code) cells where any column is finite, by date then code."""
    stack = np.stack(list(columns.values()))
    ti, ni = np.nonzero(np.isfinite(stack).any(axis=0))
    out = pd.DataFrame({"date": dates[ti], "code": np.asarray(codes)[ni]})
    for name, a in columns.items():
        out[name] = a[ti, ni]
    return out
