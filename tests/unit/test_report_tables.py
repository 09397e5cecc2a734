"""Study tables: mean ± std formatting, paired significance semantics, Markdown rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from quantsam.report.collect import JobResult
from quantsam.report.render import md_table
from quantsam.report.tables import factor_table, significance


def job(opt, seed, window_ics, rank_ic_mean=0.05):
    dates = pd.bdate_range("2020-01-01", periods=10 * len(window_ics), freq="B")
    ric = np.repeat(window_ics, 10)
    splits = [{"window": w, "test": [str(dates[10 * w].date()), str(dates[10 * w + 9].date())]}
              for w in range(len(window_ics))]
    return JobResult(opt, seed, Path("."), None, {}, factor={"rank_ic_mean": rank_ic_mean, "rank_ic_pos": 0.6},
                     factor_ic=pd.DataFrame({"rank_ic": ric}, index=dates), splits=splits)


def test_significance_semantics():
    rng = np.random.default_rng(0)
    base = [rng.normal(0.05, 0.02, 4) for _ in range(3)]
    jobs = [job("adamw", s, base[s]) for s in range(3)]
    jobs += [job("sam", s, base[s] + 0.01) for s in range(3)]  # better on all 12 (seed, window) pairs
    jobs += [job("gsam", s, base[s]) for s in range(3)]  # identical to AdamW
    sig = significance(jobs)
    assert sig.loc["sam", "pairs (seed x window)"] == 12 and sig.loc["sam", "wins"] == 12
    assert sig.loc["sam", "Wilcoxon p"] < 0.01 and sig.loc["sam", "verdict"] == "significant at 5%"
    assert abs(sig.loc["sam", "mean ΔRankIC vs AdamW"] - 0.01) < 1e-9
    assert np.isnan(sig.loc["gsam", "Wilcoxon p"]) and sig.loc["gsam", "wins"] == 0
    assert sig.loc["gsam", "verdict"] == "not distinguishable from noise"


def test_factor_table_mean_and_std_across_seeds():
    jobs = [job("adamw", 0, [0.1], 0.04), job("adamw", 1, [0.1], 0.06), job("sam", 0, [0.1], 0.05)]
    num, txt = factor_table(jobs)
    assert num.loc["RankIC mean", "adamw"] == 0.05
    assert txt.loc["RankIC mean", "adamw"] == f"0.0500 ± {np.std([0.04, 0.06], ddof=1):.4f}"
    assert txt.loc["RankIC mean", "sam"] == "0.0500" and txt.loc["IC>0", "sam"] == "60.00%"


def test_md_table():
    df = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}, index=["r1", "r2"])
    assert md_table(df).splitlines() == ["|  | a | b |", "|---|---|---|", "| r1 | 1 | x |", "| r2 | — | y |"]


def test_min_detectable_difference_has_the_power_it_claims():
    """Simulated paired samples whose true mean is the MDE are rejected ~80% of the time by scipy's t-test; for many
    pairs the MDE approaches the normal approximation (z_.975 + z_.8) sd / sqrt(n)."""
    from scipy import stats

    from quantsam.report.tables import min_detectable_difference, paired_test

    rng = np.random.default_rng(11)
    for n in (9, 27):
        mde = min_detectable_difference(2.0, n)
        d = rng.normal(mde, 2.0, size=(20000, n))
        rejected = (stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05).mean()
        assert abs(rejected - 0.8) < 0.015, (n, rejected)
    big = min_detectable_difference(1.0, 4000)
    assert abs(big - (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / np.sqrt(4000)) < 1e-4
    x, y = rng.normal(size=30), rng.normal(size=30)
    got = paired_test(x - y)
    assert np.isclose(got["t p"], stats.ttest_rel(x, y).pvalue) and got["pairs"] == 30
    assert np.isclose(got["Wilcoxon p"], stats.wilcoxon(x, y).pvalue)


def test_headline_metrics_name_each_horizon_and_leave_out_what_is_missing():
    from quantsam.tracking.headline import headline_metrics

    got = headline_metrics({"cost/grad_evals": 120, "cost/wall_s": 3.5},
                           {"test/rank_ic_mean": 0.08, "test/rank_icir": 0.7},
                           {"rank_ic_mean": 0.06, "top_excess_ann": float("nan")},
                           {"csi500": {"excess_ann": -0.01, "info_ratio": None}})
    assert got == {"summary/test_rank_ic_daily": 0.08, "summary/test_rank_icir_daily": 0.7,
                   "summary/factor_rank_ic_weekly": 0.06, "summary/grad_evals": 120.0,
                   "summary/train_wall_s": 3.5, "summary/csi500_excess_ann": -0.01}


def test_parent_metrics_are_the_side_by_side_table():
    import pandas as pd

    from quantsam.report.render import parent_metrics

    df = pd.DataFrame({"adamw": {"test RankIC daily": 0.08, "csi500 excess": float("nan"), "train wall (s)": 10.0},
                       "gsam": {"test RankIC daily": 0.09, "csi500 excess": 0.01, "train wall (s)": 20.0}})
    assert parent_metrics(df) == {"compare/adamw/test_rankic_daily": 0.08, "compare/adamw/train_wall_s": 10.0,
                                  "compare/gsam/test_rankic_daily": 0.09, "compare/gsam/csi500_excess": 0.01,
                                  "compare/gsam/train_wall_s": 20.0}


def test_format_summary_gives_each_row_its_unit():
    """Returns in %, RankICs to 4 digits (daily and weekly alike), IR / ICIR to 2, counts as integers."""
    from quantsam.report.tables import format_summary

    df = pd.DataFrame({"adamw": {"test RankIC daily": 0.0456, "test ICIR daily": 0.771, "factor RankIC weekly": 0.0589,
                                 "csi500 excess": 0.0408, "csi500 IR": 0.953, "grad evals": 1485.0,
                                 "csi300 IR": float("nan")}})
    cells = {line.split("  ")[0].strip(): line.split()[-1] for line in format_summary(df).splitlines()[1:]}
    assert cells == {"test RankIC daily": "0.0456", "test ICIR daily": "0.77", "factor RankIC weekly": "0.0589",
                     "csi500 excess": "+4.1%", "csi500 IR": "0.95", "grad evals": "1,485", "csi300 IR": "—"}


def _claim_job(opt: str, ric: list[float], weekly_excess: float, noise: float, seed: int) -> JobResult:
    """An arm with test RankIC per (window, seed index) and a CSI500 portfolio whose daily excess is
    ``weekly_excess / 5`` plus noise; three windows, the last from 2021-01-04."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2020-01-06", "2021-06-25")
    daily = pd.DataFrame({"excess": weekly_excess / 5 + noise * rng.standard_normal(len(days))}, index=days)
    off = 0.001 * rng.standard_normal(3)  # per seed index
    windows = pd.DataFrame([{"window": w, "seed": s, "rank_ic": ric[w] + off[s], "csi500_rank_ic": ric[w] / 2}
                            for w in range(3) for s in range(3)])
    splits = [{"window": 0, "test": ["2020-01-06", "2020-06-30"]}, {"window": 1, "test": ["2020-07-01", "2020-12-31"]},
              {"window": 2, "test": ["2021-01-04", "2021-06-25"]}]
    return JobResult(opt, 0, Path("."), None, {}, daily={"csi500": daily}, backtests={"csi500": {}}, splits=splits,
                     windows=windows)


