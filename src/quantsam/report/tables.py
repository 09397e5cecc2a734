"""Comparison tables across optimizers (mean ± std across seeds) and the paired significance tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from quantsam.report.collect import JobResult

FACTOR_ROWS = (("RankIC mean", "rank_ic_mean"), ("RankIC std", "rank_ic_std"), ("ICIR", "rank_icir"),
               ("IC>0", "rank_ic_pos"), ("TOP excess (ann.)", "top_excess_ann"), ("TOP IR", "top_ir"),
               ("TOP win rate", "top_win_rate"), ("TOP turnover", "top_turnover"))
BACKTEST_ROWS = (("excess (ann.)", "excess_ann"), ("tracking error", "tracking_error"), ("IR", "info_ratio"),
                 ("excess max drawdown", "excess_max_drawdown"), ("excess Calmar", "excess_calmar"),
                 ("monthly win rate", "monthly_win_rate"), ("turnover", "turnover"))
PERCENT = {"top_excess_ann", "excess_ann", "tracking_error", "excess_max_drawdown", "rank_ic_pos", "top_win_rate",
           "monthly_win_rate", "excess"}


def optimizers(jobs: list[JobResult]) -> list[str]:
    seen: list[str] = []
    for j in jobs:
        if j.optimizer not in seen:
            seen.append(j.optimizer)
    return seen


def _fmt(key: str, mean: float, sd: float, n: int) -> str:
    if not np.isfinite(mean):
        return "—"
    scale, unit = (100.0, "%") if key in PERCENT else (1.0, "")
    digits = 4 if key.startswith(("rank_ic_mean", "rank_ic_std")) else 2
    s = f"{mean * scale:.{digits}f}{unit}"
    return s + (f" ± {sd * scale:.{digits}f}" if n > 1 and np.isfinite(sd) else "")


def metric_table(jobs: list[JobResult], rows, get: Callable[[JobResult], dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numeric means, formatted 'mean ± std') with rows = metrics, columns = optimizers."""
    opts = optimizers(jobs)
    num = pd.DataFrame(index=[r[0] for r in rows], columns=opts, dtype=float)
    txt = pd.DataFrame(index=[r[0] for r in rows], columns=opts, dtype=object)
    for o in opts:
        vals = [get(j) for j in jobs if j.optimizer == o]
        for label, key in rows:
            v = np.array([d.get(key, np.nan) for d in vals], dtype=float)
            v = v[np.isfinite(v)]
            mean = float(v.mean()) if len(v) else np.nan
            sd = float(v.std(ddof=1)) if len(v) > 1 else np.nan
            num.loc[label, o] = mean
            txt.loc[label, o] = _fmt(key, mean, sd, len(v))
    return num, txt


def factor_table(jobs):
    return metric_table(jobs, FACTOR_ROWS, lambda j: j.factor)


def backtest_table(jobs, universe: str):
    return metric_table(jobs, BACKTEST_ROWS, lambda j: j.backtests.get(universe, {}))


def universes(jobs) -> list[str]:
    order = ["csi300", "csi500", "csi1000"]
    found = {u for j in jobs for u in j.backtests}
    return [u for u in order if u in found] + sorted(found - set(order))


def last_year_table(jobs) -> pd.DataFrame:
    """Excess return of the last calendar year in the backtest (the study's 2024 YTD), per index and optimizer."""
    rows = {}
    for u in universes(jobs):
        for o in optimizers(jobs):
            ys = [j.yearly[u] for j in jobs if j.optimizer == o and u in j.yearly]
            if not ys:
                continue
            year = int(ys[0].index.max())
            v = np.array([y.loc[year, "excess"] for y in ys], dtype=float)
            days = int(ys[0].loc[year, "days"])
            rows.setdefault(f"{u} {year} ({days} days)", {})[o] = _fmt("excess", v.mean(),
                                                                        v.std(ddof=1) if len(v) > 1 else np.nan, len(v))
    return pd.DataFrame(rows).T.reindex(columns=optimizers(jobs))


