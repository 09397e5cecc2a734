"""Lazy windows over the panel: nothing ``[samples, L, F]`` — and no second ``[T, N, F]`` array — is ever built.

``DailyWindows(panel, L).batch(t, names)`` gathers the last L days of ``names`` from the panel, adjusts them and
normalises them when asked (the training loop asks one date at a time). Weekly windows use the stored completed weekly
bars and end with the week-to-date bar of t's week, aggregated from that week's days <= t.
"""

from __future__ import annotations

import numpy as np

from quantsam.features.kline import WeeklyKline, adjust, aggregate, kline_index, normalize_window, weekly_kline
from quantsam.features.panel import Panel


class DailyWindows:
    """Windows of the last ``length`` trading days ending at t (inclusive)."""

    def __init__(self, panel: Panel, length: int = 30, normalize: str = "zscore"):
        if length < 1:
            raise ValueError(f"window length={length} must be >= 1")
        self.panel = panel
        self.length = length
        self.normalize = normalize  # features.normalize (:func:`normalize_window`'s method)
        self._idx, self._adj = kline_index(panel)

    def first_valid(self) -> int:
        """First date index with a full window."""
        return self.length - 1

    def _check(self, t: int) -> None:
        if t < self.first_valid() or t >= len(self.panel.dates):
            raise IndexError(f"date index {t}: a {self.length}-step window needs {self.first_valid()} <= t < "
                             f"{len(self.panel.dates)}")

    def view(self, t: int) -> np.ndarray:
        """``[L, N, F_panel]`` view (no copy) of the panel rows of the window ending at ``t``."""
        self._check(t)
        return self.panel.values[t - self.length + 1: t + 1]

    def raw(self, t: int, names: np.ndarray) -> np.ndarray:
        """``[n, L, 6]`` adjusted K-line window of ``names`` (a copy of just those names)."""
        v = self.view(t)[:, np.asarray(names)]
        return adjust(v[..., self._idx], v[..., self._adj]).transpose(1, 0, 2).copy()

    def batch(self, t: int, names: np.ndarray) -> np.ndarray:
        """Normalised ``[n, L, 6]`` model input (:func:`normalize_window`)."""
        return normalize_window(self.raw(t, names), self.normalize)


class WeeklyWindows(DailyWindows):
    """Windows of the last ``length`` weeks seen on day t: ``length - 1`` completed weeks + t's week-to-date bar."""

    def __init__(self, panel: Panel, length: int = 30, weekly: WeeklyKline | None = None, normalize: str = "zscore"):
        super().__init__(panel, length, normalize)
        self.weekly = weekly_kline(panel) if weekly is None else weekly

    def first_valid(self) -> int:
        wk = self.weekly
        return int(wk.week_start[self.length - 1]) if self.length - 1 < len(wk.week_start) else len(self.panel.dates)

    def week_to_date(self, t: int, names: np.ndarray) -> np.ndarray:
        """``[n, 6]`` bar of t's week from its days <= t."""
        s = int(self.weekly.week_start[self.weekly.week_of_day[t]])
        v = self.panel.values[s: t + 1][:, np.asarray(names)]
        return aggregate(adjust(v[..., self._idx], v[..., self._adj]))

    def raw(self, t: int, names: np.ndarray) -> np.ndarray:
        self._check(t)
        w = int(self.weekly.week_of_day[t])
        names = np.asarray(names)
        done = self.weekly.bars[w - self.length + 1: w][:, names]  # [L-1, n, 6] completed weeks before t's week
        out = np.concatenate([done, self.week_to_date(t, names)[None]], axis=0)
        return out.transpose(1, 0, 2).copy()

    def view(self, t: int) -> np.ndarray:  # a weekly window is gathered, never a plain slice
        raise NotImplementedError("weekly windows are gathered from weekly bars; use raw(t, names) or batch(t, names)")
