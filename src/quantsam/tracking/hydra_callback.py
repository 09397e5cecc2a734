"""Hydra sweeps and MLflow: one parent run per multirun; every job's run is its child.

``on_multirun_start`` runs once in the launching process (before any job): it creates the parent run and writes
``<sweep dir>/mlflow_parent.json``; every job (in any process, with any launcher sharing the filesystem) reads it and
tags its run ``mlflow.parentRunId``. A rerun of a sweep gets a new parent, and each job — retrained or reused from
the cache — becomes its child. ``on_multirun_end`` closes the parent and, when jobs failed, exits non-zero.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from quantsam.config import register

log = logging.getLogger(__name__)
PARENT_FILE = "mlflow_parent.json"
FAILED_DIR = "failed_jobs"


@dataclass(frozen=True)
class JobContext:
    """Where this process runs in Hydra: job number, parallel jobs on this machine, the sweep dir (None outside a
    multirun) and the job's output dir (None outside Hydra)."""

    num: str = "0"
    n_jobs: int = 1
    sweep_dir: Path | None = None
    output_dir: Path | None = None


def job_context() -> JobContext:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from omegaconf import OmegaConf

        hc = HydraConfig.get()
    except (ValueError, ImportError):
        return JobContext()
    multirun = hc.mode == RunMode.MULTIRUN
    n_jobs = int(OmegaConf.select(hc, "launcher.n_jobs") or 1) if multirun else 1
    sweep = Path(str(hc.sweep.dir)) if multirun else None
    return JobContext(str(hc.job.get("num", 0)), n_jobs, sweep, Path(str(hc.runtime.output_dir)))


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        import shutil

        register()
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(sweep_dir / FAILED_DIR, ignore_errors=True)  # a rerun reports only its own failures
        (sweep_dir / PARENT_FILE).unlink(missing_ok=True)
        if not config.tracking.enabled:
            return
        from quantsam.tracking.mlflow_run import Tracker, git_info

        tracker = Tracker(config.tracking)
        name = f"sweep-{config.universe.name}-{sweep_dir.name}"
        run = tracker.client.create_run(tracker.experiment_id(), run_name=name,
                                        tags={"sweep_dir": str(sweep_dir), "kind": "sweep", **git_info()})
        (sweep_dir / PARENT_FILE).write_text(json.dumps({"run_id": run.info.run_id,
                                                         "experiment_id": tracker.experiment_id()}))
        log.info("MLflow parent run %s (%s)", run.info.run_id, name)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failures = sorted((sweep_dir / FAILED_DIR).glob("*.txt")) if (sweep_dir / FAILED_DIR).exists() else []
        self._close_parent(config, failures)
        if failures:
            names = ", ".join(f.stem for f in failures)
            raise SystemExit(f"{len(failures)} sweep job(s) failed (job numbers {names}); tracebacks in "
                             f"{sweep_dir / FAILED_DIR}")

    def _close_parent(self, config: DictConfig, failures: list[Path]) -> None:
        f = Path(config.hydra.sweep.dir) / PARENT_FILE
        if not config.tracking.enabled or not f.exists():
            return
        from quantsam.tracking.mlflow_run import Tracker

        doc = json.loads(f.read_text())
        client = Tracker(config.tracking).client
        children = client.search_runs([doc["experiment_id"]],
                                      filter_string=f"tags.mlflow.parentRunId = '{doc['run_id']}'", max_results=5000)
        finished = [r for r in children if r.info.status == "FINISHED"]
        from mlflow.entities import Param

        def values(tag: str) -> str:
            return ",".join(sorted({r.data.tags.get(tag, "") for r in children} - {""}))[:500]

        client.log_batch(doc["run_id"], params=[Param("optimizers", values("optimizer")), Param("seeds", values("seed")),
                                                Param("universe", str(config.universe.name)),
                                                Param("children", str(len(children)))])
        client.set_tag(doc["run_id"], "jobs_failed", ",".join(f.stem for f in failures))
        client.set_tag(doc["run_id"], "children_finished", str(len(finished)))
        client.set_terminated(doc["run_id"], status="FINISHED" if finished or not failures else "FAILED")


def parent_run_id(sweep_dir: str | Path | None) -> str | None:
    if sweep_dir is None:
        return None
    f = Path(sweep_dir) / PARENT_FILE
    return json.loads(f.read_text())["run_id"] if f.exists() else None


def record_failure() -> bool:
    """Inside a multirun job: write the current exception's traceback to ``<sweep dir>/failed_jobs/<job>.txt`` and
    return True (the caller swallows it so the other jobs go on). Outside a multirun: return False."""
    import traceback

    ctx = job_context()
    if ctx.sweep_dir is None:
        return False
    from hydra.core.hydra_config import HydraConfig

    d = ctx.sweep_dir / FAILED_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{ctx.num}.txt").write_text(f"overrides: {list(HydraConfig.get().overrides.task)}\n\n{traceback.format_exc()}")
    log.exception("job %s failed (recorded in %s); the sweep goes on", ctx.num, d)
    return True
