"""Benchmark: where one real fit's time goes, in CPU seconds (issue 25, "measure before cutting").

Runs the real ``train.loop.fit_unit`` for one rolling window of a real-data experiment (default
``experiment=real_cpu``: all A-shares, the name cap per batch of that experiment) and attributes every CPU second of
the fit, exclusively (nested calls are subtracted from their caller), to:

- ``windows``: gathering/adjusting a date's raw K-line windows (``DailyWindows.raw`` / ``WeeklyWindows.raw``);
- ``normalise``: the cross-sectional normalisation (``features.kline.normalize_window``);
- ``fwd/bwd``: ``opt.step(closure)`` — forward, backward and the update (2 passes for SAM-family optimizers);
- ``validation``: the validation forward passes and the IC/RankIC over the validation dates (``loop.evaluate``);
- ``prediction``: the test block's predictions after the fit (``loop.predict_dates``);
- ``checkpoint``: the atomic per-epoch checkpoint (``train.checkpoint.save_atomic``);
- ``tracking``: per-epoch MLflow metrics into a throw-away SQLite store (as a training run logs them);
- ``other``: everything else (labels, batch sampling, tensor conversion, bookkeeping).

``--gru`` measures the GRU training step itself (issue 30): AdamW steps of ``--names`` x 30 days x 6 on one thread
with ``model.gru_impl=torch`` (``torch.nn.GRU``) and ``fused`` (models/fused_gru.py) alternated in one run, as ms per
step and GFLOP/s (the step's multiply-adds counted by hand: input projections, recurrences, their backward), and the
no-grad forward (validation, prediction) of both.

``--layout`` instead measures the CPU layout question: GRU steps of ``--names`` x 30 days x 6 per second with one
process on 2 threads, vs two processes side by side on 1 thread each (the joblib sweep's layout), in one run.

    python scripts/bench/real_fit.py                                   # window 0, daily, AdamW, 2 epochs
    python scripts/bench/real_fit.py --freq weekly --optimizer gsam --epochs 1
    python scripts/bench/real_fit.py --layout --names 500 --steps 40
    python scripts/bench/real_fit.py --gru --steps 40
    python scripts/bench/real_fit.py --override trainer.max_names_per_batch=500 --override trainer.cache_mb=0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class Profiler:
    """Exclusive wall and CPU seconds per category (a stack: a nested category's time leaves its caller's)."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list] = []

    def wrap(self, name: str, fn):
        def timed(*a, **k):
            w0, c0 = time.perf_counter(), time.process_time()
            self._stack.append([0.0, 0.0])
            try:
                return fn(*a, **k)
            finally:
                child_w, child_c = self._stack.pop()
                dw, dc = time.perf_counter() - w0, time.process_time() - c0
                self.wall[name] = self.wall.get(name, 0.0) + dw - child_w
                self.cpu[name] = self.cpu.get(name, 0.0) + dc - child_c
                self.calls[name] = self.calls.get(name, 0) + 1
                if self._stack:
                    self._stack[-1][0] += dw
                    self._stack[-1][1] += dc
        return timed