def test_source_claims_rank_the_claimed_arm_and_test_it_against_its_strongest_rival():
    from quantsam.report.tables import claims_text, source_claims

    jobs = [_claim_job("adamw", [0.05, 0.05, 0.05], 0.0, 0.002, 1),
            _claim_job("gsam", [0.08, 0.08, 0.04], 0.002, 1e-5, 2),  # best overall, behind ASAM in the last window
            _claim_job("asam", [0.06, 0.06, 0.06], 0.001, 0.0005, 3)]
    df = source_claims(jobs)
    g = df[df["arm"] == "gsam"].set_index("metric")
    # GSAM's mean over the 9 (window, seed) units ~0.0667 beats ASAM's ~0.06 (each +- its seeds' small offsets)
    r = g.loc["test RankIC, all names"]
    assert r["best arm"] == "gsam" and r["rival"] == "asam" and r["claimed arm's rank"] == "1 of 3"
    assert np.isclose(r["difference (claimed - rival)"], jobs[1].windows["rank_ic"].mean() - jobs[2].windows["rank_ic"].mean())
    # the paired differences over windows are about +0.02, +0.02, -0.02 (x 3 seeds): not significant
    assert r["verdict"] == "best, but not distinguishable from asam" and r["t p"] > 0.05
    assert r["pairs"] == 9
    wk = g.loc["csi500 weekly excess (x 52: a year)"]
    assert wk["best arm"] == "gsam" and wk["verdict"] == "best, significantly"
    assert np.isclose(wk["claimed arm"], 0.002 * 52, rtol=0.01)  # 0.2% a week with almost no noise, in %/yr
    a = df[df["arm"] == "asam"].set_index("metric").loc["test RankIC, all names"]
    # the last window alone: ASAM 0.06 vs AdamW 0.05 (GSAM 0.04) in each of the 3 seeds, up to the seed offsets
    assert a["best arm"] == "asam" and a["pairs"] == 3 and a["verdict"] == "best, significantly"
    text = claims_text(df)
    assert len(text) == 2 and text[0].startswith("GSAM is the best optimizer over the whole test period? gsam is best on 3 of 3")
    assert "ASAM" in text[1] and text[1].endswith(("supported.", "noise on every metric."))
    # a study without the claimed arm, or with one arm, checks nothing
    assert source_claims(jobs[:1]).empty and source_claims([jobs[0], jobs[2]])["arm"].eq("asam").all()
