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
    for k in ("input", "universes"):
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


def run_backtest(cfg: DictConfig, signal: Path, market: Market, run_id: str | None = None) -> BacktestOutputs:
    codes = backtest_universes(cfg)  # fail fast on a bad name
    signal = Path(signal)
    frame, sig_hash = stageio.read_parquet_bytes(signal, "signal", "give a signal parquet (date, code, score)")
    tracker = Tracker(cfg.tracking)
    out_dirs, summaries, skipped = {}, {}, []
    sig = risk = None
    for n, code in codes.items():
        key = backtest_key(cfg, code, sig_hash, market.fingerprint)
        d = signal.parent / "backtest" / n / key
        out_dirs[n] = d
        with stageio.locked(d):
            if stageio.is_done(d / stageio.MANIFEST, key, code=stageio.code_version(*BACKTEST_CODE)):
                summaries[n] = stageio.read_json(d / "summary.json", "backtest summary", "delete the folder")["summary"]
                skipped.append(n)
                tracker.log_stage(run_id, {f"bt/{n}/{k}": v for k, v in summaries[n].items()}, d, f"backtest/{n}",
                                  only_if_missing=True)
                log.info("backtest %s: inputs unchanged, skipping (%s)", n, d)
                continue
            if sig is None:
                sig = to_dense(frame, market.panel(), "score", str(signal))
                risk = risk_inputs(cfg, market)
            res = run_index_enhanced(sig, market.tables(), market.panel(), code, n, cfg.portfolio, cfg.backtest,
                                     risk=risk)
            with stageio.OutputDir(d, "backtest", key, signal=str(signal), index_code=code,
                                   code=stageio.code_version(*BACKTEST_CODE)) as out:
                res.save(out.path)
            stageio.close_figures(res.figures)
        tracker.log_stage(run_id, res.metrics(), d, f"backtest/{n}")
        summaries[n] = res.summary
    return BacktestOutputs(out_dirs, summaries, run_id, skipped)
