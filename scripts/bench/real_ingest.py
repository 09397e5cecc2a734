"""Benchmark: ingest ../shared/data/real/daily.parquet into the contract and build the full [T, N, F] panel;
print seconds and peak RSS (goal < 60 s and < 4 GB). Skips when the shared data is absent.

    python scripts/bench/real_ingest.py [--path ../shared/data/real]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import peak_mb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--path", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "real"))
    a = ap.parse_args()
    if not (Path(a.path) / "daily.parquet").exists():
        print(f"skipped: {a.path}/daily.parquet not found")
        return
    from quantsam.data.contract import validate_daily
    from quantsam.data.ingest import load_tidy
    from quantsam.features.panel import build_panel

    t0 = time.perf_counter()
    daily = load_tidy(a.path)
    t1 = time.perf_counter()
    validate_daily(daily)
    t2 = time.perf_counter()
    panel = build_panel(daily)
    t3 = time.perf_counter()
    print(f"ingest {len(daily):,} rows ({daily['code'].nunique():,} stocks x {daily['date'].nunique():,} dates): "
          f"load + map {t1 - t0:.1f} s, validate {t2 - t1:.1f} s, panel {panel.shape} {t3 - t2:.1f} s; "
          f"total {t3 - t0:.1f} s, peak RSS {peak_mb() / 1024:.2f} GB (panel {panel.nbytes / 2**30:.2f} GB)")


if __name__ == "__main__":
    main()
