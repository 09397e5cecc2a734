"""The portfolio + backtest stage: index-enhanced portfolios for CSI300/500/1000 from a signal artifact.

``run_backtest(cfg, signal, market, run_id)`` backtests the index of ``universe`` (``universe=csi1000``), or every
index in ``backtest.universes`` when the universe is ``all`` (the default). Each index's outputs go to
``<paths.runs>/backtest/<universe>/<run name>-<key>/`` all-or-nothing (daily, rebalances, yearly and active-industry tables
as parquet, figures as PNG, ``summary.json``); the key covers the ``portfolio`` and ``backtest`` configs, the index,
the signal file's hash, the data fingerprint and the code version. Metrics ``bt/<universe>/...`` and the folder are
logged to the training run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from quantsam import progress, stageio
from quantsam.backtest.runner import industry_codes, risk_window, run_index_enhanced
from quantsam.config.schema import INDEX_CODES, key_if_set, non_result_keys
from quantsam.errors import ConfigError
from quantsam.features.market import Market
from quantsam.paths import config_dir
from quantsam.portfolio.risk import RiskInputs, build_risk_inputs
from quantsam.signals.io import to_dense
from quantsam.tracking.hydra_callback import job_context
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

# version 2: styles, risk model, attribution, benchmark basis; 3: graded relaxation widens industries;
# 4: the TE forecast's bias statistic. Its numbers depend on the backtest, portfolio and crosssection modules.
BACKTEST = stageio.Stage("backtest", 4, ("backtest", "portfolio", "crosssection"))


@dataclass
class BacktestOutputs:
    out_dirs: dict[str, Path]
    summaries: dict[str, dict]
    run_id: str | None
    skipped: list[str]


def index_code_of(name: str) -> str:
    """The index code of universe ``name`` from ``conf/universe/<name>.yaml`` (the one source of truth)."""
    f = config_dir() / "universe" / f"{name}.yaml"
    if not f.exists():
        choices = sorted(p.stem for p in (config_dir() / "universe").glob("*.yaml"))
        raise ConfigError([f"backtest.universes: unknown universe '{name}'; choices: {choices}"])
    code = OmegaConf.load(f).get("index_code")
    if not code:
        raise ConfigError([f"universe '{name}' has no index_code: a backtest needs an index benchmark "
                           "(universe=csi300|csi500|csi1000)"])
    return str(code)


def backtest_universes(cfg: DictConfig) -> dict[str, str]:
    """universe name -> index code of what this config backtests."""
    names = [str(cfg.universe.name)] if cfg.universe.index_code else [str(u) for u in cfg.backtest.universes]
    return {n: index_code_of(n) for n in names}


def backtest_key(cfg: DictConfig, index_code: str, signal_hash: str, data_fingerprint: str) -> str:
    bc = OmegaConf.to_container(cfg.backtest, resolve=True)
    for k in non_result_keys("backtest"):  # which indices, from where, in how many lanes: not the numbers
        bc.pop(k, None)
    pc = OmegaConf.to_container(cfg.portfolio, resolve=True)
    for k, default in key_if_set("portfolio"):  # keys added after work was done: in the key only when set
        if pc.get(k, default) == default:
            pc.pop(k, None)
    return BACKTEST.key(portfolio=pc, backtest=bc, index=index_code, signal=signal_hash, data=data_fingerprint)


def risk_inputs(cfg: DictConfig, market: Market) -> RiskInputs | None:
    """Styles, factor returns and the risk model over the backtest window (once for every index), when the portfolio
    or the attribution needs them."""
    pc = cfg.portfolio
    if not (pc.style_bounds or pc.te_target is not None or cfg.backtest.attribution):
        return None
    panel = market.panel()
    codes, labels = industry_codes(market.tables().industry, panel)
    r0, r1 = risk_window(panel, cfg.backtest, pc)
    adj = panel.field("adj_factor").astype(np.float64)
    return build_risk_inputs(panel.field("close") * adj, market.styles(), codes, len(labels), labels, r0, r1,
                             float(pc.risk_halflife),
                             None if pc.risk_vra_halflife is None else float(pc.risk_vra_halflife),
                             int(pc.get("risk_nw_lags", 0)), int(pc.get("risk_stat_factors", 0)),
                             int(pc.get("risk_stat_window", 252)), float(pc.get("risk_eigen_scale", 0.0)),
                             int(pc.get("risk_eigen_sims", 100)))


def _one(cfg: DictConfig, n: str, code: str, key: str, d: Path, signal: Path, inputs: Callable[[], tuple],
         market: Market, tracker: Tracker | None, run_id: str | None) -> stageio.Cached:
    """One index's backtest through the cached-run ritual; ``inputs()`` gives (dense signal, risk inputs), built
    only when something has to be computed."""
    def compute():
        from threadpoolctl import threadpool_limits

        # one BLAS thread whatever the machine or the lane layout (the risk inputs included): a multi-threaded
        # matmul sums in another order, and the TE would differ in the last bit between serial and workers=2
        with threadpool_limits(1):
            sig, risk = inputs()
            return run_index_enhanced(sig, market.tables(), market.panel(), code, n, cfg.portfolio, cfg.backtest,
                                      risk=risk)

    return stageio.run_cached(BACKTEST, d, key, compute, metric_prefix=f"bt/{n}/", tracker=tracker, run_id=run_id,
                              artifact_path=f"backtest/{n}", meta={"signal": str(signal), "index_code": code},
                              rerun=cfg.get("rerun"))


def _lazy_inputs(cfg: DictConfig, market: Market, frame, signal: str) -> Callable[[], tuple]:
    """``inputs()``: the dense signal and the risk inputs, built on the first call (only when an index has to be
    computed) and shared by every index after it."""
    built: list = []

    def inputs() -> tuple:
        if not built:
            built.extend([to_dense(frame, market.panel(), "score", signal), risk_inputs(cfg, market)])
        return built[0], built[1]

    return inputs


def _lane(cfg_yaml: str, data_dir: str, fingerprint: str, signal: str, jobs: list[tuple[str, str, str, str]]
          ) -> list[tuple[str, dict, dict, bool]]:
    """A backtest lane (``backtest.workers`` > 1): a spawned process with one BLAS / torch thread that opens the
    market itself, builds the risk inputs once and backtests its share of the indices; returns (universe, summary,
    metrics, reused) per index — the parent logs them (the MLflow run stays the parent's)."""
    import torch

    from quantsam.data.io import DataRef
    from quantsam.features.market import open_market

    torch.set_num_threads(1)
    cfg = OmegaConf.create(cfg_yaml)
    market = open_market(DataRef(Path(data_dir), fingerprint))
    frame, _ = stageio.read_parquet_bytes(Path(signal), "signal", "give a signal parquet (date, code, score)")
    inputs = _lazy_inputs(cfg, market, frame, signal)
    out = []
    for n, code, key, d in jobs:
        c = _one(cfg, n, code, key, Path(d), Path(signal), inputs, market, None, None)
        out.append((n, c.summary, c.metrics, c.skipped))
    return out


def _lane_init(queue, every: float) -> None:
    """A lane's logging goes to its parent (:func:`_lane_logs`): its records — the rebalances' progress lines (done/
    total, elapsed, ETA, at most every ``every`` s, as training's) included — reach the job's log like the parent's."""
    import logging.handlers

    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.INFO)
    progress.log_lines_only(every)


