"""The factor-test stage: read a signal artifact, run :func:`factor_report`, write tables/figures, log to MLflow.

Input (``factor_test.input``): ``null`` = the training stage's output for this config (trained first if needed),
a training work directory (holding ``signal.parquet``), a signal parquet file (``date, code, score``), or an MLflow
run id of a training run. Outputs go to ``<work dir>/factor_test/``; metrics ``factor/...``, tables and figures are
logged to the training run, so the MLflow compare view shows them beside the optimizer's other metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from quantsam.config import validate
from quantsam.data.stage import load_for
from quantsam.errors import DataError
from quantsam.factor_test.report import FactorReport, factor_report

log = logging.getLogger(__name__)


@dataclass
class FactorTestOutputs:
    out_dir: Path
    summary: dict
    run_id: str | None
    skipped: bool = False
    report: FactorReport | None = None


def resolve_input(cfg: DictConfig) -> tuple[Path, str | None]:
    """(signal parquet path, MLflow run id to log to or None)."""
    src = cfg.factor_test.get("input")
    if src is None:
        from quantsam.train.stage import run_train

        out = run_train(cfg)
        return out.signal, out.run_id
    p = Path(str(src))
    if p.is_dir():
        sig = p / "signal.parquet"
        if not sig.exists():
            raise DataError(f"factor_test.input={p}: no signal.parquet in it. Fix: point at a training work dir "
                            "(outputs/train/<name>-<hash>/) or at a signal parquet")
        rid = p / "mlflow_run_id.txt"
        return sig, rid.read_text().strip() if rid.exists() else None
    if p.suffix == ".parquet":
        if not p.exists():
            raise DataError(f"factor_test.input={p}: file not found")
        return p, None
    if cfg.tracking.enabled:
        from quantsam.tracking.mlflow_run import make_client

        try:
            run = make_client(str(cfg.tracking.uri)).get_run(str(src))
        except Exception as e:  # mlflow raises its own exception types
            raise DataError(f"factor_test.input={src}: not a directory, a .parquet file or an MLflow run id in "
                            f"{cfg.tracking.uri} ({type(e).__name__})") from None
        work = run.data.tags.get("work_dir")
        if not work or not (Path(work) / "signal.parquet").exists():
            raise DataError(f"MLflow run {src} has no work_dir tag with a signal.parquet (is it a training run?)")
        return Path(work) / "signal.parquet", str(src)
    raise DataError(f"factor_test.input={src}: not a directory or a .parquet file")


def _file_hash(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def run_factor_test(cfg: DictConfig) -> FactorTestOutputs:
    """Run the factor test on the configured input (see module docstring); skipped when the signal file and the
    ``factor_test`` config are unchanged since the last run in the same output directory."""
    validate(cfg)
    sig_path, run_id = resolve_input(cfg)
    out_dir = sig_path.parent / "factor_test"
    ft_cfg = OmegaConf.to_container(cfg.factor_test, resolve=True)
    ft_cfg.pop("input", None)
    key = hashlib.sha256(json.dumps([ft_cfg, _file_hash(sig_path)], sort_keys=True).encode()).hexdigest()[:16]
    summary_file = out_dir / "summary.json"
    if summary_file.exists() and json.loads(summary_file.read_text()).get("cache_key") == key and not cfg.get("rerun"):
        log.info("factor test: inputs unchanged (%s), skipping", out_dir)
        return FactorTestOutputs(out_dir, json.loads(summary_file.read_text())["summary"], run_id, skipped=True)
    market = load_for(cfg)
    signal = pd.read_parquet(sig_path)
    rep = factor_report(signal, market, cfg.factor_test)
    rep.save(out_dir)
    data = json.loads(summary_file.read_text())
    data["cache_key"] = key
    data["signal"] = str(sig_path)
    summary_file.write_text(json.dumps(data, indent=1, default=float))
    if run_id and cfg.tracking.enabled:
        from mlflow.entities import Metric

        from quantsam.tracking.mlflow_run import make_client

        client = make_client(str(cfg.tracking.uri))
        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, 0) for k, v in rep.metrics().items() if v == v]
        client.log_batch(run_id, metrics=items)
        client.log_artifacts(run_id, str(out_dir), "factor_test")
    log.info("factor test -> %s", out_dir)
    return FactorTestOutputs(out_dir, rep.summary, run_id, report=rep)
