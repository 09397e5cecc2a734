"""Benchmark: how well the factor risk model's one-step-ahead volatilities hold on a market (Barra's bias test).

The backtest's ``te_bias`` says whether the *portfolio's* tracking-error forecast holds; this script says where a
miss comes from, without the optimiser: on the backtest's risk window of a config (e.g. a real study's training
work dir), for every factor and every name, the realised return over each non-overlapping ``--horizon``-day period
divided by its forecast volatility at the period's start (EWMA half-life ``portfolio.risk_halflife``, the
``RiskModel``'s own estimator), and the bias statistic = the standard deviation of those z-scores (1 when the
forecasts hold; Menchero, Orr & Wang, *USE4*, MSCI 2011, §5). Printed: the bias per style factor, the median over
industries, the specific returns' bias by float-cap quintile (equal-weighted over names), the volatility regime
adjustment's multipliers (``--vra-halflife``) and the same biases after it. Nothing is written.

``--model`` instead asks the ``RiskModel`` itself (with ``--nw-lags`` / ``--stat-factors``, the remedies of issue 32)
at the start of each non-overlapping period from ``--from`` on: the styles' z-scores over ``F``'s diagonal, each
name's specific return over its forecast (statistical factors' part included) and each float-cap quintile's
equal-weighted basket over ``l' G l + sum d / n^2`` — the basket is where residuals that co-move show.

    python scripts/bench/risk_bias.py experiment=real_cpu --vra-halflife 42
    python scripts/bench/risk_bias.py experiment=real_arms --model --nw-lags 5 --stat-factors 10
    python scripts/bench/risk_bias.py experiment=real_arms --model --nw-lags 5 --stat-factors 10 --vra-halflife 42 \
        --eigen-scale 1.4                                  # portfolio=cost_aware's risk model
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from quantsam.backtest.stage import risk_inputs
from quantsam.config import compose
from quantsam.data.stage import run_data
from quantsam.features.market import open_market
from quantsam.portfolio.risk import _ewma_forecast, usable_variance, vra_multipliers


def period_z(x: np.ndarray, var: np.ndarray, h: int) -> np.ndarray:
    """``[P, ...]`` z-scores of the sums of ``x`` (``[T, ...]`` daily returns) over periods of ``h`` days, each over
    ``sqrt(h x var)`` at the period's first day (NaN where a day or the forecast is missing)."""
    P = len(x) // h
    xs = x[: P * h].reshape(P, h, *x.shape[1:])
    s = xs.sum(axis=1)
    s[np.isnan(xs).any(axis=1)] = np.nan
    v0 = var[: P * h: h]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v0 > 0, s / np.sqrt(h * v0), np.nan)


def bias(z: np.ndarray) -> float:
    z = z[np.isfinite(z)]
    return float(np.std(z, ddof=1)) if len(z) > 2 else float("nan")


