"""The stage graph, and the only place (with ``cli.py``) that calls stages:

    data -> train (daily + weekly) -> signal -> factor test
                                            -> portfolios + backtests (CSI300/500/1000)

Each stage is ``run_<stage>(cfg, inputs) -> outputs`` over artifact paths (the market's :class:`DataRef`, the
predictions file, the signal file) and skips itself when its manifest says its inputs are unchanged
(:mod:`quantsam.stageio`). The market's tables and panel are loaded once per process and shared
(:class:`~quantsam.features.market.Market`). ``stages=[factor_test]`` (``+stages=...`` on the command line) runs the
listed stages and what they need; ``given=`` (a standalone command's ``RUN=``) seeds the walk with an existing
artifact, so the standalone commands walk the same graph. In a Hydra job the result is also written to ``<job dir>/result.json``
(:class:`~quantsam.jobresult.JobResult`), which the study report reads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from quantsam.config import validate
from quantsam.data.io import DataRef
from quantsam.data.stage import run_data
from quantsam.errors import ConfigError
from quantsam.features.market import open_market
from quantsam.jobresult import JobResult
from quantsam.optim import arm_name
from quantsam.signals.source import Input
from quantsam.tracking.headline import headline_metrics
from quantsam.tracking.hydra_callback import job_context
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

STAGES = ("data", "train", "signal", "factor_test", "backtest")
NEEDS = {"data": (), "train": ("data",), "signal": ("train",), "factor_test": ("signal",), "backtest": ("signal",)}


@dataclass
class PipelineResult:
    data: DataRef | None = None
    work_dir: Path | None = None
    run_id: str | None = None
    complete: bool = True  # False for a fine-grained fit job (trainer.windows/models/seeds)
    train_skipped: bool = False  # the training was found done (cache hit)
    train_metrics: dict = field(default_factory=dict)
    predictions: Path | None = None  # the training's assembled predictions (or a seeded input's)
    signal: Path | None = None
    signal_metrics: dict = field(default_factory=dict)
    factor_dir: Path | None = None
    factor_summary: dict = field(default_factory=dict)
    factor_skipped: bool = False  # the cached factor test was reused
    backtest_dirs: dict = field(default_factory=dict)
    backtest_summaries: dict = field(default_factory=dict)
    backtest_skipped: list = field(default_factory=list)  # universes whose cached backtest was reused
    stage_seconds: dict = field(default_factory=dict)


def stages_to_run(requested: list[str] | None) -> list[str]:
    """The requested stages plus everything they need, in graph order."""
    want = list(requested or STAGES)
    bad = [s for s in want if s not in STAGES]
    if bad:
        raise ConfigError([f"stages: unknown {bad}; valid: {list(STAGES)}"])
    todo: set[str] = set()

    def add(s: str) -> None:
        if s not in todo:
            todo.add(s)
            for d in NEEDS[s]:
                add(d)

    for s in want:
        add(s)
    return [s for s in STAGES if s in todo]


@dataclass
class Ctx:
    """What every step of the walk reads besides the result so far: the config and the market."""

    cfg: DictConfig
    market: object


def _train(ctx: Ctx, res: PipelineResult) -> bool:
    from quantsam.train.stage import run_train

    tr = run_train(ctx.cfg, ctx.market)
    res.work_dir, res.run_id, res.complete, res.train_metrics = tr.work_dir, tr.run_id, tr.complete, tr.metrics
    res.train_skipped, res.predictions = tr.skipped, tr.predictions
    return tr.complete  # a fit job: the units are trained; the full config assembles later


def _signal(ctx: Ctx, res: PipelineResult) -> bool:
    from quantsam.signals.stage import run_signal

    sig = run_signal(ctx.cfg, res.predictions, ctx.market, res.run_id)
    res.signal, res.signal_metrics = sig.path, sig.metrics
    return True


def _factor_test(ctx: Ctx, res: PipelineResult) -> bool:
    from quantsam.factor_test.stage import run_factor_test

    ft = run_factor_test(ctx.cfg, res.signal, ctx.market, res.run_id)
    res.factor_dir, res.factor_summary, res.factor_skipped = ft.out_dir, ft.summary, ft.skipped
    return True


def _backtest(ctx: Ctx, res: PipelineResult) -> bool:
    from quantsam.backtest.stage import run_backtest

    bt = run_backtest(ctx.cfg, res.signal, ctx.market, res.run_id)
    res.backtest_dirs, res.backtest_summaries, res.backtest_skipped = bt.out_dirs, bt.summaries, bt.skipped
    return True


#: each stage's step: reads its inputs from the result so far, records its outputs there; False ends the walk
STEPS = {"train": _train, "signal": _signal, "factor_test": _factor_test, "backtest": _backtest}
#: what a seeded artifact stands in for: the stages that would have made it
SEEDS = {"predictions": ("train",), "signal": ("train", "signal")}


def run_pipeline(cfg: DictConfig, stages: list[str] | None = None, given: Input | None = None) -> PipelineResult:
    """Walk the graph: ``stages`` (default: ``cfg.stages``, else all) and what they need (:data:`NEEDS`), in order,
    each by its step (:data:`STEPS`). ``given``: an artifact the walk starts from (a standalone command's ``RUN=``:
    a training's predictions or a signal, :func:`~quantsam.signals.source.resolve_input`) — the stages that would
    have made it are not run (:data:`SEEDS`), and its run id is the one the results attach to."""
    validate(cfg)
    Tracker(cfg.tracking).check()  # a dead tracking server fails here, before any stage runs
    todo = stages_to_run(stages or cfg.get("stages"))
    res = PipelineResult()
    if given is not None:
        todo = [s for s in todo if s not in SEEDS[given.kind]]
        res.run_id = given.run_id
        res.predictions = given.path if given.kind == "predictions" else None
        res.signal = given.path if given.kind == "signal" else None
    t = time.perf_counter()
    res.data = run_data(cfg)
    res.stage_seconds["data"] = time.perf_counter() - t
    ctx = Ctx(cfg, open_market(res.data))
    for name in (s for s in todo if s != "data"):  # data is done: every stage reads the market
        t = time.perf_counter()
        go_on = STEPS[name](ctx, res)
        res.stage_seconds[name] = time.perf_counter() - t
        if not go_on:
            _write_result(cfg, res)
            return res
    if given is not None:  # a standalone stage: its own metrics are logged; the run's headline is the pipeline's
        return res
    head = headline_metrics(res.train_metrics, res.signal_metrics, res.factor_summary, res.backtest_summaries)
    Tracker(cfg.tracking).log_metrics(res.run_id, head)
    _write_result(cfg, res)
    return res


def _write_result(cfg: DictConfig, res: PipelineResult) -> None:
    ctx = job_context()
    if ctx.output_dir is None or not res.complete:
        return
    JobResult(optimizer=arm_name(cfg.optimizer), optimizer_name=str(cfg.optimizer.name), seed=int(cfg.seed),
              work_dir=str(res.work_dir), run_id=res.run_id, complete=res.complete, stage_seconds=res.stage_seconds,
              data_dir=str(res.data.dir) if res.data else None,
              data_fingerprint=res.data.fingerprint if res.data else None,
              signal=str(res.signal) if res.signal else None,
              factor_dir=str(res.factor_dir) if res.factor_dir else None,
              backtest_dirs={k: str(v) for k, v in res.backtest_dirs.items()}).write(ctx.output_dir)
