"""Collect a finished study: every job's ``result.json`` in a sweep directory -> the artifacts of its stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quantsam.errors import DataError
from quantsam.jobresult import JobResult as JobRecord
from quantsam.optim import list_optimizers, optimizer_class

#: the report's arm groups, in display order (the optimizer classes' ``family``)
FAMILIES = ("baseline", "generalisation", "efficiency", "combined")


@dataclass
class JobResult:
    optimizer: str
    seed: int
    work_dir: Path
    run_id: str | None
    stage_seconds: dict
    data_dir: Path | None = None
    data_fingerprint: str | None = None
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
    optimizer_name: str = ""  # the optimizer behind the arm (``optimizer`` is the arm, e.g. adamw_matched)
    family: str = ""  # baseline | generalisation | efficiency | combined
    windows: pd.DataFrame | None = None  # signal_windows.parquet: test RankIC / IC per (window, seed index)


def _read_json(p: Path) -> dict:
    return json.loads(p.read_text()) if p.exists() else {}


def load_job(doc: JobRecord) -> JobResult:
    """A job's results from the stage outputs its ``result.json`` (:class:`~quantsam.jobresult.JobResult`) names."""
    w = Path(doc.work_dir)
    job = JobResult(doc.optimizer, int(doc.seed), w, doc.run_id, doc.stage_seconds,
                    Path(doc.data_dir) if doc.data_dir else None, doc.data_fingerprint)
    job.optimizer_name = str(doc.optimizer_name or doc.optimizer)
    try:
        job.family = optimizer_class(job.optimizer_name).family
    except ValueError:
        job.family = "generalisation"
    sig = doc.signal_dir
    job.train = {**_read_json(w / "metrics.json"),
                 **(_read_json(sig / "summary.json").get("summary", {}) if sig is not None else {})}
    if sig is not None and (sig / "signal_windows.parquet").exists():
        job.windows = pd.read_parquet(sig / "signal_windows.parquet")
    job.splits = json.loads((w / "splits.json").read_text()) if (w / "splits.json").exists() else []
    ft = Path(doc.factor_dir) if doc.factor_dir else None
    if ft is not None and (ft / "summary.json").exists():
        job.factor = _read_json(ft / "summary.json").get("summary", {})
        job.factor_ic = pd.read_parquet(ft / "ic.parquet")
        job.layer_annual = pd.read_parquet(ft / "layer_annual.parquet")["ann_return"]
    for u, d in (doc.backtest_dirs or {}).items():
        d = Path(d)
        if not (d / "summary.json").exists():
            continue
        data = _read_json(d / "summary.json")
        job.backtests[u] = data.get("summary", {})
        job.notes[u] = data.get("notes", {})
        job.daily[u] = pd.read_parquet(d / "daily.parquet")
        job.yearly[u] = pd.read_parquet(d / "yearly.parquet")
    for h in sorted((w / "history").glob("*.json")) if (w / "history").exists() else []:
        job.histories[h.stem] = _read_json(h)
    return job


def collect(sweep_dir: str | Path) -> list[JobResult]:
    """All finished jobs of a sweep (``<sweep dir>/*/result.json``), ordered by group (:data:`FAMILIES`), optimizer,
    arm, then seed."""
    d = Path(sweep_dir)
    docs = JobRecord.all_in(d)
    if not docs:
        raise DataError(f"{d}: no */result.json — is it the sweep directory of a `make study` (pipeline multirun)?")
    jobs = [load_job(doc) for doc in docs]
    rank = {n: i for i, n in enumerate(list_optimizers())}
    fam = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(jobs, key=lambda j: (fam.get(j.family, 9), rank.get(j.optimizer_name, 99), j.optimizer != j.optimizer_name,
                                       j.optimizer, j.seed))
