"""Where a standalone factor test or backtest starts (``RUN=...`` in make): a training work directory or the MLflow
run id of a training run (its predictions: the orchestrator runs the signal stage on them — cached — first), a
signal folder or a signal parquet (used as given). Never trains."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quantsam.errors import DataError
from quantsam.tracking.mlflow_run import Tracker


@dataclass(frozen=True)
class Input:
    """A standalone command's seeded artifact: ``kind`` is ``predictions`` (the signal stage runs on it) or
    ``signal``; ``run_id`` the training run the results belong to (None for a bare file); ``run_config`` the
    ``config.yaml`` of the training that made it (None when unknown)."""

    kind: str
    path: Path
    run_id: str | None
    run_config: Path | None


def _training_run(tracker: Tracker, work: Path) -> str | None:
    runs = tracker.find({"work_dir": str(work.resolve()), "kind": "train"}, status="FINISHED")
    return runs[0].info.run_id if runs else None


def _config_of(work: Path) -> Path | None:
    return work / "config.yaml" if (work / "config.yaml").exists() else None


def resolve_input(spec: str, tracker: Tracker) -> Input:
    """The artifact ``spec`` names (see the module docstring), checked to exist."""
    p = Path(str(spec)).expanduser()
    if p.is_dir() and (p / "predictions.parquet").exists():  # a training work dir
        return Input("predictions", p / "predictions.parquet", _training_run(tracker, p), _config_of(p))
    if p.is_dir() and (p / "signal.parquet").exists():  # a signal folder (outputs/signal/<name>-<key>/)
        p = p / "signal.parquet"
    if p.is_dir():
        raise DataError(f"input {p}: neither a training work dir (no predictions.parquet) nor a signal folder (no "
                        "signal.parquet). Fix: point at outputs/train/<name>-<key>/ of a finished training, at a "
                        "signal folder or a signal parquet")
    if p.suffix == ".parquet":
        if not p.exists():
            raise DataError(f"input {p}: file not found. Fix: give an existing signal parquet (date, code, score)")
        work = _signal_training_dir(p)
        return Input("signal", p, _training_run(tracker, work) if work else None, _config_of(work) if work else None)
    if tracker.enabled:
        try:
            run = tracker.client.get_run(str(spec))
        except Exception as e:  # mlflow raises its own exception types
            raise DataError(f"input {spec}: not a directory, a .parquet file or an MLflow run id in "
                            f"{tracker.uri} ({type(e).__name__})") from None
        work = run.data.tags.get("work_dir")
        if not work or not (Path(work) / "predictions.parquet").exists():
            raise DataError(f"MLflow run {spec} has no work_dir tag with a predictions.parquet (is it a finished "
                            "training run?)")
        return Input("predictions", Path(work) / "predictions.parquet", str(spec), _config_of(Path(work)))
    raise DataError(f"input {spec}: not a directory or a .parquet file (and tracking is disabled, so not a run id)")


def _signal_training_dir(signal: Path) -> Path | None:
    """The training work dir a signal folder was made from (its ``summary.json`` names the predictions)."""
    f = signal.parent / "summary.json"
    try:
        pred = json.loads(f.read_text()).get("predictions") if f.exists() else None
    except (OSError, ValueError):
        return None
    return Path(pred).parent if pred and Path(pred).parent.is_dir() else None
