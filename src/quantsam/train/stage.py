"""The training stage: dual GRUs over rolling windows and seeds -> ``predictions.parquet``, one MLflow run.

``run_train(cfg, market)`` takes the market from the data stage and runs three named steps:

1. :func:`plan_training` — the stage key (the trainer/model/optimizer/features/universe/signal config that changes
   numbers, the data fingerprint, the code version), the work directory ``<paths.runs>/train/<run name>-<key>/``,
   the rolling splits and the units (window x model x seed index) this job trains;
2. :func:`train_units` — each unit is done when its manifest (``units/<tag>.json``) says so; otherwise it is
   trained (resuming from its atomic epoch checkpoint) and its prediction, weights and history are written, then the
   manifest. A unit is trained under a file lock, so parallel jobs never train the same unit twice;
3. :func:`assemble` — the predictions of every unit, in a fixed order, into ``predictions.parquet``; the work
   directory's ``manifest.json`` is written last.

``trainer.windows`` / ``trainer.models`` / ``trainer.seeds`` make a job train only those units (one fit = one job,
for a cluster) and stop before step 3; a later run of the full config finds them done and only assembles. The result
is the same, bit for bit on the CPU, as one monolithic run: a unit's numbers depend only on the config, the data and
its (window, model, seed) — never on the job that trained it.

Layout::

    units/w00-daily-s0.json            unit manifest (written last)
    predictions/w00-daily-s0.parquet   date, code, model, seed, score, window
    models/w00-daily-s0.pt             best weights (state_dict)
    history/w00-daily-s0.json          per-epoch train loss / validation IC, grad evals, seconds, split
    checkpoints/w00-daily-s0.pt        epoch checkpoint of a unit in progress (removed when it is done)
    trajectory/w00-daily-s0.pt         per-epoch weights (loss landscapes; trainer.save_trajectory)
    predictions.parquet  splits.json  config.yaml  metrics.json  manifest.json
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from quantsam import progress, stageio
from quantsam.errors import ConfigError
from quantsam.features.dataset import FeatureSet, Split, rolling_splits
from quantsam.features.device_windows import DeviceFeatures
from quantsam.features.market import Market
from quantsam.optim import arm_name, epoch_scale, optimizer_class
from quantsam.tracking.hydra_callback import job_context, parent_run_id
from quantsam.tracking.mlflow_run import Tracker, git_info, package_versions, run_params
from quantsam.tracking.stage_run import relog, relogged_run, reuse_finished
from quantsam.train import checkpoint
from quantsam.train.key import train_key
from quantsam.train.loop import FitConfig, fit_unit, predict_dates, predictions_frame
from quantsam.train.runtime import configure_determinism, pick_device, set_threads, usable_cores

log = logging.getLogger(__name__)

@dataclass
class Unit:
    split: Split
    freq: str
    k: int  # seed index

    @property
    def tag(self) -> str:
        return f"w{self.split.index:02d}-{self.freq}-s{self.k}"


@dataclass
class TrainPlan:
    key: str
    name: str
    work: Path
    splits: list[Split]
    units: list[Unit]  # what this job trains, in the canonical order
    complete: bool  # the job covers every unit of the config (then it assembles)
    selection: str  # "all" or e.g. "w03" / "w03-daily" / "w03-daily-s1"
    data_dir: Path | None = None  # the market (spawned workers reopen it)
    data_fingerprint: str = ""


@dataclass
class TrainOutputs:
    work_dir: Path
    predictions: Path | None  # None for a job that trains a subset of units
    run_id: str | None
    metrics: dict = field(default_factory=dict)
    skipped: bool = False
    complete: bool = True


def train_universe(cfg: DictConfig) -> str:
    """The universe the models are trained on: the index with ``universe.train_on_members``, else all A-shares."""
    return str(cfg.universe.name) if cfg.universe.get("train_on_members") else "all"


def run_name(cfg: DictConfig) -> str:
    return f"{arm_name(cfg.optimizer)}-{train_universe(cfg)}-s{cfg.seed}"


def work_dir(cfg: DictConfig, data_fingerprint: str) -> Path:
    """Where this config's training lives (a function of the stage key)."""
    return Path(cfg.paths.runs) / "train" / f"{run_name(cfg)}-{train_key(cfg, data_fingerprint)}"


