"""The data stage: make (or check) the market directory every later stage reads; return its :class:`DataRef`.

* ``data.source=synthetic`` generates the market once per parameter set (key: every generator parameter + the
  generator version);
* ``tidy`` / ``qlib`` ingest the user's export once (key: adapter parameters + version + a stamp of the source files);
* ``dir`` reads a directory written elsewhere (an ingest script, another machine). Its manifest, when intact,
  gives the fingerprint; otherwise the tables — bars and side tables — are validated and fingerprinted here.

The directory goes through the one cached-run ritual (:func:`quantsam.stageio.run_cached`): written all-or-nothing,
done only through its manifest, under a file lock so parallel sweep jobs generate it once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.data.contract import validate_daily
from quantsam.data.io import DataRef, MarketWrite, files_fingerprint, load_market, market_ref
from quantsam.data.side_tables import validate_side_tables
from quantsam.errors import DataError

log = logging.getLogger(__name__)

#: the data stage (its key's version is the generator's or the adapters', see :func:`data_key`); its numbers depend on
#: the modules of ``data`` (stageio.code_version)
DATA = stageio.Stage("data", 0, ("data",))

SYNTHETIC_KEYS = ("seed", "n_stocks", "start", "end", "n_industries", "signal_strength", "jump_rate")
INGEST_KEYS = ("source", "path", "preset", "start", "end", "instruments", "volume_is_adjusted", "tables_path",
               "ffill_float_shares_days")


def synthetic_params(cfg: DictConfig) -> dict:
    return {k: OmegaConf.select(cfg, f"data.{k}") for k in SYNTHETIC_KEYS}


def data_key(cfg: DictConfig) -> str:
    """The data stage's key for this config (synthetic or ingested sources)."""
    source = str(cfg.data.source)
    if source == "synthetic":
        from quantsam.data.synthetic import GENERATOR_VERSION

        return stageio.stage_key("data", GENERATOR_VERSION, source=source, params=synthetic_params(cfg))
    from quantsam.data.ingest.market import ingest_key

    return ingest_key(source, _ingest_params(cfg))


def _ingest_params(cfg: DictConfig) -> dict:
    """The adapter parameters of this config, as the ingest key hashes them and the adapters take them."""
    from quantsam.data.ingest.market import ingest_params

    p = {k: OmegaConf.select(cfg, f"data.{k}") for k in INGEST_KEYS}
    p["path"] = str(Path(str(p["path"])).expanduser()) if p["path"] else p["path"]
    return ingest_params(**p)


def run_data(cfg: DictConfig) -> DataRef:
    """Ensure the market directory ``cfg.data.dir`` exists, is complete and matches the config; return its ref."""
    d = Path(str(cfg.data.dir))
    source = str(cfg.data.source)
    if source == "dir":
        return _existing_dir(d)
    if source in ("tidy", "qlib") and not cfg.data.get("path"):
        raise DataError(f"data.source={source} needs data.path (the folder with your data). Fix: "
                        f"data.path=/path/to/{'qlib_data/cn_data' if source == 'qlib' else 'export'}")
    t0 = time.perf_counter()

    def compute() -> MarketWrite:
        if source == "synthetic":
            from quantsam.data.synthetic import generate_market

            m = generate_market(**synthetic_params(cfg))
            summary = validate_daily(m.daily, source="synthetic market")
            log.info("data: synthetic market %s -> %s in %.1fs", summary.summary(), d, time.perf_counter() - t0)
            return MarketWrite(m, {"source": "synthetic", "seconds": round(time.perf_counter() - t0, 2)})
        from quantsam.data.ingest.market import ingest_meta, load_source

        params = _ingest_params(cfg)
        m, rep = load_source(**params)
        log.info("data: ingested %s", rep["summary"])
        return MarketWrite(m, ingest_meta(source, rep, params))

    c = stageio.run_cached(DATA, d, data_key(cfg), compute)
    ref = market_ref(d)
    if ref is None:  # its manifest predates the fingerprint: unreadable as a market ref
        raise DataError(f"data.dir='{d}': its manifest records no fingerprint. Fix: delete the folder (it is "
                        "regenerated) or point data.dir elsewhere")
    if c.skipped:
        log.info("data: cache hit %s (fingerprint %s)", d, ref.fingerprint)
    return ref


def _existing_dir(d: Path) -> DataRef:
    """A directory written elsewhere: trusted through an intact manifest, else validated and fingerprinted now."""
    if not (d / "daily.parquet").exists():
        raise DataError(f"data.dir='{d}' has no daily.parquet. Fix: run an ingest script (scripts/ingest_tidy.py or "
                        "scripts/ingest_qlib.py) with --out pointing there, or use data=synthetic.")
    ref = market_ref(d)
    if ref is not None:
        log.info("data: %s (fingerprint %s, from its manifest)", d, ref.fingerprint)
        return ref
    log.info("data: %s has no intact manifest: validating its tables against the contract", d)
    m = load_market(d, with_alpha=False)
    validate_daily(m.daily, source=str(d / "daily.parquet"))
    validate_side_tables(m.daily, m.index_members, m.index_weights, m.industry,
                         {t: str(d / f"{t}.parquet") for t in ("index_members", "index_weights", "industry")})
    return DataRef(d, files_fingerprint(d))
