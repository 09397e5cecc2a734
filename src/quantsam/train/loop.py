"""Training one unit (one rolling window x one frequency x one seed): the closure protocol for every optimizer, early
stopping on validation RankIC with the best weights restored, atomic per-epoch checkpoints for exact resume."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from quantsam.crosssection import ic_rows, rank_ic_rows
from quantsam.features.dataset import FeatureSet, Split
from quantsam.features.device_windows import DeviceFeatures
from quantsam.models import build_model
from quantsam.optim import build_optimizer, optimizer_kwargs
from quantsam.optim.closure import BatchClosure
from quantsam.train import checkpoint
from quantsam.train.losses import LOSSES, SAMPLE_LOSSES
from quantsam.train.runtime import unit_seed

log = logging.getLogger(__name__)


@dataclass
class FitConfig:
    """What :func:`fit_unit` needs from the trainer/model/optimizer config groups."""

    model: dict
    optimizer: dict
    max_epochs: int = 100
    patience: int = 10
    loss: str = "ic"
    max_names_per_batch: int | None = None
    shuffle_dates: bool = True
    grad_clip: float | None = None
    keep_trajectory: bool = False  # record the flattened weights after every epoch (loss-landscape PCA)
    precision: str = "fp32"  # fp32 | bf16 (autocast around forward passes)
    valid_names: int | None = None  # validate on at most this many names per date (a fixed random subset)


@dataclass
class UnitResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_rank_ic: float = float("nan")
    grad_evals: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU seconds in the fit (a paused or shared machine inflates only wall)
    trajectory: torch.Tensor | None = None  # [epochs, n_params] float32, when requested


def make_model(fc: FitConfig) -> torch.nn.Module:
    """The network of a fit (``fc.model``: the ``model`` config as a mapping)."""
    return build_model(SimpleNamespace(**fc.model))


def make_optimizer(model: torch.nn.Module, fc: FitConfig):
    """The fit's optimizer over ``model``'s parameters (``fc.optimizer``: the ``optimizer`` config as a mapping)."""
    return build_optimizer(fc.optimizer["name"], model.named_parameters(), grad_clip=fc.grad_clip,
                           **optimizer_kwargs(fc.optimizer))


def autocast_for(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """The forward passes' context: ``torch.autocast(bfloat16)`` for ``precision=bf16``, else nothing."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext


def _inputs(fs: FeatureSet, dev: DeviceFeatures | None, freq: str, t: int, device: torch.device):
    """(``[n, L, F]`` tensor on ``device``, names) from the device-resident path when given, else the host path."""
    if dev is not None:
        return dev.inputs(freq, t)
    x, names = fs.inputs(freq, t)
    return torch.from_numpy(x).to(device), names


#: names per forward pass when predicting: a whole A-share cross-section (~3,000-5,000 names) in one batch runs the
#: GRU 1.7x slower on one CPU thread than chunks of 512 (cache-bound; scripts/bench/real_fit.py); the rows of a GRU
#: are independent, so chunking changes no prediction beyond float rounding, and the fixed size keeps runs identical
PREDICT_CHUNK = 512


def name_subset(t: int, n: int, k: int | None) -> np.ndarray | None:
    """Positions of a fixed random subset of ``k`` of the ``n`` names of date ``t`` (the same for every epoch, seed
    and optimizer: it depends on the date only), or None for all."""
    if k is None or n <= k:
        return None
    return np.sort(np.random.default_rng([int(t), 0x5EED]).choice(n, k, replace=False))


@torch.no_grad()
def predict_dates(model: torch.nn.Module, fs: FeatureSet, freq: str, dates: np.ndarray,
                  device: torch.device, dev: DeviceFeatures | None = None, precision: str = "fp32",
                  max_names: int | None = None) -> np.ndarray:
    """``[len(dates), N]`` predictions (NaN for names not eligible on a date, or outside the date's
    :func:`name_subset` when ``max_names`` is given)."""
    model.eval()
    ac = autocast_for(device, precision)
    out = np.full((len(dates), len(fs.panel.codes)), np.nan, dtype=np.float64)
    for k, t in enumerate(dates):
        x, names = _inputs(fs, dev, freq, int(t), device)
        sub = name_subset(int(t), len(names), max_names)
        if sub is not None:
            x, names = x[torch.from_numpy(sub).to(x.device) if torch.is_tensor(x) else sub], names[sub]
        if len(names):
            with ac():
                p = torch.cat([model(x[i:i + PREDICT_CHUNK]) for i in range(0, len(names), PREDICT_CHUNK)])
            out[k, names] = p.double().cpu().numpy()
    model.train()
    return out


def evaluate(model: torch.nn.Module, fs: FeatureSet, freq: str, dates: np.ndarray, device: torch.device,
             dev: DeviceFeatures | None = None, precision: str = "fp32", max_names: int | None = None) -> dict:
    """Validation metrics: mean IC, mean RankIC and RankICIR (mean / std) over the dates (on at most ``max_names``
    names per date, :func:`name_subset`)."""
    pred = predict_dates(model, fs, freq, dates, device, dev, precision, max_names)
    lab = fs.label[dates]
    ics, rics = ic_rows(pred, lab), rank_ic_rows(pred, lab)
    rics_ok = rics[np.isfinite(rics)]
    sd = float(np.std(rics_ok, ddof=1)) if len(rics_ok) > 1 else float("nan")
    mean_ric = float(np.mean(rics_ok)) if len(rics_ok) else float("nan")
    return {"ic": float(np.nanmean(ics)) if np.isfinite(ics).any() else float("nan"), "rank_ic": mean_ric,
            "rank_icir": mean_ric / sd if sd and np.isfinite(sd) and sd > 0 else float("nan")}