# ---- step 1: plan ---------------------------------------------------------------------------------------------------
def feature_set(cfg: DictConfig, market: Market) -> FeatureSet:
    """The training inputs and labels of ``market`` for this config (eligible names, lazy windows)."""
    panel = market.panel()
    fs = FeatureSet(panel, int(cfg.features.daily_window), int(cfg.features.weekly_window),
                    int(cfg.features.label_horizon), str(cfg.features.label_price), market.eligible(cfg.universe),
                    tuple(cfg.model.frequencies), cache_mb=float(cfg.trainer.cache_mb),
                    label=market.label(cfg.features, cfg.universe),
                    normalize=str(cfg.features.normalize))
    if fs.first_usable >= len(panel.dates) - int(cfg.features.label_horizon) - 2:
        raise ConfigError([f"features.daily_window={cfg.features.daily_window} / features.weekly_window="
                           f"{cfg.features.weekly_window}: the first full window ends on date {fs.first_usable} of "
                           f"{len(panel.dates)} in the data ({panel.dates[0].date()} .. {panel.dates[-1].date()}). "
                           "Fix: shorter windows or a longer data range (data.start / data.end)"])
    return fs


def plan_training(cfg: DictConfig, market: Market, fs: FeatureSet) -> TrainPlan:
    tr = cfg.trainer
    splits = rolling_splits(fs.panel.dates, fs.first_usable, int(tr.train_days), int(tr.valid_days),
                            int(tr.test_days), int(tr.purge_days), int(tr.sample_every), str(tr.test_start),
                            None if tr.test_end is None else str(tr.test_end),
                            None if tr.max_windows is None else int(tr.max_windows), int(cfg.features.label_horizon))
    freqs = list(cfg.model.frequencies)
    every = [Unit(s, f, k) for s in splits for f in freqs for k in range(int(tr.n_seeds))]
    want_w = None if tr.windows is None else set(int(w) for w in tr.windows)
    want_m = None if tr.models is None else set(tr.models)
    want_s = None if tr.seeds is None else set(int(k) for k in tr.seeds)
    if want_w is not None and not want_w <= {s.index for s in splits}:
        raise ConfigError([f"trainer.windows={sorted(want_w)}: this config has windows 0..{len(splits) - 1} "
                           f"({splits[0].describe(fs.panel.dates)['test'][0]} .. "
                           f"{splits[-1].describe(fs.panel.dates)['test'][1]}). Fix: pick from those"])
    units = [u for u in every if (want_w is None or u.split.index in want_w) and (want_m is None or u.freq in want_m)
             and (want_s is None or u.k in want_s)]
    parts = [f"w{'+'.join(f'{w:02d}' for w in sorted(want_w))}" if want_w is not None else "",
             "+".join(sorted(want_m)) if want_m is not None else "",
             f"s{'+'.join(str(k) for k in sorted(want_s))}" if want_s is not None else ""]
    selection = "-".join(p for p in parts if p) or "all"
    key = train_key(cfg, market.fingerprint)
    return TrainPlan(key, run_name(cfg), work_dir(cfg, market.fingerprint), splits, units,
                     complete=len(units) == len(every), selection=selection, data_dir=market.dir,
                     data_fingerprint=market.fingerprint)


# ---- step 2: units --------------------------------------------------------------------------------------------------
def fit_config(cfg: DictConfig) -> FitConfig:
    """The typed settings of one fit, converted once from the composed config (the loop never sees the config)."""
    tr = cfg.trainer
    # compute-matched arm (optimizer.match_passes): the budget of a k-pass optimizer = epochs and patience x k / own
    scale = epoch_scale(cfg.optimizer)
    return FitConfig(model=OmegaConf.to_container(cfg.model, resolve=True),
                     optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
                     max_epochs=math.ceil(int(tr.max_epochs) * scale), patience=math.ceil(int(tr.patience) * scale),
                     loss=str(tr.loss),
                     max_names_per_batch=None if tr.max_names_per_batch is None else int(tr.max_names_per_batch),
                     shuffle_dates=bool(tr.shuffle_dates), precision=str(tr.precision),
                     valid_names=None if tr.valid_names is None else int(tr.valid_names),
                     grad_clip=None if tr.grad_clip is None else float(tr.grad_clip))


