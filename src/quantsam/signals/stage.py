"""The signal stage: training predictions -> ``signal.parquet`` (+ test metrics), beside the predictions.

``run_signal(cfg, predictions, market, run_id)`` averages each model's seeds, z-scores each model per day and
equal-weights them (:mod:`.combine`), writes ``signal.parquet`` (``date, code, score`` plus each model's z-score)
and ``signal_metrics.json`` — the test RankIC / ICIR / IC of the combined signal and of each model against the
study's label — and logs the metrics (``test/...``, ``<model>/test/...``) to the training run. Key: the signal
config, the predictions file's hash, the label config and the data fingerprint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.crosssection import ic_rows, kurtosis_rows, rank_ic_rows
from quantsam.features.market import Market
from quantsam.signals.combine import combine_equal_weight
from quantsam.signals.io import seed_averaged, to_long
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

SIGNAL_VERSION = 2  # 2: kurtosis, within-index metrics, per (window, seed) metrics
MANIFEST = "signal.manifest.json"
SIGNAL_CODE = ("signals", "crosssection")  # the modules its numbers depend on (stageio.code_version)


@dataclass
class SignalOutputs:
    path: Path
    metrics: dict
    skipped: bool = False


def test_metrics(columns: dict[str, np.ndarray], rows: np.ndarray, cols: np.ndarray, label: np.ndarray
                 ) -> dict[str, float]:
    """Test RankIC mean, RankICIR (mean / std), IC (Pearson) mean and the median per-date excess kurtosis of each
    ``[D, C]`` column against ``label`` on the panel rows ``rows`` and columns ``cols``: ``test/...`` for ``score``,
    ``<model>/test/...`` for the models (``raw_<model>`` columns: a model's predictions before winsorisation)."""
    lab = label[rows]
    out: dict[str, float] = {}
    for name, a in columns.items():
        m = np.full(lab.shape, np.nan)
        m[:, cols] = a
        ric, ic = rank_ic_rows(m, lab), ic_rows(m, lab)
        ric = ric[np.isfinite(ric)]
        prefix = "test" if name == "score" else f"{name}/test"
        sd = np.std(ric, ddof=1) if len(ric) > 1 else np.nan
        out[f"{prefix}/rank_ic_mean"] = float(np.mean(ric)) if len(ric) else float("nan")
        out[f"{prefix}/rank_icir"] = float(np.mean(ric) / sd) if sd and np.isfinite(sd) else float("nan")
        out[f"{prefix}/ic_mean"] = float(np.nanmean(ic)) if np.isfinite(ic).any() else float("nan")
        kurt = kurtosis_rows(a)
        out[f"{prefix}/kurtosis_median"] = float(np.median(kurt[np.isfinite(kurt)])) if np.isfinite(kurt).any() \
            else float("nan")
    return out


def window_seed_metrics(preds, models: list[str], mad_k, panel, label: np.ndarray,
                        members: dict[str, np.ndarray] | None = None):
    """Per (rolling window, seed index): the signal each seed alone would give (its models' z-scores, equal weight,
    with ``signal.mad_k``) scored against the label on every test day of the window — the test RankIC and IC mean
    over all names and, for each ``members`` mask (``[T, N]`` point-in-time index membership), within the index.
    These are the pairs of the study's paired tests (``quantsam.report.tables.paired_test``)."""
    import pandas as pd

    rows = []
    for k, pk in preds.groupby("seed", sort=True):
        dates, codes, scores = seed_averaged(pk)
        score, _ = combine_equal_weight(scores, models, mad_k)
        r, c = panel.dates.get_indexer(dates), panel.codes.get_indexer(codes)
        lab = label[r][:, c]
        win = pk.groupby("date")["window"].first().reindex(dates).to_numpy()
        masks = {"": None, **{f"{u}_": m[r][:, c] for u, m in (members or {}).items()}}
        per = {}
        for prefix, m in masks.items():
            x = score if m is None else np.where(m, score, np.nan)
            per[prefix] = (rank_ic_rows(x, lab), ic_rows(x, lab))
        for w in np.unique(win):
            sel = win == w
            row = {"window": int(w), "seed": int(k), "days": int(sel.sum())}
            for prefix, (ric, ic) in per.items():
                row[f"{prefix}rank_ic"] = float(np.nanmean(ric[sel])) if np.isfinite(ric[sel]).any() else np.nan
                row[f"{prefix}ic"] = float(np.nanmean(ic[sel])) if np.isfinite(ic[sel]).any() else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def run_signal(cfg: DictConfig, predictions: Path, market: Market, run_id: str | None = None) -> SignalOutputs:
    predictions = Path(predictions)
    out = predictions.parent / "signal.parquet"
    metrics_file = predictions.parent / "signal_metrics.json"
    manifest = predictions.parent / MANIFEST
    fix = "rerun the training stage (make train) for this config"
    preds, pred_hash = stageio.read_parquet_bytes(predictions, "predictions", fix)
    key = stageio.stage_key("signal", SIGNAL_VERSION, signal=OmegaConf.to_container(cfg.signal, resolve=True),
                            predictions=pred_hash, data=market.fingerprint,
                            label=OmegaConf.to_container(cfg.features, resolve=True),
                            universe=OmegaConf.to_container(cfg.universe, resolve=True))
    tracker = Tracker(cfg.tracking)
    with stageio.locked(out):
        if stageio.is_done(manifest, key, code=stageio.code_version(*SIGNAL_CODE)):
            metrics = stageio.read_json(metrics_file, "signal metrics", fix)
            tracker.log_stage(run_id, metrics, out, None, only_if_missing=True)
            log.info("signal: inputs unchanged (%s)", out)
            return SignalOutputs(out, metrics, skipped=True)
        stageio.invalidate(manifest)
        dates, codes, scores = seed_averaged(preds)
        models = list(cfg.signal.models)
        score, z = combine_equal_weight(scores, models, cfg.signal.mad_k)
        frame = to_long(dates, codes, {"score": score, **{m: z[m] for m in models}})
        panel = market.panel()
        rows = panel.dates.get_indexer(dates)
        cols = panel.codes.get_indexer(codes)
        metrics = test_metrics({"score": score, **{m: z[m] for m in models},
                                **{f"raw_{m}": scores[m] for m in models}}, rows, cols,
                               market.label(cfg.features, cfg.universe))
        members = market.index_members_masks()
        label = market.label(cfg.features, cfg.universe)
        for u, m in members.items():  # the combined signal within each index's point-in-time members
            sub = test_metrics({"score": np.where(m[rows][:, cols], score, np.nan)}, rows, cols, label)
            metrics.update({k.replace("test/", f"test_{u}/"): v for k, v in sub.items()})
        per_window = window_seed_metrics(preds, models, cfg.signal.mad_k, panel, label, members)
        windows_file = predictions.parent / "signal_windows.parquet"
        stageio.atomic_write_parquet(per_window, windows_file)
        stageio.atomic_write_parquet(frame, out)
        stageio.atomic_write_json(metrics_file, metrics)
        stageio.write_manifest(manifest, "signal", key, [out, metrics_file, windows_file],
                               data_fingerprint=market.fingerprint, code=stageio.code_version(*SIGNAL_CODE))
    tracker.log_metrics(run_id, metrics)
    tracker.log_artifact(run_id, out)
    log.info("signal: test RankIC %.4f (ICIR %.2f), IC %.4f, median kurtosis %.1f — daily, against the training "
             "label (T+1 -> T+%d %s) -> %s", metrics.get("test/rank_ic_mean", float("nan")),
             metrics.get("test/rank_icir", float("nan")), metrics.get("test/ic_mean", float("nan")),
             metrics.get("test/kurtosis_median", float("nan")), int(cfg.features.label_horizon) + 1,
             cfg.features.label_price, out)
    return SignalOutputs(out, metrics)
