"""The market a stage reads: a :class:`~quantsam.data.io.DataRef` (directory + fingerprint) whose tables and dense
panel are loaded on first use and then shared by every stage in the process.

The orchestrator (``pipeline.py``/``cli.py``) opens it once from the data stage's output and hands it to each
stage; :func:`open_market` keeps the last one per process, so sequential sweep jobs on the same market (Hydra's basic
launcher) build the panel once as well.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from quantsam.data.io import DataRef, MarketData, load_market
from quantsam.features.dataset import eligible_mask, membership_mask
from quantsam.features.labels import make_label
from quantsam.features.panel import Panel, build_panel
from quantsam.features.styles import StyleExposures, style_exposures

log = logging.getLogger(__name__)


class Market:
    """Lazy, memoised access to one market directory."""

    def __init__(self, ref: DataRef):
        self.ref = ref
        self._tables: MarketData | None = None
        self._panel: Panel | None = None
        self._memo: dict[tuple, object] = {}

    @property
    def dir(self) -> Path:
        return self.ref.dir

    @property
    def fingerprint(self) -> str:
        return self.ref.fingerprint

    def tables(self) -> MarketData:
        """The market tables (daily, index members/weights, industry, index bars), read once."""
        if self._tables is None:
            self._tables = load_market(self.ref.dir, with_alpha=False)
        return self._tables

    def panel(self) -> Panel:
        """The dense ``[T, N, F]`` panel, built once."""
        if self._panel is None:
            t0 = time.perf_counter()
            self._panel = build_panel(self.tables().daily)
            T, N, F = self._panel.shape
            log.info("panel built once for %s: %d dates x %d names x %d fields (%.1f s)", self.ref.dir.name, T, N, F,
                     time.perf_counter() - t0)
        return self._panel

    def eligible(self, universe) -> np.ndarray:
        """``[T, N]`` names a model is trained and scored on (the ``universe`` config: listing age, ST, and the
        index's point-in-time members with ``train_on_members``)."""
        members_of = str(universe.index_code) if universe.index_code and universe.get("train_on_members") else None
        key = ("eligible", int(universe.min_listed_days), bool(universe.exclude_st), members_of)
        if key not in self._memo:
            panel = self.panel()
            members = None if members_of is None else membership_mask(panel, self.tables().index_members, members_of)
            self._memo[key] = eligible_mask(panel, key[1], key[2], members)
        return self._memo[key]

    def index_members_masks(self) -> dict[str, np.ndarray]:
        """``{universe name: [T, N] point-in-time membership}`` for every benchmark index the market's
        ``index_members`` table holds (:data:`quantsam.config.schema.INDEX_CODES`), once."""
        from quantsam.config.schema import INDEX_CODES

        if ("members",) not in self._memo:
            mem = self.tables().index_members
            have = set(mem["index_code"].astype(str)) if mem is not None and len(mem) else set()
            self._memo[("members",)] = {u: membership_mask(self.panel(), mem, code)
                                        for u, code in INDEX_CODES.items() if code in have}
        return self._memo[("members",)]

    def styles(self) -> StyleExposures:
        """The style exposures of every name and date (estimation universe: listed >= 63 days, not ST), once."""
        if ("styles",) not in self._memo:
            t0 = time.perf_counter()
            panel = self.panel()
            self._memo[("styles",)] = style_exposures(panel, eligible_mask(panel, 63, True))
            log.info("style exposures computed once (%.1f s)", time.perf_counter() - t0)
        return self._memo[("styles",)]

    def label(self, features, universe) -> np.ndarray:
        """The study's label (z-scored forward return, ``features`` config) over the eligible names."""
        key = ("label", int(features.label_horizon), str(features.label_price), id(self.eligible(universe)))
        if key not in self._memo:
            self._memo[key] = make_label(self.panel(), horizon=key[1], price=key[2], mask=self.eligible(universe))
        return self._memo[key]


_CURRENT: list[Market] = []


def open_market(ref: DataRef) -> Market:
    """The process's :class:`Market` for ``ref`` (the same object while the directory and fingerprint are the same)."""
    if _CURRENT and _CURRENT[0].ref == ref:
        return _CURRENT[0]
    _CURRENT[:] = [Market(ref)]
    return _CURRENT[0]
