"""Where a later stage finds its signal: the training stage's output for this config, a training work directory,
a signal parquet, or the MLflow run id of a training run."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import DictConfig

from quantsam.errors import DataError


def resolve_signal(cfg: DictConfig, src: str | None) -> tuple[Path, str | None]:
    """(signal parquet path, MLflow run id to log to, or None). ``src=None`` trains first if needed."""
    if src is None:
        from quantsam.train.stage import run_train

        out = run_train(cfg)
        return out.signal, out.run_id
    p = Path(str(src))
    if p.is_dir():
        sig = p / "signal.parquet"
        if not sig.exists():
            raise DataError(f"input {p}: no signal.parquet in it. Fix: point at a training work dir "
                            "(outputs/train/<name>-<hash>/) or at a signal parquet")
        rid = p / "mlflow_run_id.txt"
        return sig, rid.read_text().strip() if rid.exists() else None
    if p.suffix == ".parquet":
        if not p.exists():
            raise DataError(f"input {p}: file not found")
        return p, None
    if cfg.tracking.enabled:
        from quantsam.tracking.mlflow_run import make_client

        try:
            run = make_client(str(cfg.tracking.uri)).get_run(str(src))
        except Exception as e:  # mlflow raises its own exception types
            raise DataError(f"input {src}: not a directory, a .parquet file or an MLflow run id in "
                            f"{cfg.tracking.uri} ({type(e).__name__})") from None
        work = run.data.tags.get("work_dir")
        if not work or not (Path(work) / "signal.parquet").exists():
            raise DataError(f"MLflow run {src} has no work_dir tag with a signal.parquet (is it a training run?)")
        return Path(work) / "signal.parquet", str(src)
    raise DataError(f"input {src}: not a directory or a .parquet file")


def stage_key(*parts) -> str:
    """Cache key of a later stage: hash of its config subtrees and upstream artifact hashes (JSON, sorted keys)."""
    import json

    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_hash(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def log_stage(cfg: DictConfig, run_id: str | None, metrics: dict[str, float], out_dir: Path, artifact_path: str):
    """Log a later stage's metrics (one batch) and output folder to the training run."""
    if not run_id or not cfg.tracking.enabled:
        return
    import time

    from mlflow.entities import Metric

    from quantsam.tracking.mlflow_run import make_client

    client = make_client(str(cfg.tracking.uri))
    ts = int(time.time() * 1000)
    items = [Metric(k, float(v), ts, 0) for k, v in metrics.items() if v == v and abs(float(v)) != float("inf")]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i:i + 1000])
    client.log_artifacts(run_id, str(out_dir), artifact_path)