def cost_table(jobs) -> pd.DataFrame:
    out = {}
    for o in optimizers(jobs):
        js = [j for j in jobs if j.optimizer == o]
        out[o] = {"grad evals": np.mean([j.train.get("cost/grad_evals", np.nan) for j in js]),
                  "train wall (s)": np.mean([j.train.get("cost/wall_s", np.nan) for j in js]),
                  **{f"{k} (s)": np.mean([j.stage_seconds.get(k, np.nan) for j in js])
                     for k in ("data", "train", "factor_test", "backtest")}}
    df = pd.DataFrame(out)
    if "adamw" in df.columns:
        df.loc["grad evals / AdamW"] = df.loc["grad evals"] / df.loc["grad evals", "adamw"]
        df.loc["train wall / AdamW"] = df.loc["train wall (s)"] / df.loc["train wall (s)", "adamw"]
    # what each arm buys per unit of compute: test RankIC of the signal / (gradient evaluations / 1,000)
    ric = pd.Series({o: np.nanmean([j.train.get("test/rank_ic_mean", np.nan) for j in jobs if j.optimizer == o])
                     for o in df.columns})
    df.loc["RankIC per 1,000 grad evals"] = ric / (df.loc["grad evals"] / 1000.0)
    return df


def arms_table(jobs) -> pd.DataFrame:
    """One row per arm, in report order: its group (baseline / generalisation / efficiency / combined), the optimizer
    behind it, the epoch budget factor of a compute-matched arm, and the seeds run."""
    rows = {}
    for o in optimizers(jobs):
        js = [j for j in jobs if j.optimizer == o]
        rows[o] = {"group": js[0].family, "optimizer": js[0].optimizer_name,
                   "seeds": ", ".join(str(j.seed) for j in js)}
    return pd.DataFrame(rows).T


def window_rank_ic(job: JobResult) -> pd.Series:
    """Mean RankIC of the factor-test dates falling in each rolling window's test block (index: window)."""
    if job.factor_ic is None or not job.splits:
        return pd.Series(dtype=float)
    ric = job.factor_ic["rank_ic"]
    out = {}
    for s in job.splits:
        lo, hi = pd.Timestamp(s["test"][0]), pd.Timestamp(s["test"][1])
        v = ric[(ric.index >= lo) & (ric.index <= hi)]
        if len(v):
            out[int(s["window"])] = float(v.mean())
    return pd.Series(out, dtype=float)


def significance(jobs) -> pd.DataFrame:
    """Each variant vs AdamW on per-window test RankIC, paired over (seed, window): mean difference, wins, and the
    two-sided Wilcoxon signed-rank p-value (with fewer than 6 pairs no p-value can fall below 0.05)."""
    per = {}
    for j in jobs:
        for w, v in window_rank_ic(j).items():
            per[(j.optimizer, j.seed, w)] = v
    base = {(s, w): v for (o, s, w), v in per.items() if o == "adamw"}
    rows = {}
    for o in optimizers(jobs):
        if o == "adamw":
            continue
        pairs = [(per[(o, s, w)], base[(s, w)]) for (oo, s, w) in per if oo == o and (s, w) in base]
        if not pairs:
            continue
        d = np.array([a - b for a, b in pairs])
        p = float("nan")
        if len(d) >= 1 and np.any(d != 0):
            p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        rows[o] = {"pairs (seed x window)": len(d), "mean ΔRankIC vs AdamW": float(d.mean()),
                   "wins": int((d > 0).sum()), "Wilcoxon p": p,
                   "verdict": "significant at 5%" if p < 0.05 else "not distinguishable from noise"}
    return pd.DataFrame(rows).T


