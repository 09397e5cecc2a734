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
        f = Path(config.hydra.sweep.dir) / PARENT_FILE
        if not config.tracking.enabled or not f.exists():
            return
        from quantsam.tracking.mlflow_run import make_client

        parent = json.loads(f.read_text())["run_id"]
        client = make_client(str(config.tracking.uri))
        children = client.search_runs([json.loads(f.read_text())["experiment_id"]],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=1000)
        failed = [r.info.run_name for r in children if r.info.status == "FAILED"]
        client.set_tag(parent, "children_failed", ",".join(failed))
        client.set_terminated(parent, status="FAILED" if failed and len(failed) == len(children) else "FINISHED")


def parent_run_id(sweep_dir: str | Path) -> str | None:
    f = Path(sweep_dir) / PARENT_FILE
    return json.loads(f.read_text())["run_id"] if f.exists() else None
