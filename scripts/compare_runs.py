"""Compare two pipeline runs table by table, exactly: the check behind "a refactor changed no number".

Each side is a sweep directory (its jobs' ``result.json``, matched by arm and seed) or one job's directory. For each
job the predictions, the signal (and its per-window rows), every factor-test table and every backtest table are read
as parquet and compared with ``pandas.testing.assert_frame_equal(check_exact=True)``; the stages' folders may live in
different places (the comparison follows each side's ``result.json``). Prints one line per table and exits 1 on the
first difference.

    python scripts/compare_runs.py multirun/2026-12-01/16-30-10 /tmp/after/multirun/2026-12-01/17-02-11
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from quantsam.jobresult import FILE, JobResult


def jobs(path: Path) -> dict[tuple[str, int], JobResult]:
    found = [JobResult.read(path / FILE)] if (path / FILE).exists() else JobResult.all_in(path)
    if not found:
        raise SystemExit(f"{path}: no {FILE} (give a sweep dir or a job dir)")
    return {(j.optimizer, j.seed): j for j in found}


def tables(j: JobResult) -> dict[str, Path]:
    """Every parquet table of a job's stages, by a name that does not depend on where the folders live."""
    out = {"train/predictions": Path(j.work_dir) / "predictions.parquet"}
    if j.signal:
        out["signal/signal"] = Path(j.signal)
        for cand in (Path(j.signal).parent / "signal_windows.parquet", Path(j.work_dir) / "signal_windows.parquet"):
            if cand.exists():
                out["signal/windows"] = cand
                break
    if j.factor_dir:
        out.update({f"factor_test/{p.stem}": p for p in sorted(Path(j.factor_dir).glob("*.parquet"))})
    for u, d in sorted(j.backtest_dirs.items()):
        out.update({f"backtest/{u}/{p.stem}": p for p in sorted(Path(d).glob("*.parquet"))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    a = ap.parse_args()
    left, right = jobs(a.before), jobs(a.after)
    if set(left) != set(right):
        raise SystemExit(f"different jobs: {sorted(left)} vs {sorted(right)}")
    n = 0
    for k in sorted(left):
        tl, tr = tables(left[k]), tables(right[k])
        if set(tl) != set(tr):
            raise SystemExit(f"{k}: different tables: {sorted(set(tl) ^ set(tr))}")
        for name in sorted(tl):
            try:
                pd.testing.assert_frame_equal(pd.read_parquet(tl[name]), pd.read_parquet(tr[name]), check_exact=True)
            except AssertionError as e:
                print(f"{k[0]} s{k[1]} {name}: DIFFERENT\n{e}")
                sys.exit(1)
            n += 1
            print(f"{k[0]} s{k[1]} {name}: equal")
    print(f"all {n} tables equal exactly ({len(left)} job(s))")


if __name__ == "__main__":
    main()