#: the project's modules a training's numbers depend on (a change warns on a cache hit: stageio.is_done)
TRAIN_CODE = ("train", "features", "optim", "models", "crosssection")


def _unit_key(plan: TrainPlan, u: Unit) -> str:
    return stageio.digest({"train": plan.key, "unit": u.tag})


def unit_done(plan: TrainPlan, u: Unit) -> bool:
    return stageio.is_done(plan.work / "units" / f"{u.tag}.json", _unit_key(plan, u),
                           code=stageio.code_version(*TRAIN_CODE))


def unit_history(plan: TrainPlan, u: Unit) -> dict:
    return json.loads((plan.work / "history" / f"{u.tag}.json").read_text())


def _train_unit(cfg: DictConfig, plan: TrainPlan, fs: FeatureSet, u: Unit, fc: FitConfig, device: torch.device,
                on_epoch, bar, dev: DeviceFeatures | None = None) -> dict:
    """Train one unit (resuming from its checkpoint) and write its outputs; returns (outputs, history) — the caller's
    ritual writes the manifest (:func:`train_unit_cached`)."""
    w = plan.work
    seed = int(cfg.seed) * 1000 + u.k
    save_traj = str(cfg.trainer.save_trajectory)
    keep = save_traj == "all" or (save_traj == "first" and u.split.index == 0 and u.k == 0)
    ckpt = w / "checkpoints" / f"{u.tag}.pt"
    if cfg.trainer.checkpoint:
        checkpoint.load_or_set_aside(ckpt)  # a damaged checkpoint (truncated, foreign) is set aside: train afresh
    res = fit_unit(fs, u.split, u.freq, seed, replace(fc, keep_trajectory=keep), device,
                   ckpt_path=ckpt if cfg.trainer.checkpoint else None, on_epoch=on_epoch, progress=bar, dev=dev)
    c_pred = time.process_time()
    pred = predict_dates(res.model, fs, u.freq, u.split.test, device, dev, fc.precision)
    df = predictions_frame(pred, fs, u.split.test, u.freq, u.k)
    df["window"] = u.split.index
    outputs = {"predictions": w / "predictions" / f"{u.tag}.parquet", "model": w / "models" / f"{u.tag}.pt",
               "history": w / "history" / f"{u.tag}.json"}
    stageio.atomic_write_parquet(df, outputs["predictions"])
    checkpoint.save_atomic(res.model.state_dict(), outputs["model"])
    if res.trajectory is not None:
        outputs["trajectory"] = w / "trajectory" / f"{u.tag}.pt"
        checkpoint.save_atomic(res.trajectory, outputs["trajectory"])
    t_pred = time.process_time() - c_pred
    hist = {"history": res.history, "best_epoch": res.best_epoch, "best_valid_rank_ic": res.best_rank_ic,
            "grad_evals": res.grad_evals, "seconds": res.seconds, "device": str(device),
            "cpu_seconds": res.cpu_seconds, "predict_cpu_seconds": t_pred,
            **u.split.describe(fs.panel.dates)}
    stageio.atomic_write_json(outputs["history"], hist)
    return outputs, hist


def train_unit_cached(cfg: DictConfig, plan: TrainPlan, fs: FeatureSet, u: Unit, fc: FitConfig, device, on_epoch,
                      bar, dev: DeviceFeatures | None = None, wait: bool = True, before=None) -> stageio.InPlace:
    """One unit through the in-place ritual (:func:`quantsam.stageio.run_in_place`): under its lock, done when its
    manifest (``units/<tag>.json``) records the unit's key; else ``before()`` (e.g. re-log a checkpoint's epochs),
    train — resuming from its checkpoint — and write the manifest last; the checkpoint goes once it is."""
    def compute():
        if before is not None:
            before()
        return _train_unit(cfg, plan, fs, u, fc, device, on_epoch, bar, dev)

    res = stageio.run_in_place("train_unit", _unit_key(plan, u), compute, lock=plan.work / "units" / u.tag,
                               manifest=plan.work / "units" / f"{u.tag}.json", code=stageio.code_version(*TRAIN_CODE),
                               wait=wait, clean=tuple(plan.work / d for d in ("predictions", "models", "history",
                                                                                "trajectory", "checkpoints")))
    if res.status == "computed":
        (plan.work / "checkpoints" / f"{u.tag}.pt").unlink(missing_ok=True)
    return res


