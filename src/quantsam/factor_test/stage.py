"""The factor-test stage: a signal artifact -> tables, figures and ``factor/...`` metrics.

``run_factor_test(cfg, signal, market, run_id)`` runs :func:`~quantsam.factor_test.analysis.analyze` on the signal
file and writes ``<paths.runs>/factor_test/<run name>-<key>/`` all-or-nothing (the key: the ``factor_test`` config, the
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
from quantsam.config.schema import non_result_keys
from quantsam.factor_test.analysis import FactorTestResult, analyze
from quantsam.features.market import Market
from quantsam.signals.io import to_dense
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

FACTOR_TEST = stageio.Stage("factor_test", 2, ("factor_test", "crosssection"))  # version 2: style correlations


@dataclass
class FactorTestOutputs:
    out_dir: Path
    summary: dict
    run_id: str | None
    skipped: bool = False
    result: FactorTestResult | None = None


def factor_test_key(cfg: DictConfig, signal_hash: str, data_fingerprint: str) -> str:
    ft = OmegaConf.to_container(cfg.factor_test, resolve=True)
    for k in non_result_keys("factor_test"):  # where the signal came from: not the numbers
        ft.pop(k, None)
    return FACTOR_TEST.key(config=ft, signal=signal_hash, data=data_fingerprint)


def run_factor_test(cfg: DictConfig, signal: Path, market: Market, run_id: str | None = None) -> FactorTestOutputs:
    signal = Path(signal)
    frame, sig_hash = stageio.read_parquet_bytes(signal, "signal", "give a signal parquet (date, code, score)")
    key = factor_test_key(cfg, sig_hash, market.fingerprint)
    out_dir = stageio.stage_dir(cfg.paths.runs, "factor_test", stageio.artifact_name(signal), key)

    def compute() -> FactorTestResult:
        panel = market.panel()
        x = to_dense(frame, panel, "score", str(signal))
        return analyze(x, panel, market.tables().industry, cfg.factor_test,
                       extra_drops={"rows_nan_score": int(frame["score"].isna().sum())},
                       styles=market.styles() if cfg.factor_test.style_diagnostics else None)

    c = stageio.run_cached(FACTOR_TEST, out_dir, key, compute, metric_prefix="factor/", tracker=Tracker(cfg.tracking),
                           run_id=run_id, artifact_path="factor_test", meta={"signal": str(signal)},
                           rerun=cfg.get("rerun"))
    log.info("factor test: inputs unchanged (%s), skipping" if c.skipped else "factor test -> %s", out_dir)
    return FactorTestOutputs(out_dir, c.summary, run_id, skipped=c.skipped, result=c.result)
