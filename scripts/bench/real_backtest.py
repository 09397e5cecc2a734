"""Benchmark: where a real index-enhanced backtest's time goes (issue 32, item 6), in CPU seconds.

Runs ``run_index_enhanced`` on the real data of an experiment (default ``experiment=real_arms``) for one index and a
few months, with a signal from a run (``--signal <signal.parquet>``) or, without one, the 5-day reversal (minus the
5-day return: a real, weak price-volume signal that needs no training), under cProfile, and attributes the CPU
seconds to: the risk inputs (styles, factor regressions), the per-rebalance covariance, the solver (every step of the
relaxation chain), the candidates / loadings / ex-ante TE bookkeeping, the simulation and the tables. Prints seconds
per rebalance for each, so a change can be measured against this one in one run (``--portfolio`` A and B).

    python scripts/bench/real_backtest.py --universe csi1000 --weeks 26
    python scripts/bench/real_backtest.py --universe csi500 --portfolio risk_controlled --portfolio cost_aware
    python scripts/bench/real_backtest.py --signal outputs/signals/<run>/signal.parquet --portfolio top_n
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np
import pandas as pd

#: (label, function names whose cumulative time it is; first match wins, in this order)
PARTS = [
    ("risk inputs (styles, factor regressions)", ("risk_inputs", "build_risk_inputs", "styles")),
    ("solver (all relaxation steps)", ("_solve_step",)),
    ("covariance per rebalance", ("covariance",)),
    ("ex-ante TE and loadings", ("tracking_error", "risk_loadings")),
    ("candidates", ("candidates",)),
    ("attribution", ("attribute",)),
]


def reversal_signal(panel, t0: int, t1: int) -> np.ndarray:
    close = panel.field("close") * panel.field("adj_factor")
    sig = np.full(close.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sig[5:] = -(close[5:] / close[:-5] - 1.0)
    sig[:t0] = np.nan
    sig[t1:] = np.nan
    return np.where(panel.traded, sig, np.nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="real_arms")
    ap.add_argument("--universe", default="csi1000", choices=["csi300", "csi500", "csi1000"])
    ap.add_argument("--portfolio", action="append", default=None, help="portfolio config(s) (repeatable)")
    ap.add_argument("--start", default="2021-01-04")
    ap.add_argument("--weeks", type=int, default=13)
    ap.add_argument("--signal", default=None, help="a signal parquet (date, code, score); default: 5-day reversal")
    ap.add_argument("--top", type=int, default=0, help="also print the top N functions by own time")
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from quantsam.backtest.runner import run_index_enhanced
    from quantsam.backtest.stage import risk_inputs
    from quantsam.config import compose
    from quantsam.config.schema import INDEX_CODES
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market
    from quantsam.signals.io import to_dense

    for pname in a.portfolio or ["risk_controlled"]:
        start = pd.Timestamp(a.start)
        end = start + pd.Timedelta(weeks=a.weeks)
        cfg = compose([f"experiment={a.experiment}", f"portfolio={pname}", f"backtest.start={start.date()}",
                       f"backtest.end={end.date()}", "backtest.attribution=false"])
        market = open_market(run_data(cfg))
        panel = market.panel()
        t0, t1 = np.searchsorted(panel.dates, start), np.searchsorted(panel.dates, end, side="right")
        if a.signal:
            sig = to_dense(pd.read_parquet(a.signal), panel, "score", a.signal)
        else:
            sig = reversal_signal(panel, int(t0), int(t1))
        market.styles()  # built once per process in the pipeline too (market memo): outside the timing
        prof = cProfile.Profile()
        w0, c0 = time.perf_counter(), time.process_time()
        with threadpool_limits(1):
            prof.enable()
            risk = risk_inputs(cfg, market)
            rep = run_index_enhanced(sig, market.tables(), panel, INDEX_CODES[a.universe], a.universe, cfg.portfolio,
                                     cfg.backtest, figures=False, risk=risk)
            prof.disable()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        st = pstats.Stats(prof)
        cum = {}
        for (_, _, fn), (_, _, _, ct, _) in st.stats.items():
            cum[fn] = max(cum.get(fn, 0.0), ct)
        n = len(rep.rebalances)
        print(f"== {pname}, {a.universe}, {start.date()} .. {end.date()}: {n} rebalances, {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU ({cpu / n:.2f} s CPU per rebalance); relaxed {rep.summary['relaxed_share']:.0%}, "
              f"turnover {rep.summary['turnover']:.3f}")
        print(f"{'part':<44} {'CPU s':>8} {'per rebalance':>14}")
        for label, fns in PARTS:
            s = max((cum.get(f, 0.0) for f in fns), default=0.0)
            print(f"{label:<44} {s:>8.2f} {s / n:>14.3f}")
        if a.top:
            st.sort_stats("tottime").print_stats(a.top)


if __name__ == "__main__":
    main()