def _epoch_metrics(freq: str, rec: dict) -> dict[str, float]:
    return {f"{freq}/train/loss": rec["train_loss"], f"{freq}/valid/ic": rec["valid_ic"],
            f"{freq}/valid/rank_ic": rec["valid_rank_ic"], f"{freq}/valid/rank_icir": rec["valid_rank_icir"]}


def _device_setup(cfg: DictConfig, fs: FeatureSet, threads: int):
    tr = cfg.trainer
    torch.set_num_threads(threads)
    device = pick_device(str(tr.device))
    configure_determinism(device, bool(tr.deterministic))
    on_device = tr.device_data
    dev = None
    if on_device is True or (on_device == "auto" and device.type == "cuda"):
        t0 = time.perf_counter()
        dev = DeviceFeatures(fs, device)
        log.info("device-resident bars on %s (%.1f s)", device, time.perf_counter() - t0)
    return device, dev


def _threads(cfg: DictConfig) -> int:
    """torch threads of one training process: ``trainer.num_threads``, else cores / (parallel jobs x workers)."""
    tr = cfg.trainer
    workers = int(tr.workers)
    if tr.num_threads is not None:
        return int(tr.num_threads)
    return max(1, usable_cores() // max(1, job_context().n_jobs * workers))


def train_units(cfg: DictConfig, plan: TrainPlan, fs: FeatureSet, tracker: Tracker, run_id: str | None) -> dict:
    """Train (or find done) every unit of the plan; log each unit's epochs at steps that count epochs per model
    across windows and seeds in the canonical order. Returns totals (grad evals, training seconds).

    With ``trainer.workers=k > 1`` this process and k - 1 spawned ones share the units: each takes the next unit
    nobody holds (its file lock), so the units spread over the workers whatever they cost; every unit's epochs are
    then logged from its history file, in the canonical order (the same steps as a one-worker run)."""
    tr = cfg.trainer
    threads = _threads(cfg)
    set_threads(threads)
    if int(tr.workers) > 1 and sum(not unit_done(plan, u) for u in plan.units) > 1:
        return _train_units_shared(cfg, plan, fs, tracker, run_id, threads)
    device, dev = _device_setup(cfg, fs, threads)
    tracker.set_tags(run_id, {"device": str(device), "torch_threads": str(threads), "device_data": str(dev is not None),
                              "precision": str(tr.precision)})
    fc = fit_config(cfg)
    step = {f: 0 for f in cfg.model.frequencies}
    totals = {"grad_evals": 0, "seconds": 0.0}
    bar = _progress(cfg, len(plan.units), f"{plan.name} windows x models x seeds")
    for u in plan.units:
        ck = plan.work / "checkpoints" / f"{u.tag}.pt"

        def resumed(u=u, ck=ck):  # resumed: log the epochs the checkpoint already holds
            ckpt = checkpoint.load_or_set_aside(ck) if cfg.trainer.checkpoint else None
            if ckpt is not None:
                _relog(tracker, run_id, step, u.freq, ckpt["state"]["history"])

        def on_epoch(rec, freq=u.freq):
            tracker.log_metrics(run_id, _epoch_metrics(freq, rec), step=step[freq])
            step[freq] += 1

        res = train_unit_cached(cfg, plan, fs, u, fc, device, on_epoch, bar, dev, before=resumed)
        if res.status == "computed":
            hist = res.result
        else:
            hist = unit_history(plan, u)
            _relog(tracker, run_id, step, u.freq, hist["history"])
        totals["grad_evals"] += hist["grad_evals"]
        totals["seconds"] += hist["seconds"]
        bar.update(1)
    bar.close()
    return totals


def claim_units(cfg: DictConfig, plan: TrainPlan, fs: FeatureSet, threads: int, wait: bool,
                label: str = "worker 0") -> int:
    """Train every unit of ``plan`` that is not done and that no other process holds, in the canonical order;
    with ``wait`` keep polling until every unit is done (units held by others finish there). Returns the count."""
    device, dev = _device_setup(cfg, fs, threads)
    fc = fit_config(cfg)
    pending = [u for u in plan.units if not unit_done(plan, u)]
    trained = 0
    while pending:
        for u in list(pending):
            t0 = time.perf_counter()
            res = train_unit_cached(cfg, plan, fs, u, fc, device, None, None, dev, wait=False)
            if res.status == "busy":
                continue  # another worker trains it
            if res.status == "computed":
                hist = res.result
                trained += 1
                log.info("%s %s: %s, %d epochs (best %d, valid RankIC %.4f), %.0f s", plan.name, label, u.tag,
                         len(hist["history"]), hist["best_epoch"], hist["best_valid_rank_ic"],
                         time.perf_counter() - t0)
            pending.remove(u)
        if pending and not wait:
            break
        if pending:
            time.sleep(1.0)
            pending = [u for u in pending if not unit_done(plan, u)]
    return trained


def _worker_main(cfg_yaml: str, data_dir: str, fingerprint: str, threads: int, index: int) -> None:
    """A spawned training worker (``trainer.workers``): rebuild the features, then claim units until none is left."""
    from quantsam.data.io import DataRef
    from quantsam.features.market import open_market

    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s][worker {index}][%(levelname)s] - %(message)s")
    torch.set_num_threads(threads)
    cfg = OmegaConf.create(cfg_yaml)
    market = open_market(DataRef(Path(data_dir), fingerprint))
    fs = feature_set(cfg, market)
    claim_units(cfg, plan_training(cfg, market, fs), fs, threads, wait=False, label=f"worker {index}")