def model_biases(a) -> None:
    """Biases of the RiskModel's forecasts (module docstring, ``--model``)."""
    import pandas as pd

    from quantsam.portfolio.risk import RiskModel

    cfg = compose(a.overrides)
    market = open_market(run_data(cfg))
    ri = risk_inputs(cfg, market)
    fr = ri.fr
    model = RiskModel(fr, float(cfg.portfolio.risk_halflife), a.min_obs,
                      a.vra_halflife, a.nw_lags, a.stat_factors, a.stat_window, a.eigen_scale)
    panel = market.panel()
    p0 = max(int(np.searchsorted(panel.dates, pd.Timestamp(a.from_date))) - ri.row0, a.min_obs + 21)
    T, n_ind = len(fr.f), ri.n_industries
    cap = ri.styles.cap[ri.row0: ri.row0 + T].astype(np.float64)
    label = (f"nw_lags {a.nw_lags}, stat_factors {a.stat_factors}" + (f", vra {a.vra_halflife:g}" if a.vra_halflife else "")
             + (f", eigen {a.eigen_scale:g}" if a.eigen_scale else ""))
    t0 = time.perf_counter()
    for h in (int(x) for x in a.horizons.split(",")):
        starts = list(range(p0, T - h, max(h, 5)))
        zs, zu, zb = [], [], [[] for _ in range(5)]
        for p in starts:
            out = model.at(p)
            F, spec = out[0], out[1]
            Kf = len(fr.names)
            fsum = fr.f[p:p + h].sum(axis=0)
            zs.append(fsum[n_ind:] / np.sqrt(h * np.diag(F)[n_ind:Kf]))
            us = fr.u[p:p + h]
            usum = np.where(np.isnan(us).any(axis=0), np.nan, us.sum(axis=0))
            if len(out) == 3:
                lo, G = out[2], F[Kf:, Kf:]
                var_i = spec + np.einsum("nk,kl,nl->n", lo, G, lo)
            else:
                lo, G, var_i = None, None, spec
            with np.errstate(invalid="ignore", divide="ignore"):
                zu.append(usum / np.sqrt(h * var_i))
            c = cap[p]
            qs = np.nanpercentile(c, [20, 40, 60, 80])
            bucket = (c[:, None] > qs[None, :]).sum(axis=1)
            for b in range(5):
                m = (bucket == b) & np.isfinite(usum) & np.isfinite(spec) & np.isfinite(c)
                n = int(m.sum())
                if n <= 20:
                    continue
                v = spec[m].sum() / n ** 2
                if lo is not None:
                    lb = lo[m].mean(axis=0)
                    v += lb @ G @ lb
                zb[b].append(usum[m].mean() / np.sqrt(h * v))
        zs, zu = np.array(zs), np.array(zu)
        print(f"[{label}, {h} d, {len(starts)} periods from {a.from_date}] styles: "
              + ", ".join(f"{nm} {bias(zs[:, k]):.2f}" for k, nm in enumerate(fr.names[n_ind:])))
        print(f"[{label}, {h} d] single names {bias(zu.ravel()):.2f}; equal-weighted float-cap quintiles: "
              + ", ".join(f"Q{b + 1} {bias(np.array(zb[b])):.2f}" for b in range(5))
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the config, e.g. experiment=real_cpu")
    ap.add_argument("--horizons", default="1,5", help="days per period, comma-separated (5: the weekly rebalance)")
    ap.add_argument("--vra-halflife", type=float, default=None)
    ap.add_argument("--min-obs", type=int, default=42)
    ap.add_argument("--model", action="store_true", help="the RiskModel's own forecasts (with the options below)")
    ap.add_argument("--nw-lags", type=int, default=0)
    ap.add_argument("--stat-factors", type=int, default=0)
    ap.add_argument("--stat-window", type=int, default=252)
    ap.add_argument("--eigen-scale", type=float, default=0.0, help="the eigenfactor adjustment's a (--model)")
    ap.add_argument("--from", dest="from_date", default="2020-01-02", help="first period start (--model)")
    a = ap.parse_args()
    if a.model:
        model_biases(a)
        return
    cfg = compose(a.overrides)
    t0 = time.perf_counter()
    market = open_market(run_data(cfg))
    ri = risk_inputs(cfg, market)
    fr, hl = ri.fr, float(cfg.portfolio.risk_halflife)
    a_ = 0.5 ** (1.0 / hl)
    fvar, fn = _ewma_forecast(fr.f * fr.f, a_)
    uvar, un = _ewma_forecast(fr.u * fr.u, a_)
    fvar, uvar = usable_variance(fvar, fn, a.min_obs), usable_variance(uvar, un, a.min_obs)
    T = len(fr.f)
    row0 = ri.row0
    cap = ri.styles.cap[row0: row0 + T].astype(np.float64)
    print(f"risk window: {T} days from panel row {row0}, {fr.u.shape[1]} names, half-life {hl:g}, "
          f"horizons {a.horizons} d ({time.perf_counter() - t0:.0f} s to build)")
    n_ind = ri.n_industries
    variants = [("plain", 1.0, 1.0)]
    if a.vra_halflife:
        lf, lu = vra_multipliers(fr, hl, a.vra_halflife, a.min_obs)
        for nm, lam in (("factor", lf), ("specific", lu)):
            q = np.nanpercentile(lam, [0, 5, 50, 95, 100])
            print(f"VRA lambda^2 ({nm}): min {q[0]:.3g} p5 {q[1]:.3g} median {q[2]:.3g} p95 {q[3]:.3g} max {q[4]:.3g}")
        variants.append((f"vra {a.vra_halflife:g}", lf[:, None], lu[:, None]))
    for (nm, mf, mu), h in ((v, int(h)) for v in variants for h in a.horizons.split(",")):
        nm = f"{nm}, {h} d"
        zf = period_z(fr.f, fvar * mf, h)
        zu = period_z(fr.u, uvar * mu, h)
        styles = {fr.names[k]: bias(zf[:, k]) for k in range(n_ind, len(fr.names))}
        ind = np.nanmedian([bias(zf[:, k]) for k in range(n_ind)])
        print(f"[{nm}] bias: industries (median) {ind:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in styles.items()))
        c0 = cap[: (T // h) * h: h]
        qs = np.nanpercentile(c0, [20, 40, 60, 80], axis=1).T  # per period
        bucket = (c0[:, :, None] > qs[:, None, :]).sum(axis=2)
        row, prow = [], []
        P = len(c0)
        us = fr.u[: P * h].reshape(P, h, -1)
        usum = np.where(np.isnan(us).any(axis=1), np.nan, us.sum(axis=1))
        v0 = (uvar * mu)[: P * h: h] * h
        for b in range(5):
            zb = np.where(bucket == b, zu, np.nan)
            row.append(f"Q{b + 1} {bias(zb):.2f}")
            # an equal-weighted portfolio of the quintile's names: its specific return over its forecast (the
            # names' specific variances / n^2). Independent residuals -> 1; a common component the factors miss
            # (residuals that co-move) -> > 1, which single-name biases cannot show
            m = (bucket == b) & np.isfinite(usum) & np.isfinite(v0) & (v0 > 0)
            n = m.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                zp = np.where(m, usum, 0.0).sum(axis=1) / n / (np.sqrt(np.where(m, v0, 0.0).sum(axis=1)) / n)
            prow.append(f"Q{b + 1} {bias(zp[n > 20]):.2f}")
        print(f"[{nm}] specific bias by float cap (Q1 small), single names: " + ", ".join(row) + f"; all {bias(zu):.2f}")
        print(f"[{nm}] specific bias of each quintile's equal-weighted portfolio: " + ", ".join(prow))


if __name__ == "__main__":
    main()
