"""Wide-frame (alphalens-style) entry points: index = dates, columns = codes, NaN = not in the universe that day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.crosssection import ic_rows, rank_ic_rows
from quantsam.errors import DataError
from quantsam.factor_test.quantiles import layer_returns


def _check_pair(factor: pd.DataFrame, fwd: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    for name, f in (("factor", factor), ("fwd_returns", fwd)):
        if not isinstance(f, pd.DataFrame):
            raise DataError(f"{name}: expected a wide DataFrame (index = dates, columns = codes), got {type(f).__name__}")
        if f.index.has_duplicates or f.columns.has_duplicates:
            raise DataError(f"{name}: duplicate dates or codes in the index/columns. Fix: aggregate or drop duplicates")
        bad = [c for c, t in f.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if bad:
            raise DataError(f"{name}: non-numeric column(s) {bad[:5]}. Fix: convert with .astype(float)")
    if not factor.index.equals(fwd.index) or not factor.columns.equals(fwd.columns):
        nd = len(factor.index.symmetric_difference(fwd.index))
        nc = len(factor.columns.symmetric_difference(fwd.columns))
        raise DataError(f"factor and fwd_returns are misaligned ({nd} dates and {nc} codes differ). "
                        "Fix: align them first, e.g. factor, fwd = factor.align(fwd, join='inner')")
    return factor.to_numpy(dtype=np.float64), fwd.to_numpy(dtype=np.float64)


def rank_ic(factor: pd.DataFrame, fwd_returns: pd.DataFrame) -> pd.Series:
    """Per-date Spearman correlation over names where both are present (NaN with fewer than 3 names)."""
    x, y = _check_pair(factor, fwd_returns)
    return pd.Series(rank_ic_rows(x, y), index=factor.index, name="rank_ic")


def ic(factor: pd.DataFrame, fwd_returns: pd.DataFrame) -> pd.Series:
    """Per-date Pearson correlation over names where both are present."""
    x, y = _check_pair(factor, fwd_returns)
    return pd.Series(ic_rows(x, y), index=factor.index, name="ic")


def quantile_returns(factor: pd.DataFrame, fwd_returns: pd.DataFrame, n_quantiles: int = 10) -> pd.DataFrame:
    """Per date, mean forward return of each layer (columns 1..n, n = highest factor). Layers are formed over the
    names with both a factor value and a forward return; dates with fewer names than layers are all-NaN rows
    (``.attrs['skipped_dates']`` counts them)."""
    x, y = _check_pair(factor, fwd_returns)
    means, skipped = layer_returns(x, y, n_quantiles)
    out = pd.DataFrame(means, index=factor.index,
                       columns=pd.Index(range(1, n_quantiles + 1), name="layer"))
    out.attrs["skipped_dates"] = int(skipped.sum())
    return out