def _train_units_shared(cfg: DictConfig, plan: TrainPlan, fs: FeatureSet, tracker: Tracker, run_id: str | None,
                        threads: int) -> dict:
    import multiprocessing as mp

    k = int(cfg.trainer.workers)
    tracker.set_tags(run_id, {"device": str(cfg.trainer.device), "torch_threads": str(threads),
                              "train_workers": str(k), "precision": str(cfg.trainer.precision)})
    ctx = mp.get_context("spawn")  # a clean interpreter: no forked torch/MLflow state
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    data_dir, fingerprint = str(plan.data_dir), plan.data_fingerprint
    procs = [ctx.Process(target=_worker_main, args=(cfg_yaml, data_dir, fingerprint, threads, i), daemon=True)
             for i in range(1, k)]
    for pr in procs:
        pr.start()
    log.info("%s: %d workers x %d torch thread(s) share %d units", plan.name, k, threads, len(plan.units))
    try:
        claim_units(cfg, plan, fs, threads, wait=False)
        for pr in procs:
            pr.join()
        bad = [pr.exitcode for pr in procs if pr.exitcode != 0]
        if bad:
            raise RuntimeError(f"{plan.name}: training worker(s) exited with {bad}; rerun the same command to resume")
        claim_units(cfg, plan, fs, threads, wait=True)  # anything a dead worker left (it resumes from checkpoints)
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.terminate()
    step = {f: 0 for f in cfg.model.frequencies}
    totals = {"grad_evals": 0, "seconds": 0.0}
    for u in plan.units:
        hist = unit_history(plan, u)
        _relog(tracker, run_id, step, u.freq, hist["history"])
        totals["grad_evals"] += hist["grad_evals"]
        totals["seconds"] += hist["seconds"]
    return totals


def _relog(tracker: Tracker, run_id: str | None, step: dict, freq: str, rows: list[dict]) -> None:
    """Log a unit's finished epochs at the model's next steps (``step[freq]`` counts epochs across units)."""
    relog(tracker, run_id, step, freq, [_epoch_metrics(freq, r) for r in rows])


def _progress(cfg: DictConfig, total: int, desc: str):
    ctx = job_context()
    return progress.bar(total, desc, cfg.trainer.progress, int(ctx.num) % 8 if ctx.sweep_dir else None)


