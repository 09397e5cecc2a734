"""Dense ``[T, N, F]`` float32 panel of the daily contract, with masks.

The long daily frame (one row per traded stock-day) is scattered once into dense arrays indexed by (date, code);
everything downstream (features, labels, factor tests, backtests) works on these arrays, never on ``groupby``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantsam.data.contract import BOARDS, limit_pct, limit_prices
from quantsam.errors import DataError

PANEL_FIELDS = ("open", "high", "low", "close", "vwap", "volume", "amount", "preclose", "adj_factor", "float_shares")


@dataclass
class Panel:
    """Dense panel. ``values[t, i, f]`` is NaN where stock ``i`` has no row on date ``t`` (suspended / not listed)."""

    dates: pd.DatetimeIndex
    codes: pd.Index
    fields: tuple[str, ...]
    values: np.ndarray  # [T, N, F] float32
    traded: np.ndarray  # [T, N] bool: a row exists
    listed: np.ndarray  # [T, N] bool: on or after the first row and on or before the last row
    is_st: np.ndarray  # [T, N] bool
    limit_up_one: np.ndarray  # [T, N] bool: one-price limit-up day (O = H = L = C at the up limit)
    limit_down_one: np.ndarray  # [T, N] bool
    board: np.ndarray  # [N] str
    age: np.ndarray  # [T, N] int32: trading days since the first row (0 on the first row; -1 before listing)

    def field(self, name: str) -> np.ndarray:
        """``[T, N]`` view of one field."""
        try:
            return self.values[:, :, self.fields.index(name)]
        except ValueError:
            raise KeyError(f"field '{name}' not in panel fields {self.fields}") from None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        masks = self.traded.nbytes + self.listed.nbytes + self.is_st.nbytes
        masks += self.limit_up_one.nbytes + self.limit_down_one.nbytes + self.age.nbytes
        return int(self.values.nbytes + masks)

    def adjusted(self, name: str) -> np.ndarray:
        """Back-adjusted ``[T, N]`` float32 price (raw x adj_factor), or split-adjusted volume (volume / adj_factor)."""
        adj = self.field("adj_factor")
        if name == "volume":
            return self.field("volume") / adj
        return self.field(name) * adj


def build_panel(daily: pd.DataFrame, fields: tuple[str, ...] = PANEL_FIELDS,
                dates: pd.DatetimeIndex | None = None) -> Panel:
    """Scatter the contract frame into a :class:`Panel`.

    ``dates`` defaults to the sorted unique dates of ``daily`` (the trading calendar of real data). Missing optional
    fields become all-NaN (``amount``, ``float_shares``) or all-False (``is_st``).
    """
    for c in ("date", "code", "board", "close", "preclose"):
        if c not in daily.columns:
            raise DataError(f"build_panel: column '{c}' missing. Fix: validate the frame with validate_daily first.")
    date_vals = daily["date"].to_numpy(dtype="datetime64[ns]")
    if dates is None:
        dates = pd.DatetimeIndex(np.unique(date_vals), name="date")
    else:
        dates = pd.DatetimeIndex(dates, name="date")
    ti = np.searchsorted(dates.to_numpy(dtype="datetime64[ns]"), date_vals)
    if (ti >= len(dates)).any() or (dates.to_numpy(dtype="datetime64[ns]")[np.minimum(ti, len(dates) - 1)] != date_vals).any():
        raise DataError("build_panel: some 'date' values are not in the given calendar. Fix: pass dates=None.")
    code_col = daily["code"]
    if isinstance(code_col.dtype, pd.CategoricalDtype):
        used = np.unique(code_col.cat.codes.to_numpy())
        cats = code_col.cat.categories
        remap = np.full(len(cats), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        ni = remap[code_col.cat.codes.to_numpy()]
        codes = pd.Index(np.asarray(cats[used]).astype(str), name="code")
    else:
        ni, uniq = pd.factorize(code_col.astype(str), sort=True)
        codes = pd.Index(np.asarray(uniq).astype(str), name="code")
    T, N, F = len(dates), len(codes), len(fields)
    values = np.full((T, N, F), np.nan, dtype=np.float32)
    for k, f in enumerate(fields):
        if f in daily.columns:
            values[ti, ni, k] = daily[f].to_numpy(dtype=np.float64)
    traded = np.zeros((T, N), dtype=bool)
    traded[ti, ni] = True
    is_st = np.zeros((T, N), dtype=bool)
    if "is_st" in daily.columns:
        is_st[ti, ni] = daily["is_st"].fillna(False).to_numpy(dtype=bool)
    board = np.full(N, "main", dtype=object)
    bcol = daily["board"]
    if isinstance(bcol.dtype, pd.CategoricalDtype):  # one string per category, not per row
        board[ni] = np.asarray(bcol.cat.categories.astype(str), dtype=object)[bcol.cat.codes.to_numpy()]
    else:
        board[ni] = bcol.astype(str).to_numpy()
    board = board.astype(str)
    bad = sorted(set(board) - set(BOARDS))
    if bad:
        raise DataError(f"build_panel: column 'board' has unknown values {bad}. Fix: use one of {list(BOARDS)}.")

    first = np.where(traded.any(0), np.argmax(traded, axis=0), T)
    last = np.where(traded.any(0), T - 1 - np.argmax(traded[::-1], axis=0), -1)
    t_idx = np.arange(T)[:, None]
    listed = (t_idx >= first[None, :]) & (t_idx <= last[None, :])
    age = np.where(t_idx >= first[None, :], t_idx - first[None, :], -1).astype(np.int32)

    # one-price limit days: O = H = L = C at the board's limit price; float64 on the traded rows, in row blocks
    # (bounded temporaries), boards by category code rather than per-row strings
    lu = np.zeros((T, N), dtype=bool)
    ld = np.zeros((T, N), dtype=bool)
    st_col = daily["is_st"].fillna(False).to_numpy(bool) if "is_st" in daily.columns else np.zeros(len(daily), bool)
    for r0 in range(0, len(daily), 1_000_000):
        r = slice(r0, r0 + 1_000_000)
        o, h, lo, c, pc = (daily[k].to_numpy(np.float64)[r] for k in ("open", "high", "low", "close", "preclose"))
        up, down = limit_prices(pc, limit_pct(board[ni[r]], st_col[r], date_vals[r]))
        flat = (o == h) & (h == lo) & (lo == c)
        lu[ti[r], ni[r]] = flat & (c >= up - 0.005)
        ld[ti[r], ni[r]] = flat & (c <= down + 0.005)
    return Panel(dates=dates, codes=codes, fields=tuple(fields), values=values, traded=traded, listed=listed,
                 is_st=is_st, limit_up_one=lu, limit_down_one=ld, board=board, age=age)