def min_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that a two-sided paired t-test at level ``alpha`` detects with probability
    ``power``, for ``n`` pairs whose differences have standard deviation ``sd`` — from the noncentral t distribution
    (Cohen 1988, ch. 2), not the normal approximation (z_{1-a/2} + z_power) sd / sqrt(n), which is too small for few
    pairs."""
    if n < 3 or not np.isfinite(sd) or sd <= 0:  # with 2 pairs (1 df) scipy's noncentral t is unreliable
        return float("nan")
    from scipy.optimize import brentq

    df = n - 1
    tc = stats.t.ppf(1 - alpha / 2, df)

    def gap(delta: float) -> float:
        nc = delta * np.sqrt(n) / sd
        return float(stats.nct.sf(tc, df, nc) + stats.nct.cdf(-tc, df, nc)) - power

    hi = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / np.sqrt(n)  # the normal approximation
    for _ in range(60):  # the t-test needs more than the normal approximation: widen until bracketed
        if gap(hi) > 0:
            return float(brentq(gap, 0.0, hi))
        hi *= 1.5
    return float("nan")


def paired_test(d) -> dict[str, float]:
    """Paired differences ``d``: their count, mean, std, the two-sided paired t-test and Wilcoxon signed-rank
    p-values, and the smallest difference detectable at 80% power (:func:`min_detectable_difference`)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    sd = float(np.std(d, ddof=1)) if n > 1 else float("nan")
    out = {"pairs": float(n), "mean": float(d.mean()) if n else float("nan"), "std": sd,
           "t p": float(stats.ttest_1samp(d, 0.0).pvalue) if n > 1 and sd > 0 else float("nan"),
           "Wilcoxon p": float(stats.wilcoxon(d).pvalue) if n > 1 and np.any(d != 0) else float("nan"),
           "MDE (80% power)": min_detectable_difference(sd, n)}
    return out


def weekly_sum(daily: pd.Series) -> pd.Series:
    """A daily return series summed within each Friday-ending week: the unit of every paired portfolio test."""
    return daily.groupby(pd.DatetimeIndex(daily.index).to_period("W-FRI")).sum()


def _weekly_excess(job: JobResult, universe: str) -> pd.Series:
    daily = job.daily.get(universe)
    if daily is None:
        return pd.Series(dtype=float)
    return weekly_sum(daily["excess"])


def power_table(jobs, base: str = "adamw") -> pd.DataFrame:
    """Every arm against ``base``: paired differences of the test RankIC per (rolling window, seed index) — over all
    names and within each index's members — and of the weekly excess return of each index's portfolio (per week),
    with the paired t-test, the Wilcoxon test and the smallest difference each could detect at 80% power."""
    ref = [j for j in jobs if j.optimizer == base]
    rows: dict[tuple[str, str], dict] = {}
    for o in optimizers(jobs):
        if o == base:
            continue
        for j in (j for j in jobs if j.optimizer == o):
            b = next((r for r in ref if r.seed == j.seed), None)
            if b is None:
                continue
            if j.windows is not None and b.windows is not None:
                m = j.windows.merge(b.windows, on=["window", "seed"], suffixes=("", "_base"))
                for col in [c for c in j.windows.columns if c.endswith("rank_ic") and f"{c}_base" in m]:
                    what = "test RankIC (window x seed)" if col == "rank_ic" else \
                        f"test RankIC in {col[:-len('_rank_ic')]} (window x seed)"
                    rows[(o, what)] = paired_test(m[col] - m[f"{col}_base"])
            for u in sorted(set(j.daily) & set(b.daily)):
                a, c = _weekly_excess(j, u), _weekly_excess(b, u)
                idx = a.index.intersection(c.index)
                rows[(o, f"{u} weekly excess (week)")] = paired_test(a[idx] - c[idx])
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).T
    df.index.names = ["arm", f"difference vs {base}"]
    return df.reset_index()