# ---- step 3: assemble -----------------------------------------------------------------------------------------------
def assemble(plan: TrainPlan) -> Path:
    """``predictions.parquet`` from every unit's file, in the canonical order (identical whichever jobs trained them)."""
    missing = [u.tag for u in plan.units if not unit_done(plan, u)]
    if missing:
        raise ConfigError([f"cannot assemble {plan.work}: units {missing[:5]} are not done. Fix: run their fit jobs "
                           "(trainer.windows=[...]) or the full config"])
    frames = [stageio.read_parquet(plan.work / "predictions" / f"{u.tag}.parquet", "unit predictions",
                                   "delete the unit's manifest under units/ to retrain it") for u in plan.units]
    out = plan.work / "predictions.parquet"
    stageio.atomic_write_parquet(pd.concat(frames, ignore_index=True), out)
    return out


# ---- the stage ------------------------------------------------------------------------------------------------------
def _tags(cfg: DictConfig, plan: TrainPlan, market: Market, kind: str) -> dict[str, str]:
    ctx = job_context()
    return {**_work(plan, kind), "config_hash": plan.key,
            "data_fingerprint": market.fingerprint, "hydra_job_num": ctx.num, "optimizer": arm_name(cfg.optimizer),
            "optimizer_name": str(cfg.optimizer.name), "family": optimizer_class(str(cfg.optimizer.name)).family,
            "universe": train_universe(cfg), "seed": str(cfg.seed), "work_dir": str(plan.work),
            "host": socket.gethostname(), "pid": str(os.getpid()), **git_info(),
            **{f"version.{k}": v for k, v in package_versions().items()}}


def _work(plan: TrainPlan, kind: str) -> dict[str, str]:
    """The tags that name this work's runs in the store (:data:`~quantsam.tracking.mlflow_run.WORK_TAGS`)."""
    return {"stage_key": plan.key, "kind": kind, "units": plan.selection}


def _abandoned(tracker: Tracker, plan: TrainPlan, kind: str) -> None:
    """Runs of this work whose process is gone stay RUNNING forever unless marked (``Tracker.kill_abandoned``)."""
    tracker.kill_abandoned(_work(plan, kind), "its work was resumed or redone by a later run")


def run_train(cfg: DictConfig, market: Market) -> TrainOutputs:
    """Train every unit of the config (or of ``trainer.windows/models/seeds``), assemble the predictions, and log
    one MLflow run (see the module docstring). A finished config is reused: its run is found by tags in the
    configured store, copied under the current sweep's parent when it belongs to another, or re-logged from the
    work directory when the store has none."""
    t0 = time.perf_counter()
    fs = feature_set(cfg, market)
    plan = plan_training(cfg, market, fs)
    tracker = Tracker(cfg.tracking)
    parent = parent_run_id(job_context().sweep_dir)
    kind = "train" if plan.complete else "fit"
    name = plan.name if plan.complete else f"{plan.name}-{plan.selection}"
    # two identical commands at once: the second waits on the lock, then finds the work done and reuses the first's
    # MLflow run (instead of a second FINISHED run with the same key); other unit selections run in parallel

    def redo() -> None:  # +rerun=true
        _abandoned(tracker, plan, kind)
        if plan.complete and plan.work.exists():
            # the signal, factor tests and backtests live in their own folders, keyed by the predictions' hash:
            # a retrain that reproduces the predictions finds them again, one that changes them makes new ones
            log.warning("+rerun=true: deleting the training %s (later stages' folders stay: they are keyed by what "
                        "the retrain predicts)", plan.work)
            shutil.rmtree(plan.work)

    def reuse() -> TrainOutputs:
        run_id = _reuse_run(cfg, plan, market, tracker, parent, kind, name)
        tracker.mark_current(_work(plan, kind), run_id)  # the comparison view shows this copy, not the older ones
        metrics = json.loads((plan.work / "metrics.json").read_text()) if plan.complete else {}
        log.info("%s: finished work with key %s exists (%s); skipping (+rerun=true forces)", name, plan.key, plan.work)
        return TrainOutputs(plan.work, plan.work / "predictions.parquet" if plan.complete else None, run_id, metrics,
                            skipped=True, complete=plan.complete)

    def compute():
        out = _train(cfg, market, fs, plan, tracker, parent, kind, name, t0)
        return ([out.predictions, plan.work / "metrics.json", plan.work / "splits.json"] if plan.complete else []), out

    res = stageio.run_in_place("train", plan.key, compute, lock=plan.work.parent / ".locks" / f"{plan.work.name}."
                               f"{plan.selection}", manifest=plan.work / stageio.MANIFEST if plan.complete else None,
                               done=None if plan.complete else lambda: all(unit_done(plan, u) for u in plan.units),
                               code=stageio.code_version(*TRAIN_CODE), meta={"data_fingerprint": market.fingerprint},
                               force=stageio.rerun_requested(cfg.get("rerun"), "train"), on_force=redo,
                               on_reuse=reuse, clean=(plan.work,))
    return res.result


