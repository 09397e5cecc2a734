"""Tuning a variant's neighbourhood with Hydra's Optuna sweeper (``make tune optimizer=gsam``).

* the objective of a trial is :func:`validation_objective`: the mean, over the fits of the training (rolling windows x
  models x seeds), of each fit's best validation RankIC — the same number early stopping maximises; the test blocks
  are never read;
* :class:`TunedConfigCallback` runs when the sweep ends: it reads the sweeper's ``optimization_results.yaml`` and
  writes ``<optimizer>_tuned.yaml`` — the optimizer's own choice plus the best values, the search space, the
  objective and the sweep in its header — into the sweep dir, into ``tune.write_dir`` (``conf/optimizer``, so that
  ``optimizer=gsam_tuned`` works in any later run), and onto the sweep's MLflow parent run.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def validation_objective(work_dir: str | Path) -> float:
    """Mean of the fits' best validation RankIC (``history/*.json`` of a training work dir)."""
    vals = [json.loads(p.read_text())["best_valid_rank_ic"] for p in sorted(Path(work_dir).glob("history/*.json"))]
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return float("nan")
    return float(np.mean(vals))


def tuned_yaml(name: str, best: dict, value: float, space: dict, sweep_dir: Path, n_trials: int, seed) -> str:
    """The text of ``<name>_tuned.yaml``."""
    lines = [f"# Tuned by `make tune optimizer={name}` on {date.today().isoformat()}: Optuna TPE (seed {seed}), "
             f"{n_trials} trials on the tune experiment's data.",
             "# Objective: mean over the rolling windows (x models x seeds) of each fit's best validation RankIC = "
             f"{value:.4f}",
             f"# (validation data only). Sweep: {sweep_dir}",
             f"# Search space (conf/tune_space/{name}.yaml, sources there):"]
    lines += [f"#   {k}: {v}" for k, v in space.items()]
    lines += ["defaults:", f"  - {name}", "  - _self_", f"arm: {name}_tuned"]
    for k, v in best.items():
        lines.append(f"{k.removeprefix('optimizer.')}: {json.dumps(v)}")
    return "\n".join(lines) + "\n"


class TunedConfigCallback(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        import yaml

        sweep_dir = Path(config.hydra.sweep.dir)
        res = sweep_dir / "optimization_results.yaml"
        if not res.exists():
            log.warning("%s missing: no tuned config written", res)
            return
        doc = yaml.safe_load(res.read_text())
        name = str(config.optimizer.name)
        space = OmegaConf.to_container(config.hydra.sweeper.params, resolve=False) or {}
        root = Path(str(config.paths.root))
        shown = sweep_dir.relative_to(root) if sweep_dir.is_relative_to(root) else sweep_dir
        text = tuned_yaml(name, doc["best_params"], float(doc["best_value"]), space, shown,
                          int(config.hydra.sweeper.n_trials), config.hydra.sweeper.sampler.get("seed"))
        out = sweep_dir / f"{name}_tuned.yaml"
        out.write_text(text)
        where = [out]
        write_dir = OmegaConf.select(config, "tune.write_dir")
        if write_dir:
            Path(write_dir).mkdir(parents=True, exist_ok=True)
            (Path(write_dir) / out.name).write_text(text)
            where.append(Path(write_dir) / out.name)
        from quantsam.tracking.hydra_callback import parent_run_id
        from quantsam.tracking.mlflow_run import Tracker

        if config.tracking.enabled:
            Tracker(config.tracking).log_artifact(parent_run_id(sweep_dir), out)
        print(f"\nbest {doc['best_params']} (mean best validation RankIC {float(doc['best_value']):.4f})\n"
              f"tuned config: {', '.join(str(p) for p in where)}  ->  optimizer={name}_tuned", flush=True)
