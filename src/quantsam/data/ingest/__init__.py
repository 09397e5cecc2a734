"""Real-data adapters onto the data contract: tidy parquet/CSV (:func:`load_tidy`) and qlib's binary layout
(:func:`load_qlib`), plus :func:`ingest_market` that writes the contract's parquet layout with a report."""

from quantsam.data.ingest.market import ingest_market
from quantsam.data.ingest.qlib import load_qlib
from quantsam.data.ingest.tidy import PRESETS, load_tidy

__all__ = ["PRESETS", "ingest_market", "load_qlib", "load_tidy"]
