"""Hydra callback for sweeps: one MLflow parent run per multirun, children attach to it.

``on_multirun_start`` runs once in the launching process (before any job): it creates the experiment and the parent
run under a file lock and writes ``<sweep dir>/mlflow_parent.json``; every job (in any process, with any launcher
sharing the filesystem) reads it and tags its run ``mlflow.parentRunId``. ``on_multirun_end`` closes the parent.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from quantsam.config import register_resolvers

log = logging.getLogger(__name__)
PARENT_FILE = "mlflow_parent.json"
FAILED_DIR = "failed_jobs"


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        register_resolvers()
        if not config.tracking.enabled:
            return
        from quantsam.tracking.mlflow_run import get_or_create_experiment, git_info, make_client

        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        client = make_client(str(config.tracking.uri))
        exp_id = get_or_create_experiment(client, str(config.tracking.experiment), str(config.tracking.artifact_root),
                                          str(config.tracking.uri))
        name = f"sweep-{config.universe.name}-{sweep_dir.name}"
        run = client.create_run(exp_id, run_name=name, tags={"sweep_dir": str(sweep_dir), "kind": "sweep",
                                                               **git_info()})
        (sweep_dir / PARENT_FILE).write_text(json.dumps({"run_id": run.info.run_id, "experiment_id": exp_id}))
        log.info("MLflow parent run %s (%s)", run.info.run_id, name)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failures = sorted((sweep_dir / FAILED_DIR).glob("*.txt")) if (sweep_dir / FAILED_DIR).exists() else []
        if config.get("report", {}).get("on_sweep_end") and list(sweep_dir.glob("*/result.json")):
            self._report(config, sweep_dir)
        self._close_parent(config, failures)
        if failures:
            names = ", ".join(f.stem for f in failures)
            raise SystemExit(f"{len(failures)} sweep job(s) failed (job numbers {names}); tracebacks in "
                             f"{sweep_dir / FAILED_DIR}")

    def _report(self, config: DictConfig, sweep_dir: Path) -> None:
        """Build the comparison report of a pipeline sweep and log it to the parent run."""
        from quantsam.report.stage import build_study_report

        try:
            build_study_report(config, sweep_dir)
        except Exception:  # the report must not lose the sweep's results: log and carry on
            log.exception("study report failed for %s (rerun: make report SWEEP=%s)", sweep_dir, sweep_dir)

    def _close_parent(self, config: DictConfig, failures: list[Path]) -> None:
        f = Path(config.hydra.sweep.dir) / PARENT_FILE
        if not config.tracking.enabled or not f.exists():
            return
        from quantsam.tracking.mlflow_run import make_client

        parent = json.loads(f.read_text())["run_id"]
        client = make_client(str(config.tracking.uri))
        children = client.search_runs([json.loads(f.read_text())["experiment_id"]],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=1000)
        finished = [r for r in children if r.info.status == "FINISHED"]
        client.set_tag(parent, "jobs_failed", ",".join(f.stem for f in failures))
        client.set_tag(parent, "children_finished", str(len(finished)))
        client.set_terminated(parent, status="FINISHED" if finished or not failures else "FAILED")


def parent_run_id(sweep_dir: str | Path) -> str | None:
    f = Path(sweep_dir) / PARENT_FILE
    return json.loads(f.read_text())["run_id"] if f.exists() else None


def record_failure() -> bool:
    """Inside a multirun job: write the current exception's traceback to ``<sweep dir>/failed_jobs/<job>.txt`` and
    return True (the caller swallows it so the other jobs go on). Outside a multirun: return False."""
    import traceback

    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return False
    except ValueError:
        return False
    d = Path(hc.sweep.dir) / FAILED_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{hc.job.num}.txt").write_text(f"overrides: {list(hc.overrides.task)}\n\n{traceback.format_exc()}")
    log.exception("job %s failed (recorded in %s); the sweep goes on", hc.job.num, d)
    return True
