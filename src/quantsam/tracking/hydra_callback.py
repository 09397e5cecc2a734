"""Hydra sweeps and MLflow: one parent run per multirun; every job's run is its child.

``on_multirun_start`` runs once in the launching process (before any job): it creates the parent run and writes
``<sweep dir>/mlflow_parent.json``; every job (in any process, with any launcher sharing the filesystem) reads it and
tags its run ``mlflow.parentRunId``. A rerun of a sweep gets a new parent, and each job — retrained or reused from
the cache — becomes its child. ``on_multirun_end`` closes the parent and, when jobs failed, exits non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from quantsam.config import register
from quantsam.config.resolvers import UnwritableFolder
from quantsam.errors import ConfigError
from quantsam.stageio import pid_alive

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


OWNER_FILE = ".sweep-owner.json"


def claim_sweep_dir(sweep_dir: Path) -> None:
    """Make this process the sweep dir's only owner: two sweeps given the same ``hydra.sweep.dir`` would merge their
    jobs, parents and ``multirun.yaml``; the second one stops here with the fix instead. A dir whose owner process is
    gone (a killed or finished sweep) is taken over. The check and the claim happen under one file lock, so two
    sweeps starting together never both see a free folder (nor read a claim that is half written)."""
    from quantsam.stageio import atomic_write_json, locked

    f = sweep_dir / OWNER_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    with locked(f, timeout=60):
        try:
            other = json.loads(f.read_text())
        except (OSError, ValueError):
            other = {}
        pid = int(other.get("pid", -1)) if str(other.get("pid", "")).lstrip("-").isdigit() else -1
        if other.get("host") == me["host"] and pid == me["pid"]:
            return  # our own claim (a callback called twice)
        if other.get("host") == me["host"] and pid > 0 and pid_alive(pid):
            raise ConfigError([f"hydra.sweep.dir={sweep_dir}: another sweep (pid {pid}) is running in this folder; "
                               "two sweeps never share one. Fix: give this one its own hydra.sweep.dir=... (or leave "
                               "it unset: the default folder is unique to the microsecond), or wait until pid "
                               f"{pid} has finished"]) from None
        atomic_write_json(f, me)  # free, or a dead owner's (killed sweep) or another host's copy: ours now


def close_dead_sweeps(tracker) -> None:
    """Parent runs of sweeps on this host whose process is gone (kill -9) stay RUNNING forever: mark them KILLED."""
    host = socket.gethostname()
    for r in tracker.find({"kind": "sweep"}, status="RUNNING"):
        t = r.data.tags
        pid = t.get("pid", "")
        if t.get("host") == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            tracker.client.set_tag(r.info.run_id, "killed_because", "its sweep process is gone")
            tracker.client.set_terminated(r.info.run_id, status="KILLED")
            log.info("MLflow: parent run %s of a dead sweep (%s) marked KILLED", r.info.run_id, t.get("sweep_dir"))


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        import shutil

        register()
        try:
            sweep_dir = Path(config.hydra.sweep.dir)
        except UnwritableFolder as e:  # paths.root under a file: said once, before Hydra says it again with a warning
            raise SystemExit(str(e)) from None
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:
            claim_sweep_dir(sweep_dir)
        except ConfigError as e:
            # Hydra catches every Exception a callback raises and only warns — the sweep would run anyway and merge
            # with the other one. SystemExit is no Exception: it stops this sweep here, before any job starts
            raise SystemExit(f"quantsam: {e}") from None
        shutil.rmtree(sweep_dir / FAILED_DIR, ignore_errors=True)  # a rerun reports only its own failures
        (sweep_dir / PARENT_FILE).unlink(missing_ok=True)
        if not config.tracking.enabled:
            return
        from quantsam.tracking.mlflow_run import Tracker, git_info

        tracker = Tracker(config.tracking)
        close_dead_sweeps(tracker)
        name = f"sweep-{config.universe.name}-{sweep_dir.name}"
        run = tracker.client.create_run(tracker.experiment_id(), run_name=name,
                                        tags={"sweep_dir": str(sweep_dir), "kind": "sweep", "host": socket.gethostname(),
                                              "pid": str(os.getpid()), **git_info()})
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