def summary_table(jobs) -> pd.DataFrame:
    """The side-by-side headline of a study (mean over seeds): test RankIC and ICIR of the signal, TOP-layer excess,
    each index's annualised excess and IR, gradient evaluations and training wall time."""
    rows: dict[str, dict[str, float]] = {}
    for o in optimizers(jobs):
        js = [j for j in jobs if j.optimizer == o]

        def mean(get, js=js):
            v = np.array([get(j) for j in js], dtype=float)
            return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

        r = {"test RankIC daily": mean(lambda j: j.train.get("test/rank_ic_mean", np.nan)),
             "test ICIR daily": mean(lambda j: j.train.get("test/rank_icir", np.nan)),
             "factor RankIC weekly": mean(lambda j: j.factor.get("rank_ic_mean", np.nan)),
             "TOP excess": mean(lambda j: j.factor.get("top_excess_ann", np.nan))}
        for u in universes(jobs):
            r[f"{u} excess"] = mean(lambda j, u=u: j.backtests.get(u, {}).get("excess_ann", np.nan))
            r[f"{u} IR"] = mean(lambda j, u=u: j.backtests.get(u, {}).get("info_ratio", np.nan))
        r["grad evals"] = mean(lambda j: j.train.get("cost/grad_evals", np.nan))
        r["train wall (s)"] = mean(lambda j: j.train.get("cost/wall_s", np.nan))
        rows[o] = r
    return pd.DataFrame(rows)


def format_summary(df: pd.DataFrame) -> str:
    """``summary_table`` as aligned text: returns in %, IC to 4 digits, IR to 2, counts and seconds as integers."""
    def cell(row: str, v: float) -> str:
        if not np.isfinite(v):
            return "—"
        if row.endswith("excess"):
            return f"{100 * v:+.1f}%"
        words = row.split()
        if "IR" in words or "ICIR" in words:
            return f"{v:.2f}"
        if "RankIC" in words:
            return f"{v:.4f}"
        return f"{v:,.0f}"

    width = max(len(r) for r in df.index) + 2
    cols = [str(c) for c in df.columns]
    cw = max([12, *(len(c) + 2 for c in cols)])  # arm names such as adamw_matched need a wider column
    lines = [" " * width + "".join(f"{c:>{cw}}" for c in cols)]
    for r in df.index:
        lines.append(f"{r:<{width}}" + "".join(f"{cell(r, df.loc[r, c]):>{cw}}" for c in df.columns))
    return "\n".join(lines)


#: the source's claims that a study can check by name (Huatai AI-84): the arm, the part of the test period, the claim
SOURCE_CLAIMS = (("gsam", "all", "GSAM is the best optimizer over the whole test period"),
                 ("asam", "last", "ASAM is the best optimizer in the last test window (the source: 2024 H1)"))