def _train(cfg: DictConfig, market: Market, fs: FeatureSet, plan: TrainPlan, tracker: Tracker, parent: str | None,
           kind: str, name: str, t0: float) -> TrainOutputs:
    """Train the plan's units under one MLflow run and assemble the predictions (the ritual around it:
    :func:`run_train`)."""
    _abandoned(tracker, plan, kind)
    plan.work.mkdir(parents=True, exist_ok=True)
    stageio.atomic_write_text(plan.work / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    stageio.atomic_write_json(plan.work / "splits.json", [s.describe(fs.panel.dates) for s in plan.splits])
    with tracker.run(name, _tags(cfg, plan, market, kind), run_params(cfg), parent) as run_id:
        tracker.mark_current(_work(plan, kind), run_id)  # e.g. a resumed fit: its killed run leaves the view
        tracker.log_artifact(run_id, plan.work / "config.yaml")
        tracker.log_artifact(run_id, plan.work / "splits.json")
        totals = train_units(cfg, plan, fs, tracker, run_id)
        metrics = {"cost/grad_evals": float(totals["grad_evals"]), "cost/wall_s": totals["seconds"],
                   "cost/stage_s": time.perf_counter() - t0, "n_windows": float(len(plan.splits)),
                   "n_units": float(len(plan.units))}
        tracker.log_metrics(run_id, metrics)
        if not plan.complete:
            log.info("%s: trained units %s (assemble with the full config)", name, [u.tag for u in plan.units])
            return TrainOutputs(plan.work, None, run_id, metrics, complete=False)
        preds = assemble(plan)
        stageio.atomic_write_json(plan.work / "metrics.json", metrics)
        for sub in ("history", "predictions", "models"):
            tracker.log_artifact(run_id, plan.work / sub, sub)
        tracker.log_artifact(run_id, preds)
    log.info("%s: %d units, %d grad evals, %.0fs -> %s", name, len(plan.units), totals["grad_evals"],
             time.perf_counter() - t0, plan.work)
    return TrainOutputs(plan.work, preds, run_id, metrics)


def _reuse_run(cfg: DictConfig, plan: TrainPlan, market: Market, tracker: Tracker, parent: str | None, kind: str,
               name: str) -> str | None:
    """The MLflow run of finished work (:mod:`quantsam.tracking.stage_run`): the newest FINISHED run with its key
    (when it belongs to the current sweep, or there is no sweep), a cache-hit copy under the current sweep's parent,
    or — when the configured store has none — a new run logged from the work directory."""
    if not tracker.enabled:
        return None
    run_id = reuse_finished(tracker, _work(plan, kind), parent, name, {"hydra_job_num": job_context().num})
    if run_id is not None:
        return run_id
    log.info("%s: no finished run for key %s in %s: logging one from %s", name, plan.key, tracker.uri, plan.work)
    history = ((u.freq, [_epoch_metrics(u.freq, r) for r in unit_history(plan, u)["history"]]) for u in plan.units)
    arts = [(plan.work / f, None) for f in ("config.yaml", "splits.json", "predictions.parquet")]
    arts += [(plan.work / sub, sub) for sub in ("history", "predictions", "models")]
    return relogged_run(tracker, name, {**_tags(cfg, plan, market, kind), "relogged_from": str(plan.work)},
                        run_params(cfg), parent, history,
                        json.loads((plan.work / "metrics.json").read_text()) if plan.complete else None,
                        arts if plan.complete else [])
