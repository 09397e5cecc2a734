"""Ingest a qlib data folder (calendars/, instruments/, features/<code>/<field>.day.bin) into the data contract.

    python scripts/ingest_qlib.py ~/.qlib/qlib_data/cn_data --out data/qlib-all [--instruments all]
                                  [--volume-is-adjusted] [--tables ../shared/data/real] [--start ...] [--end ...]

qlib prices are back-adjusted (raw x factor) and suspended days are forward-filled with volume 0: the adapter
restores raw prices, drops the suspended rows and flags the VWAP proxy (qlib has no amount). --tables reads index
members / weights / industry from a tidy folder (preset shared_real); otherwise memberships come from
instruments/csi300.txt etc.
"""

from __future__ import annotations

import argparse
import json
import logging

from quantsam.data.ingest import ingest_market


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--out", required=True)
    ap.add_argument("--instruments", default="all")
    ap.add_argument("--volume-is-adjusted", action="store_true")
    ap.add_argument("--tables")
    ap.add_argument("--start")
    ap.add_argument("--end")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    d, rep = ingest_market("qlib", a.path, a.out, instruments=a.instruments, start=a.start, end=a.end,
                           volume_is_adjusted=a.volume_is_adjusted, tables_path=a.tables)
    print(f"wrote {d}\n" + json.dumps(rep, indent=1, default=str))


if __name__ == "__main__":
    main()