def _arm_metrics(jobs, scope: str) -> dict[str, dict[str, pd.Series]]:
    """Per arm, per metric, the paired units of the comparison: test RankIC per (window, seed index) — all names and
    within each index — and each index portfolio's weekly excess per week; ``scope="last"`` keeps the last rolling
    window's test block only. Several jobs of one arm (sweep seeds) are averaged unit by unit."""
    out: dict[str, dict[str, list[pd.Series]]] = {}
    for j in jobs:
        m = out.setdefault(j.optimizer, {})
        if j.windows is not None and len(j.windows):
            w = j.windows if scope == "all" else j.windows[j.windows["window"] == j.windows["window"].max()]
            w = w.set_index(["window", "seed"])
            for col in [c for c in w.columns if c.endswith("rank_ic")]:
                name = "test RankIC, all names" if col == "rank_ic" else f"test RankIC within {col[:-8]}"
                m.setdefault(name, []).append(w[col].astype(float))
        lo = pd.Timestamp(j.splits[-1]["test"][0]) if scope == "last" and j.splits else None
        for u in universes([j]):
            wk = _weekly_excess(j, u)
            if lo is not None:
                wk = wk[wk.index.end_time >= lo]
            if len(wk):
                m.setdefault(f"{u} weekly excess", []).append(wk)
    return {o: {k: pd.concat(v, axis=1).mean(axis=1) for k, v in ms.items()} for o, ms in out.items()}


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of p-values (Holm 1979): the k-th smallest of m is multiplied by m - k + 1, then
    made monotone and capped at 1 — a few lines, so not worth a statsmodels dependency. NaN counts as 1."""
    p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def source_claims(jobs, claims=SOURCE_CLAIMS) -> pd.DataFrame:
    """Each of the source's claims checked on every metric: the best arm (highest mean), the claimed arm's rank, and a
    paired test of the claimed arm against its strongest rival (the best other arm) on the metric's paired units
    (test RankIC per window x seed; weekly excess per week): the mean difference (claimed minus rival; weekly excess
    annualised x 52), the t-test p-value, the same Holm-adjusted over the claim's metrics (one claim, several tests:
    the verdicts use the adjusted p) and the smallest difference it detects at 80% power. Claims whose arm the study
    lacks, or with a single arm, give no rows."""
    rows = []
    for arm, scope, text in claims:
        per = _arm_metrics(jobs, scope)
        if arm not in per or len(per) < 2:
            continue
        first = len(rows)
        for metric in per[arm]:
            means = {o: float(ms[metric].mean()) for o, ms in per.items() if metric in ms and len(ms[metric])}
            order = sorted(means, key=means.get, reverse=True)
            rival = order[1] if order[0] == arm else order[0]
            a, b = per[arm][metric], per[rival][metric]
            idx = a.index.intersection(b.index)
            t = paired_test(a[idx] - b[idx])
            yr = 52.0 if metric.endswith("weekly excess") else 1.0
            rows.append({"claim": text, "arm": arm, "metric": metric + (" (x 52: a year)" if yr > 1 else ""),
                         "best arm": order[0],
                         "claimed arm's rank": f"{order.index(arm) + 1} of {len(order)}",
                         "claimed arm": means[arm] * yr, "rival": rival, "difference (claimed - rival)": t["mean"] * yr,
                         "pairs": t["pairs"], "t p": t["t p"], "MDE (80% power)": t["MDE (80% power)"] * yr})
        for r, p_adj in zip(rows[first:], holm([r["t p"] for r in rows[first:]]), strict=True):
            sig, rival = p_adj < 0.05, r["rival"]
            r["t p (Holm)"] = p_adj
            r["verdict"] = (("best, significantly" if sig else "best, but not distinguishable from " + rival)
                            if r["best arm"] == arm else
                            (f"behind {rival}, significantly" if sig else f"behind {rival}, within noise"))
    return pd.DataFrame(rows)


def claims_text(df: pd.DataFrame) -> list[str]:
    """One sentence per claim from :func:`source_claims`: on how many metrics the claimed arm is best, on how many of
    those significantly (Holm-adjusted over the claim's metrics), and on how many another arm is significantly
    ahead. The answer: *not supported* when another arm is significantly ahead on any metric or the claimed arm is
    best on fewer than half of them, *supported* when it is best on at least half and significantly so on one or more,
    else it leads within noise."""
    out: list[str] = []
    if df.empty:
        return out
    for text, g in df.groupby("claim", sort=False):
        best = g["verdict"].str.startswith("best")
        sig = g["verdict"].eq("best, significantly")
        behind = g["verdict"].str.startswith("behind") & g["verdict"].str.endswith("significantly")
        answer = ("not supported" if behind.any() or 2 * best.sum() < len(g) else
                  "supported" if sig.any() else "the arm leads, but within noise on every metric")
        out.append(f"{text}? {g['arm'].iloc[0]} is best on {int(best.sum())} of {len(g)} metrics ({int(sig.sum())} "
                   f"of them significantly at 5%, Holm-adjusted); another arm is significantly ahead of it on "
                   f"{int(behind.sum())}: {answer}.")
    return out
