"""The factor-test stage: read a signal artifact, run :func:`factor_report`, write tables/figures, log to MLflow.

Input (``factor_test.input``): ``null`` = the training stage's output for this config (trained first if needed),
a training work directory (holding ``signal.parquet``), a signal parquet file (``date, code, score``), or an MLflow
run id of a training run. Outputs go to ``<work dir>/factor_test/``; metrics ``factor/...``, tables and figures are
logged to the training run, so the MLflow compare view shows them beside the optimizer's other metrics.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from quantsam.config import validate
from quantsam.data.stage import load_for
from quantsam.factor_test.report import FactorReport, factor_report
from quantsam.report.artifacts import close_figures
from quantsam.signals.source import file_hash, log_stage, resolve_signal, stage_key

log = logging.getLogger(__name__)


@dataclass
class FactorTestOutputs:
    out_dir: Path
    summary: dict
    run_id: str | None
    skipped: bool = False
    report: FactorReport | None = None


def run_factor_test(cfg: DictConfig) -> FactorTestOutputs:
    """Run the factor test on the configured input (see module docstring); skipped when the signal file and the
    ``factor_test`` config are unchanged since the last run in the same output directory."""
    validate(cfg)
    sig_path, run_id = resolve_signal(cfg, cfg.factor_test.get("input"))
    out_dir = sig_path.parent / "factor_test"
    ft_cfg = OmegaConf.to_container(cfg.factor_test, resolve=True)
    ft_cfg.pop("input", None)
    key = stage_key(ft_cfg, file_hash(sig_path))
    summary_file = out_dir / "summary.json"
    if summary_file.exists() and json.loads(summary_file.read_text()).get("cache_key") == key and not cfg.get("rerun"):
        log.info("factor test: inputs unchanged (%s), skipping", out_dir)
        return FactorTestOutputs(out_dir, json.loads(summary_file.read_text())["summary"], run_id, skipped=True)
    market = load_for(cfg)
    signal = pd.read_parquet(sig_path)
    rep = factor_report(signal, market, cfg.factor_test)
    rep.save(out_dir)
    close_figures(rep.figures)
    data = json.loads(summary_file.read_text())
    data["cache_key"] = key
    data["signal"] = str(sig_path)
    summary_file.write_text(json.dumps(data, indent=1, default=float))
    log_stage(cfg, run_id, rep.metrics(), out_dir, "factor_test")
    log.info("factor test -> %s", out_dir)
    return FactorTestOutputs(out_dir, rep.summary, run_id, report=rep)
