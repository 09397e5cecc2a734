"""Collect a finished study: every job's ``result.json`` in a sweep directory -> the artifacts of its stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quantsam.errors import DataError

OPTIMIZER_ORDER = ("adamw", "sam", "asam", "gsam", "gam", "fsam", "wsam")


@dataclass
class JobResult:
    optimizer: str
    seed: int
    work_dir: Path
    run_id: str | None
    stage_seconds: dict
    train: dict = field(default_factory=dict)  # metrics.json of the training stage
    factor: dict = field(default_factory=dict)  # factor_test/summary.json "summary"
    factor_ic: pd.DataFrame | None = None
    layer_annual: pd.Series | None = None
    backtests: dict[str, dict] = field(default_factory=dict)  # universe -> summary
    daily: dict[str, pd.DataFrame] = field(default_factory=dict)  # universe -> daily.parquet
    yearly: dict[str, pd.DataFrame] = field(default_factory=dict)
    histories: dict[str, dict] = field(default_factory=dict)  # unit tag -> history json
    splits: list[dict] = field(default_factory=list)
    notes: dict[str, dict] = field(default_factory=dict)


def _read_json(p: Path) -> dict:
    return json.loads(p.read_text()) if p.exists() else {}


def load_job(doc: dict) -> JobResult:
    w = Path(doc["work_dir"])
    job = JobResult(doc["optimizer"], int(doc["seed"]), w, doc.get("run_id"), doc.get("stage_seconds", {}))
    job.train = _read_json(w / "metrics.json")
    job.splits = json.loads((w / "splits.json").read_text()) if (w / "splits.json").exists() else []
    ft = w / "factor_test"
    if (ft / "summary.json").exists():
        job.factor = _read_json(ft / "summary.json").get("summary", {})
        job.factor_ic = pd.read_parquet(ft / "ic.parquet")
        job.layer_annual = pd.read_parquet(ft / "layer_annual.parquet")["ann_return"]
    for d in sorted((w / "backtest").glob("*/summary.json")) if (w / "backtest").exists() else []:
        u = d.parent.name
        data = _read_json(d)
        job.backtests[u] = data.get("summary", {})
        job.notes[u] = data.get("notes", {})
        job.daily[u] = pd.read_parquet(d.parent / "daily.parquet")
        job.yearly[u] = pd.read_parquet(d.parent / "yearly.parquet")
    for h in sorted((w / "history").glob("*.json")) if (w / "history").exists() else []:
        job.histories[h.stem] = _read_json(h)
    return job


def collect(sweep_dir: str | Path) -> list[JobResult]:
    """All finished jobs of a sweep (``<sweep dir>/*/result.json``), ordered by optimizer then seed."""
    d = Path(sweep_dir)
    docs = [json.loads(p.read_text()) for p in sorted(d.glob("*/result.json"))]
    if not docs:
        raise DataError(f"{d}: no */result.json — is it the sweep directory of a `make study` (pipeline multirun)?")
    jobs = [load_job(doc) for doc in docs]
    rank = {n: i for i, n in enumerate(OPTIMIZER_ORDER)}
    return sorted(jobs, key=lambda j: (rank.get(j.optimizer, 99), j.optimizer, j.seed))
