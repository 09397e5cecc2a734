"""The stage graph: data -> features -> train (daily + weekly) -> signal -> factor test -> portfolios + backtests.

Each stage reads the previous stage's artifacts and is skipped when its inputs are unchanged (training: config hash
+ DONE marker + FINISHED MLflow run; factor test and backtests: their config subtree + the signal file's hash).
``stages=[train,factor_test]`` (``+stages=...`` on the command line) runs a subset. In a Hydra job the result is also
written to ``<job dir>/result.json`` so the study report can collect a sweep without MLflow.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from quantsam.config import validate
from quantsam.errors import ConfigError

log = logging.getLogger(__name__)

STAGES = ("data", "train", "factor_test", "backtest")


@dataclass
class PipelineResult:
    work_dir: Path | None = None
    run_id: str | None = None
    factor_dir: Path | None = None
    factor_summary: dict = field(default_factory=dict)
    backtest_dirs: dict = field(default_factory=dict)
    backtest_summaries: dict = field(default_factory=dict)
    stage_seconds: dict = field(default_factory=dict)


def run_pipeline(cfg: DictConfig) -> PipelineResult:
    validate(cfg)
    stages = list(cfg.get("stages") or STAGES)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ConfigError([f"stages: unknown {bad}; valid: {list(STAGES)}"])
    res = PipelineResult()
    t = time.perf_counter()
    if "data" in stages:
        from quantsam.data.stage import run_data

        run_data(cfg)
        res.stage_seconds["data"] = time.perf_counter() - t
    if "train" in stages or "factor_test" in stages or "backtest" in stages:
        from quantsam.train.stage import run_train

        t = time.perf_counter()
        out = run_train(cfg)  # skipped (read back) when this config already finished
        res.work_dir, res.run_id = out.work_dir, out.run_id
        res.stage_seconds["train"] = time.perf_counter() - t
    if "factor_test" in stages:
        from quantsam.factor_test.stage import run_factor_test

        t = time.perf_counter()
        ft = run_factor_test(cfg)
        res.factor_dir, res.factor_summary = ft.out_dir, ft.summary
        res.stage_seconds["factor_test"] = time.perf_counter() - t
    if "backtest" in stages:
        from quantsam.backtest.stage import run_backtest

        t = time.perf_counter()
        bt = run_backtest(cfg)
        res.backtest_dirs, res.backtest_summaries = bt.out_dirs, bt.summaries
        res.stage_seconds["backtest"] = time.perf_counter() - t
    _write_result(cfg, res)
    return res


def _write_result(cfg: DictConfig, res: PipelineResult) -> None:
    try:
        from hydra.core.hydra_config import HydraConfig

        job_dir = Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        return
    doc = {"optimizer": str(cfg.optimizer.name), "seed": int(cfg.seed), "work_dir": str(res.work_dir),
           "run_id": res.run_id, "stage_seconds": res.stage_seconds}
    (job_dir / "result.json").write_text(json.dumps(doc, indent=1))
