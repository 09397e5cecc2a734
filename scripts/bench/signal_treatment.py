"""Benchmark: what the per-day winsorisation of each model's predictions (``signal.mad_k``) does to a real signal.

For a finished training work dir (its ``predictions.parquet`` and ``config.yaml``), the signal is rebuilt in memory
with each ``--mad-k`` (``none`` = the source's plain z-score) and put through the weekly factor test of that config;
printed per treatment: the daily test RankIC / IC and median per-date kurtosis against the training label (all names
and within CSI500 members), and the weekly factor test's RankIC, IC, score kurtosis and TOP-layer excess. Nothing is
written.

    python scripts/bench/signal_treatment.py outputs/train/adamw-all-s0-<key> --mad-k none,5,3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from quantsam.data.stage import run_data
from quantsam.factor_test import analyze
from quantsam.features.market import open_market
from quantsam.signals.combine import combine_equal_weight
from quantsam.signals.io import seed_averaged
from quantsam.signals.stage import test_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work_dir")
    ap.add_argument("--mad-k", default="none,5")
    a = ap.parse_args()
    w = Path(a.work_dir)
    cfg = OmegaConf.load(w / "config.yaml")
    market = open_market(run_data(cfg))
    panel = market.panel()
    preds = pd.read_parquet(w / "predictions.parquet")
    dates, codes, scores = seed_averaged(preds)
    rows, cols = panel.dates.get_indexer(dates), panel.codes.get_indexer(codes)
    label = market.label(cfg.features, cfg.universe)
    members = market.index_members_masks().get("csi500")
    models = list(cfg.signal.models)
    print(f"{w.name}: {len(dates)} test days, {len(codes)} names, models {models}")
    print(f"{'mad_k':>6} {'RankIC':>8} {'IC':>8} {'kurt':>6} {'RankIC500':>10} {'IC500':>8} | weekly: {'RankIC':>8} "
          f"{'IC':>8} {'kurt':>6} {'TOP exc':>8} {'s':>5}")
    for k in a.mad_k.split(","):
        t0 = time.perf_counter()
        mad_k = None if k == "none" else float(k)
        score, _ = combine_equal_weight(scores, models, mad_k)
        m = test_metrics({"score": score}, rows, cols, label)
        m5 = test_metrics({"score": np.where(members[rows][:, cols], score, np.nan)}, rows, cols, label) \
            if members is not None else {}
        dense = np.full(panel.traded.shape, np.nan)
        dense[np.ix_(rows, cols)] = score
        ft = analyze(dense, panel, market.tables().industry, cfg.factor_test, figures=False).summary
        print(f"{k:>6} {m['test/rank_ic_mean']:>8.4f} {m['test/ic_mean']:>8.4f} {m['test/kurtosis_median']:>6.1f} "
              f"{m5.get('test/rank_ic_mean', np.nan):>10.4f} {m5.get('test/ic_mean', np.nan):>8.4f} |         "
              f"{ft['rank_ic_mean']:>8.4f} {ft['ic_mean']:>8.4f} {ft['score_kurtosis_median']:>6.1f} "
              f"{100 * ft['top_excess_ann']:>7.2f}% {time.perf_counter() - t0:>5.0f}")


if __name__ == "__main__":
    main()
