"""Benchmark: how closely each reconstructed index benchmark tracks the published index (issue 32, item 4).

For CSI300 / CSI500 / CSI1000 over a period (default the real study's test period), from the market of an experiment
(default ``experiment=real_arms``): the reconstruction's total return (index weights at the previous close x
adjusted returns — published weights where the data has them, else float-cap weights within the point-in-time
members), its cash dividend yield (members' ex-date dividends from ``preclose``,
``quantsam.backtest.runner.cash_dividend_yield``), its price return (total return less dividends) against the
published price index — the yearly gap and the daily tracking error — and the ``price_plus_dividends`` benchmark
(published price index + the dividends) beside the total return. Nothing is written.

    python scripts/bench/benchmark_tracking.py
    python scripts/bench/benchmark_tracking.py --start 2021-01-01 --end 2021-12-31
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="real_arms")
    ap.add_argument("--start", default="2020-01-02")
    ap.add_argument("--end", default="2024-06-28")
    a = ap.parse_args()
    from quantsam.backtest.metrics import DAYS
    from quantsam.backtest.runner import (
        benchmark_series,
        cash_dividend_yield,
        dividend_addon,
        index_weight_matrix,
        reconstruction_gap,
    )
    from quantsam.config import compose
    from quantsam.config.schema import INDEX_CODES
    from quantsam.crosssection import annualize
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market

    cfg = compose([f"experiment={a.experiment}"])
    market = open_market(run_data(cfg))
    panel, tables = market.panel(), market.tables()
    s0 = int(np.searchsorted(panel.dates, pd.Timestamp(a.start)))
    s1 = int(np.searchsorted(panel.dates, pd.Timestamp(a.end), side="right"))
    close_adj = (panel.field("close") * panel.field("adj_factor")).astype(np.float64)
    dy = cash_dividend_yield(panel.field("close"), panel.field("preclose"))
    print(f"{a.start} .. {a.end} ({s1 - s0} days); yearly figures annualised over {DAYS} days")
    print(f"{'index':<8} {'weights':<46} {'TR':>7} {'price':>7} {'divs':>6} {'gap':>7} {'TE':>6} {'P+D':>7}")
    for name, code in INDEX_CODES.items():
        w, source = index_weight_matrix(panel, tables, code)
        r_tr, r_price = benchmark_series(tables, panel, w, close_adj, code, s0, s1)
        if r_price is None:
            print(f"{name:<8} no published series")
            continue
        divs = dividend_addon(w, dy, s0, s1)
        g = reconstruction_gap(r_tr, divs, r_price)
        ok = np.isfinite(r_price)
        pd_ = np.where(ok, r_price + divs, r_tr)
        print(f"{name:<8} {source[:46]:<46} {100 * annualize(r_tr, DAYS):>6.1f}% "
              f"{100 * annualize(np.where(ok, r_price, 0.0), DAYS):>6.1f}% {100 * g['bench_dividend_yield_ann']:>5.1f}% "
              f"{100 * g['bench_recon_gap_ann']:>+6.2f}% {100 * g['bench_recon_te']:>5.2f}% "
              f"{100 * annualize(pd_, DAYS):>6.1f}%")
    print("TR: the reconstruction's total return; price: the published index; divs: the reconstruction's cash "
          "dividend yield; gap / TE: its price return (TR - divs) minus the published index, per year and as a "
          "daily tracking error; P+D: the published index plus the dividends (backtest.benchmark=price_plus_dividends)")


if __name__ == "__main__":
    main()
