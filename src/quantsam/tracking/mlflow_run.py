"""MLflow tracking: runs found by tags in the configured store, reproducibility tags, batched metrics, artifacts.

Uses :class:`mlflow.MlflowClient` (no global active-run state), so parallel sweep jobs and tests stay independent.
MLflow state follows the config: the run a stage's work belongs to is looked up by its ``stage_key`` tag in the
configured store and experiment (never through a file in the work directory), so a new ``tracking.uri`` or
``tracking.experiment`` gets its own runs, an abandoned RUNNING run is marked KILLED when its work is resumed or
redone, and a finished result reused by a new sweep appears as a child of that sweep (a *cache-hit* run carrying the
original's params, tags and metrics, tagged ``cached_from``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from quantsam.paths import project_root
from quantsam.stageio import locked, pid_alive

log = logging.getLogger(__name__)

#: MLflow 3 opens an experiment on this kind's page: the runs table, not the GenAI "Overview / Traces" page
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


#: the experiment's saved view: MLflow's "share view" mechanism (an experiment tag ``mlflow.sharedViewState.<key>``
#: holding the runs table's state as JSON, opened by ``?viewStateShareKey=<key>``) — the one way MLflow lets a
#: project choose the columns a user sees first (the UI otherwise keeps column choices in the browser only)
VIEW_KEY = "quantsam-compare"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
#: the tag that retires a run from the comparison view: the id of the newer run of the same work (the same stage key,
#: kind and units) — a rerun of a sweep copies every cached job under its new parent, and a killed fit's run is
#: followed by its resume's; without it the view's per-optimizer averages would mix every copy (and the downstream
#: metrics of earlier configs) with the current one
SUPERSEDED_TAG = "superseded_by"
#: the tags that name one piece of work in the store (``Tracker.find``'s key for a stage's runs)
WORK_TAGS = ("stage_key", "kind", "units")


def comparison_view() -> dict:
    """The runs table a user came for: the current training runs (no :data:`SUPERSEDED_TAG`) grouped by optimizer
    (each group's row: the average over its seeds), the headline metrics
    (:data:`quantsam.tracking.headline.HEADLINE_HELP`, one per index where it says ``<index>``) as columns,
    newest first; the sweep parents sit in MLflow's "Additional runs" group."""
    from quantsam.config.schema import INDEX_CODES
    from quantsam.tracking.headline import HEADLINE_HELP

    metrics = [m.replace("<index>", u) for m in HEADLINE_HELP for u in (INDEX_CODES if "<index>" in m else [""])]
    cols = ["params.`optimizer.name`", "params.`seed`"] + [f"metrics.`{m}`" for m in metrics]
    return {"orderByKey": "attributes.start_time", "orderByAsc": False, "selectedColumns": cols,
            "searchFilter": f"tags.`{SUPERSEDED_TAG}` IS NULL",
            "runsHiddenMode": "SHOW_ALL",
            "groupBy": {"aggregateFunction": "average",
                        "groupByKeys": [{"mode": "param", "groupByData": "optimizer.name"}]}}


def set_comparison_view(client, experiment) -> None:
    """Write the comparison view onto ``experiment`` (an MLflow Experiment) unless it already holds this one."""
    view = json.dumps(comparison_view())
    if experiment.tags.get(VIEW_TAG) != view:
        client.set_experiment_tag(experiment.experiment_id, VIEW_TAG, view)


def retire_superseded(client, experiment_id: str) -> int:
    """A store written before :data:`SUPERSEDED_TAG` existed holds several current-looking runs of one piece of work
    (every rerun of a sweep copied its cached jobs): per work (:data:`WORK_TAGS`), the newest run not yet retired
    stays and the others get the tag naming it — the rule :meth:`Tracker.mark_current` applies as runs are made.
    Returns how many runs it tagged."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`stage_key` IS NOT NULL and "
                                  f"tags.`{SUPERSEDED_TAG}` IS NULL", max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    current: dict[tuple, str] = {}
    n = 0
    for r in runs:  # newest first: the pages continue one ordered search
        work = tuple(r.data.tags.get(k, "") for k in WORK_TAGS)
        if work not in current:
            current[work] = r.info.run_id
        else:
            client.set_tag(r.info.run_id, SUPERSEDED_TAG, current[work])
            n += 1
    return n


def ui_link(base: str, experiment_id: str, view: bool = True) -> str:
    """The MLflow UI page of an experiment's runs table, opened on the comparison view (:func:`comparison_view`)
    unless ``view`` is False. MLflow 3 opens in its GenAI view by default (the choice is remembered per browser);
    ``workflowType=machine_learning`` opens the training-runs view."""
    if not view:
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={VIEW_KEY}")


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
    keep = {k: c[k] for k in ("optimizer", "model", "trainer", "features", "data", "universe", "signal") if k in c}
    flat = flatten(keep)
    flat["seed"] = c.get("seed")
    flat.pop("data.dir", None)
    return {k: str(v)[:500] for k, v in flat.items()}


def _finite(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and abs(f) != float("inf")


_CHECKED: set[str] = set()  # HTTP tracking URIs that answered as MLflow servers in this process


class Tracker:
    """One configured MLflow store and experiment (``cfg.tracking``). Every method is a no-op when disabled."""

    def __init__(self, tracking_cfg):
        self.enabled = bool(tracking_cfg.enabled)
        self.uri = str(tracking_cfg.uri)
        self.experiment = str(tracking_cfg.experiment)
        self.artifact_root = tracking_cfg.get("artifact_root")
        self._client = None
        self._exp_id: str | None = None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            if self.uri.startswith("sqlite:///"):
                Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            self.check()
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def check(self, timeout: float = 5.0) -> None:
        """For an HTTP tracking URI: one ``GET /health`` before anything is logged, so a dead or wrong server is a
        clear :class:`ConfigError` at once — not minutes of client retries and a traceback after the data stage."""
        if not self.enabled or not self.uri.startswith(("http://", "https://")) or self.uri in _CHECKED:
            return
        import urllib.error
        import urllib.request

        from quantsam.errors import ConfigError

        url = self.uri.rstrip("/") + "/health"
        fix = ("Fix: start one (make mlflow-server PORT=<port>) and point tracking.uri at it, or use the local store "
               "(tracking=mlflow)")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (the configured server)
                status, body = r.status, r.read(64).decode(errors="replace").strip()
        except urllib.error.HTTPError as e:
            raise ConfigError([f"tracking.uri={self.uri}: the server answers GET /health with {e.code}: not an MLflow "
                               f"tracking server. {fix}"]) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConfigError([f"tracking.uri={self.uri}: no MLflow server answers ({reason}). {fix}"]) from None
        if status != 200 or body.upper() != "OK":
            raise ConfigError([f"tracking.uri={self.uri}: GET /health gave {status} {body!r}, not MLflow's 'OK'. {fix}"])
        _CHECKED.add(self.uri)

    def _lock_path(self) -> Path:
        if self.uri.startswith("sqlite:///"):
            return Path(self.uri[len("sqlite:///"):])
        return project_root() / ".mlflow"

    def experiment_id(self) -> str:
        """The experiment's id, created once under a file lock (parallel jobs share one store) as a model-training
        experiment (MLflow 3 then shows its runs table first)."""
        if self._exp_id is None:
            with locked(self._lock_path(), timeout=300):
                exp = self.client.get_experiment_by_name(self.experiment)
                if exp is None:
                    loc = None
                    if self.artifact_root and not self.uri.startswith(("http://", "https://")):
                        Path(str(self.artifact_root)).mkdir(parents=True, exist_ok=True)
                        loc = Path(str(self.artifact_root)).resolve().as_uri()
                    try:
                        self._exp_id = self.client.create_experiment(self.experiment, artifact_location=loc,
                                                                     tags=EXPERIMENT_KIND)
                    except Exception:  # another node created it first (a server store: no shared file lock)
                        exp = self.client.get_experiment_by_name(self.experiment)
                        if exp is None:
                            raise
                        self._exp_id = exp.experiment_id
                else:
                    self._exp_id = exp.experiment_id
                    if exp.tags.get("mlflow.experimentKind") is None:
                        self.client.set_experiment_tag(self._exp_id, *next(iter(EXPERIMENT_KIND.items())))
                set_comparison_view(self.client, self.client.get_experiment(self._exp_id) if exp is None else exp)
        return self._exp_id

    # ---- finding runs ---------------------------------------------------------------------------------------------
    def find(self, tags: dict[str, str], status: str | None = None) -> list:
        """Runs of the experiment carrying every tag in ``tags`` (optionally with a status), newest first."""
        if not self.enabled:
            return []
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is None:
            return []
        filt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        if status:
            filt += f" and attributes.status = '{status}'"
        return self.client.search_runs([exp.experiment_id], filter_string=filt, max_results=200,
                                       order_by=["attributes.start_time DESC"])

    def kill_abandoned(self, tags: dict[str, str], reason: str) -> list[str]:
        """Mark RUNNING runs with ``tags`` KILLED: their process is gone, the work is being resumed or redone. A run
        whose ``host`` / ``pid`` tags name a live process on this host other than this one (a parallel job waiting on
        the same work) is left alone; runs without those tags are taken as gone."""
        host, ids = socket.gethostname(), []
        for r in self.find(tags, status="RUNNING"):
            t = r.data.tags
            pid = t.get("pid", "")
            if t.get("host") == host and pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
                continue
            self.client.set_tag(r.info.run_id, "killed_because", reason)
            self.client.set_terminated(r.info.run_id, status="KILLED")
            ids.append(r.info.run_id)
        if ids:
            log.info("MLflow: marked %d abandoned RUNNING run(s) KILLED (%s): %s", len(ids), reason, ids)
        return ids

    def mark_current(self, tags: dict[str, str], run_id: str | None) -> list[str]:
        """Make ``run_id`` the one run of its work (``tags``: :data:`WORK_TAGS`) that the comparison view shows: every
        other run with ``tags`` gets :data:`SUPERSEDED_TAG` naming it (hidden from the view, kept in the store), and
        ``run_id`` loses the tag if an earlier pass gave it one. Returns the ids it retired."""
        if not self.enabled or run_id is None:
            return []
        ids = []
        for r in self.find(tags):
            if r.info.run_id == run_id:
                if SUPERSEDED_TAG in r.data.tags:
                    self.client.delete_tag(run_id, SUPERSEDED_TAG)
            elif r.data.tags.get(SUPERSEDED_TAG) != run_id:
                self.client.set_tag(r.info.run_id, SUPERSEDED_TAG, run_id)
                ids.append(r.info.run_id)
        if ids:
            log.info("MLflow: run %s is now its work's current run; %d older one(s) tagged %s", run_id, len(ids),
                     SUPERSEDED_TAG)
        return ids

    # ---- runs -----------------------------------------------------------------------------------------------------
    @contextmanager
    def run(self, name: str, tags: dict[str, str], params: dict[str, str] | None = None,
            parent_run_id: str | None = None) -> Iterator[str | None]:
        """A new run, ended FINISHED, or FAILED with ``traceback.txt`` when the block raises. Yields its id."""
        if not self.enabled:
            yield None
            return
        tags = {**tags, **({"mlflow.parentRunId": parent_run_id} if parent_run_id else {})}
        run_id = self.client.create_run(self.experiment_id(), run_name=name, tags=tags).info.run_id
        try:
            if params:
                self.log_params(run_id, params)
            yield run_id
        except BaseException as e:
            try:
                self.client.log_text(run_id, "".join(traceback.format_exception(type(e), e, e.__traceback__)),
                                     "traceback.txt")
            finally:
                self.client.set_terminated(run_id, status="KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            raise
        self.client.set_terminated(run_id, status="FINISHED")

    def copy_run(self, source, name: str, extra_tags: dict[str, str], parent_run_id: str | None) -> str | None:
        """A FINISHED cache-hit run under ``parent_run_id`` with ``source``'s params, tags and latest metrics."""
        if not self.enabled:
            return None
        from mlflow.entities import Metric, Param, RunTag

        skip = ("mlflow.parentRunId", "mlflow.runName", "mlflow.rootRunId")
        tags = {k: v for k, v in source.data.tags.items() if k not in skip}
        tags.update({"cached_from": source.info.run_id, **extra_tags})
        with self.run(name, tags, parent_run_id=parent_run_id) as run_id:
            ts = int(time.time() * 1000)
            params = [Param(k, v) for k, v in source.data.params.items()]
            metrics = [Metric(k, float(v), ts, 0) for k, v in source.data.metrics.items() if _finite(v)]
            for i in range(0, len(params), 100):
                self.client.log_batch(run_id, params=params[i:i + 100])
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(run_id, metrics=metrics[i:i + 1000])
            self.client.log_batch(run_id, tags=[RunTag("source_artifact_uri", source.info.artifact_uri)])
        return run_id

    # ---- logging --------------------------------------------------------------------------------------------------
    def log_params(self, run_id: str | None, params: dict[str, str]) -> None:
        if not self.enabled or run_id is None:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_metrics(self, run_id: str | None, metrics: dict[str, float], step: int = 0) -> None:
        """All metrics in batched ``log_batch`` calls (non-finite values are skipped: SQL stores reject NaN)."""
        if not self.enabled or run_id is None:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step) for k, v in metrics.items() if _finite(v)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i:i + 1000])

    def log_history(self, run_id: str | None, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Per-step metrics ``[(step, {key: value}), ...]`` in as few calls as possible."""
        if not self.enabled or run_id is None:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, int(step)) for step, m in rows for k, v in m.items() if _finite(v)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i:i + 1000])

    def set_tags(self, run_id: str | None, tags: dict[str, str]) -> None:
        if not self.enabled or run_id is None:
            return
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str | None, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and run_id is not None and Path(path).exists():
            if Path(path).is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(run_id, str(path), artifact_path)

    def log_text(self, run_id: str | None, text: str, name: str) -> None:
        if self.enabled and run_id is not None:
            self.client.log_text(run_id, text, name)

    def log_stage(self, run_id: str | None, metrics: dict[str, float], out_dir: str | Path, artifact_path: str | None,
                  only_if_missing: bool = False) -> None:
        """A later stage's metrics (one batch) and output folder, onto the run it belongs to. With
        ``only_if_missing`` (a cache hit) nothing is logged when the run already has the first metric."""
        if not self.enabled or run_id is None or not metrics:
            return
        if only_if_missing:
            have = self.client.get_run(run_id).data.metrics
            if next(iter(metrics)) in have:
                return
        self.log_metrics(run_id, metrics)
        self.log_artifact(run_id, out_dir, artifact_path)
