"""The signal stage: training predictions -> a signal folder (``signal.parquet`` + its test metrics).

``run_signal(cfg, predictions, market, run_id)`` averages each model's seeds, z-scores each model per day and
equal-weights them (:mod:`.combine`), and writes ``<paths.runs>/signal/<run name>-<key>/`` through the one cached-run
ritual (:func:`quantsam.stageio.run_cached`): ``signal.parquet`` (``date, code, score`` plus each model's z-score),
``summary.json`` — the test RankIC / ICIR / IC of the combined signal and of each model against the study's label —
and ``signal_windows.parquet`` (per rolling window and seed: the paired tests' rows). The metrics (``test/...``,
``<model>/test/...``) go to the training run, the folder to its ``signal/`` artifacts. Key: the signal config, the
predictions file's hash, the label config, the universe and the data fingerprint — so the folder lives beside the
training's, not in it, and a retrained model or a new signal config never overwrites another's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.crosssection import ic_rows, kurtosis_rows, rank_ic_rows
from quantsam.features.market import Market
from quantsam.signals.combine import combine_equal_weight
from quantsam.signals.io import seed_averaged, to_long
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

#: version 3: a folder of its own (``<paths.runs>/signal/...``) through stageio.run_cached; 2: kurtosis,
#: within-index metrics, per (window, seed) metrics
SIGNAL = stageio.Stage("signal", 3, ("signals", "crosssection"))
SIGNAL_FILE, WINDOWS_FILE = "signal.parquet", "signal_windows.parquet"


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


@dataclass
class SignalResult:
    """What the signal stage computes: the long signal frame, its test metrics and the per (window, seed) rows."""

    frame: pd.DataFrame
    summary: dict
    per_window: pd.DataFrame
    predictions: str = ""

    def save(self, directory: Path) -> None:
        self.frame.to_parquet(directory / SIGNAL_FILE, index=False)
        self.per_window.to_parquet(directory / WINDOWS_FILE, index=False)
        (directory / "summary.json").write_text(json.dumps({"summary": self.summary, "predictions": self.predictions},
                                                           indent=1, default=float))


def signal_key(cfg: DictConfig, predictions_hash: str, data_fingerprint: str) -> str:
    return SIGNAL.key(signal=OmegaConf.to_container(cfg.signal, resolve=True), predictions=predictions_hash,
                      data=data_fingerprint, label=OmegaConf.to_container(cfg.features, resolve=True),
                      universe=OmegaConf.to_container(cfg.universe, resolve=True))


def compute_signal(cfg: DictConfig, preds: pd.DataFrame, market: Market, predictions: str = "") -> SignalResult:
    dates, codes, scores = seed_averaged(preds)
    models = list(cfg.signal.models)
    score, z = combine_equal_weight(scores, models, cfg.signal.mad_k)
    frame = to_long(dates, codes, {"score": score, **{m: z[m] for m in models}})
    panel = market.panel()
    rows = panel.dates.get_indexer(dates)
    cols = panel.codes.get_indexer(codes)
    label = market.label(cfg.features, cfg.universe)
    metrics = test_metrics({"score": score, **{m: z[m] for m in models},
                            **{f"raw_{m}": scores[m] for m in models}}, rows, cols, label)
    members = market.index_members_masks()
    for u, m in members.items():  # the combined signal within each index's point-in-time members
        sub = test_metrics({"score": np.where(m[rows][:, cols], score, np.nan)}, rows, cols, label)
        metrics.update({k.replace("test/", f"test_{u}/"): v for k, v in sub.items()})
    per_window = window_seed_metrics(preds, models, cfg.signal.mad_k, panel, label, members)
    return SignalResult(frame, metrics, per_window, predictions)


def run_signal(cfg: DictConfig, predictions: Path, market: Market, run_id: str | None = None) -> SignalOutputs:
    predictions = Path(predictions)
    preds, pred_hash = stageio.read_parquet_bytes(predictions, "predictions",
                                                  "rerun the training stage (make train) for this config")
    key = signal_key(cfg, pred_hash, market.fingerprint)
    out_dir = stageio.stage_dir(cfg.paths.runs, "signal", stageio.artifact_name(predictions), key)
    c = stageio.run_cached(SIGNAL, out_dir, key, lambda: compute_signal(cfg, preds, market, str(predictions)),
                           tracker=Tracker(cfg.tracking), run_id=run_id, artifact_path="signal",
                           meta={"predictions": str(predictions), "data_fingerprint": market.fingerprint},
                           rerun=cfg.get("rerun"))
    m = c.summary
    if c.skipped:
        log.info("signal: inputs unchanged (%s)", out_dir)
    else:
        log.info("signal: test RankIC %.4f (ICIR %.2f), IC %.4f, median kurtosis %.1f — daily, against the training "
                 "label (T+1 -> T+%d %s) -> %s", m.get("test/rank_ic_mean", float("nan")),
                 m.get("test/rank_icir", float("nan")), m.get("test/ic_mean", float("nan")),
                 m.get("test/kurtosis_median", float("nan")), int(cfg.features.label_horizon) + 1,
                 cfg.features.label_price, out_dir)
    return SignalOutputs(out_dir / SIGNAL_FILE, m, skipped=c.skipped)
