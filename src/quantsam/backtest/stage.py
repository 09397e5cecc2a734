"""The portfolio + backtest stage: index-enhanced portfolios for CSI300/500/1000 from a signal artifact.

``run_backtest(cfg, signal, market, run_id)`` backtests the index of ``universe`` (``universe=csi1000``), or every
index in ``backtest.universes`` when the universe is ``all`` (the default). Each index's outputs go to
``<signal's folder>/backtest/<universe>/<key>/`` all-or-nothing (daily, rebalances, yearly and active-industry tables
as parquet, figures as PNG, ``summary.json``); the key covers the ``portfolio`` and ``backtest`` configs, the index,
the signal file's hash, the data fingerprint and the code version. Metrics ``bt/<universe>/...`` and the folder are
logged to the training run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.backtest.runner import industry_codes, risk_window, run_index_enhanced
from quantsam.errors import ConfigError
from quantsam.features.market import Market
from quantsam.paths import config_dir
from quantsam.portfolio.risk import RiskInputs, build_risk_inputs
from quantsam.signals.io import to_dense
from quantsam.tracking.hydra_callback import job_context
from quantsam.tracking.mlflow_run import Tracker

log = logging.getLogger(__name__)

BACKTEST_CODE = ("backtest", "portfolio", "crosssection")  # the modules its numbers depend on
BACKTEST_VERSION = 4  # 2: styles, risk model, attribution, benchmark basis; 3: graded relaxation widens industries;
#                      4: the TE forecast's bias statistic


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
    for k in ("input", "universes", "workers"):  # which indices, from where, in how many lanes: not the numbers
        bc.pop(k, None)
    return stageio.stage_key("backtest", BACKTEST_VERSION, portfolio=OmegaConf.to_container(cfg.portfolio, resolve=True),
                             backtest=bc, index=index_code, signal=signal_hash, data=data_fingerprint)


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
                             None if pc.risk_vra_halflife is None else float(pc.risk_vra_halflife))


def _compute_one(cfg: DictConfig, n: str, code: str, key: str, d: Path, signal: Path, sig: np.ndarray,
                 market: Market, risk: RiskInputs | None):
    """One index's backtest into ``d`` (all-or-nothing), under the folder's lock; the result (None when another
    process finished the same key meanwhile)."""
    with stageio.locked(d):
        if stageio.is_done(d / stageio.MANIFEST, key, code=stageio.code_version(*BACKTEST_CODE)):
            return None
        res = run_index_enhanced(sig, market.tables(), market.panel(), code, n, cfg.portfolio, cfg.backtest,
                                 risk=risk)
        with stageio.OutputDir(d, "backtest", key, signal=str(signal), index_code=code,
                               code=stageio.code_version(*BACKTEST_CODE)) as out:
            res.save(out.path)
        stageio.close_figures(res.figures)
    return res


def _lane(cfg_yaml: str, data_dir: str, fingerprint: str, signal: str, jobs: list[tuple[str, str, str, str]]
          ) -> list[tuple[str, dict, dict]]:
    """A backtest lane (``backtest.workers`` > 1): a spawned process with one BLAS / torch thread that opens the
    market itself, builds the risk inputs once and backtests its share of the indices; returns (universe, summary,
    metrics) per index — the parent logs them (the MLflow run stays the parent's)."""
    import torch
    from threadpoolctl import threadpool_limits

    from quantsam.data.io import DataRef
    from quantsam.features.market import open_market

    torch.set_num_threads(1)
    cfg = OmegaConf.create(cfg_yaml)
    market = open_market(DataRef(Path(data_dir), fingerprint))
    out = []
    with threadpool_limits(1):
        frame, _ = stageio.read_parquet_bytes(Path(signal), "signal", "give a signal parquet (date, code, score)")
        sig = to_dense(frame, market.panel(), "score", signal)
        risk = risk_inputs(cfg, market)
        for n, code, key, d in jobs:
            res = _compute_one(cfg, n, code, key, Path(d), Path(signal), sig, market, risk)
            if res is None:
                summ = stageio.read_json(Path(d) / "summary.json", "backtest summary", "delete the folder")["summary"]
                out.append((n, summ, {f"bt/{n}/{k}": v for k, v in summ.items()}))
            else:
                out.append((n, res.summary, res.metrics()))
    return out


def _lanes(todo: list[tuple[str, str, str, Path]], k: int) -> list[list[tuple[str, str, str, str]]]:
    """``todo`` split into ``k`` lanes, the longest backtests first (more names, more time: CSI1000 > CSI500 >
    CSI300), each to the lane with the least expected work (largest-first greedy)."""
    size = {"000852.SH": 3.0, "000905.SH": 1.4, "000300.SH": 1.0}
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
    for n, code in codes.items():
        key = backtest_key(cfg, code, sig_hash, market.fingerprint)
        d = signal.parent / "backtest" / n / key
        out_dirs[n] = d
        if stageio.is_done(d / stageio.MANIFEST, key, code=stageio.code_version(*BACKTEST_CODE)):
            summaries[n] = stageio.read_json(d / "summary.json", "backtest summary", "delete the folder")["summary"]
            skipped.append(n)
            tracker.log_stage(run_id, {f"bt/{n}/{k}": v for k, v in summaries[n].items()}, d, f"backtest/{n}",
                              only_if_missing=True)
            log.info("backtest %s: inputs unchanged, skipping (%s)", n, d)
        else:
            todo.append((n, code, key, d))
    asked = int(cfg.backtest.get("workers") or 1)
    # never more lanes than the cores this job may use beside the sweep's other parallel jobs
    workers = min(asked, len(todo), max(1, stageio.usable_cores() // max(1, job_context().n_jobs)))
    if asked > 1 and workers < min(asked, len(todo)):
        log.info("backtest.workers=%d: %d lane(s) on the cores this job may use", asked, workers)
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        lanes = _lanes(todo, workers)
        log.info("backtest: %d indices in %d lanes x 1 thread: %s", len(todo), len(lanes),
                 "; ".join(",".join(j[0] for j in lane) for lane in lanes))
        cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        with ProcessPoolExecutor(len(lanes), mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_lane, cfg_yaml, str(market.dir), market.fingerprint, str(signal), lane)
                    for lane in lanes]
            for f in futs:
                for n, summ, metrics in f.result():
                    tracker.log_stage(run_id, metrics, out_dirs[n], f"backtest/{n}")
                    summaries[n] = summ
        return BacktestOutputs(out_dirs, {n: summaries[n] for n in codes}, run_id, skipped)
    sig = risk = None
    for n, code, key, d in todo:
        if sig is None:
            sig = to_dense(frame, market.panel(), "score", str(signal))
            risk = risk_inputs(cfg, market)
        res = _compute_one(cfg, n, code, key, d, signal, sig, market, risk)
        if res is None:  # another process finished it while this one waited for the lock
            summaries[n] = stageio.read_json(d / "summary.json", "backtest summary", "delete the folder")["summary"]
            skipped.append(n)
            continue
        tracker.log_stage(run_id, res.metrics(), d, f"backtest/{n}")
        summaries[n] = res.summary
    return BacktestOutputs(out_dirs, {n: summaries[n] for n in codes}, run_id, skipped)
