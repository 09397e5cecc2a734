"""The data stage: make the market directory every later stage reads (synthetic: generate once, then cache)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from quantsam.data.contract import validate_daily
from quantsam.data.io import MarketData, load_market, save_market
from quantsam.errors import DataError

log = logging.getLogger(__name__)

SYNTHETIC_KEYS = ("seed", "n_stocks", "start", "end", "n_industries", "signal_strength")


def synthetic_params(cfg: DictConfig) -> dict:
    return {k: OmegaConf.select(cfg, f"data.{k}") for k in SYNTHETIC_KEYS}


def run_data(cfg: DictConfig) -> Path:
    """Ensure the market directory exists and is complete (under a file lock: parallel sweep jobs share it)."""
    from filelock import FileLock

    d = Path(cfg.data.dir)
    d.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d) + ".lock", timeout=3600):
        return _run_data(cfg)


def _run_data(cfg: DictConfig) -> Path:
    """Ensure the market directory ``cfg.data.dir`` exists and is complete; return it.

    ``data.source=synthetic`` generates the market (skipped when ``meta.json`` records the same parameters);
    ``data.source=dir`` expects a directory written by an ingest script.
    """
    d = Path(cfg.data.dir)
    source = cfg.data.source
    if source == "synthetic":
        from quantsam.data.synthetic import GENERATOR_VERSION

        params = synthetic_params(cfg)
        meta_path = d / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            keys = (*SYNTHETIC_KEYS, "generator_version")
            want = {**params, "generator_version": GENERATOR_VERSION}
            if {k: meta.get("params", {}).get(k) for k in keys} == want:
                log.info("data: cache hit %s (fingerprint %s)", d, meta.get("fingerprint"))
                return d
        from quantsam.data.synthetic import generate_market

        t0 = time.perf_counter()
        m = generate_market(**params)
        report = validate_daily(m.daily, source="synthetic market")
        save_market(m, d, extra_meta={"source": "synthetic", "seconds": round(time.perf_counter() - t0, 2)})
        log.info("data: synthetic market %s -> %s in %.1fs", report.summary(), d, time.perf_counter() - t0)
        return d
    if source in ("tidy", "qlib"):
        from quantsam.data.ingest import ingest_market

        if not cfg.data.get("path"):
            raise DataError(f"data.source={source} needs data.path (the folder with your data). Fix: "
                            f"data.path=/path/to/{'qlib_data/cn_data' if source == 'qlib' else 'export'}")
        keys = ("source", "path", "preset", "start", "end", "instruments", "volume_is_adjusted", "tables_path",
                "ffill_float_shares_days")
        want = {k: OmegaConf.select(cfg, f"data.{k}") for k in keys}
        meta_path = d / "meta.json"
        if meta_path.exists() and json.loads(meta_path.read_text()).get("ingest_params") == json.loads(
                json.dumps(want, default=str)):
            log.info("data: ingested copy up to date %s", d)
            return d
        out, rep = ingest_market(source, want["path"], d, preset=want["preset"], instruments=want["instruments"],
                                 start=want["start"], end=want["end"],
                                 ffill_float_shares_days=int(want["ffill_float_shares_days"]),
                                 volume_is_adjusted=bool(want["volume_is_adjusted"]), tables_path=want["tables_path"])
        meta = json.loads(meta_path.read_text())
        meta["ingest_params"] = json.loads(json.dumps(want, default=str))
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
        log.info("data: %s", json.dumps(rep["summary"], default=str))
        return out
    if not (d / "daily.parquet").exists():
        raise DataError(f"data.dir='{d}' has no daily.parquet. Fix: run an ingest script (scripts/ingest_tidy.py or "
                        "scripts/ingest_qlib.py) with --out pointing there, or use data=synthetic.")
    return d


def load_for(cfg: DictConfig) -> MarketData:
    """Run the data stage if needed and load its tables."""
    return load_market(run_data(cfg))