@contextlib.contextmanager
def _lane_logs(ctx) -> Iterator[object]:
    """A queue the lanes log into (:func:`_lane_init`) and a thread that hands every record to this process's logger
    of the same name: a spawned lane has none of the job's handlers (its log file, the console)."""
    import threading

    queue = ctx.Queue()

    def pump() -> None:
        while (rec := queue.get()) is not None:
            logging.getLogger(rec.name).handle(rec)

    th = threading.Thread(target=pump, name="backtest-lane-logs", daemon=True)
    th.start()
    try:
        yield queue
    finally:
        queue.put(None)
        th.join(timeout=10)


def _lanes(todo: list[tuple[str, str, str, Path]], k: int) -> list[list[tuple[str, str, str, str]]]:
    """``todo`` split into ``k`` lanes, the longest backtests first (more names, more time: CSI1000 > CSI500 >
    CSI300), each to the lane with the least expected work (largest-first greedy)."""
    size = {INDEX_CODES["csi1000"]: 3.0, INDEX_CODES["csi500"]: 1.4, INDEX_CODES["csi300"]: 1.0}
    lanes: list[list] = [[] for _ in range(k)]
    load = [0.0] * k
    for n, code, key, d in sorted(todo, key=lambda j: -size.get(j[1], 1.0)):
        i = load.index(min(load))
        lanes[i].append((n, code, key, str(d)))
        load[i] += size.get(code, 1.0)
    return [lane for lane in lanes if lane]


