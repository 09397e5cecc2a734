"""Benchmark: one fit at full cross-section on the GPU path — seconds per epoch for AdamW and GSAM in fp32 and bf16,
and fits per hour when k fits share one GPU.

A synthetic market of ``--names`` stocks (default 5,000, the A-share cross-section) is generated; the daily model
trains on ``--dates`` consecutive dates (default 300: one date = one batch of every eligible name, as the study's
``max_names_per_batch: null``) with the device-resident windows (``quantsam.features.device_windows``) and
validates on 50 dates every epoch, exactly as ``train.loop.fit_unit`` does. Printed per (optimizer, precision):
seconds per epoch (mean of ``--epochs`` after one warm-up epoch), the implied fit time at ``--fit-epochs`` epochs,
and the whole study (``--study-fits``, the source study's 672) in GPU-hours. ``--share 1,2,4`` then runs k worker
processes at once, each training GSAM for ``--epochs`` epochs, and prints fits/hour for each k (the throughput when
k fits share the GPU, e.g. ``hydra.launcher.ray.remote.num_gpus=1/k``).

    python scripts/bench/gpu_fit.py                      # on a CUDA machine
    python scripts/bench/gpu_fit.py --device cpu --names 300 --dates 8 --epochs 1 --share 1,2   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from quantsam.data.synthetic import generate_market
from quantsam.features.dataset import FeatureSet
from quantsam.features.device_windows import DeviceFeatures
from quantsam.features.panel import build_panel
from quantsam.models import GRUFactor
from quantsam.optim import build_optimizer
from quantsam.train.loop import evaluate, train_epoch
from quantsam.train.losses import ic_loss
from quantsam.train.runtime import configure_determinism

HP = {"adamw": {}, "gsam": {"rho": 0.05, "alpha": 0.1}}


def setup(names: int, dates: int, device: torch.device):
    # enough history for the 30-day window plus the training and validation dates
    days = dates + 50 + 120
    end = (np.datetime64("2020-01-01") + np.timedelta64(max(400, int(days * 1.5)), "D")).astype(str)
    market = generate_market(seed=0, n_stocks=names, start="2020-01-01", end=end)
    fs = FeatureSet(build_panel(market.daily), frequencies=("daily",), label_horizon=10)
    t0 = time.perf_counter()
    dev = DeviceFeatures(fs, device)
    first = fs.first_usable + 70  # names listed >= 63 days are eligible
    train = np.arange(first, first + dates)
    valid = np.arange(first + dates + 10, first + dates + 60)
    return fs, dev, train, valid, time.perf_counter() - t0


def time_fit(fs, dev, train, valid, device, name: str, precision: str, epochs: int) -> float:
    """Mean seconds per epoch (train + validation) after one warm-up epoch."""
    torch.manual_seed(0)
    model = GRUFactor().to(device)
    opt = build_optimizer(name, model.named_parameters(), lr=5e-3, **HP[name])
    rng = np.random.default_rng(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    secs = []
    for e in range(epochs + 1):
        sync()
        t0 = time.perf_counter()
        train_epoch(model, opt, ic_loss, fs, "daily", train, None, rng, device, dev, precision)
        evaluate(model, fs, "daily", valid, device, dev, precision)
        sync()
        if e > 0:
            secs.append(time.perf_counter() - t0)
    return float(np.mean(secs))


def worker(a) -> None:
    device = torch.device(a.device)
    fs, dev, train, valid, _ = setup(a.names, a.dates, device)
    t0 = time.perf_counter()
    s = time_fit(fs, dev, train, valid, device, "gsam", a.precision, a.epochs)
    print(json.dumps({"sec_per_epoch": s, "wall": time.perf_counter() - t0}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else None)
    ap.add_argument("--names", type=int, default=5000)
    ap.add_argument("--dates", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--fit-epochs", type=int, default=30, help="epochs of a typical fit (early stopping; max 100)")
    ap.add_argument("--study-fits", type=int, default=672)
    ap.add_argument("--share", default="1,2,4")
    ap.add_argument("--precision", default="fp32", help="precision of the --share workers")
    ap.add_argument("--deterministic", action="store_true", help="cudnn deterministic (default: cudnn.benchmark)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.device is None:  # `make bench` on a CPU machine: a full-size fit is hours here
        print("gpu_fit: no CUDA device — skipped (a smoke run on CPU: --device cpu --names 300 --dates 8 --epochs 1)")
        return
    device = torch.device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    configure_determinism(device, a.deterministic)
    if a.worker:
        worker(a)
        return
    fs, dev, train, valid, t_dev = setup(a.names, a.dates, device)
    n_names = int(np.mean([len(fs.names(int(t))) for t in train]))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{gpu}: {n_names} names per date, {len(train)} training dates + {len(valid)} validation dates per epoch; "
          f"device-resident bars built in {t_dev:.1f} s; cudnn {'deterministic' if a.deterministic else 'benchmark'}")
    print(f"{'optimizer':<8} {'precision':<9} {'s/epoch':>8} {'fit @' + str(a.fit_epochs) + ' ep (min)':>18} "
          f"{'study h':>12}")
    for name in HP:
        for precision in ("fp32", "bf16"):
            s = time_fit(fs, dev, train, valid, device, name, precision, a.epochs)
            fit_min = s * a.fit_epochs / 60
            print(f"{name:<8} {precision:<9} {s:>8.2f} {fit_min:>18.2f} {fit_min * a.study_fits / 60:>12.2f}")
    base = None
    for k in [int(v) for v in a.share.split(",") if v]:
        cmd = [sys.executable, __file__, "--worker", "--device", a.device, "--names", str(a.names), "--dates",
               str(a.dates), "--epochs", str(a.epochs), "--precision", a.precision]
        if a.deterministic:
            cmd.append("--deterministic")
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        per_epoch = max(o["sec_per_epoch"] for o in outs)  # the slowest of the k concurrent fits
        fits_h = k * 3600 / (per_epoch * a.fit_epochs)
        base = base or fits_h
        print(f"k={k} GSAM {a.precision} fits sharing the device: {per_epoch:.2f} s/epoch each -> {fits_h:.1f} "
              f"fits/hour ({fits_h / base:.2f}x k=1)")


if __name__ == "__main__":
    main()
