"""The report stage: diagnostics (optional) + comparison report of a study sweep, logged to the parent run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from quantsam.errors import ConfigError
from quantsam.report.render import StudyReport, run_report

log = logging.getLogger(__name__)


def build_study_report(cfg: DictConfig, sweep_dir: str | Path | None = None) -> StudyReport:
    sweep = Path(sweep_dir or cfg.report.get("sweep_dir") or "")
    if not str(sweep) or not sweep.exists():
        raise ConfigError([f"report.sweep_dir={cfg.report.get('sweep_dir')!r}: give the multirun directory of a "
                           "study, e.g. make report SWEEP=multirun/2026-11-22/10-00-00"])
    diagnostics = {}
    if cfg.report.get("landscape"):
        from quantsam.report.landscape import study_diagnostics

        diagnostics = study_diagnostics(cfg, sweep)
    parent = None
    pf = sweep / "mlflow_parent.json"
    if cfg.tracking.enabled and pf.exists():
        from quantsam.tracking.mlflow_run import make_client

        parent = (make_client(str(cfg.tracking.uri)), json.loads(pf.read_text())["run_id"])
    return run_report(sweep, diagnostics=diagnostics, parent_run=parent)
