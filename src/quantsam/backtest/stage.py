"""The portfolio + backtest stage: index-enhanced portfolios for CSI300/500/1000 from a training run's signal.

``universe=csi1000`` backtests that index; ``universe=all`` (the default) backtests every index in
``backtest.universes``. Outputs: ``<training work dir>/backtest/<universe>/`` (daily, rebalances, yearly and
active-industry tables as parquet, figures as PNG, summary.json); metrics ``bt/<universe>/...`` and the folder are
logged to the training run. A universe whose signal file, portfolio and backtest config are unchanged is skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from quantsam.backtest.runner import run_index_enhanced
from quantsam.config import validate
from quantsam.data.stage import load_for
from quantsam.errors import ConfigError
from quantsam.features.panel import build_panel
from quantsam.paths import config_dir
from quantsam.report.artifacts import close_figures
from quantsam.signals.source import file_hash, log_stage, resolve_signal, stage_key

log = logging.getLogger(__name__)


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


def run_backtest(cfg: DictConfig) -> BacktestOutputs:
    validate(cfg)
    names = [str(cfg.universe.name)] if cfg.universe.index_code else [str(u) for u in cfg.backtest.universes]
    codes = {n: index_code_of(n) for n in names}  # fail fast on a bad name
    sig_path, run_id = resolve_signal(cfg, cfg.backtest.get("input"))
    base = sig_path.parent / "backtest"
    pc = OmegaConf.to_container(cfg.portfolio, resolve=True)
    bc = OmegaConf.to_container(cfg.backtest, resolve=True)
    for k in ("input", "universes"):
        bc.pop(k, None)
    sig_hash = file_hash(sig_path)
    todo, out_dirs, summaries, skipped = [], {}, {}, []
    for n in names:
        key = stage_key(pc, bc, sig_hash, codes[n])
        d = base / n
        out_dirs[n] = d
        f = d / "summary.json"
        if f.exists() and json.loads(f.read_text()).get("cache_key") == key and not cfg.get("rerun"):
            summaries[n] = json.loads(f.read_text())["summary"]
            skipped.append(n)
            log.info("backtest %s: inputs unchanged, skipping (%s)", n, d)
        else:
            todo.append((n, key))
    if todo:
        market = load_for(cfg)
        panel = build_panel(market.daily)
        signal = pd.read_parquet(sig_path)
        for n, key in todo:
            rep = run_index_enhanced(signal, market, codes[n], n, cfg.portfolio, cfg.backtest, panel=panel)
            rep.save(out_dirs[n])
            close_figures(rep.figures)
            data = json.loads((out_dirs[n] / "summary.json").read_text())
            data.update(cache_key=key, signal=str(sig_path))
            (out_dirs[n] / "summary.json").write_text(json.dumps(data, indent=1, default=float))
            log_stage(cfg, run_id, rep.metrics(), out_dirs[n], f"backtest/{n}")
            summaries[n] = rep.summary
    return BacktestOutputs(out_dirs, summaries, run_id, skipped)