def profile_fit(args) -> dict:
    import torch

    import quantsam.features.windows as windows_mod
    import quantsam.train.loop as loop
    from quantsam.config import compose
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market
    from quantsam.tracking.mlflow_run import Tracker
    from quantsam.train import checkpoint
    from quantsam.train.stage import feature_set, fit_config, plan_training

    torch.set_num_threads(args.threads)
    overrides = [f"experiment={args.experiment}", f"optimizer={args.optimizer}", *args.override]
    cfg = compose(overrides)
    t0 = time.perf_counter()
    market = open_market(run_data(cfg))
    fs = feature_set(cfg, market)
    plan = plan_training(cfg, market, fs)
    setup_s = time.perf_counter() - t0
    split = plan.splits[args.window]
    fc = fit_config(cfg)
    fc.max_epochs, fc.patience = args.epochs, args.epochs + 1

    prof = Profiler()
    for w in fs.windows.values():
        w.raw = prof.wrap("windows", w.raw)
    windows_mod.normalize_window = prof.wrap("normalise", windows_mod.normalize_window)
    build_opt = loop.make_optimizer

    def opt_factory(model, fc_):
        opt = build_opt(model, fc_)
        opt.step = prof.wrap("fwd/bwd", opt.step)
        return opt

    loop.make_optimizer = opt_factory
    evaluate = loop.evaluate
    loop.evaluate = prof.wrap("validation", evaluate)
    subset: list[dict] = []
    if args.valid_subset:  # the same model also scored on a per-date name subset: kept out of the fit's seconds
        timed_eval = loop.evaluate

        def both(model, fs_, freq, dates, *a):
            w, c = time.perf_counter(), time.process_time()
            subset.append(evaluate(model, fs_, freq, dates, *a[:3], max_names=args.valid_subset))
            excluded[0] += time.perf_counter() - w
            excluded[1] += time.process_time() - c
            return timed_eval(model, fs_, freq, dates, *a)

        loop.evaluate = both
    excluded = [0.0, 0.0]
    predict = prof.wrap("prediction", loop.predict_dates)
    checkpoint.save_atomic = prof.wrap("checkpoint", checkpoint.save_atomic)
    with tempfile.TemporaryDirectory() as tmp:
        tcfg = cfg.tracking.copy()
        tcfg.uri, tcfg.artifact_root, tcfg.experiment = f"sqlite:///{tmp}/mlruns.db", f"{tmp}/art", "bench"
        tracker = Tracker(tcfg)
        with tracker.run("bench", {}, {}, None) as run_id:
            log_metrics = prof.wrap("tracking", tracker.log_metrics)
            n_names = [len(fs.names(int(t))) for t in split.train]
            w0, c0 = time.perf_counter(), time.process_time()
            fit = prof.wrap("fit", loop.fit_unit)
            res = fit(fs, split, args.freq, 0, fc, torch.device("cpu"), ckpt_path=Path(tmp) / "ck.pt",
                      on_epoch=lambda rec: log_metrics(run_id, {"valid/rank_ic": rec["valid_rank_ic"]},
                                                       step=rec["epoch"]))
            predict(res.model, fs, args.freq, split.test, torch.device("cpu"))
            wall, cpu = time.perf_counter() - w0 - excluded[0], time.process_time() - c0 - excluded[1]
    cats = ["windows", "normalise", "fwd/bwd", "validation", "prediction", "checkpoint", "tracking"]
    rows = {c: {"cpu_s": prof.cpu.get(c, 0.0), "wall_s": prof.wall.get(c, 0.0), "calls": prof.calls.get(c, 0)}
            for c in cats}
    rows["other"] = {"cpu_s": cpu - sum(r["cpu_s"] for r in rows.values()),
                     "wall_s": wall - sum(r["wall_s"] for r in rows.values()), "calls": 0}
    return {"experiment": args.experiment, "optimizer": args.optimizer, "freq": args.freq, "window": args.window,
            "epochs": len(res.history), "threads": args.threads, "setup_wall_s": setup_s,
            "train_dates": len(split.train), "valid_dates": len(split.valid), "test_dates": len(split.test),
            "names_per_date_median": float(np.median(n_names)), "max_names_per_batch": fc.max_names_per_batch,
            "valid_rank_ic": [h["valid_rank_ic"] for h in res.history],
            "valid_ic": [h["valid_ic"] for h in res.history],
            "valid_subset": args.valid_subset, "valid_rank_ic_subset": [m["rank_ic"] for m in subset],
            "total_cpu_s": cpu, "total_wall_s": wall, "rows": rows}


