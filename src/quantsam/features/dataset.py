"""Per-day batches and rolling train/valid/test splits with a purge gap.

One batch = one sample date's cross-section. A :class:`FeatureSet` computes a date's normalised windows lazily (and
keeps them in a byte-bounded cache, so later epochs do not redo the normalisation); nothing ``[samples, L, F]`` is
ever built for a whole period.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantsam.errors import ConfigError
from quantsam.features.labels import make_label
from quantsam.features.panel import Panel
from quantsam.features.windows import DailyWindows, WeeklyWindows

log = logging.getLogger(__name__)


def eligible_mask(panel: Panel, min_listed_days: int = 63, exclude_st: bool = True,
                  members: np.ndarray | None = None) -> np.ndarray:
    """``[T, N]`` names usable on each date, known at that date's close: traded, listed for at least
    ``min_listed_days`` trading days, not ST (optional), and in ``members`` (point-in-time index membership) if given."""
    m = panel.traded & (panel.age >= min_listed_days)
    if exclude_st:
        m &= ~panel.is_st
    if members is not None:
        m &= members
    return m


def membership_mask(panel: Panel, index_members: pd.DataFrame, index_code: str) -> np.ndarray:
    """``[T, N]`` point-in-time membership of ``index_code`` from ``index_code, code, start_date, end_date`` rows."""
    mem = index_members[index_members["index_code"].astype(str) == index_code]
    if mem.empty:
        raise ConfigError([f"universe.index_code='{index_code}': no membership rows in index_members "
                           f"(available: {sorted(index_members['index_code'].astype(str).unique())})"])
    out = np.zeros(panel.traded.shape, dtype=bool)
    code_pos = pd.Series(np.arange(len(panel.codes)), index=panel.codes)
    dates = panel.dates.to_numpy()
    j = code_pos.reindex(mem["code"].astype(str)).to_numpy()
    s = np.searchsorted(dates, mem["start_date"].to_numpy(dtype="datetime64[ns]"))
    end = mem["end_date"].fillna(panel.dates[-1]).to_numpy(dtype="datetime64[ns]")
    e = np.searchsorted(dates, end, side="right")
    for jj, ss, ee in zip(j, s, e, strict=True):
        if np.isfinite(jj):
            out[ss:ee, int(jj)] = True
    return out


class FeatureSet:
    """Lazy model inputs and labels for every frequency in ``frequencies`` over one panel."""

    def __init__(self, panel: Panel, daily_window: int = 30, weekly_window: int = 30, label_horizon: int = 10,
                 label_price: str = "close", eligible: np.ndarray | None = None,
                 frequencies: tuple[str, ...] = ("daily", "weekly"), cache_mb: float = 1024.0,
                 label: np.ndarray | None = None, normalize: str = "zscore"):
        self.panel = panel
        self.eligible = eligible_mask(panel) if eligible is None else eligible
        self.windows: dict[str, DailyWindows] = {}
        if "daily" in frequencies:
            self.windows["daily"] = DailyWindows(panel, daily_window, normalize)
        if "weekly" in frequencies:
            self.windows["weekly"] = WeeklyWindows(panel, weekly_window, normalize=normalize)
        self.label = (make_label(panel, horizon=label_horizon, price=label_price, mask=self.eligible)
                      if label is None else label)
        self.label_horizon = label_horizon
        self.normalize = normalize
        # least recently used first: a rolling study's later windows evict the dates its earlier ones used (a cache
        # that only filled kept window 0's dates and renormalised every later window's dates every epoch)
        self._cache: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = int(cache_mb * 2**20)

    @property
    def first_usable(self) -> int:
        """First date index with a full window for every frequency."""
        return max(w.first_valid() for w in self.windows.values())

    def clear_cache(self) -> None:
        """Forget the normalised batches kept so far (a timing that must build windows as a fresh fit does)."""
        self._cache.clear()
        self._cache_bytes = 0

    def names(self, t: int) -> np.ndarray:
        return np.nonzero(self.eligible[t])[0]

    def inputs(self, freq: str, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(normalised ``[n, L, F]`` windows, name indices) of the eligible names on date ``t``."""
        key = (freq, t)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        names = self.names(t)
        x = self.windows[freq].batch(t, names)
        if x.nbytes <= self._cache_limit:
            while self._cache_bytes + x.nbytes > self._cache_limit:
                _, (old, _) = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes
            self._cache[key] = (x, names)
            self._cache_bytes += x.nbytes
        return x, names


MIN_TRAIN_DATES = 4  # fewer training sample dates than this is a configuration error, not a window


@dataclass(frozen=True)
class Split:
    """One rolling window: sample-date indices for train/valid and every trading day of the test block."""

    index: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def describe(self, dates: pd.DatetimeIndex) -> dict:
        def rng(a):
            return [str(dates[a[0]].date()), str(dates[a[-1]].date())] if len(a) else []

        return {"window": self.index, "train": rng(self.train), "valid": rng(self.valid), "test": rng(self.test),
                "n_train": len(self.train), "n_valid": len(self.valid), "n_test": len(self.test)}


def rolling_splits(dates: pd.DatetimeIndex, first_usable: int, train_days: int, valid_days: int, test_days: int,
                   purge_days: int, sample_every: int, test_start: str, test_end: str | None = None,
                   max_windows: int | None = None, label_horizon: int = 10) -> list[Split]:
    """Rolling windows: test blocks of ``test_days`` from ``test_start``; before each, ``valid_days`` of validation
    and ``train_days`` of training (cut at the first usable date), each minus its last ``purge_days`` so labels never
    overlap the next segment. Train/valid use every ``sample_every``-th trading day (on a grid fixed to the calendar).
    The last test block ends ``label_horizon + 1`` days before the data's end only for labels; predictions run to
    ``test_end``.
    """
    T = len(dates)
    s0 = int(np.searchsorted(dates.to_numpy(), pd.Timestamp(test_start).to_datetime64()))
    end = T if test_end is None else int(np.searchsorted(dates.to_numpy(), pd.Timestamp(test_end).to_datetime64(),
                                                         side="right"))
    grid = np.arange(T)
    on_grid = (grid - first_usable) % sample_every == 0
    splits: list[Split] = []
    s = s0
    while s < end:
        v0 = s - valid_days
        tr0 = max(v0 - train_days, first_usable)
        train = grid[(grid >= tr0) & (grid < v0 - purge_days) & on_grid]
        valid = grid[(grid >= max(v0, first_usable)) & (grid < s - purge_days) & on_grid]
        test = grid[s:min(s + test_days, end)]
        if len(train) < MIN_TRAIN_DATES or len(valid) < 2:
            raise ConfigError([
                f"trainer.test_start={test_start}: the window starting {dates[min(s, T - 1)].date()} has only "
                f"{len(train)} train / {len(valid)} valid sample dates (data start {dates[0].date()}, first usable "
                f"{dates[first_usable].date()}). Fix: a later trainer.test_start or shorter train_days/valid_days."])
        if v0 - train_days < first_usable:
            log.warning("window %d: train starts at the first usable date %s (shorter than trainer.train_days=%d)",
                        len(splits), dates[tr0].date(), train_days)
        splits.append(Split(len(splits), train, valid, test))
        if max_windows is not None and len(splits) >= max_windows:
            break
        s += test_days
    if not splits:
        raise ConfigError([f"trainer.test_start={test_start}: no test dates between it and the data end "
                           f"{dates[-1].date()}. Fix: an earlier test_start."])
    return splits