def train_epoch(model: torch.nn.Module, opt, loss_fn, fs: FeatureSet, freq: str, dates: np.ndarray,
                max_names: int | None, rng: np.random.Generator, device: torch.device,
                dev: DeviceFeatures | None = None, precision: str = "fp32") -> list[float]:
    """One pass over ``dates`` (one date = one batch), calling ``opt.step(closure)``; returns the clean losses.
    With ``dev`` the batch is gathered on the device and only the row indices cross (the same rows either way)."""
    losses = []
    ac = autocast_for(device, precision)
    for t in dates:
        t = int(t)
        x, names = fs.inputs(freq, t) if dev is None else (None, fs.names(t))
        y = fs.label[t, names]
        rows = np.nonzero(np.isfinite(y))[0]
        if len(rows) < 3:
            continue
        if max_names and len(rows) > max_names:
            rows = np.sort(rng.choice(rows, max_names, replace=False))
        if dev is None:
            xb, yb = torch.from_numpy(x[rows]).to(device), torch.from_numpy(y[rows]).to(device)
        else:
            xb, yb = dev.batch(freq, t, rows)
        closure = BatchClosure(model, loss_fn, xb, yb, SAMPLE_LOSSES.get(loss_fn), autocast=ac)
        losses.append(float(opt.step(closure)))
    return losses


def fit_unit(fs: FeatureSet, split: Split, freq: str, seed: int, fc: FitConfig, device: torch.device,
             ckpt_path: Path | None = None, on_epoch: Callable[[dict], None] | None = None,
             progress=None, dev: DeviceFeatures | None = None) -> UnitResult:
    """Train one model on ``split.train``, early-stop on ``split.valid`` RankIC, return it with the best weights.

    Resumes from ``ckpt_path`` when it exists (model, optimizer incl. SAM-family buffers, early-stopping state,
    torch RNG); data order comes from a generator seeded by (seed, window, frequency, epoch), so it needs no state.
    """
    freq_id = ("daily", "weekly").index(freq) if freq in ("daily", "weekly") else 9
    torch.manual_seed(unit_seed(seed, split.index, freq_id))
    model = make_model(fc).to(device)
    opt = make_optimizer(model, fc)
    loss_fn = LOSSES[fc.loss]
    st = {"epoch": 0, "best_score": -np.inf, "best_epoch": -1, "best_state": None, "bad": 0, "history": [],
          "done": False, "seconds": 0.0, "cpu_seconds": 0.0}
    if ckpt_path is not None and Path(ckpt_path).exists():
        ck = checkpoint.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        st = ck["state"]
        torch.set_rng_state(ck["rng_cpu"])
        if device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"], device)
        log.info("resumed %s w%d s%d at epoch %d", freq, split.index, seed, st["epoch"])
    t_start = time.perf_counter()
    while not st["done"] and st["epoch"] < fc.max_epochs:
        epoch = st["epoch"]
        t0, c0 = time.perf_counter(), time.process_time()
        rng = np.random.default_rng([seed, split.index, freq_id, epoch])
        order = rng.permutation(split.train) if fc.shuffle_dates else split.train
        losses = train_epoch(model, opt, loss_fn, fs, freq, order, fc.max_names_per_batch, rng, device, dev,
                             fc.precision)
        metrics = evaluate(model, fs, freq, split.valid, device, dev, fc.precision, fc.valid_names)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "valid_ic": metrics["ic"], "valid_rank_ic": metrics["rank_ic"],
                  "valid_rank_icir": metrics["rank_icir"], "seconds": time.perf_counter() - t0,
                  "grad_evals": opt.grad_evals}
        score = metrics["rank_ic"] if np.isfinite(metrics["rank_ic"]) else -np.inf
        if score > st["best_score"]:
            st.update(best_score=score, best_epoch=epoch, bad=0,
                      best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            st["bad"] += 1
        st["history"].append(record)
        if fc.keep_trajectory:
            flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach().float().cpu().clone()
            st.setdefault("trajectory", []).append(flat)
        st["epoch"] = epoch + 1
        st["done"] = st["bad"] >= fc.patience
        st["seconds"] += time.perf_counter() - t0
        st["cpu_seconds"] = st.get("cpu_seconds", 0.0) + time.process_time() - c0
        if ckpt_path is not None:
            checkpoint.save_atomic({
                "model": model.state_dict(), "optimizer": opt.state_dict(), "state": st,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            }, ckpt_path)
        if on_epoch is not None:
            on_epoch(record)
        if progress is not None:
            progress.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.4f}", vric=f"{metrics['rank_ic']:.4f}")
    if st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
    log.debug("unit %s w%d s%d: %.1fs this session", freq, split.index, seed, time.perf_counter() - t_start)
    return UnitResult(model=model, history=st["history"], best_epoch=st["best_epoch"],
                      best_rank_ic=float(st["best_score"]), grad_evals=opt.grad_evals, seconds=st["seconds"],
                      cpu_seconds=st.get("cpu_seconds", 0.0),
                      trajectory=torch.stack(st["trajectory"]) if st.get("trajectory") else None)


def predictions_frame(pred: np.ndarray, fs: FeatureSet, dates: np.ndarray, model: str, seed: int) -> pd.DataFrame:
    """Tidy ``date, code, model, seed, score`` rows of the finite predictions."""
    ti, ni = np.nonzero(np.isfinite(pred))
    return pd.DataFrame({
        "date": fs.panel.dates[dates[ti]], "code": fs.panel.codes[ni], "model": model, "seed": seed,
        "score": pred[ti, ni],
    })