def print_fit(r: dict) -> None:
    print(f"{r['experiment']} window {r['window']} {r['freq']} {r['optimizer']}: {r['epochs']} epochs, "
          f"{r['train_dates']} train / {r['valid_dates']} valid / {r['test_dates']} test dates, median "
          f"{r['names_per_date_median']:.0f} eligible names per date, cap {r['max_names_per_batch']}, "
          f"{r['threads']} thread(s); setup (data, panel, labels) {r['setup_wall_s']:.1f} s wall")
    print(f"{'part':<12} {'CPU s':>9} {'share':>7} {'wall s':>9} {'calls':>7}")
    for k, v in r["rows"].items():
        print(f"{k:<12} {v['cpu_s']:>9.2f} {v['cpu_s'] / r['total_cpu_s']:>7.1%} {v['wall_s']:>9.2f} {v['calls']:>7}")
    fb = r["rows"]["fwd/bwd"]["cpu_s"]
    print(f"{'total':<12} {r['total_cpu_s']:>9.2f} {1:>7.0%} {r['total_wall_s']:>9.2f}")
    print(f"not forward/backward: {1 - fb / r['total_cpu_s']:.1%} of the fit's CPU seconds (goal <= 25%)")
    print("valid RankIC per epoch:", ", ".join(f"{x:.4f}" for x in r["valid_rank_ic"]))
    print("valid IC per epoch:    ", ", ".join(f"{x:.4f}" for x in r["valid_ic"]))
    if r["valid_subset"]:
        sub = r["valid_rank_ic_subset"]
        print(f"valid RankIC on {r['valid_subset']} names/date:", ", ".join(f"{x:.4f}" for x in sub))
        full = np.asarray(r["valid_rank_ic"])
        print(f"best epoch: all names {int(np.argmax(full))}, subset {int(np.argmax(sub))}; correlation of the "
              f"curves {np.corrcoef(full, sub)[0, 1]:.3f}, mean |difference| {np.mean(np.abs(full - sub)):.4f}")


def _steps(names: int, steps: int, threads: int, impl: str = "fused") -> dict:
    """Seconds for ``steps`` AdamW steps of the study's GRU on random ``[names, 30, 6]`` batches."""
    import torch

    from quantsam.models import GRUFactor
    from quantsam.optim import build_optimizer
    from quantsam.train.losses import ic_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GRUFactor(fused=impl == "fused")
    opt = build_optimizer("adamw", model.named_parameters(), lr=1e-3)
    x, y = torch.randn(names, 30, 6), torch.randn(names)

    def closure():
        opt.zero_grad()
        loss = ic_loss(model(x), y)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        opt.step(closure)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}


def gru_flops(names: int, length: int = 30, f: int = 6, h: int = 64, layers: int = 2) -> float:
    """Floating-point operations of one forward + backward: each matmul ``[m, k] x [k, n]`` counts ``2 m k n``; the
    forward's input projections and recurrences, the backward's twice that (input and weight gradients)."""
    fwd = 0.0
    for k in range(layers):
        fwd += 2 * names * length * (f if k == 0 else h) * 3 * h  # input projection of every step
        fwd += 2 * names * length * h * 3 * h  # the recurrence
    return 3 * fwd


def gru(args) -> None:
    import torch

    from quantsam.models import GRUFactor

    torch.set_num_threads(1)
    flops = gru_flops(args.names)
    res: dict[str, list[dict]] = {"torch": [], "fused": []}
    for _ in range(3):  # alternated, so a noisy neighbour hits both
        for impl in res:
            res[impl].append(_steps(args.names, args.steps, 1, impl))
    x = torch.randn(args.names, 30, 6)
    pred: dict[str, float] = {}
    for impl in res:
        m = GRUFactor(fused=impl == "fused")
        with torch.no_grad():
            for _ in range(3):
                m(x)
            w0 = time.perf_counter()
            for _ in range(args.steps):
                m(x)
            pred[impl] = (time.perf_counter() - w0) / args.steps
    print(f"GRU training step (AdamW, ic loss): {args.names} names x 30 days x 6, hidden 64, 2 layers, 1 thread, "
          f"{args.steps} steps x 3 alternated rounds; {flops / 1e9:.2f} GFLOP per step")
    best = {}
    for impl, rows in res.items():
        wall = min(r["wall_s"] for r in rows) / args.steps
        cpu = min(r["cpu_s"] for r in rows) / args.steps
        best[impl] = wall
        print(f"{impl:<6} {wall * 1e3:7.1f} ms/step wall  {cpu * 1e3:7.1f} ms CPU  {flops / wall / 1e9:6.1f} GFLOP/s   "
              f"no-grad forward {pred[impl] * 1e3:6.1f} ms")
    print(f"speed-up fused / torch.nn.GRU (training step): {best['torch'] / best['fused']:.2f}x")
    # what the hardware allows: the recurrence's own matmul alone, and the fused forward run without a graph
    from quantsam.models.fused_gru import fused_gru_last

    h, w = torch.randn(args.names, 64), torch.randn(192, 64)
    for _ in range(20):
        h @ w.t()
    w0 = time.perf_counter()
    for _ in range(500):
        h @ w.t()
    mm = (time.perf_counter() - w0) / 500
    m = GRUFactor()
    with torch.no_grad():
        for _ in range(3):
            fused_gru_last(x, m.gru)
        w0 = time.perf_counter()
        for _ in range(args.steps):
            fused_gru_last(x, m.gru)
        fused_ng = (time.perf_counter() - w0) / args.steps
    print(f"one [{args.names}, 64] x [64, 192] matmul alone: {mm * 1e6:.0f} us = {2 * args.names * 64 * 192 / mm / 1e9:.0f} "
          f"GFLOP/s (the step's {flops / 1e9:.2f} GFLOP at that rate: {flops / (2 * args.names * 64 * 192 / mm) * 1e3:.0f} ms)")
    print(f"the fused forward without a graph: {fused_ng * 1e3:.1f} ms vs nn.GRU's no-grad kernel "
          f"{pred['torch'] * 1e3:.1f} ms (so no-grad forwards use nn.GRU)")


