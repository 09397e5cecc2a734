"""Benchmark: optimizer step time on the study's GRU (6 -> 64, 2 layers, 30 steps) with a one-day cross-section batch.

Prints, per variant, the **measured** gradient evaluations per step (closure calls counted by the optimizer; ESAM's
are partial: frozen tensors in the first, a gamma share of the names in the second) and extra graph-free forwards
per step (ESAM's selection, MESA's teacher), the mean step time, its ratio to AdamW, and that ratio divided by the
measured evaluations per step (1.00 per pass = no optimizer overhead). LookSAM and RST alternate cheap and full
steps, so each variant's time is the mean over all timed steps (a multiple of LookSAM's k). All variants are timed
in one run, interleaved round-robin, so machine noise hits them alike.

    python scripts/bench/optim_overhead.py [--batch 3000] [--rounds 20] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from quantsam.models import GRUFactor
from quantsam.optim import build_optimizer, list_optimizers
from quantsam.optim.closure import BatchClosure
from quantsam.train.losses import ic_loss, ic_sample_losses

# the study's configs (conf/optimizer/*.yaml); the class defaults elsewhere
HP = {"sam": {"rho": 0.05}, "asam": {"rho": 0.5, "eta": 0.01}, "gsam": {"rho": 0.05, "alpha": 0.1},
      "gam": {}, "fsam": {"rho": 0.05}, "wsam": {"rho": 0.05, "gamma": 0.9}, "looksam": {"k": 5},
      "esam": {"seed": 0}, "mesa": {"ema_decay": 0.99, "start_step": 0}, "rst": {"p": 0.5, "seed": 0},
      "csam": {"rho": 0.5, "adaptive": True, "alpha": 0.1, "sigma": 1.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 30, 6, device=dev)
    y = torch.randn(a.batch, device=dev)
    setups = {}
    for name in list_optimizers():
        model = GRUFactor().to(dev)
        opt = build_optimizer(name, model.named_parameters(), lr=1e-3, **HP.get(name, {}))
        setups[name] = (opt, BatchClosure(model, ic_loss, x, y, ic_sample_losses))
    times = {n: [] for n in setups}
    counts = {}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for r in range(a.rounds + 1):
        for name, (opt, closure) in setups.items():
            if r == 1:  # round 0 is warm-up
                counts[name] = (opt.grad_evals, opt.forward_evals, opt.steps)
            sync()
            t0 = time.perf_counter()
            opt.step(closure)
            sync()
            if r > 0:
                times[name].append(time.perf_counter() - t0)
    base = statistics.fmean(times["adamw"])
    print(f"device {dev}, batch {a.batch} x 30 x 6, GRU 64x2, {a.rounds} timed steps each (mean)")
    print(f"{'optimizer':<9} {'evals/step':>10} {'fwd/step':>9} {'ms/step':>9} {'x AdamW':>8} {'per eval':>9}")
    for name, ts in times.items():
        opt = setups[name][0]
        g0, f0, s0 = counts[name]
        steps = opt.steps - s0
        evals, fwd = (opt.grad_evals - g0) / steps, (opt.forward_evals - f0) / steps
        mean = statistics.fmean(ts)
        print(f"{name:<9} {evals:>10.2f} {fwd:>9.2f} {mean * 1e3:>9.1f} {mean / base:>8.2f} {mean / base / evals:>9.3f}")


if __name__ == "__main__":
    main()
