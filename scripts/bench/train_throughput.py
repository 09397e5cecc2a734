"""Benchmark: training throughput of the real loop (lazy windows -> normalised batches -> ``opt.step(closure)``)
divided by a bare PyTorch loop (torch AdamW, zero_grad/backward/step) over the same pre-built tensors.

One epoch over the first rolling window's training dates of the default synthetic market (daily model, the whole
cross-section per batch). The loop's first epoch builds every batch lazily ("cold"); later epochs hit the batch cache
("warm"). Then samples/s of each SAM variant through the same loop (warm). Goal: warm ratio >= 0.9.

    python scripts/bench/train_throughput.py [--dates 40] [--variant-dates 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from quantsam.config import compose
from quantsam.data.stage import run_data
from quantsam.features.dataset import FeatureSet, eligible_mask, rolling_splits
from quantsam.features.market import open_market
from quantsam.models import GRUFactor
from quantsam.optim import build_optimizer, list_optimizers
from quantsam.train.loop import train_epoch
from quantsam.train.losses import ic_loss
from quantsam.train.runtime import set_threads

HP = {"sam": {"rho": 0.05}, "asam": {"rho": 0.5, "eta": 0.01}, "gsam": {"rho": 0.05, "alpha": 0.1},
      "gam": {}, "fsam": {"rho": 0.05}, "wsam": {"rho": 0.05, "gamma": 0.9}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dates", type=int, default=40, help="training dates in the AdamW comparison")
    ap.add_argument("--variant-dates", type=int, default=12, help="training dates per SAM variant")
    a = ap.parse_args()
    threads = set_threads(None)
    cfg = compose(["experiment=demo"])
    panel = open_market(run_data(cfg)).panel()
    fs = FeatureSet(panel, eligible=eligible_mask(panel), frequencies=("daily",), cache_mb=4096)
    split = rolling_splits(panel.dates, fs.first_usable, 504, 252, 126, 10, 5, "2017-01-01", max_windows=1)[0]
    dates = split.train[: a.dates]
    dev = torch.device("cpu")

    def run_loop(name, ds, hp):
        torch.manual_seed(0)
        model = GRUFactor()
        opt = build_optimizer(name, model.named_parameters(), lr=1e-3, **hp)
        t0 = time.perf_counter()
        train_epoch(model, opt, ic_loss, fs, "daily", ds, None, np.random.default_rng(0), dev)
        return time.perf_counter() - t0

    n_samples = sum(int(np.isfinite(fs.label[t, fs.names(t)]).sum()) for t in dates)
    cold = run_loop("adamw", dates, {})
    warm = run_loop("adamw", dates, {})
    batches = []
    for t in dates:
        x, names = fs.inputs("daily", int(t))
        y = fs.label[t, names]
        ok = np.isfinite(y)
        batches.append((torch.from_numpy(x[ok]), torch.from_numpy(y[ok])))
    torch.manual_seed(0)
    model = GRUFactor()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for xb, yb in batches:
        opt.zero_grad()
        ic_loss(model(xb), yb).backward()
        opt.step()
    bare = time.perf_counter() - t0
    print(f"{len(dates)} one-day batches, {n_samples:,} samples, daily GRU 64x2, CPU threads {threads}")
    print(f"bare PyTorch loop (pre-built tensors): {n_samples / bare:,.0f} samples/s")
    print(f"quantsam loop, AdamW, cold (builds batches): {n_samples / cold:,.0f} samples/s  ratio {bare / cold:.2f}")
    print(f"quantsam loop, AdamW, warm (batch cache):    {n_samples / warm:,.0f} samples/s  ratio {bare / warm:.2f}")
    vd = dates[: a.variant_dates]
    nv = sum(int(np.isfinite(fs.label[t, fs.names(t)]).sum()) for t in vd)
    print(f"per variant, {len(vd)} batches, warm:")
    for name in list_optimizers():
        s = run_loop(name, vd, HP.get(name, {}))
        print(f"  {name:<6} {nv / s:>9,.0f} samples/s")


if __name__ == "__main__":
    main()
