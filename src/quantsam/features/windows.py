"""Lazy windows over the panel: a window is a view into ``[T, N, F]``, never a materialised ``[samples, L, F]`` array.

``DailyWindows(x, L).batch(t, names)`` returns the normalised ``[n, L, F]`` input of one sample date, computed when
asked (the training loop asks one date at a time). Weekly windows end with the week-to-date bar of t's week.
"""

from __future__ import annotations

import numpy as np

from quantsam.features.kline import WeeklyKline, normalize_window


class DailyWindows:
    """Windows of the last ``length`` days ending at t (inclusive) over a ``[T, N, F]`` array."""

    def __init__(self, x: np.ndarray, length: int = 30):
        if length < 1:
            raise ValueError(f"window length={length} must be >= 1")
        self.x = x
        self.length = length

    def first_valid(self) -> int:
        """First date index with a full window."""
        return self.length - 1

    def view(self, t: int) -> np.ndarray:
        """``[L, N, F]`` view (no copy) of the window ending at ``t``."""
        if t < self.length - 1 or t >= self.x.shape[0]:
            raise IndexError(f"date index {t}: a {self.length}-step window needs {self.length - 1} <= t < {self.x.shape[0]}")
        return self.x[t - self.length + 1: t + 1]

    def raw(self, t: int, names: np.ndarray) -> np.ndarray:
        """``[n, L, F]`` raw window of ``names`` (a copy of just those names)."""
        return np.ascontiguousarray(self.view(t)[:, names].transpose(1, 0, 2))

    def batch(self, t: int, names: np.ndarray) -> np.ndarray:
        """Normalised ``[n, L, F]`` model input (:func:`normalize_window`)."""
        return normalize_window(self.raw(t, names))


class WeeklyWindows(DailyWindows):
    """Windows of the last ``length`` weeks as seen on day t: ``length - 1`` completed weeks + t's week-to-date bar."""

    def __init__(self, weekly: WeeklyKline, length: int = 30):
        super().__init__(weekly.week_to_date, length)
        self.weekly = weekly

    def first_valid(self) -> int:
        w0 = self.length - 1
        return int(np.searchsorted(self.weekly.week_of_day, w0)) if w0 <= self.weekly.week_of_day.max() else self.x.shape[0]

    def raw(self, t: int, names: np.ndarray) -> np.ndarray:
        w = int(self.weekly.week_of_day[t])
        if w < self.length - 1:
            raise IndexError(f"date index {t} is in week {w}: a {self.length}-week window needs week >= {self.length - 1}")
        ends = self.weekly.week_end[w - self.length + 1: w]  # completed weeks before t's week
        rows = np.r_[ends, t]
        return np.ascontiguousarray(self.x[rows[:, None], np.asarray(names)[None, :]].transpose(1, 0, 2))

    def view(self, t: int) -> np.ndarray:  # a weekly window gathers rows; it cannot be a plain slice
        raise NotImplementedError("weekly windows gather week-end rows; use raw(t, names) or batch(t, names)")