def run_backtest(cfg: DictConfig, signal: Path, market: Market, run_id: str | None = None) -> BacktestOutputs:
    """Every index of the config (see the module docstring); with ``backtest.workers`` > 1 the indices not yet done
    run in that many spawned lanes of one thread each (the numbers are the same: each backtest is independent)."""
    codes = backtest_universes(cfg)  # fail fast on a bad name
    signal = Path(signal)
    frame, sig_hash = stageio.read_parquet_bytes(signal, "signal", "give a signal parquet (date, code, score)")
    tracker = Tracker(cfg.tracking)
    out_dirs, summaries, skipped, todo = {}, {}, [], []
    inputs = _lazy_inputs(cfg, market, frame, str(signal))
    for n, code in codes.items():
        key = backtest_key(cfg, code, sig_hash, market.fingerprint)
        out_dirs[n] = stageio.stage_dir(Path(cfg.paths.runs) / "backtest", n, stageio.artifact_name(signal), key)
        todo.append((n, code, key, out_dirs[n]))
    asked = int(cfg.backtest.get("workers") or 1)
    force = stageio.rerun_requested(cfg.get("rerun"), BACKTEST.name)
    pending = [j for j in todo
               if force or not stageio.is_done(j[3] / stageio.MANIFEST, j[2], code=BACKTEST.code_version())]
    # never more lanes than the cores this job may use beside the sweep's other parallel jobs
    workers = min(asked, len(pending), max(1, stageio.usable_cores() // max(1, job_context().n_jobs)))
    if asked > 1 and workers < min(asked, len(pending)):
        log.info("backtest.workers=%d: %d lane(s) on the cores this job may use", asked, workers)
    in_lanes = {}
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        lanes = _lanes(pending, workers)
        log.info("backtest: %d indices in %d lanes x 1 thread: %s", len(pending), len(lanes),
                 "; ".join(",".join(j[0] for j in lane) for lane in lanes))
        cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        ctx = mp.get_context("spawn")
        with _lane_logs(ctx) as queue, ProcessPoolExecutor(len(lanes), mp_context=ctx, initializer=_lane_init,
                                                           initargs=(queue, progress.LOG_EVERY)) as pool:
            futs = [pool.submit(_lane, cfg_yaml, str(market.dir), market.fingerprint, str(signal), lane)
                    for lane in lanes]
            for f in futs:
                for n, summ, metrics, reused in f.result():
                    tracker.log_stage(run_id, metrics, out_dirs[n], f"backtest/{n}", only_if_missing=reused)
                    in_lanes[n] = (summ, reused)
    for n, code, key, d in todo:
        if n in in_lanes:
            summaries[n], reused = in_lanes[n]
        else:
            c = _one(cfg, n, code, key, d, signal, inputs, market, tracker, run_id)
            summaries[n], reused = c.summary, c.skipped
        if reused:
            skipped.append(n)
            log.info("backtest %s: inputs unchanged, skipping (%s)", n, d)
    return BacktestOutputs(out_dirs, summaries, run_id, skipped)