def median(args) -> None:
    """The robust normalisation's medians over names: numpy's nanmedian vs the one-sort version (same bits)."""
    import warnings

    from quantsam.features.kline import nanmedian_names

    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(3200, 30, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.03] = np.nan
    out = {}
    for name, fn in (("np.nanmedian", lambda: np.nanmedian(x, axis=0, keepdims=True)), ("nanmedian_names",
                                                                                         lambda: nanmedian_names(x))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fn()
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                r = fn()
            out[name] = ((time.perf_counter() - w0) / args.steps, (time.process_time() - c0) / args.steps, r)
    for name, (w, c, _) in out.items():
        print(f"{name:<16} {w * 1e3:6.1f} ms wall {c * 1e3:6.1f} ms CPU per [3200, 30, 6] block")
    same = np.array_equal(out["np.nanmedian"][2], out["nanmedian_names"][2], equal_nan=True)
    print(f"ratio {out['np.nanmedian'][0] / out['nanmedian_names'][0]:.2f}x, identical: {same}")


def layout(args) -> None:
    one = _steps(args.names, args.steps, 2)
    cmd = [sys.executable, __file__, "--_worker", str(args.names), str(args.steps)]
    w0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    pair_wall = time.perf_counter() - w0
    r1 = args.steps / one["wall_s"]
    r2 = 2 * args.steps / max(o["wall_s"] for o in outs)
    print(f"GRU steps of {args.names} names x 30 days x 6 (AdamW), {args.steps} steps per process, {os.cpu_count()} "
          "cores")
    print(f"1 process x 2 threads : {r1:6.2f} steps/s  ({one['wall_s'] / args.steps * 1e3:.0f} ms/step, CPU "
          f"{one['cpu_s']:.1f} s for {one['wall_s']:.1f} s wall)")
    for k, o in enumerate(outs):
        print(f"process {k} x 1 thread : {args.steps / o['wall_s']:6.2f} steps/s  "
              f"({o['wall_s'] / args.steps * 1e3:.0f} ms/step, CPU {o['cpu_s']:.1f} s)")
    print(f"2 processes x 1 thread: {r2:6.2f} steps/s together ({pair_wall:.1f} s wall incl. start-up)")
    print(f"ratio (2 x 1 thread) / (1 x 2 threads): {r2 / r1:.2f}x")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--_worker":
        print(json.dumps(_steps(int(sys.argv[2]), int(sys.argv[3]), 1)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="real_cpu")
    ap.add_argument("--optimizer", default="adamw")
    ap.add_argument("--freq", default="daily", choices=["daily", "weekly"])
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--override", action="append", default=[], help="a Hydra override (repeatable)")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--valid-subset", type=int, default=0,
                    help="also score each epoch on this many names per validation date (trainer.valid_names)")
    ap.add_argument("--layout", action="store_true", help="measure 1 process x 2 threads vs 2 x 1 thread")
    ap.add_argument("--gru", action="store_true", help="the GRU step: torch.nn.GRU vs the fused GRU")
    ap.add_argument("--median", action="store_true", help="np.nanmedian vs features.kline.nanmedian_names")
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    if args.layout:
        layout(args)
        return
    if args.gru:
        gru(args)
        return
    if args.median:
        median(args)
        return
    r = profile_fit(args)
    print_fit(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
