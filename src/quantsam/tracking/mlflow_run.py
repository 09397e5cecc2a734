"""MLflow tracking with explicit run names, reproducibility tags, batched metrics and artifacts.

Uses :class:`mlflow.MlflowClient` (no global active-run state), so parallel sweep jobs and tests stay independent.
The default store is SQLite in the project (``tracking.uri``); experiment creation happens under a file lock so
parallel jobs on one SQLite file do not race.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from quantsam.paths import project_root

log = logging.getLogger(__name__)

#: config groups whose values change the training stage's numbers (later stages hash their own subtrees)
TRAIN_KEYS = ("seed", "data", "universe", "features", "model", "optimizer", "trainer", "signal")
NON_RESULT_TRAINER = ("progress", "num_threads", "checkpoint", "cache_mb", "save_trajectory")


def config_hash(cfg: DictConfig, keys: tuple[str, ...] = TRAIN_KEYS) -> str:
    """Hash of the resolved config subtrees ``keys``, without keys that do not change the numbers (data.dir,
    progress bars, thread counts, checkpointing)."""
    full = OmegaConf.to_container(cfg, resolve=True)
    c = {k: full[k] for k in keys if k in full}
    u = c.get("universe")
    if isinstance(u, dict) and not u.get("train_on_members"):
        # the index only selects the backtest benchmark: training on all A-shares is the same run for every index
        u.pop("name", None)
        u.pop("index_code", None)
    for k in NON_RESULT_TRAINER:
        c.get("trainer", {}).pop(k, None)
    c.get("data", {}).pop("dir", None)
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_info(root: Path | None = None) -> dict[str, str]:
    root = root or project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return {"git_sha": sha.stdout.strip() or "unknown", "git_dirty": str(bool(dirty.stdout.strip())).lower()}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "git_dirty": "unknown"}


def package_versions() -> dict[str, str]:
    import mlflow
    import numpy
    import pandas
    import torch

    import quantsam

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "pandas": pandas.__version__, "mlflow": mlflow.__version__, "quantsam": quantsam.__version__}


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_params(cfg: DictConfig) -> dict[str, str]:
    """Selected config leaves as MLflow params (strings, <= 500 chars)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    keep = {k: c[k] for k in ("optimizer", "model", "trainer", "features", "data", "universe") if k in c}
    flat = flatten(keep)
    flat["seed"] = c.get("seed")
    flat.pop("data.dir", None)
    return {k: str(v)[:500] for k, v in flat.items()}


def _lock_path(uri: str) -> Path:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):] + ".lock")
    return project_root() / ".mlflow.lock"


def get_or_create_experiment(client, name: str, artifact_root: str | None, uri: str) -> str:
    """Experiment id, created once under a file lock (parallel jobs share one SQLite store)."""
    with FileLock(str(_lock_path(uri)), timeout=120):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        loc = None
        if artifact_root:
            Path(artifact_root).mkdir(parents=True, exist_ok=True)
            loc = Path(artifact_root).resolve().as_uri()
        return client.create_experiment(name, artifact_location=loc)


def make_client(uri: str):
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


class RunTracker:
    """One MLflow run. ``with RunTracker(...) as tr:`` ends it FINISHED, or FAILED with the traceback as an artifact."""

    def __init__(self, cfg: DictConfig, run_name: str, tags: dict[str, str], parent_run_id: str | None = None,
                 resume_run_id: str | None = None):
        self.enabled = bool(cfg.tracking.enabled)
        self.uri = str(cfg.tracking.uri)
        self.cfg = cfg
        self.run_name = run_name
        self.tags = tags
        self.parent_run_id = parent_run_id
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self.client = None

    def __enter__(self) -> RunTracker:
        if not self.enabled:
            return self
        self.client = make_client(self.uri)
        exp_id = get_or_create_experiment(self.client, str(self.cfg.tracking.experiment),
                                          str(self.cfg.tracking.artifact_root), self.uri)
        tags = dict(self.tags)
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        if self.resume_run_id:
            self.run_id = self.resume_run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(exp_id, run_name=self.run_name, tags=tags)
            self.run_id = run.info.run_id
            self.log_params(run_params(self.cfg))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.enabled or self.run_id is None:
            return False
        if exc is not None:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            try:
                self.client.log_text(self.run_id, text, "traceback.txt")
            finally:
                self.client.set_terminated(self.run_id, status="FAILED")
        else:
            self.client.set_terminated(self.run_id, status="FINISHED")
        return False

    # ---- logging -------------------------------------------------------------------------------------------------
    def log_params(self, params: dict[str, str]) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """All metrics in one ``log_batch`` call (non-finite values are skipped: MLflow rejects NaN in SQL stores)."""
        if not self.enabled:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step) for k, v in metrics.items() if v is not None and float(v) == float(v)
                 and abs(float(v)) != float("inf")]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled:
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, v)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and Path(path).exists():
            if Path(path).is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        if self.enabled:
            self.client.log_text(self.run_id, text, name)

    def log_figure(self, fig, name: str) -> None:
        if self.enabled:
            self.client.log_figure(self.run_id, fig, name)


def find_runs(cfg: DictConfig, config_hash_value: str, status: str | None = None) -> list:
    """Runs of this experiment carrying ``config_hash`` (optionally with a status)."""
    if not cfg.tracking.enabled:
        return []
    client = make_client(str(cfg.tracking.uri))
    exp = client.get_experiment_by_name(str(cfg.tracking.experiment))
    if exp is None:
        return []
    filt = f"tags.config_hash = '{config_hash_value}'"
    if status:
        filt += f" and attributes.status = '{status}'"
    return client.search_runs([exp.experiment_id], filter_string=filt, max_results=50)

