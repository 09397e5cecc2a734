"""Benchmark: optimizer step time on the study's GRU (6 -> 64, 2 layers, 30 steps) with a one-day cross-section batch.

Prints, per variant, the median step time, its ratio to AdamW, and that ratio divided by the variant's pass count
(the physical floor is the pass count: 2x for the SAM family, 4x for GAM; 1.00 per pass = no optimizer overhead).
All variants are timed in one run, interleaved round-robin, so machine noise hits them alike.

    python scripts/bench/optim_overhead.py [--batch 3000] [--rounds 7] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from quantsam.models import GRUFactor
from quantsam.optim import build_optimizer, list_optimizers, optimizer_class
from quantsam.train.losses import ic_loss

HP = {"sam": {"rho": 0.05}, "asam": {"rho": 0.5, "eta": 0.01}, "gsam": {"rho": 0.05, "alpha": 0.1},
      "gam": {}, "fsam": {"rho": 0.05}, "wsam": {"rho": 0.05, "gamma": 0.9}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=7)
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

        def closure(model=model, opt=opt):
            opt.zero_grad()
            loss = ic_loss(model(x), y)
            loss.backward()
            return loss

        setups[name] = (opt, closure)
    times = {n: [] for n in setups}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for r in range(a.rounds + 1):
        for name, (opt, closure) in setups.items():
            sync()
            t0 = time.perf_counter()
            opt.step(closure)
            sync()
            if r > 0:  # round 0 is warm-up
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["adamw"])
    print(f"device {dev}, batch {a.batch} x 30 x 6, GRU 64x2, {a.rounds} timed steps each (median)")
    print(f"{'optimizer':<9} {'passes':>6} {'ms/step':>9} {'x AdamW':>8} {'per pass':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        passes = optimizer_class(name).passes
        print(f"{name:<9} {passes:>6} {med * 1e3:>9.1f} {med / base:>8.2f} {med / base / passes:>9.3f}")


if __name__ == "__main__":
    main()
