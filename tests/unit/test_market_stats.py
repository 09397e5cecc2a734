"""scripts/market_stats.py: its statistics against pandas on the long daily frame (an independent path: groupby over
rows, Decimal half-up limit prices), and the calibration it documents — the default synthetic market stays within
the README's tolerances of the real market's committed statistics (docs/results/synthetic_calibration/stats.json)."""

from __future__ import annotations

import importlib.util
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantsam.data.synthetic import generate_market
from quantsam.features.panel import build_panel

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("market_stats", ROOT / "scripts" / "market_stats.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small():
    m = generate_market(seed=2, n_stocks=150, start="2019-01-01", end="2020-12-31")
    return m, build_panel(m.daily)


def test_statistics_equal_pandas_on_the_long_frame(small):
    m, panel = small
    got = _script().market_stats(panel)
    d = m.daily.copy()
    d["code"] = d["code"].astype(str)
    d = d.sort_values(["code", "date"])
    seasoned = d[d.groupby("code").cumcount() > 0]  # a name's first row has no previous close of its own
    r = seasoned["close"] / seasoned["preclose"] - 1
    per_day = r.groupby(seasoned["date"])
    sd = per_day.std(ddof=1)[per_day.count() >= 20]
    assert got["xs_vol"] == pytest.approx(float(sd.median()), rel=1e-5)

    def up_price(row) -> float:
        pct = "0.05" if row.is_st and row.board == "main" else "0.20" if row.board == "star" or (
            row.board == "chinext" and row.date >= pd.Timestamp("2020-08-24")) else "0.10"
        return float((Decimal(repr(float(row.preclose))) * (1 + Decimal(pct))).quantize(Decimal("0.01"), ROUND_HALF_UP))

    ups = np.array([up_price(row) for row in seasoned.itertuples()])
    assert got["limit_up"] == pytest.approx(float(np.mean(seasoned["close"].to_numpy() >= ups - 0.005)), abs=2e-4)

    cal = pd.DatetimeIndex(sorted(d["date"].unique()))
    span = d.groupby("code")["date"].agg(["min", "max", "size"])
    listed = [cal.slice_indexer(a, b) for a, b in zip(span["min"], span["max"], strict=True)]
    n_listed = sum(s.stop - s.start - 1 for s in listed)  # after each name's first day
    missing = sum(s.stop - s.start - n for s, n in zip(listed, span["size"], strict=True))
    assert got["suspended"] == pytest.approx(missing / n_listed, rel=1e-9)
    turn = seasoned["volume"] / seasoned["float_shares"]
    assert got["turnover"] == pytest.approx(float(turn.median()), rel=1e-5)


def test_default_market_is_calibrated_to_the_real_one():
    """The demo's market (defaults: signal_strength 0.5, jump_rate 0.02) within every model-free tolerance of the
    real market's committed statistics; the earlier easy market (data=synthetic_strong) is not (too few limit moves)."""
    mod = _script()
    real = json.loads((ROOT / "docs/results/synthetic_calibration/stats.json").read_text())["real"]
    calibrated = mod.market_stats(build_panel(generate_market(n_stocks=1000, start="2013-05-01",
                                                              end="2018-03-30").daily))
    strong = mod.market_stats(build_panel(generate_market(n_stocks=1000, start="2013-05-01", end="2018-03-30",
                                                          signal_strength=1.0, jump_rate=0.0).daily))
    assert {k: mod.within(k, v, real[k]) for k, v in calibrated.items()} == {k: "yes" for k in calibrated}
    assert mod.within("limit_up", strong["limit_up"], real["limit_up"]) == "NO"
