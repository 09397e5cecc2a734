"""The factor-test stage: a signal artifact -> tables, figures and ``factor/...`` metrics.

``run_factor_test(cfg, signal, market, run_id)`` runs :func:`~quantsam.factor_test.analysis.analyze` on the signal
file and writes ``<signal's folder>/factor_test/<key>/`` all-or-nothing (the key: the ``factor_test`` config, the
signal file's hash, the data fingerprint and the code version — so a changed signal, market or config never serves
an old result, and results of different configs live side by side). Metrics ``factor/...``, tables and figures are
logged to the training run the signal came from, so MLflow's compare view shows them beside the optimizer's other
metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.factor_test.analysis import FactorTestResult, analyze
from quantsam.features.market import Market
from quantsam.signals.io import to_dense
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

FACTOR_TEST_VERSION = 2  # 2: style correlations
FACTOR_TEST_CODE = ("factor_test", "crosssection")  # the modules its numbers depend on


@dataclass
class FactorTestOutputs:
    out_dir: Path
    summary: dict
    run_id: str | None
    skipped: bool = False
    result: FactorTestResult | None = None


def factor_test_key(cfg: DictConfig, signal_hash: str, data_fingerprint: str) -> str:
    ft = OmegaConf.to_container(cfg.factor_test, resolve=True)
    ft.pop("input", None)
    return stageio.stage_key("factor_test", FACTOR_TEST_VERSION, config=ft, signal=signal_hash, data=data_fingerprint)


def run_factor_test(cfg: DictConfig, signal: Path, market: Market, run_id: str | None = None) -> FactorTestOutputs:
    signal = Path(signal)
    frame, sig_hash = stageio.read_parquet_bytes(signal, "signal", "give a signal parquet (date, code, score)")
    key = factor_test_key(cfg, sig_hash, market.fingerprint)
    out_dir = signal.parent / "factor_test" / key
    tracker = Tracker(cfg.tracking)
    with stageio.locked(out_dir):
        if stageio.is_done(out_dir / stageio.MANIFEST, key, code=stageio.code_version(*FACTOR_TEST_CODE)):
            summary = stageio.read_json(out_dir / "summary.json", "factor test summary", "delete the folder")["summary"]
            tracker.log_stage(run_id, {f"factor/{k}": v for k, v in summary.items()}, out_dir, "factor_test",
                              only_if_missing=True)
            log.info("factor test: inputs unchanged (%s), skipping", out_dir)
            return FactorTestOutputs(out_dir, summary, run_id, skipped=True)
        panel = market.panel()
        x = to_dense(frame, panel, "score", str(signal))
        res = analyze(x, panel, market.tables().industry, cfg.factor_test,
                      extra_drops={"rows_nan_score": int(frame["score"].isna().sum())},
                      styles=market.styles() if cfg.factor_test.style_diagnostics else None)
        with stageio.OutputDir(out_dir, "factor_test", key, signal=str(signal),
                               code=stageio.code_version(*FACTOR_TEST_CODE)) as out:
            res.save(out.path)
        stageio.close_figures(res.figures)
    tracker.log_stage(run_id, res.metrics(), out_dir, "factor_test")
    log.info("factor test -> %s", out_dir)
    return FactorTestOutputs(out_dir, res.summary, run_id, result=res)
