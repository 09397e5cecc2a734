"""Where a standalone factor test or backtest finds its signal (``RUN=...`` in make): a training work directory, a
signal parquet, or the MLflow run id of a training run. Returns a path — never trains (the orchestrator runs the
upstream stages when no input is given)."""

from __future__ import annotations

from pathlib import Path

from quantsam.errors import DataError
from quantsam.tracking.mlflow_run import Tracker


def resolve_signal(spec: str, tracker: Tracker) -> tuple[Path, str | None]:
    """(signal parquet, MLflow run id the results belong to or None) for ``spec``."""
    p = Path(str(spec)).expanduser()
    if p.is_dir():
        sig = p / "signal.parquet"
        if not sig.exists():
            raise DataError(f"input {p}: no signal.parquet in it. Fix: point at a training work dir "
                            "(outputs/train/<name>-<key>/) whose pipeline has run, or at a signal parquet")
        runs = tracker.find({"work_dir": str(p.resolve()), "kind": "train"}, status="FINISHED")
        return sig, runs[0].info.run_id if runs else None
    if p.suffix == ".parquet":
        if not p.exists():
            raise DataError(f"input {p}: file not found. Fix: give an existing signal parquet (date, code, score)")
        return p, None
    if tracker.enabled:
        try:
            run = tracker.client.get_run(str(spec))
        except Exception as e:  # mlflow raises its own exception types
            raise DataError(f"input {spec}: not a directory, a .parquet file or an MLflow run id in "
                            f"{tracker.uri} ({type(e).__name__})") from None
        work = run.data.tags.get("work_dir")
        if not work or not (Path(work) / "signal.parquet").exists():
            raise DataError(f"MLflow run {spec} has no work_dir tag with a signal.parquet (is it a training run "
                            "whose pipeline has run?)")
        return Path(work) / "signal.parquet", str(spec)
    raise DataError(f"input {spec}: not a directory or a .parquet file (and tracking is disabled, so not a run id)")
