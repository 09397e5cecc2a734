"""The training stage (``make train``): dual GRUs over rolling windows -> prediction and signal parquet, in MLflow.

Work directory ``<paths.runs>/train/<run name>-<config hash>/`` is a function of the config, so re-running the same
command after a crash resumes: finished units (window x model x seed) are read back from their parquet, the unit in
progress restarts from its last epoch checkpoint, and the MLflow run is re-opened.

Layout::

    predictions/w00-daily-s0.parquet   date, code, model, seed, score (one file per finished unit)
    checkpoints/w00-daily-s0.pt        epoch checkpoint of the unit in progress (model, optimizer, rng, state)
    models/w00-daily-s0.pt             best weights (state_dict) of each finished unit
    history/w00-daily-s0.json          per-epoch train loss / validation IC of each unit
    predictions.parquet                all units;   signal.parquet   date, code, score (+ per-model z-scores)
    splits.json  metrics.json  config.yaml  DONE
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from quantsam.config import validate
from quantsam.data.stage import load_for
from quantsam.factor_test.ic import ic_rows, rank_ic_rows
from quantsam.features.dataset import FeatureSet, eligible_mask, membership_mask, rolling_splits
from quantsam.features.panel import build_panel
from quantsam.signals.combine import combine_equal_weight
from quantsam.tracking.mlflow_run import RunTracker, config_hash, find_runs, git_info, package_versions
from quantsam.train import checkpoint
from quantsam.train.loop import FitConfig, fit_unit, predict_dates, predictions_frame
from quantsam.train.runtime import pick_device, set_threads

log = logging.getLogger(__name__)


@dataclass
class TrainOutputs:
    work_dir: Path
    predictions: Path
    signal: Path
    metrics: dict
    run_id: str | None
    skipped: bool = False


def train_universe(cfg: DictConfig) -> str:
    """The universe the models are trained on: the index with ``universe.train_on_members``, else all A-shares."""
    return str(cfg.universe.name) if cfg.universe.get("train_on_members") else "all"


def run_name(cfg: DictConfig) -> str:
    return f"{cfg.optimizer.name}-{train_universe(cfg)}-s{cfg.seed}"


def _hydra_job() -> tuple[str, int, str | None]:
    """(job num, parallel jobs, sweep dir or None) from the Hydra runtime, when there is one."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        n_jobs = int(OmegaConf.select(hc, "launcher.n_jobs") or 1)
        sweep = str(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
        return str(hc.job.get("num", 0)), n_jobs, sweep
    except (ValueError, ImportError):
        return "0", 1, None


def _progress(cfg: DictConfig, total: int, desc: str):
    from tqdm.auto import tqdm

    p = cfg.trainer.progress
    disable = (not sys.stderr.isatty()) if p == "auto" else not bool(p)
    return tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)


def _test_metrics(signal: pd.DataFrame, fs: FeatureSet, cols: list[str]) -> dict[str, float]:
    """Test RankIC/IC of the combined signal (and of each model) against the label, over the test dates."""
    pos_d = pd.Series(np.arange(len(fs.panel.dates)), index=fs.panel.dates)
    pos_c = pd.Series(np.arange(len(fs.panel.codes)), index=fs.panel.codes)
    ti = pos_d.reindex(signal["date"]).to_numpy()
    ni = pos_c.reindex(signal["code"].astype(str)).to_numpy()
    dates = np.unique(ti)
    row = pd.Series(np.arange(len(dates)), index=dates).reindex(ti).to_numpy()
    lab = fs.label[dates]
    out: dict[str, float] = {}
    for c in cols:
        m = np.full((len(dates), len(fs.panel.codes)), np.nan)
        m[row, ni] = signal[c].to_numpy()
        ric, ic = rank_ic_rows(m, lab), ic_rows(m, lab)
        ric = ric[np.isfinite(ric)]
        prefix = "test" if c == "score" else f"{c}/test"
        sd = np.std(ric, ddof=1) if len(ric) > 1 else np.nan
        out[f"{prefix}/rank_ic_mean"] = float(np.mean(ric)) if len(ric) else float("nan")
        out[f"{prefix}/rank_icir"] = float(np.mean(ric) / sd) if sd and np.isfinite(sd) else float("nan")
        out[f"{prefix}/ic_mean"] = float(np.nanmean(ic)) if np.isfinite(ic).any() else float("nan")
    return out


