"""Plan before you spend: the fits of a study, their gradient evaluations and an estimate of their wall time on this
machine, from a short calibration run on the study's own data (``python -m quantsam plan experiment=...``).

Per fit (one window x model x seed): ``steps = train dates per epoch`` (one date = one batch), ``grad evals = steps x
evaluations per step`` (AdamW 1, SAM family 2, GAM 4 — counted by the optimizer during the calibration, not assumed),
validation forward passes on the valid dates every epoch, and one prediction of the test block.

Calibration (issue 25: a wall-clock step timed on a loaded machine made the estimate 35x too high): CPU seconds per
*sample* (one name in one batch) of a training step, of a validation forward pass and of a test prediction, timed
with the torch threads a job of this launch will really get (``trainer.num_threads``, else cores / (parallel jobs x
``trainer.workers``)) and measured with ``time.process_time`` (the CPU this process got, not the wall clock). Each
fit's seconds are its samples (the capped batch sizes of its dates) times those rates; epochs are the ones expected
under early stopping — the mean of this config's finished units when any exist, else ``min(max_epochs, patience +
2)`` — beside the ``max_epochs`` upper bound; the total is divided by the processes that run at once
(jobs x workers, at most the cores). The calibration used is printed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import DictConfig

from quantsam.features.market import Market
from quantsam.optim import epoch_scale
from quantsam.train.loop import LOSSES, evaluate, make_model, make_optimizer, predict_dates, train_epoch
from quantsam.train.runtime import usable_cores
from quantsam.train.stage import feature_set, fit_config, plan_training


@dataclass
class Calibration:
    optimizer: str
    cpu_per_sample: float  # CPU seconds per name in a training step (forward + backward(s) + update)
    evals_per_step: float
    cpu_per_valid_sample: float  # CPU seconds per name of a validation forward pass (incl. its windows)
    cpu_per_test_sample: float  # the same for the test block's prediction
    threads: int
    names_per_step: float


@dataclass
class PlanRow:
    optimizer: str
    fits: int
    steps: int  # training steps over all fits at max_epochs
    grad_evals: int
    hours: float  # CPU-hours at the expected epochs (one process)
    hours_max: float  # CPU-hours at max_epochs (upper bound)
    calibration: Calibration | None = None


def _cpu(fn) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def calibrate(cfg: DictConfig, fs, split, optimizer_cfg: dict, n_dates: int = 8, threads: int = 1) -> Calibration:
    """Time ``n_dates`` training steps (after one warm-up step), ``n_dates`` validation dates and ``n_dates`` test
    dates of the first model on the first window, with ``optimizer_cfg``, in CPU seconds per sample."""
    fc = replace(fit_config(cfg), optimizer=optimizer_cfg)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = make_model(fc)
    opt = make_optimizer(model, fc)
    freq = str(cfg.model.frequencies[0])
    dates = split.train[: n_dates + 1]
    rng = np.random.default_rng(0)
    device = torch.device("cpu")
    loss = LOSSES[fc.loss]
    train_epoch(model, opt, loss, fs, freq, dates[:1], fc.max_names_per_batch, rng, device)
    e0 = opt.grad_evals
    cpu = _cpu(lambda: train_epoch(model, opt, loss, fs, freq, dates[1:], fc.max_names_per_batch, rng, device))
    n_steps = max(len(dates) - 1, 1)
    names = float(np.mean([batch_names(fs, int(t), fc.max_names_per_batch) for t in dates[1:]]))
    evals = (opt.grad_evals - e0) / n_steps
    vd, td = split.valid[:n_dates], split.test[:n_dates]
    fs.clear_cache()  # time the windows as a fresh fit builds them
    v_cpu = _cpu(lambda: evaluate(model, fs, freq, vd, device, max_names=fc.valid_names))
    t_cpu = _cpu(lambda: predict_dates(model, fs, freq, td, device))
    v_n = sum(min(len(fs.names(int(t))), fc.valid_names or 10**9) for t in vd)
    t_n = sum(len(fs.names(int(t))) for t in td)
    return Calibration(str(optimizer_cfg["name"]), cpu / n_steps / max(names, 1.0), evals, v_cpu / max(v_n, 1),
                       t_cpu / max(t_n, 1), threads, names)


def batch_names(fs, t: int, cap: int | None) -> int:
    """Names in date ``t``'s training batch: the eligible names with a label, capped."""
    n = int(np.isfinite(fs.label[t, fs.names(t)]).sum())
    return min(n, cap) if cap else n


def expected_epochs(cfg: DictConfig, work) -> tuple[float, str]:
    """Epochs a fit is expected to run: the mean of this config's finished units (their history files), else
    ``min(max_epochs, patience + 2)`` (early stopping after a best epoch near the start)."""
    hist = sorted((work / "history").glob("*.json")) if (work / "history").exists() else []
    if hist:
        n = [len(json.loads(h.read_text())["history"]) for h in hist]
        return float(np.mean(n)), f"mean of {len(n)} finished units of this config"
    e = min(int(cfg.trainer.max_epochs), int(cfg.trainer.patience) + 2)
    return float(e), "min(max_epochs, patience + 2): no finished unit of this config yet"


def study_plan(cfg: DictConfig, market: Market, optimizers: dict[str, dict], n_seeds_jobs: int = 1,
               threads: int = 1) -> tuple[list[PlanRow], dict]:
    """One row per optimizer: fits, steps and grad evals at ``max_epochs``, and the estimated CPU-hours (expected
    epochs, and at ``max_epochs``). ``optimizers``: name -> optimizer config; ``n_seeds_jobs``: sweep jobs per
    optimizer (e.g. ``seed=0,1,2``); ``threads``: torch threads of one training process of this launch."""
    fs = feature_set(cfg, market)
    plan = plan_training(cfg, market, fs)
    fc = fit_config(cfg)
    epochs = int(cfg.trainer.max_epochs)
    train_samples = sum(batch_names(fs, int(t), fc.max_names_per_batch) for u in plan.units for t in u.split.train)
    valid_samples = sum(min(len(fs.names(int(t))), fc.valid_names or 10**9) for u in plan.units for t in u.split.valid)
    test_samples = sum(len(fs.names(int(t))) for u in plan.units for t in u.split.test)
    steps_per_fit = [len(u.split.train) for u in plan.units]
    exp_epochs, basis = expected_epochs(cfg, plan.work)
    rows = []
    calibrate(cfg, fs, plan.units[0].split, next(iter(optimizers.values())), 2, threads)  # warm-up
    for name, oc in optimizers.items():
        cal = calibrate(cfg, fs, plan.units[0].split, oc, threads=threads)
        scale = epoch_scale(oc)  # a compute-matched arm trains match_passes / passes x the epochs
        ep_max = math.ceil(epochs * scale)
        ep = min(exp_epochs * scale, ep_max)
        per_epoch = cal.cpu_per_sample * train_samples + cal.cpu_per_valid_sample * valid_samples
        test = cal.cpu_per_test_sample * test_samples
        steps = ep_max * sum(steps_per_fit) * n_seeds_jobs
        rows.append(PlanRow(name, len(plan.units) * n_seeds_jobs, steps, int(round(steps * cal.evals_per_step)),
                            n_seeds_jobs * (ep * per_epoch + test) / 3600.0,
                            n_seeds_jobs * (ep_max * per_epoch + test) / 3600.0, cal))
    info = {"windows": len(plan.splits), "units_per_job": len(plan.units), "names": int(fs.panel.traded.shape[1]),
            "max_epochs": epochs, "expected_epochs": exp_epochs, "epochs_basis": basis, "threads": threads,
            "cores": usable_cores()}
    return rows, info
