"""Plan before you spend: the fits of a study, their gradient evaluations and an estimate of their wall time on this
machine, from a short calibration run on the study's own data (``python -m quantsam plan experiment=...``).

Per fit (one window x model x seed): ``steps = train dates per epoch`` (one date = one batch), ``grad evals = steps x
evaluations per step`` (AdamW 1, SAM family 2, GAM 4 — counted by the optimizer during the calibration, not assumed),
validation forward passes on the valid dates every epoch. The estimate multiplies the calibrated seconds per step
and per validation date by ``trainer.max_epochs`` — an upper bound: early stopping (``trainer.patience``) usually
ends fits sooner — and divides by the launcher's parallel jobs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import DictConfig

from quantsam.features.market import Market
from quantsam.models import build_model
from quantsam.optim import epoch_scale
from quantsam.train.loop import LOSSES, _AttrDict, _optimizer, evaluate, train_epoch
from quantsam.train.stage import _fit_config, feature_set, plan_training


@dataclass
class Calibration:
    optimizer: str
    seconds_per_step: float  # one training date (forward + backward(s) + step)
    evals_per_step: float
    seconds_per_valid_date: float


@dataclass
class PlanRow:
    optimizer: str
    fits: int
    steps: int  # training steps over all fits at max_epochs
    grad_evals: int
    hours: float  # one process, max_epochs (upper bound)


def calibrate(cfg: DictConfig, fs, split, optimizer_cfg: dict, n_dates: int = 6) -> Calibration:
    """Time ``n_dates`` training steps (after one warm-up step) and ``n_dates`` validation dates of the daily model
    on the first window, with ``optimizer_cfg``."""
    fc = replace(_fit_config(cfg), optimizer=optimizer_cfg)
    torch.manual_seed(0)
    model = build_model(_AttrDict(fc.model))
    opt = _optimizer(model, fc)
    freq = str(cfg.model.frequencies[0])
    dates = split.train[: n_dates + 1]
    rng = np.random.default_rng(0)
    device = torch.device("cpu")
    train_epoch(model, opt, LOSSES[fc.loss], fs, freq, dates[:1], fc.max_names_per_batch, rng, device)
    e0 = opt.grad_evals
    t0 = time.perf_counter()
    train_epoch(model, opt, LOSSES[fc.loss], fs, freq, dates[1:], fc.max_names_per_batch, rng, device)
    step = (time.perf_counter() - t0) / max(len(dates) - 1, 1)
    evals = (opt.grad_evals - e0) / max(len(dates) - 1, 1)
    t0 = time.perf_counter()
    evaluate(model, fs, freq, split.valid[:n_dates], device)
    valid = (time.perf_counter() - t0) / max(min(n_dates, len(split.valid)), 1)
    return Calibration(str(optimizer_cfg["name"]), step, evals, valid)


def study_plan(cfg: DictConfig, market: Market, optimizers: dict[str, dict], n_seeds_jobs: int = 1
               ) -> tuple[list[PlanRow], dict]:
    """One row per optimizer: fits, steps and grad evals at ``max_epochs``, and the estimated hours (one process).
    ``optimizers``: name -> optimizer config; ``n_seeds_jobs``: sweep jobs per optimizer (e.g. ``seed=0,1,2``)."""
    fs = feature_set(cfg, market)
    plan = plan_training(cfg, market, fs)
    epochs = int(cfg.trainer.max_epochs)
    steps_per_fit = [len(u.split.train) for u in plan.units]
    valid_per_fit = [len(u.split.valid) for u in plan.units]
    rows = []
    calibrate(cfg, fs, plan.units[0].split, next(iter(optimizers.values())))  # warm-up: builds the lazy windows
    for name, oc in optimizers.items():
        cal = calibrate(cfg, fs, plan.units[0].split, oc)
        ep = math.ceil(epochs * epoch_scale(oc))  # a compute-matched arm trains match_passes / passes x the epochs
        steps = ep * sum(steps_per_fit) * n_seeds_jobs
        secs = ep * n_seeds_jobs * (cal.seconds_per_step * sum(steps_per_fit)
                                    + cal.seconds_per_valid_date * sum(valid_per_fit))
        rows.append(PlanRow(name, len(plan.units) * n_seeds_jobs, steps, int(round(steps * cal.evals_per_step)),
                            secs / 3600.0))
    info = {"windows": len(plan.splits), "units_per_job": len(plan.units), "names": int(fs.panel.traded.shape[1]),
            "max_epochs": epochs}
    return rows, info
