"""A stage's MLflow run over cached work, generic: found by its key, reused or copied under the current sweep's parent,
or logged afresh from the work's files — and per-model histories re-logged at the steps a live run gives them.

Training feeds these (its key tags, its history rows, its files); nothing here knows what a GRU or a rolling window
is. Runs whose process died are marked KILLED by :meth:`~quantsam.tracking.mlflow_run.Tracker.kill_abandoned`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from quantsam.tracking.mlflow_run import Tracker


def relog(tracker: Tracker, run_id: str | None, steps: dict[str, int], series: str,
          rows: list[dict[str, float]]) -> None:
    """Log ``rows`` (one metrics dict per epoch) at the next steps of ``series`` (``steps[series]`` counts the
    epochs already logged for it, across units), as the live run logged them."""
    tracker.log_history(run_id, [(steps[series] + i, r) for i, r in enumerate(rows)])
    steps[series] += len(rows)


def reuse_finished(tracker: Tracker, key_tags: dict[str, str], parent: str | None, name: str,
                   extra_tags: dict[str, str]) -> str | None:
    """The run of finished work with ``key_tags``: the newest FINISHED one under ``parent`` (or with no sweep), else a
    cache-hit copy of the newest under ``parent`` (tagged ``cached_from``); None when the store has none."""
    if not tracker.enabled:
        return None
    found = tracker.find(key_tags, status="FINISHED")
    if not found:
        return None
    same = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent]
    if same:
        return same[0].info.run_id
    return tracker.copy_run(found[0], name, extra_tags, parent)


def relogged_run(tracker: Tracker, name: str, tags: dict[str, str], params: dict[str, str], parent: str | None,
                 history: Iterable[tuple[str, list[dict[str, float]]]], metrics: dict[str, float] | None,
                 artifacts: Iterable[tuple[Path, str | None]]) -> str | None:
    """A new run logged from finished work's files (a store that has none for it): ``history`` yields (series, rows)
    in the order the work produced them, then ``metrics`` and the ``artifacts`` (path, artifact path)."""
    with tracker.run(name, tags, params, parent) as run_id:
        steps: dict[str, int] = {}
        for series, rows in history:
            steps.setdefault(series, 0)
            relog(tracker, run_id, steps, series, rows)
        if metrics:
            tracker.log_metrics(run_id, metrics)
        for path, where in artifacts:
            tracker.log_artifact(run_id, path, where)
    return run_id