def run_train(cfg: DictConfig) -> TrainOutputs:
    """Train both models over every rolling window and seed; write predictions + signal; log one MLflow run."""
    validate(cfg)
    t_start = time.perf_counter()
    chash = config_hash(cfg)
    name = run_name(cfg)
    work = Path(cfg.paths.runs) / "train" / f"{name}-{chash}"
    job_num, n_jobs, sweep_dir = _hydra_job()
    rerun = bool(cfg.get("rerun", False))
    if not rerun and (work / "DONE").exists() and (not cfg.tracking.enabled
                                                    or find_runs(cfg, chash, status="FINISHED")):
        log.info("%s: finished run with config hash %s exists (%s); skipping (+rerun=true forces)", name, chash, work)
        metrics = json.loads((work / "metrics.json").read_text())
        return TrainOutputs(work, work / "predictions.parquet", work / "signal.parquet", metrics,
                            metrics.get("_run_id"), skipped=True)
    if rerun and work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    threads = set_threads(cfg.trainer.num_threads, n_jobs)
    device = pick_device(str(cfg.trainer.device))
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    market = load_for(cfg)
    panel = build_panel(market.daily)
    members = None
    if cfg.universe.index_code and cfg.universe.get("train_on_members"):
        members = membership_mask(panel, market.index_members, str(cfg.universe.index_code))
    elig = eligible_mask(panel, int(cfg.universe.min_listed_days), bool(cfg.universe.exclude_st), members)
    freqs = tuple(cfg.model.frequencies)
    fs = FeatureSet(panel, int(cfg.features.daily_window), int(cfg.features.weekly_window),
                    int(cfg.features.label_horizon), str(cfg.features.label_price), elig, freqs,
                    cache_mb=float(cfg.trainer.get("cache_mb", 1024)))
    tr = cfg.trainer
    splits = rolling_splits(panel.dates, fs.first_usable, int(tr.train_days), int(tr.valid_days), int(tr.test_days),
                            int(tr.purge_days), int(tr.sample_every), str(tr.test_start),
                            None if tr.test_end is None else str(tr.test_end),
                            None if tr.max_windows is None else int(tr.max_windows), int(cfg.features.label_horizon))
    (work / "splits.json").write_text(json.dumps([s.describe(panel.dates) for s in splits], indent=1))

    fc = FitConfig(model=OmegaConf.to_container(cfg.model, resolve=True),
                   optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
                   max_epochs=int(tr.max_epochs), patience=int(tr.patience), loss=str(tr.loss),
                   max_names_per_batch=None if tr.max_names_per_batch is None else int(tr.max_names_per_batch),
                   shuffle_dates=bool(tr.shuffle_dates),
                   grad_clip=None if tr.grad_clip is None else float(tr.grad_clip))
    save_traj = str(tr.get("save_trajectory", "first"))
    tags = {"config_hash": chash, "data_fingerprint": str(market.meta.get("fingerprint", "unknown")),
            "hydra_job_num": job_num, "optimizer": str(cfg.optimizer.name), "universe": train_universe(cfg),
            "device": str(device), "torch_threads": str(threads), "work_dir": str(work), **git_info(),
            **{f"version.{k}": v for k, v in package_versions().items()}}
    parent = None
    if sweep_dir:
        from quantsam.tracking.hydra_callback import parent_run_id

        parent = parent_run_id(sweep_dir)
    run_id_file = work / "mlflow_run_id.txt"
    resume_id = run_id_file.read_text().strip() if run_id_file.exists() else None

    with RunTracker(cfg, name, tags, parent_run_id=parent, resume_run_id=resume_id) as tracker:
        if tracker.run_id:
            run_id_file.write_text(tracker.run_id)
            tracker.log_artifact(work / "config.yaml")
            tracker.log_artifact(work / "splits.json")
        units = [(s, f, k) for s in splits for f in freqs for k in range(int(tr.n_seeds))]
        step = {f: 0 for f in freqs}
        grad_evals = 0
        bar = _progress(cfg, len(units), f"{name} windows x models x seeds")
        frames = []
        for split, freq, k in units:
            tag = f"w{split.index:02d}-{freq}-s{k}"
            pred_path = work / "predictions" / f"{tag}.parquet"
            hist_path = work / "history" / f"{tag}.json"
            if pred_path.exists() and hist_path.exists():
                hist = json.loads(hist_path.read_text())
                frames.append(pd.read_parquet(pred_path))
                step[freq] += len(hist["history"])
                grad_evals += hist["grad_evals"]
                bar.update(1)
                continue
            seed = int(cfg.seed) * 1000 + k

            def on_epoch(rec, freq=freq):
                tracker.log_metrics({f"{freq}/train/loss": rec["train_loss"], f"{freq}/valid/ic": rec["valid_ic"],
                                     f"{freq}/valid/rank_ic": rec["valid_rank_ic"],
                                     f"{freq}/valid/rank_icir": rec["valid_rank_icir"]}, step=step[freq])
                step[freq] += 1

            keep = save_traj == "all" or (save_traj == "first" and split.index == 0 and k == 0)
            res = fit_unit(fs, split, freq, seed, replace(fc, keep_trajectory=keep), device,
                           ckpt_path=work / "checkpoints" / f"{tag}.pt" if tr.checkpoint else None,
                           on_epoch=on_epoch, progress=bar)
            pred = predict_dates(res.model, fs, freq, split.test, device)
            df = predictions_frame(pred, fs, split.test, freq, k)
            df["window"] = split.index
            pred_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = pred_path.with_suffix(".tmp")
            df.to_parquet(tmp, index=False)
            tmp.replace(pred_path)
            checkpoint.save_atomic(res.model.state_dict(), work / "models" / f"{tag}.pt")
            if res.trajectory is not None:
                checkpoint.save_atomic(res.trajectory, work / "trajectory" / f"{tag}.pt")
            hist = {"history": res.history, "best_epoch": res.best_epoch, "best_valid_rank_ic": res.best_rank_ic,
                    "grad_evals": res.grad_evals, "seconds": res.seconds, **split.describe(panel.dates)}
            checkpoint.write_atomic_bytes(json.dumps(hist, indent=1).encode(), hist_path)
            (work / "checkpoints" / f"{tag}.pt").unlink(missing_ok=True)
            frames.append(df)
            grad_evals += res.grad_evals
            bar.update(1)
        bar.close()

        preds = pd.concat(frames, ignore_index=True)
        preds.to_parquet(work / "predictions.parquet", index=False)
        signal = combine_equal_weight(preds, list(cfg.signal.models) if set(cfg.signal.models) <= set(freqs)
                                      else list(freqs))
        signal.to_parquet(work / "signal.parquet", index=False)
        metrics = _test_metrics(signal, fs, ["score", *[c for c in signal.columns if c in freqs]])
        wall = time.perf_counter() - t_start
        metrics.update({"cost/grad_evals": float(grad_evals), "cost/wall_s": wall, "n_windows": float(len(splits))})
        tracker.log_metrics(metrics)
        for sub in ("history", "predictions", "models"):
            tracker.log_artifact(work / sub, sub)
        tracker.log_artifact(work / "predictions.parquet")
        tracker.log_artifact(work / "signal.parquet")
        (work / "metrics.json").write_text(json.dumps({**metrics, "_run_id": tracker.run_id}, indent=1))
        (work / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
        log.info("%s: test RankIC %.4f (ICIR %.2f), %d grad evals, %.0fs -> %s", name,
                 metrics.get("test/rank_ic_mean", float("nan")), metrics.get("test/rank_icir", float("nan")),
                 grad_evals, wall, work)
        return TrainOutputs(work, work / "predictions.parquet", work / "signal.parquet", metrics, tracker.run_id)
