"""Benchmark: generate the default synthetic market (2,000 stocks x 2014-01..2024-09), then build the panel and the
lazy windows; print seconds and peak RSS (goals: market < 10 s and < 2 GB; panel + windows peak <= 2x panel bytes).

    python scripts/bench/synthetic_market.py [--n-stocks 2000]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import Timer, peak_mb, reset_peak, rss_mb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-stocks", type=int, default=2000)
    ap.add_argument("--start", default="2014-01-01")
    ap.add_argument("--end", default="2024-09-30")
    a = ap.parse_args()

    import numpy as np

    from quantsam.data.synthetic import generate_market
    from quantsam.features.dataset import FeatureSet, eligible_mask
    from quantsam.features.panel import build_panel

    base = rss_mb()
    reset_peak()
    with Timer() as t:
        m = generate_market(seed=0, n_stocks=a.n_stocks, start=a.start, end=a.end)
    print(f"generate_market: {a.n_stocks} stocks x {len(m.calendar)} days, {len(m.daily):,} rows: "
          f"{t.seconds:.2f} s, peak RSS {peak_mb():,.0f} MB (process baseline {base:,.0f} MB)")
    daily = m.daily
    del m
    gc.collect()
    before = rss_mb()
    reset_peak()
    with Timer() as t:
        panel = build_panel(daily)
        fs = FeatureSet(panel, eligible=eligible_mask(panel), cache_mb=0)
        names = fs.names(fs.first_usable + 100)
        x, _ = fs.inputs("daily", fs.first_usable + 100)
        xw, _ = fs.inputs("weekly", fs.first_usable + 100)
    grown = peak_mb() - before
    print(f"panel + windows: {t.seconds:.2f} s; panel {panel.nbytes / 2**20:,.0f} MB ({panel.shape}); "
          f"peak RSS growth {grown:,.0f} MB = {grown / (panel.nbytes / 2**20):.2f}x the panel's bytes")
    print(f"one batch: daily {x.shape}, weekly {xw.shape} for {len(names)} names; "
          f"finite inputs {np.isfinite(x).mean():.3f}")


if __name__ == "__main__":
    main()
