"""The statistics a researcher knows of the A-share market, measured the same way on several markets side by side.

Used to calibrate the embedded synthetic market to the real one (README "The synthetic market"): each market is a
config (Hydra overrides, one ``--market`` per column), opened through the data stage exactly as the pipeline opens it,
and every statistic is computed by the one function below from the dense panel — so the real and the synthetic
column differ only in their data. The table ends with the tolerance each statistic is checked against (the synthetic
value over the real one, or a band for the signal statistics) and whether each synthetic column is within it.

Statistics (stock-days: traded rows after a name's first day; weekly: every 5th trading day):

* ``xs_vol``: median over days of the cross-sectional standard deviation of daily returns (close / preclose - 1);
* ``mkt_vol_ann``: annualised volatility of the equal-weighted daily market return;
* ``xs_kurt``: median over days of the cross-sectional excess kurtosis of daily returns;
* ``limit_up`` / ``limit_down``: share of stock-days closing at the exchange's limit price (the contract's rule);
* ``one_price``: share of stock-days that are one-price limit days (O = H = L = C at a limit);
* ``suspended``: share of listed stock-days without a row;
* ``turnover``: median daily turnover (volume / float shares);
* ``size_vol_ann``: annualised volatility of the daily size-factor return (cross-sectional OLS slope of the return on
  the z-scored log float cap of the previous close);
* ``rev5_weekly_ric``: weekly RankIC of the 5-day reversal (minus the last 5 days' return) against the T+1 -> T+6
  VWAP return — the factor test's horizon, a model-free stand-in for how much price-volume signal the market holds;
* ``gru_daily_ric`` / ``gru_weekly_ric`` / ``csi500_ir``: read from a finished run (``--run NAME=DIR``: a sweep
  job's folder ``multirun/<date>/<time>/<job>`` or a ``docs/results/<name>`` folder), since measuring them means
  training: the signal's daily test RankIC (training label), the factor test's weekly RankIC, and the CSI500
  enhanced portfolio's information ratio.

    python scripts/market_stats.py --market real="experiment=real_cpu" --market synthetic="experiment=demo" \\
        --market strong="experiment=demo data=synthetic_strong" --run real=docs/results/real_cpu \\
        --run synthetic=multirun/<date>/<time>/0
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
import warnings
from pathlib import Path

import numpy as np

from quantsam.config import compose
from quantsam.crosssection import rank_ic_rows
from quantsam.data.contract import limit_pct, limit_prices
from quantsam.data.stage import run_data
from quantsam.features.market import open_market
from quantsam.features.panel import Panel
from quantsam.jobresult import FILE, JobResult

#: (statistic, tolerance): ``("ratio", lo, hi)`` — synthetic / real within [lo, hi]; ``("band", lo, hi)`` — the
#: synthetic value within [lo, hi] (signal statistics: a band that holds the real market's measured values).
TOLERANCE = {
    "xs_vol": ("ratio", 0.75, 1.33),
    "mkt_vol_ann": ("ratio", 0.67, 1.5),
    "xs_kurt": ("ratio", 0.33, 3.0),
    "limit_up": ("ratio", 0.5, 2.0),
    "limit_down": ("ratio", 0.5, 2.0),
    "one_price": ("ratio", 0.33, 3.0),
    "suspended": ("ratio", 0.5, 2.0),
    "turnover": ("ratio", 0.5, 2.0),
    "size_vol_ann": ("ratio", 0.5, 2.0),
    "rev5_weekly_ric": ("ratio", 0.5, 2.0),
    "gru_daily_ric": ("band", 0.03, 0.09),
    "gru_weekly_ric": ("band", 0.04, 0.10),
    "csi500_ir": ("band", 0.5, 3.5),
}


def _ok_rows(panel: Panel) -> np.ndarray:
    return panel.traded & (panel.age >= 1)


def market_stats(panel: Panel) -> dict[str, float]:
    """Every model-free statistic of the module docstring, from one dense panel."""
    close = panel.field("close").astype(np.float64)
    pre = panel.field("preclose").astype(np.float64)
    ok = _ok_rows(panel) & np.isfinite(close) & np.isfinite(pre) & (pre > 0)
    r = np.where(ok, close / np.where(ok, pre, 1.0) - 1, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # days / names without values: NaN by design
        n = ok.sum(1)
        days = n >= 20
        xs_sd = np.nanstd(r[days], axis=1, ddof=1)
        mkt = np.nanmean(r[days], axis=1)
        d = r[days] - mkt[:, None]
        m2 = np.nanmean(d**2, axis=1)
        kurt = np.nanmean(d**4, axis=1) / m2**2 - 3
    dates = np.broadcast_to(panel.dates.to_numpy()[:, None], close.shape)
    board = np.broadcast_to(panel.board[None, :], close.shape)
    up, down = limit_prices(pre[ok], limit_pct(board[ok], panel.is_st[ok], dates[ok]))
    c = close[ok]
    one = (panel.limit_up_one | panel.limit_down_one)[ok]
    listed = panel.listed & (panel.age >= 1)
    vol = panel.field("volume").astype(np.float64)
    fs = panel.field("float_shares").astype(np.float64)
    turn = np.where(ok & (fs > 0), vol / np.where(fs > 0, fs, 1.0), np.nan)

    # size factor: OLS slope of today's return on yesterday's z-scored log float cap
    logcap = np.log(np.where(ok & (fs > 0), close * fs, np.nan))
    x = logcap[:-1]
    y = r[1:]
    both = np.isfinite(x) & np.isfinite(y)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        xm = np.where(both, x, np.nan)
        xz = (xm - np.nanmean(xm, 1, keepdims=True)) / np.nanstd(xm, 1, keepdims=True)
        ym = np.where(both, y, np.nan)
        slope = np.nansum(xz * (ym - np.nanmean(ym, 1, keepdims=True)), 1) / np.nansum(xz**2, 1)
    slope = slope[both.sum(1) >= 20]

    # 5-day reversal against the T+1 -> T+6 VWAP return, every 5th day
    adj = panel.field("adj_factor").astype(np.float64)
    px = close * adj
    vw = panel.field("vwap").astype(np.float64) * adj
    T = len(panel.dates)
    rows = np.arange(5, T - 6, 5)
    rev = -(px[rows] / px[rows - 5] - 1)
    fwd = vw[rows + 6] / vw[rows + 1] - 1
    elig = ok[rows] & ok[rows - 5] & panel.traded[rows + 1] & panel.traded[rows + 6]
    ric = rank_ic_rows(np.where(elig, rev, np.nan), np.where(elig, fwd, np.nan))
    return {
        "xs_vol": float(np.nanmedian(xs_sd)),
        "mkt_vol_ann": float(np.nanstd(mkt, ddof=1) * np.sqrt(252)),
        "xs_kurt": float(np.nanmedian(kurt)),
        "limit_up": float(np.mean(c >= up - 0.005)),
        "limit_down": float(np.mean(c <= down + 0.005)),
        "one_price": float(np.mean(one)),
        "suspended": float(1 - (panel.traded & listed).sum() / max(listed.sum(), 1)),
        "turnover": float(np.nanmedian(turn)),
        "size_vol_ann": float(np.nanstd(slope, ddof=1) * np.sqrt(252)),
        "rev5_weekly_ric": float(np.nanmean(ric)),
    }


def run_stats(path: str | Path) -> dict[str, float]:
    """The model statistics of a finished run: a sweep job's folder (its ``result.json`` names the stages' folders:
    ``multirun/<date>/<time>/<job>``) or a ``docs/results/<name>`` folder (its ``summary.json``, first arm)."""
    p = Path(path)
    if not (p / FILE).exists():
        doc = json.loads((p / "summary.json").read_text())
        arm = next(iter(doc["arms"].values()))
        return {"gru_daily_ric": arm["signal"].get("test.rank_ic_mean"),
                "gru_weekly_ric": arm["factor_test_weekly"].get("rank_ic_mean"),
                "csi500_ir": arm["indices"].get("csi500", {}).get("info_ratio")}
    job = JobResult.read(p / FILE)
    summary = lambda d: json.loads((Path(d) / "summary.json").read_text())["summary"] if d else {}  # noqa: E731
    return {"gru_daily_ric": summary(job.signal_dir).get("test/rank_ic_mean"),
            "gru_weekly_ric": summary(job.factor_dir).get("rank_ic_mean"),
            "csi500_ir": summary(job.backtest_dirs.get("csi500")).get("info_ratio")}


def within(stat: str, value: float | None, real: float | None) -> str:
    rule = TOLERANCE.get(stat)
    if rule is None or value is None or not np.isfinite(value):
        return "-"
    kind, lo, hi = rule
    if kind == "band":
        return "yes" if lo <= value <= hi else "NO"
    if real is None or not np.isfinite(real) or real == 0:
        return "-"
    return "yes" if lo <= value / real <= hi else "NO"


def table(cols: dict[str, dict[str, float]], real: str | None) -> str:
    names = list(cols)
    stats = [s for s in TOLERANCE if any(s in c for c in cols.values())]
    head = "| statistic | " + " | ".join(names) + " | tolerance |"
    if real:
        head += " " + " | ".join(f"{n} within" for n in names if n != real) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in stats:
        kind, lo, hi = TOLERANCE[s]
        tol = f"x{lo:g} .. x{hi:g} of {real}" if kind == "ratio" else f"{lo:g} .. {hi:g}"
        vals = [cols[n].get(s) for n in names]
        row = f"| {s} | " + " | ".join("" if v is None else f"{v:.4g}" for v in vals) + f" | {tol} |"
        if real:
            row += " " + " | ".join(within(s, cols[n].get(s), cols[real].get(s)) for n in names if n != real) + " |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--market", action="append", default=[], metavar="NAME=OVERRIDES",
                    help='a column: its name and the Hydra overrides of its config, e.g. real="experiment=real_cpu"')
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                    help="model statistics for column NAME from a finished run (a sweep job dir or a results dir)")
    ap.add_argument("--real", default="real", help="the column the tolerances compare with (default: real)")
    ap.add_argument("--json", help="also write the columns to this JSON file")
    a = ap.parse_args()
    cols: dict[str, dict[str, float]] = {}
    for spec in a.market:
        name, _, ov = spec.partition("=")
        t0 = time.perf_counter()
        market = open_market(run_data(compose(shlex.split(ov))))
        cols[name] = market_stats(market.panel())
        print(f"{name}: {market.dir} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for spec in a.run:
        name, _, d = spec.partition("=")
        cols.setdefault(name, {}).update({k: v for k, v in run_stats(d).items() if v is not None})
    real = a.real if a.real in cols else None
    print(table(cols, real))
    if a.json:
        Path(a.json).write_text(json.dumps(cols, indent=1))


if __name__ == "__main__":
    main()
