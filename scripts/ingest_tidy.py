"""Ingest a tidy parquet/CSV market folder into the data contract's parquet layout under data/.

    python scripts/ingest_tidy.py ../shared/data/real --out data/real-shared_real [--preset shared_real]
                                  [--start 2013-01-01] [--end 2024-09-30]

Prints a summary (stocks, dates, missing rates), the gaps handled (counted) and the price-limit consistency by board.
Then run the pipeline with data.source=dir data.dir=<out>, or use data=real_tidy (which ingests on first use).
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
    ap.add_argument("--preset", default="shared_real")
    ap.add_argument("--start")
    ap.add_argument("--end")
    ap.add_argument("--ffill-float-shares-days", type=int, default=250)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    d, rep = ingest_market("tidy", a.path, a.out, preset=a.preset, start=a.start, end=a.end,
                           ffill_float_shares_days=a.ffill_float_shares_days)
    print(f"wrote {d}\n" + json.dumps(rep, indent=1, default=str))


if __name__ == "__main__":
    main()
