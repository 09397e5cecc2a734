"""The report stage: the comparison report of a study sweep (and its diagnostics), logged to the sweep's parent run.

Its inputs are artifacts: each job's ``result.json`` in the sweep directory names the job's training work dir, its
factor-test and backtest outputs and the market (directory + fingerprint) it read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from quantsam.data.io import DataRef
from quantsam.errors import ConfigError
from quantsam.features.market import open_market
from quantsam.report.collect import collect
from quantsam.report.render import StudyReport, write_report
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)


def run_report(cfg: DictConfig, sweep_dir: str | Path | None = None) -> StudyReport:
    sweep = Path(str(sweep_dir or cfg.report.get("sweep_dir") or ""))
    if not str(sweep) or not sweep.exists():
        raise ConfigError([f"report.sweep_dir={cfg.report.get('sweep_dir')!r}: give the multirun directory of a "
                           "study, e.g. make report SWEEP=multirun/2026-11-22/10-00-00"])
    jobs = collect(sweep)
    diagnostics = {}
    if cfg.report.get("landscape"):
        from quantsam.report.landscape import study_diagnostics

        ref = next((DataRef(j.data_dir, j.data_fingerprint) for j in jobs if j.data_dir), None)
        if ref is not None:
            diagnostics = study_diagnostics(cfg, jobs, open_market(ref))
    parent = None
    pf = sweep / "mlflow_parent.json"
    tracker = Tracker(cfg.tracking)
    if tracker.enabled and pf.exists():
        parent = (tracker.client, json.loads(pf.read_text())["run_id"])
    return write_report(jobs, sweep, diagnostics=diagnostics, parent_run=parent)
